"""infra/pii_text: detection, redaction, pseudonyms, streaming restore, threads."""

from __future__ import annotations

import asyncio
import base64
import itertools
import random
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import infra.pii_text as pii_text
from domain.pii import Finding, TextAnalyzer
from infra.pii_text import (
    NER_ENTITIES,
    PATTERN_ENTITIES,
    PseudonymVault,
    StreamingRestorer,
    TextPiiEngine,
    run_off_loop,
)

PLANTED = {
    "EMAIL_ADDRESS": "john.smith@example.com",
    "PHONE_NUMBER": "+1 212 555 0147",
    "CREDIT_CARD": "4111 1111 1111 1111",
    "IBAN_CODE": "GB82 WEST 1234 5698 7654 32",
    "US_SSN": "536-22-1234",
    "IP_ADDRESS": "192.168.10.20",
    "PERSON": "John Smith",
    "LOCATION": "Chicago",
}
TEXT = (
    f"Hello, my name is {PLANTED['PERSON']} and I live in {PLANTED['LOCATION']}. "
    f"Write to {PLANTED['EMAIL_ADDRESS']} or use my phone {PLANTED['PHONE_NUMBER']}. "
    f"Please charge my card {PLANTED['CREDIT_CARD']} or wire the money to "
    f"{PLANTED['IBAN_CODE']}. My social security number is {PLANTED['US_SSN']} and "
    f"the server is at {PLANTED['IP_ADDRESS']}."
)


@pytest.fixture(scope="module")
def engine() -> Iterator[TextPiiEngine]:
    yield TextPiiEngine()  # loads the spaCy model once for the module (~1 s)


@pytest.fixture(scope="module")
def patterns_only() -> Iterator[TextPiiEngine]:
    yield TextPiiEngine(ner_model=None)


