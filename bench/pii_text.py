"""Text PII analysis cost: Pryv's engine versus stock Presidio (detection quality is
bench/pii_quality.py's).

    uv run python bench/pii_text.py                      # 1 KB, 10 KB, 100 KB; median of 5 runs
    uv run python bench/pii_text.py --sizes 1 10 --runs 9

Rows (ms per KB of text, median of --runs after one warm-up run):
  (a) ours, default types          TextPiiEngine: Pryv's recognizers (names from gazetteers): no NER
  (b) ours, every type             plus Presidio's URL/DATE_TIME/… and spaCy NER (places, orgs)
  (b') ours, NER engine, email     the same engine asked for EMAIL_ADDRESS only (NER skipped)
  (c) stock, patterns only         AnalyzerEngine(registry=<Presidio's pattern recognizers>,
                                   nlp_engine=SpacyNlpEngine(<the same model, full pipeline>))
  (c') stock, patterns + NER       the same plus SpacyRecognizer
  (d) stock default AnalyzerEngine() — only if it can be built offline; spaCy's downloader is
      patched to raise, so it is reported instead of downloading anything.
Then redaction of (b)'s findings: our span splice versus presidio-anonymizer's "replace", and
(b) with 2 threads (aggregate throughput) against 1.

The corpus is synthetic English business prose with planted PII (names, cities, companies,
e-mails, phones, Luhn-valid cards, checksum-valid IBANs, SSNs, IPs), fixed seed. Prints numbers;
asserts nothing.
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import statistics
import string
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from domain.pii import Finding  # noqa: E402
from infra import pii_text  # noqa: E402
from infra.pii_text import TextPiiEngine  # noqa: E402

FIRST = ["John", "Maria", "Ahmed", "Sophie", "Liam", "Priya", "Carlos", "Emma", "Noah", "Olivia"]
LAST = ["Smith", "Garcia", "Khan", "Dubois", "Murphy", "Patel", "Rossi", "Johnson", "Brown", "Lee"]
CITIES = ["London", "Paris", "Berlin", "Chicago", "Boston", "Madrid", "Toronto", "Seattle"]
COMPANIES = ["Acme Corp", "Globex Inc", "Initech", "Umbrella Ltd", "Stark Industries"]
FILLER = [
    "The quarterly review showed steady growth across all product lines.",
    "Please make sure the slides are ready before the board meeting.",
    "We agreed to revisit the pricing model after the pilot ends.",
    "Shipping delays were caused by a shortage of packaging material.",
    "The new onboarding flow reduced support tickets noticeably.",
    "Legal asked us to update the data retention section of the contract.",
    "Our team will present the roadmap at the next all-hands.",
    "Budget approval is pending until finance closes the books.",
    "Customer satisfaction scores improved after the latest release.",
    "The vendor confirmed that the replacement parts are in stock.",
]


def _card(rng: random.Random) -> str:
    digits = [4] + [rng.randrange(10) for _ in range(14)]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    number = "".join(map(str, [*digits, (10 - total % 10) % 10]))
    return " ".join(number[i : i + 4] for i in range(0, 16, 4))


def _iban(rng: random.Random) -> str:
    bban = "".join(rng.choice(string.ascii_uppercase) for _ in range(4))
    bban += "".join(rng.choice(string.digits) for _ in range(14))
    check = 98 - int("".join(str(int(c, 36)) for c in bban + "GB00")) % 97
    iban = f"GB{check:02d}{bban}"
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))


def _sentence(rng: random.Random) -> str:
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    city, company = rng.choice(CITIES), rng.choice(COMPANIES)
    phone = f"+1 {rng.choice(['212', '415', '617', '312'])} 555 {rng.randrange(1000, 9999)}"
    ssn = f"{rng.randrange(100, 600)}-{rng.randrange(10, 99)}-{rng.randrange(1000, 9999)}"
    ip = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    templates = [
        f"Please send the signed copy to {name.lower().replace(' ', '.')}@example.com by Friday.",
        f"{name} from {city} called about invoice {rng.randrange(10000, 99999)}.",
        f"You can reach {name} on the phone at {phone} during office hours.",
        f"The refund goes to card {_card(rng)} once approved.",
        f"Wire the deposit to IBAN {_iban(rng)} before the deadline.",
        f"For the background check {name} gave SSN {ssn}.",
        f"The staging server at {ip} was patched by {name}.",
        f"{name} signed the agreement with {company} in {city}.",
    ]
    return rng.choice(templates)


def corpus(size_bytes: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    parts: list[str] = []
    while sum(len(p) + 1 for p in parts) < size_bytes:
        parts.append(_sentence(rng) if rng.random() < 0.35 else rng.choice(FILLER))
        if rng.random() < 0.15:
            parts.append("\n")
    return " ".join(parts)[:size_bytes]


def median_ms(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


STOCK_PHONE_REGIONS = ("US", "GB", "DE", "FR")  # what Pryv configured Presidio with before


def _stock_recognizers(phone_regions: Sequence[str], with_ner: bool) -> list[Any]:
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        CryptoRecognizer,
        DateRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        MedicalLicenseRecognizer,
        NhsRecognizer,
        PhoneRecognizer,
        SpacyRecognizer,
        UrlRecognizer,
        UsBankRecognizer,
        UsItinRecognizer,
        UsLicenseRecognizer,
        UsPassportRecognizer,
        UsSsnRecognizer,
    )

    recognizers: list[Any] = [
        EmailRecognizer(),
        PhoneRecognizer(supported_regions=tuple(phone_regions)),
        CreditCardRecognizer(),
        IbanRecognizer(),
        IpRecognizer(),
        CryptoRecognizer(),
        UsSsnRecognizer(),
        UrlRecognizer(),
        UsBankRecognizer(),
        UsLicenseRecognizer(),
        UsPassportRecognizer(),
        UsItinRecognizer(),
        NhsRecognizer(),
        MedicalLicenseRecognizer(),
        DateRecognizer(),
    ]
    if with_ner:
        ner_types = sorted(pii_text.NER_ENTITIES | {"PERSON"})
        recognizers.append(SpacyRecognizer(supported_entities=ner_types))
    return recognizers


def stock_engine(model: str, phone_regions: Sequence[str], with_ner: bool) -> Any:
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    configuration = {
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": "en", "model_name": model}],
        "ner_model_configuration": {
            "model_to_presidio_entity_mapping": {
                "PERSON": "PERSON",
                "NORP": "NRP",
                "GPE": "LOCATION",
                "LOC": "LOCATION",
                "FAC": "LOCATION",
                "ORG": "ORGANIZATION",
            },
            "labels_to_ignore": [
                *("DATE", "TIME", "CARDINAL", "EVENT", "LANGUAGE", "LAW", "MONEY"),
                *("ORDINAL", "PERCENT", "PRODUCT", "QUANTITY", "WORK_OF_ART"),
            ],
        },
    }
    nlp_engine = NlpEngineProvider(nlp_configuration=configuration).create_engine()
    registry = RecognizerRegistry(recognizers=_stock_recognizers(phone_regions, with_ner))
    return AnalyzerEngine(registry=registry, nlp_engine=nlp_engine)


def stock_findings(engine: Any, text: str, threshold: float) -> list[Finding]:
    results = engine.analyze(text=text, language="en", score_threshold=threshold)
    found = [Finding(r.entity_type, r.start, r.end, float(r.score)) for r in results]
    return pii_text._without_overlaps(found)


def try_default_engine() -> tuple[Any | None, str]:
    """Presidio's AnalyzerEngine() with spaCy's downloader made to raise instead of fetching."""
    import spacy.cli

    cli: Any = spacy.cli
    attempted: list[str] = []

    def refuse(model: str, *args: object, **kwargs: object) -> None:
        attempted.append(model)
        raise RuntimeError(f"refused to download {model}")

    original = cli.download
    cli.download = refuse
    try:
        from presidio_analyzer import AnalyzerEngine

        return AnalyzerEngine(), "built offline"
    except Exception as exc:  # the point is to report whatever it does
        if attempted:
            return None, f"not built: it tried to download {attempted[0]!r} ({exc})"
        return None, f"not built: {type(exc).__name__}: {exc}"
    finally:
        cli.download = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 100], help="KB")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threshold", type=float, default=0.5)
    args = parser.parse_args()
    threshold = args.threshold
    model = pii_text.DEFAULT_NER_MODEL
    regions = STOCK_PHONE_REGIONS
    texts = {kb: corpus(kb * 1024) for kb in args.sizes}

    print(f"cpus={os.cpu_count()} model={model} stock phone_regions={','.join(regions)}")
    print(f"threshold={threshold} runs={args.runs} (median after 1 warm-up)\n")

    started = time.perf_counter()
    ours_patterns = TextPiiEngine(ner_model=None)
    print(f"build (a) ours patterns-only: {time.perf_counter() - started:.2f} s (incl. imports)")
    started = time.perf_counter()
    ours_ner = TextPiiEngine(ner_model=model)
    print(f"build (b) ours with NER:      {time.perf_counter() - started:.2f} s")
    started = time.perf_counter()
    stock_patterns = stock_engine(model, regions, with_ner=False)
    stock_ner = stock_engine(model, regions, with_ner=True)
    print(f"build (c) stock, both:        {time.perf_counter() - started:.2f} s")
    default, default_status = try_default_engine()
    print(f"(d) stock AnalyzerEngine():   {default_status}\n")

    defaults = list(pii_text.DEFAULT_ENTITIES)
    rows: list[tuple[str, Callable[[str], object]]] = [
        (
            "(a)  ours, default types (no NER)",
            lambda t: ours_patterns.analyze(t, defaults, threshold),
        ),
        ("(b)  ours, every type incl. NER", lambda t: ours_ner.analyze(t, None, threshold)),
        ("(b') ours, NER engine, email only", lambda t: ours_ner.analyze(t, ["EMAIL_ADDRESS"])),
        ("(c)  stock, patterns only", lambda t: stock_findings(stock_patterns, t, threshold)),
        ("(c') stock, patterns + NER", lambda t: stock_findings(stock_ner, t, threshold)),
    ]
    if default is not None:

        def stock_default(text: str) -> object:
            return default.analyze(text, language="en")

        rows.append(("(d)  stock default AnalyzerEngine()", stock_default))

    header = "".join(f"{f'{kb} KB':>12}" for kb in args.sizes)
    print(f"{'ms per KB':<40}{header}   findings @ largest")
    for label, fn in rows:
        cells = ""
        for kb, text in texts.items():
            cells += f"{median_ms(functools.partial(fn, text), args.runs) / kb:>12.2f}"
        found = fn(texts[args.sizes[-1]])
        print(f"{label:<40}{cells}   {len(found) if isinstance(found, list) else '-'}")

    from presidio_anonymizer import AnonymizerEngine
    from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

    anonymizer = AnonymizerEngine()  # type: ignore[no-untyped-call]
    operators = {"DEFAULT": OperatorConfig("replace")}
    print(f"\n{'redaction of (b) findings, ms per KB':<40}{header}")
    splice_cells = anonymizer_cells = ""
    for kb, text in texts.items():
        findings = ours_ner.analyze(text, None, threshold)

        def splice(text: str = text, findings: list[Finding] = findings) -> str:
            return pii_text._splice(text, findings, lambda f: f"<{f.entity_type}>")

        results = [RecognizerResult(x.entity_type, x.start, x.end, x.score) for x in findings]

        def anonymize(text: str = text, results: list[Any] = results) -> str:
            return str(anonymizer.anonymize(text, results, operators).text)

        splice_cells += f"{median_ms(splice, args.runs) / kb:>12.4f}"
        anonymizer_cells += f"{median_ms(anonymize, args.runs) / kb:>12.4f}"
        if splice() != anonymize():
            print(f"  note: anonymizer output differs from splice at {kb} KB")
    print(f"{'  span splice (ours)':<40}{splice_cells}")
    print(f"{'  presidio-anonymizer replace':<40}{anonymizer_cells}")

    kb = min(args.sizes, key=lambda k: abs(k - 10))
    text = texts[kb]
    per_thread = max(2, args.runs)
    for threads in (1, 2):
        barrier = threading.Barrier(threads)

        def work(barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            for _ in range(per_thread):
                ours_ner.analyze(text, None, threshold)

        pool = [threading.Thread(target=work) for _ in range(threads)]
        started = time.perf_counter()
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        elapsed = time.perf_counter() - started
        rate = threads * per_thread * kb / elapsed
        print(f"(b) {threads} thread(s), {kb} KB texts: {rate:8.1f} KB/s aggregate")


if __name__ == "__main__":
    main()
