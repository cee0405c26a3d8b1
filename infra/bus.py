"""The event bus between the relay and projectors: an ordered, replayable stream of envelopes.

Consumers name the sequence number they resume after; projectors keep that number in the read
store atomically with their writes, so the bus never has to remember anything for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from domain.envelope import EventEnvelope
from domain.errors import ServiceUnavailable


@dataclass(frozen=True)
class BusMessage:
    seq: int  # the bus's own contiguous sequence number (JetStream stream sequence)
    envelope: EventEnvelope


class BusConsumer(Protocol):
    async def fetch(self, max_messages: int, timeout: float) -> list[BusMessage]:
        """Next messages in order; an empty list when none arrived within `timeout`."""
        ...

    async def ack(self, messages: Sequence[BusMessage]) -> None: ...

    async def close(self) -> None: ...


class EventBus(Protocol):
    async def publish(self, envelopes: Sequence[EventEnvelope]) -> None:
        """Publish in order; durable on return; re-publishing a position is deduplicated."""
        ...

    async def last_published_position(self) -> int:
        """The highest log position on the bus (0 if none): where a restarted relay resumes."""
        ...

    async def consumer(self, name: str, after_seq: int) -> BusConsumer: ...

    async def close(self) -> None: ...


class BusUnavailable(ServiceUnavailable):
    """The bus cannot be reached; callers fail closed."""