def _values(text: str, findings: list[Finding] | tuple[Finding, ...]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for f in findings:
        found.setdefault(f.entity_type, set()).add(text[f.start : f.end])
    return found


def _assert_sorted_disjoint(findings: list[Finding] | tuple[Finding, ...]) -> None:
    for before, after in itertools.pairwise(findings):
        assert before.end <= after.start, (before, after)


# -- detection and redaction ----------------------------------------------------------------------


def test_planted_pii_is_detected_and_removed(engine: TextPiiEngine) -> None:
    analyzer: TextAnalyzer = engine  # the domain protocol
    findings = analyzer.analyze(TEXT, None, 0.5)
    _assert_sorted_disjoint(findings)
    found = _values(TEXT, findings)
    for entity_type, value in PLANTED.items():
        assert value in found.get(entity_type, set()), (entity_type, found)

    redaction = engine.redact(TEXT)
    for entity_type, value in PLANTED.items():
        assert value not in redaction.text
        assert f"<{entity_type}>" in redaction.text
    assert "Smith" not in redaction.text and "4111" not in redaction.text
    assert redaction.counts == {
        t: sum(1 for f in redaction.findings if f.entity_type == t)
        for t in {f.entity_type for f in redaction.findings}
    }


def test_counts_never_contain_original_values(engine: TextPiiEngine) -> None:
    vault = PseudonymVault()
    for redaction in (engine.redact(TEXT), engine.pseudonymize(TEXT, vault)):
        assert set(redaction.counts) <= engine.supported_entities
        assert all(isinstance(n, int) for n in redaction.counts.values())
        rendered = repr(redaction.counts) + repr(redaction.findings)
        for value in PLANTED.values():
            assert value not in rendered
    assert "Smith" not in repr(vault)


def test_entity_selection_redacts_only_those_types(engine: TextPiiEngine) -> None:
    redaction = engine.redact(TEXT, entities=["EMAIL_ADDRESS"])
    assert {f.entity_type for f in redaction.findings} == {"EMAIL_ADDRESS"}
    assert redaction.counts == {"EMAIL_ADDRESS": 1}
    assert PLANTED["EMAIL_ADDRESS"] not in redaction.text
    for entity_type, value in PLANTED.items():
        if entity_type != "EMAIL_ADDRESS":
            assert value in redaction.text
    assert engine.redact(TEXT, entities=[]).text == TEXT


def test_threshold_drops_low_scores(engine: TextPiiEngine) -> None:
    text = "Reply to olivia: reach me on +1 212 555 0147 and pay with 4111 1111 1111 1111."
    low = _values(text, engine.analyze(text, None, 0.5))
    assert "olivia" in low["PERSON"]  # a lower-case name after a cue: 0.7
    default = _values(text, engine.analyze(text, None, 0.75))
    assert "PERSON" not in default
    assert "+1 212 555 0147" in default["PHONE_NUMBER"]  # valid for its region: 0.85
    strict = _values(text, engine.analyze(text, None, 0.9))
    assert set(strict) == {"CREDIT_CARD"}  # issuer range and Luhn: 0.95
    assert all(f.score >= 0.7 for f in engine.analyze(text, None, 0.7))


def test_unknown_and_unavailable_entities_raise(
    engine: TextPiiEngine, patterns_only: TextPiiEngine
) -> None:
    with pytest.raises(ValueError, match="unknown PII entity types: SHOE_SIZE"):
        engine.analyze(TEXT, ["EMAIL_ADDRESS", "SHOE_SIZE"], 0.5)
    with pytest.raises(ValueError, match="need a NER model"):
        patterns_only.analyze(TEXT, ["LOCATION"], 0.5)
    with pytest.raises(TypeError):
        engine.analyze(TEXT, "EMAIL_ADDRESS", 0.5)


def test_supported_entities_match_the_api_vocabulary(
    engine: TextPiiEngine, patterns_only: TextPiiEngine
) -> None:
    from privacy.controls import PII_ENTITY_TYPES

    assert engine.supported_entities == PII_ENTITY_TYPES == PATTERN_ENTITIES | NER_ENTITIES
    assert patterns_only.supported_entities == PATTERN_ENTITIES


def test_pattern_only_engine_finds_names_but_not_places(patterns_only: TextPiiEngine) -> None:
    """Names come from gazetteers and cues, not NER: a deployment without a spaCy model still
    redacts them; only the NER types (places, organisations) need the model."""
    findings = patterns_only.analyze(TEXT, None, 0.5)
    found = _values(TEXT, findings)
    for entity_type in ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN"):
        assert PLANTED[entity_type] in found[entity_type]
    assert PLANTED["PERSON"] in found["PERSON"]
    assert not set(found) & NER_ENTITIES
    redacted = patterns_only.redact(TEXT).text
    assert "John Smith" not in redacted and "Chicago" in redacted


def test_overlaps_resolved_by_score_then_length() -> None:
    resolve = pii_text._without_overlaps
    url = Finding("URL", 5, 16, 0.5)
    email = Finding("EMAIL_ADDRESS", 0, 16, 1.0)
    assert resolve([url, email]) == [email]
    short = Finding("US_BANK_NUMBER", 0, 9, 0.4)
    long = Finding("PHONE_NUMBER", 0, 12, 0.4)
    assert resolve([short, long]) == [long]
    a, b, c = Finding("A", 0, 4, 0.9), Finding("B", 3, 8, 0.95), Finding("C", 8, 10, 0.1)
    assert resolve([a, b, c]) == [b, c]  # touching spans do not overlap


_SPANS = st.lists(
    st.tuples(
        st.sampled_from(["PERSON", "URL", "EMAIL_ADDRESS"]),
        st.integers(0, 60),
        st.integers(1, 15),
        st.sampled_from([0.3, 0.5, 0.85, 1.0]),
    ),
    max_size=25,
)


@given(_SPANS)
def test_overlap_resolution_keeps_a_disjoint_best_first_subset(
    spans: list[tuple[str, int, int, float]],
) -> None:
    candidates = [Finding(t, start, start + length, score) for t, start, length, score in spans]
    kept = pii_text._without_overlaps(candidates)
    _assert_sorted_disjoint(kept)
    assert set(kept) <= set(candidates)

    def rank(f: Finding) -> tuple[float, int]:
        return (f.score, f.end - f.start)

    for dropped in set(candidates) - set(kept):
        blockers = [k for k in kept if k.start < dropped.end and dropped.start < k.end]
        assert blockers and any(rank(k) >= rank(dropped) for k in blockers)


@given(
    text=st.text(alphabet=st.sampled_from(list("<>_1PERSONURL xé→")), max_size=60),
    spans=_SPANS,
)
def test_pseudonymized_text_always_restores_exactly(
    text: str, spans: list[tuple[str, int, int, float]]
) -> None:
    candidates = [
        Finding(t, start, min(start + length, len(text)), score)
        for t, start, length, score in spans
        if start < len(text)
    ]
    findings = pii_text._without_overlaps(candidates)
    vault = PseudonymVault()
    vault.reserve_literals(text)
    rewritten = pii_text._splice(
        text, findings, lambda f: vault.placeholder_for(f.entity_type, text[f.start : f.end])
    )
    assert vault.restore(rewritten) == text


def test_base64_data_urls_are_not_analysed(engine: TextPiiEngine) -> None:
    rng = random.Random(3)
    payload = base64.b64encode(bytes(rng.randrange(256) for _ in range(30_000))).decode()
    data_url = f"data:image/png;base64,{payload}"
    text = (
        f"John Smith sent {data_url}\nand {data_url.upper()[:5]}{data_url[5:]} twice, "
        f"mail {PLANTED['EMAIL_ADDRESS']} about it."
    )
    redaction = engine.redact(text)
    assert redaction.text.count(data_url[5:]) == 2  # not a single byte of the images changed
    assert redaction.text.startswith("<PERSON> sent data:image/png;base64,")
    assert redaction.text.endswith("twice, mail <EMAIL_ADDRESS> about it.")
    assert redaction.counts == {"EMAIL_ADDRESS": 1, "PERSON": 1}


def test_long_texts_are_cut_for_spacy_without_moving_offsets(
    engine: TextPiiEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = " ".join([TEXT] * 3)
    whole = engine.analyze(text, None, 0.5)
    monkeypatch.setattr(pii_text, "_MAX_NLP_CHARS", 160)
    pieces = engine.analyze(text, None, 0.5)
    assert {(f.entity_type, text[f.start : f.end]) for f in pieces} >= {
        (t, v) for t, v in PLANTED.items() if t not in NER_ENTITIES
    }
    assert len(pieces) >= len(whole) - 2  # at most an entity at a cut is lost to NER


def test_spacy_strings_do_not_grow_with_unseen_words(engine: TextPiiEngine) -> None:
    counter = engine._nlp.strings_count
    before = counter()
    rng = random.Random(5)
    for _ in range(20):
        words = " ".join(f"Zq{rng.getrandbits(64):x}" for _ in range(200))
        engine.analyze(f"{words} John Smith", None, 0.5)
    assert counter() == before


# -- pseudonyms -----------------------------------------------------------------------------------


def test_pseudonyms_are_stable_numbered_and_restore_exactly(engine: TextPiiEngine) -> None:
    text = (
        "John Smith met Maria Garcia in Paris. Later John Smith wrote to "
        "john.smith@example.com and maria@example.org, then again to john.smith@example.com."
    )
    vault = PseudonymVault()
    out = engine.pseudonymize(text, vault, entities=["PERSON", "EMAIL_ADDRESS"])
    assert out.text.count("<PERSON_1>") == 2
    assert out.text.count("<PERSON_2>") == 1
    assert out.text.count("<EMAIL_ADDRESS_1>") == 2
    assert out.text.count("<EMAIL_ADDRESS_2>") == 1
    assert "Smith" not in out.text and "@" not in out.text
    assert vault.placeholders == (
        "<PERSON_1>",
        "<PERSON_2>",
        "<EMAIL_ADDRESS_1>",
        "<EMAIL_ADDRESS_2>",
    )
    assert len(vault) == 4 and "<PERSON_1>" in vault
    assert vault.original("<PERSON_2>") == "Maria Garcia"
    assert vault.restore(out.text) == text
    assert out.counts == {"EMAIL_ADDRESS": 3, "PERSON": 3}

    again = engine.pseudonymize("Ask Maria Garcia and Ahmed Khan.", vault, entities=["PERSON"])
    assert again.text == "Ask <PERSON_2> and <PERSON_3>."


def test_vault_never_hands_out_a_placeholder_the_user_typed(engine: TextPiiEngine) -> None:
    text = "Template: dear <PERSON_1>, signed John Smith."
    vault = PseudonymVault()
    out = engine.pseudonymize(text, vault, entities=["PERSON"])
    assert out.text == "Template: dear <PERSON_1>, signed <PERSON_2>."
    assert vault.restore(out.text) == text


def test_vault_is_per_type_and_exact() -> None:
    vault = PseudonymVault()
    assert vault.placeholder_for("PERSON", "Ann") == "<PERSON_1>"
    assert vault.placeholder_for("PERSON", "ann") == "<PERSON_2>"
    assert vault.placeholder_for("LOCATION", "Ann") == "<LOCATION_1>"
    assert vault.placeholder_for("PERSON", "Ann") == "<PERSON_1>"
    assert vault.restore("<PERSON_1>/<PERSON_9>/<LOCATION_1>") == "Ann/<PERSON_9>/Ann"
    with pytest.raises(ValueError):
        vault.placeholder_for("bad type", "x")


# -- streaming restore ----------------------------------------------------------------------------


def _stream(vault: PseudonymVault, chunks: list[str]) -> tuple[str, int]:
    restorer = StreamingRestorer(vault)
    out = []
    longest_pending = 0
    for chunk in chunks:
        out.append(restorer.feed(chunk))
        longest_pending = max(longest_pending, len(restorer.pending))
    out.append(restorer.flush())
    return "".join(out), longest_pending


@pytest.fixture
def vault() -> PseudonymVault:
    vault = PseudonymVault()
    vault.placeholder_for("PERSON", "John Smith")
    vault.placeholder_for("EMAIL_ADDRESS", "jöhn@exämple.com")
    vault.placeholder_for("LOCATION", "São Paulo")
    return vault


def test_streaming_restores_placeholders_split_in_two_or_three(vault: PseudonymVault) -> None:
    expected = "Hi John Smith, from São Paulo!"
    assert _stream(vault, ["Hi <PER", "SON_1>, from <LOCATION_1>!"])[0] == expected
    assert _stream(vault, ["Hi <", "PERSON_", "1>, from <LOC", "ATION", "_1>!"])[0] == expected
    restorer = StreamingRestorer(vault)
    assert restorer.feed("Hi <PER") == "Hi "
    assert restorer.feed("SON_1") == ""
    assert restorer.feed(">.") == "John Smith."


def test_streaming_back_to_back_placeholders_and_unicode(vault: PseudonymVault) -> None:
    chunks = ["→ <PERSON_1><EMAIL_", "ADDRESS_1><LOC", "ATION_1>✓"]
    assert _stream(vault, chunks)[0] == "→ John Smithjöhn@exämple.comSão Paulo✓"


def test_streaming_passes_other_angle_brackets_through(vault: PseudonymVault) -> None:
    restorer = StreamingRestorer(vault)
    assert restorer.feed("if a < b and <div>x</div> ") == "if a < b and <div>x</div> "
    assert restorer.feed("then a <") == "then a "  # could still become <PERSON_1>
    assert restorer.feed(" b") == "< b"
    assert restorer.feed("<b>bold</b> <P") == "<b>bold</b> "
    assert restorer.feed("ERSONAL>") == "<PERSONAL>"
    assert restorer.feed("<PERSON_12>") == "<PERSON_12>"  # unknown placeholder: left alone
    assert restorer.feed("x <" + "y" * 10_000) == "x <" + "y" * 10_000
    assert restorer.pending == ""
    assert restorer.flush() == ""


def test_streaming_flush_returns_an_unfinished_placeholder(vault: PseudonymVault) -> None:
    restorer = StreamingRestorer(vault)
    assert restorer.feed("cut off <PERSON_") == "cut off "
    assert restorer.flush() == "<PERSON_"


_LITERAL = st.text(alphabet=st.sampled_from(list("ab <>_1PERSON/é→ \n")), max_size=12)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_streaming_any_split_equals_restoring_the_whole(
    vault: PseudonymVault, data: st.DataObject
) -> None:
    pieces = data.draw(
        st.lists(st.one_of(_LITERAL, st.sampled_from(vault.placeholders)), max_size=12)
    )
    answer = "".join(pieces)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(answer)), max_size=len(answer) + 1)))
    chunks = [answer[i:j] for i, j in zip([0, *cuts], [*cuts, len(answer)], strict=True)]
    restored, longest_pending = _stream(vault, chunks)
    assert restored == vault.restore(answer)
    assert longest_pending < max(len(p) for p in vault.placeholders)


