"""The benchmark corpus is what its generator makes from its seed, and its labels are right:
every span's text is its value, every planted number passes its checksum."""

from __future__ import annotations

import re

from stdnum import iban, luhn

from bench.pii_corpus import PATH, dump, generate, load, load_heldout


def test_the_checked_in_corpus_is_the_seeds() -> None:
    assert PATH.read_text(encoding="utf-8") == dump(generate())


def test_labels_match_the_text_and_values_are_valid() -> None:
    records = load() + load_heldout()
    assert len(load()) >= 1000
    assert {r["lang"] for r in records} >= {"en", "de", "fr", "es", "zh", "ja", "ar", "hi", "ru"}
    for record in records:
        for span in record["spans"] + record["decoys"]:
            assert record["text"][span["start"] : span["end"]] == span["value"], record["id"]
        for span in record["spans"]:
            digits = re.sub(r"[ -]", "", span["value"])
            if span["type"] == "CREDIT_CARD":
                assert luhn.is_valid(digits), span
            if span["type"] == "IBAN_CODE":
                assert iban.is_valid(span["value"]), span
