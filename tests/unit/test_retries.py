"""The retry policies (commands.retries): what each retries, how often, and when it gives up."""

from __future__ import annotations

import asyncio
import logging

import pytest
from eventsourcing.persistence import IntegrityError

from commands.retries import on_collision, through_outage, until_done

log = logging.getLogger("test.retries")


def test_on_collision_looks_again_then_gives_up() -> None:
    calls = []

    def save() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise IntegrityError("a racing writer won")
        return "saved"

    def run() -> str:
        for attempt in on_collision(3):
            with attempt:
                return save()
        raise AssertionError("unreachable")

    assert run() == "saved" and len(calls) == 3
    calls.clear()
    with pytest.raises(IntegrityError):
        for attempt in on_collision(2):
            with attempt:
                save()
    assert len(calls) == 2


def test_on_collision_does_not_retry_other_errors() -> None:
    calls = []
    with pytest.raises(ValueError):
        for attempt in on_collision(3):
            with attempt:
                calls.append(1)
                raise ValueError("not a collision")
    assert calls == [1]


async def test_through_outage_backs_off_then_reraises() -> None:
    calls = []
    with pytest.raises(ConnectionError):
        async for attempt in through_outage(log, attempts=3, first_wait=0.001):
            with attempt:
                calls.append(1)
                raise ConnectionError("store down")
    assert len(calls) == 3


async def test_until_done_retries_until_the_cycle_succeeds() -> None:
    stop = asyncio.Event()
    failures: list[int] = []
    resets: list[int] = []

    async def cycle() -> str:
        if len(failures) < 2:
            failures.append(1)
            raise ConnectionError("bus down")
        return "published"

    result = await until_done(
        cycle,
        stop=stop,
        log=log,
        what="test cycle",
        pause=0.001,
        on_failure=lambda: resets.append(1),
    )
    assert result == "published" and len(resets) == 2


async def test_until_done_returns_none_once_stopped() -> None:
    stop = asyncio.Event()
    calls: list[int] = []

    async def cycle() -> str:
        calls.append(1)
        stop.set()  # the worker is told to stop while its cycle fails
        raise ConnectionError("still down")

    assert await until_done(cycle, stop=stop, log=log, what="test cycle", pause=60) is None
    assert calls == [1]
