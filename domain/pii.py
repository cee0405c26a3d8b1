"""PII vocabulary shared by the text, image and document redactors (pure)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Finding:
    """One detected entity: its type, its [start, end) span in the analysed text, its score."""

    entity_type: str
    start: int
    end: int
    score: float


class TextAnalyzer(Protocol):
    def analyze(self, text: str, entities: Sequence[str] | None, threshold: float) -> list[Finding]:
        """Entities in `text` (all supported types when `entities` is None) scoring >= threshold,
        without overlaps (the higher score, then the longer span, wins)."""
        ...


def entity_counts(findings: Sequence[Finding]) -> dict[str, int]:
    """What may be logged or stored about a redaction: types and counts, never the values."""
    return dict(sorted(Counter(f.entity_type for f in findings).items()))
