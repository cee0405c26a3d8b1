"""How events are stored: under pinned `pryv.*.v1` topics, owned by the application layer.

Registering the pinned topics here (not in an adapter) means any process that opens the
application can read stored events back, whichever backend holds them.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import register_topic, resolve_topic

from domain.topics import AGGREGATE_TOPICS, EVENT_TOPICS

for _cls, _topic in (EVENT_TOPICS | AGGREGATE_TOPICS).items():
    register_topic(_topic, _cls)


class PinnedTopicMapper(Mapper[Any]):
    """Stores events under pinned `pryv.*.v1` topics rather than Python import paths.

    Created events also name their aggregate class (`originator_topic`); that is pinned too
    (`pryv.<Aggregate>`), so no stored byte depends on where our code lives. Otherwise this is
    eventsourcing's own `Mapper.to_stored_event`.
    """

    def to_stored_event(self, domain_event: DomainEventProtocol[Any]) -> StoredEvent:
        topic = EVENT_TOPICS.get(type(domain_event))
        if topic is None:
            raise TypeError(f"event {type(domain_event).__qualname__} has no pinned topic")
        event_state = dict(vars(domain_event))
        originator_id = event_state.pop("originator_id")
        originator_version = event_state.pop("originator_version")
        if "originator_topic" in event_state:
            event_state["originator_topic"] = AGGREGATE_TOPICS[
                resolve_topic(event_state["originator_topic"])
            ]
        class_version = getattr(type(domain_event), "class_version", 1)
        if class_version > 1:
            event_state["class_version"] = class_version
        stored_state = self.transcoder.encode(event_state)
        if self.compressor:
            stored_state = self.compressor.compress(stored_state)
        if self.cipher:
            stored_state = self.cipher.encrypt(stored_state)
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=topic,
            state=stored_state,
        )