def test_streaming_every_split_of_a_pseudonymized_answer(engine: TextPiiEngine) -> None:
    vault = PseudonymVault()
    answer = engine.pseudonymize(TEXT, vault).text
    assert len(vault) >= len(PLANTED)
    for i in range(len(answer) + 1):
        for j in range(i, len(answer) + 1, 7):
            assert _stream(vault, [answer[:i], answer[i:j], answer[j:]])[0] == TEXT


# -- concurrency ----------------------------------------------------------------------------------


def test_engine_is_thread_safe(engine: TextPiiEngine, patterns_only: TextPiiEngine) -> None:
    rng = random.Random(11)
    names = ["John Smith", "Maria Garcia", "Ahmed Khan", "Sophie Dubois"]
    texts = [
        f"{rng.choice(names)} (phone {PLANTED['PHONE_NUMBER']}) flew to "
        f"{rng.choice(['Berlin', 'Paris', 'Boston'])}; card {PLANTED['CREDIT_CARD']}, "
        f"ref {rng.getrandbits(40)}, mail {rng.choice(names).split()[0].lower()}@example.com. "
        * rng.randrange(1, 6)
        for _ in range(24)
    ]
    jobs = [(e, t) for t in texts for e in (engine, patterns_only)]
    serial = [e.analyze(t, None, 0.5) for e, t in jobs]
    start = threading.Barrier(8)

    def work(job: tuple[TextPiiEngine, str]) -> list[Finding]:
        return job[0].analyze(job[1], None, 0.5)

    def worker(offset: int) -> list[tuple[int, list[Finding]]]:
        start.wait()
        return [(i, work(jobs[i])) for i in range(offset, len(jobs), 8)] + [
            (i, work(jobs[i])) for i in reversed(range(offset, len(jobs), 8))
        ]

    batches, calls = engine.ner_batches
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = [r for rs in pool.map(worker, range(8)) for r in rs]
    assert len(results) == 2 * len(jobs)
    for i, findings in results:
        assert findings == serial[i]  # batched NER finds exactly what one call each finds
    # NER calls that waited for the lock ran together: fewer batches than calls
    batches_after, calls_after = engine.ner_batches
    assert calls_after - calls == 2 * len(texts)
    assert batches_after - batches < calls_after - calls


