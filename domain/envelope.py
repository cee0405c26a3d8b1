"""The published form of a stored event: what the relay puts on the bus and projections consume.

Plain JSON in and out, so any consumer (projector, sealer, auditor's script) can read it without
importing our classes. `position` is the event store's notification id: gapped, strictly increasing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.json_codec import json_bytes, parse_json


@dataclass(frozen=True)
class EventEnvelope:
    position: int
    topic: str
    originator_id: str
    originator_version: int
    timestamp: str
    data: dict[str, Any]

    def to_json(self) -> bytes:
        # orjson: the relay encodes and the projector decodes every event (~10x json's speed).
        return json_bytes(
            {
                "position": self.position,
                "topic": self.topic,
                "originator_id": self.originator_id,
                "originator_version": self.originator_version,
                "timestamp": self.timestamp,
                "data": self.data,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> EventEnvelope:
        doc = parse_json(raw)
        return cls(
            position=int(doc["position"]),
            topic=str(doc["topic"]),
            originator_id=str(doc["originator_id"]),
            originator_version=int(doc["originator_version"]),
            timestamp=str(doc["timestamp"]),
            data=dict(doc["data"]),
        )
