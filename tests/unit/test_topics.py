"""Every aggregate and event has a pinned, versioned topic (unpinned events are refused by
commands.event_mapper.PinnedTopicMapper at save time, so a forgotten one fails loudly)."""

import inspect
import re

from eventsourcing.domain import Aggregate

from domain import aggregates
from domain.topics import AGGREGATE_TOPICS, EVENT_TOPICS


def test_every_aggregate_has_a_topic_and_owns_its_events() -> None:
    classes = {
        cls
        for _, cls in inspect.getmembers(aggregates, inspect.isclass)
        if issubclass(cls, Aggregate) and cls is not Aggregate
    }
    assert classes == set(AGGREGATE_TOPICS)
    owners = {event.__qualname__.split(".")[0] for event in EVENT_TOPICS}
    assert owners == {cls.__name__ for cls in classes}


def test_topics_are_versioned_and_unique() -> None:
    assert all(re.fullmatch(r"pryv\.[A-Za-z]+\.[A-Za-z]+\.v\d+", t) for t in EVENT_TOPICS.values())
    assert len(set(EVENT_TOPICS.values())) == len(EVENT_TOPICS)
    assert all(t == f"pryv.{cls.__name__}" for cls, t in AGGREGATE_TOPICS.items())
