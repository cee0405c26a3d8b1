"""Pryv's own PII recognizers, one module per kind of value, each a pure function
`text -> list[Finding]` over well-kept libraries (detect-secrets, phonenumbers, python-stdnum,
dateparser, pyap, names-dataset and wordfreq distilled into gazetteers). `infra.pii_text` runs
them inside Presidio's analyzer, which resolves overlaps and thresholds."""

from __future__ import annotations

from collections.abc import Callable

from domain.pii import Finding
from infra.pii_recognizers import (
    addresses,
    dates,
    identifiers,
    names,
    network,
    payment,
    phones,
    records,
    secrets,
)

Detector = Callable[[str], list[Finding]]

# entity types -> the detector that finds them (records finds several kinds at once)
DETECTORS: tuple[tuple[frozenset[str], Detector], ...] = (
    (frozenset({"EMAIL_ADDRESS"}), network.emails),
    (frozenset({"IP_ADDRESS"}), network.ips),
    (frozenset({"PHONE_NUMBER"}), phones.find),
    (frozenset({"CREDIT_CARD"}), payment.cards),
    (frozenset({"CRYPTO"}), payment.crypto),
    (frozenset({"SECRET"}), secrets.find),
    (frozenset({"DATE_OF_BIRTH"}), dates.find),
    (frozenset({"STREET_ADDRESS"}), addresses.find),
    (
        frozenset({"US_SSN", "NATIONAL_ID", "US_ITIN", "UK_NHS", "IBAN_CODE"}),
        identifiers.national_ids,
    ),
    (frozenset({"US_BANK_NUMBER"}), identifiers.bank_accounts),
    (frozenset({"US_DRIVER_LICENSE"}), identifiers.driver_licenses),
    (frozenset({"PASSPORT"}), identifiers.passports),
    (frozenset({"MEDICAL_RECORD_NUMBER"}), identifiers.medical_record_numbers),
    (frozenset({"PERSON"}), names.find),
    (
        frozenset(
            {
                "PERSON",
                "STREET_ADDRESS",
                "DATE_OF_BIRTH",
                "PASSPORT",
                "US_SSN",
                "MEDICAL_RECORD_NUMBER",
                "PHONE_NUMBER",
            }
        ),
        records.find,
    ),
)
ENTITIES: frozenset[str] = frozenset().union(*(kinds for kinds, _ in DETECTORS))


def detect(text: str, wanted: frozenset[str]) -> list[Finding]:
    """Every finding of the wanted types (overlaps left to the caller)."""
    found: list[Finding] = []
    for kinds, detector in DETECTORS:
        if kinds & wanted:
            found.extend(f for f in detector(text) if f.entity_type in wanted)
    return found