def test_a_text_ner_cannot_take_fails_alone_not_its_batch(
    engine: TextPiiEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from infra.pii_text import _NlpCall

    runner = engine._nlp._runner  # type: ignore[attr-defined]
    real_pipe = runner.nlp.pipe

    def pipe(texts: list[str], **kwargs: object) -> object:
        if any("POISON" in text for text in texts):
            raise ValueError("spaCy choked")
        return real_pipe(texts, **kwargs)

    monkeypatch.setattr(runner.nlp, "pipe", pipe)
    good = _NlpCall("Maria Garcia flew to Paris.")
    bad = _NlpCall("POISON")
    runner._run_batch([good, bad])
    assert good.result is not None and good.error is None
    assert "LOCATION" in {span.label_ for span in good.result[3]}
    assert bad.result is None and isinstance(bad.error, ValueError)


async def test_run_off_loop_uses_the_pii_pool(engine: TextPiiEngine) -> None:
    loop_thread = threading.get_ident()

    def where(text: str) -> tuple[str, int]:
        return engine.redact(text, entities=["EMAIL_ADDRESS"]).text, threading.get_ident()

    results = await asyncio.gather(
        *(run_off_loop(where, f"mail {n}@example.com") for n in ("a", "b", "c"))
    )
    for text, thread in results:
        assert text == "mail <EMAIL_ADDRESS>"
        assert thread != loop_thread
    assert pii_text.pii_executor()._max_workers == pii_text.pii_threads()


def test_default_engine_is_built_once_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PRYV_PII_NER_MODEL", "none")
    monkeypatch.setattr(pii_text, "_default_engine", None)
    with ThreadPoolExecutor(max_workers=4) as pool:
        engines = list(pool.map(lambda _: pii_text.default_engine(), range(4)))
    assert all(e is engines[0] for e in engines)
    assert engines[0].ner_model is None


def test_a_missing_model_is_an_error_not_a_download() -> None:
    with pytest.raises(ValueError, match="not installed"):
        TextPiiEngine(ner_model="xx_no_such_model_sm")
