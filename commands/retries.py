"""Every retry in Pryv, named for the failure it rides out, on one library (tenacity).

- `on_collision`: an optimistic-concurrency loss (a racing writer saved the aggregate first):
  look again at once, a few times.
- `through_outage`: a store or bus briefly unreachable: back off exponentially, then give up.
- `until_done`: a worker's cycle (relay, projector, sweeper, sealer) that must never skip:
  retry after a pause until it succeeds or the worker is told to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from eventsourcing.persistence import IntegrityError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    RetryError,
    Retrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

T = TypeVar("T")


def on_collision(attempts: int = 3, collision: type[Exception] = IntegrityError) -> Retrying:
    """`for attempt in on_collision(): with attempt: …` retries at once on `collision` (the
    store's IntegrityError by default); after `attempts` it propagates (callers turn it into
    ConcurrentUpdate or InvalidCommand)."""
    return Retrying(
        retry=retry_if_exception_type(collision),
        stop=stop_after_attempt(attempts),
        reraise=True,
    )


def through_outage(
    log: logging.Logger, attempts: int = 5, first_wait: float = 0.2
) -> AsyncRetrying:
    """Waits first_wait, then twice as long each time; re-raises the last failure."""
    return AsyncRetrying(
        retry=retry_if_exception_type(Exception),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=first_wait),
        before_sleep=before_sleep_log(log, logging.ERROR, exc_info=True),
        reraise=True,
    )


async def until_done(
    cycle: Callable[[], Awaitable[T]],
    *,
    stop: asyncio.Event,
    log: logging.Logger,
    what: str,
    pause: float = 1.0,
    on_failure: Callable[[], None] | None = None,
) -> T | None:
    """`cycle()`'s result once it succeeds; None if `stop` is set first. Each failure is logged
    with its traceback, then `on_failure` (reset state to resume from), then a pause that
    `stop` cuts short."""

    def failed(state: RetryCallState) -> None:
        log.error(
            "%s failed; retrying",
            what,
            exc_info=state.outcome.exception() if state.outcome else None,
        )
        if on_failure is not None:
            on_failure()

    async def pause_unless_stopped(seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)

    retrying = AsyncRetrying(
        retry=retry_if_exception_type(Exception),
        stop=lambda _state: stop.is_set(),
        wait=lambda _state: pause,
        sleep=pause_unless_stopped,
        before_sleep=failed,
    )
    try:
        async for attempt in retrying:
            with attempt:
                return await cycle()
    except RetryError:
        return None  # stopped while failing
    return None
