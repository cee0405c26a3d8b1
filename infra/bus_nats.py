"""NATS JetStream bus for production: one file-backed stream, durable pull consumers.

Semantics match `infra.bus_memory.MemoryBus`: publish order is stream order, a position is
published at most once, and a consumer starts wherever its caller says (projectors keep their
own resume point, so the durable consumer is recreated on every `consumer()` call).

Publishing is pipelined (many publishes in flight, acks collected afterwards), and every message
carries `Nats-Expected-Last-Sequence`: if one message of a batch is lost or rejected, every later
one is rejected too, so a failed batch never leaves a gap that a resuming relay would skip over.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Callable, Sequence

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    Header,
    PubAck,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from domain.envelope import EventEnvelope
from infra.bus import BusMessage, BusUnavailable

log = logging.getLogger("pryv.bus.nats")

POSITION_HEADER = "Pryv-Position"
_WRONG_LAST_SEQUENCE = 10071  # JetStream error code: Nats-Expected-Last-Sequence mismatch
_PUBLISH_ATTEMPTS = 3  # retries only after another publisher moved the stream under us
_MAX_IN_FLIGHT = 4096  # unacknowledged publishes per connection


def default_subject_prefix(stream: str) -> str:
    """`PRYV_EVENTS` -> `pryv_events`: one lower-case subject token derived from the stream."""
    return re.sub(r"[^0-9a-z]", "_", stream.lower())


class _Conflict(Exception):
    """The stream's last sequence was not the one we assumed (another publisher, stale cache)."""


class NatsBus:
    def __init__(
        self,
        nc: NATS,
        stream: str,
        subject_prefix: str,
        *,
        ack_timeout: float,
    ) -> None:
        self._nc = nc
        self._js: JetStreamContext = nc.jetstream()
        self._stream = stream
        self._prefix = subject_prefix
        self._ack_timeout = ack_timeout
        # (last log position, last stream sequence) as last seen; None = re-read from the server.
        self._last: tuple[int, int] | None = None
        self._consumers: set[NatsConsumer] = set()
        self._acks = _AckInbox(nc)

    @property
    def stream(self) -> str:
        return self._stream

    @property
    def subject_prefix(self) -> str:
        return self._prefix

    @classmethod
    async def connect(
        cls,
        url: str,
        stream: str,
        subject_prefix: str | None = None,
        *,
        timeout: float = 5.0,
        ack_timeout: float = 30.0,
    ) -> NatsBus:
        """Connect and make sure the stream exists; BusUnavailable if NATS/JetStream is not there.

        The first connection attempt is bounded by `timeout`; once connected, the client
        reconnects forever (the relay and projectors retry on their own, never skip).
        """
        prefix = subject_prefix or default_subject_prefix(stream)
        nc = NATS()
        bus = cls(nc, stream, prefix, ack_timeout=ack_timeout)
        try:
            await asyncio.wait_for(
                nc.connect(
                    url,
                    name=f"pryv-bus-{stream}",
                    max_reconnect_attempts=-1,
                    connect_timeout=max(1, int(timeout)),
                    drain_timeout=5,
                    error_cb=_log_error,
                    disconnected_cb=bus._on_disconnect,
                ),
                timeout,
            )
            await bus._ensure_stream()
        except BusUnavailable:
            await _close_quietly(nc)
            raise
        except (OSError, TimeoutError, nats.errors.Error) as exc:
            await _close_quietly(nc)
            raise BusUnavailable(f"NATS JetStream at {url} is unavailable: {exc!r}") from exc
        return bus

    async def _on_disconnect(self) -> None:
        """A publish in flight when the connection dropped will never be acknowledged: fail it
        now (the relay retries at once; deduplication makes that safe) instead of waiting out
        the ack timeout, and re-read the stream's end after reconnecting."""
        self._acks.fail_pending(BusUnavailable("connection to NATS lost"))
        self._last = None

    async def _ensure_stream(self) -> None:
        subject = f"{self._prefix}.>"
        try:
            info = await self._js.stream_info(self._stream)
        except nats.js.errors.NotFoundError:
            config = StreamConfig(
                name=self._stream,
                subjects=[subject],
                retention=RetentionPolicy.LIMITS,
                storage=StorageType.FILE,
                discard=DiscardPolicy.NEW,  # if limits are ever added, refuse rather than drop
                max_msgs=-1,
                max_bytes=-1,
                max_age=0,  # the log must never silently lose events
                duplicate_window=120.0,
            )
            await self._js.add_stream(config)
            return
        if subject not in (info.config.subjects or []):
            raise BusUnavailable(
                f"stream {self._stream} exists but does not capture {subject!r} "
                f"(subjects={info.config.subjects})"
            )

    async def publish(self, envelopes: Sequence[EventEnvelope]) -> None:
        """Publish in order, durable on return; positions already on the stream are skipped."""
        for _ in range(_PUBLISH_ATTEMPTS):
            if self._last is None:
                self._last = await self._read_last()
            position, seq = self._last
            pending: list[EventEnvelope] = []
            for envelope in envelopes:
                if envelope.position > position:  # like MemoryBus: positions only move forward
                    pending.append(envelope)
                    position = envelope.position
            if not pending:
                return
            try:
                self._last = await self._publish_run(pending, seq)
                return
            except _Conflict:
                self._last = None  # re-read the real end of the stream, then retry the rest
            except BaseException:
                self._last = None
                raise
        raise BusUnavailable(
            f"stream {self._stream} kept moving under this publisher; is a second relay running?"
        )

    async def _publish_run(self, envelopes: list[EventEnvelope], last_seq: int) -> tuple[int, int]:
        """Pipeline the batch; returns the new (position, stream seq) or raises without a gap."""
        await self._acks.start()
        futures: list[asyncio.Future[PubAck]] = []
        try:
            for i, envelope in enumerate(envelopes):
                if i >= _MAX_IN_FLIGHT:  # sliding window: bound what is in flight
                    oldest = futures[i - _MAX_IN_FLIGHT]
                    await asyncio.wait([oldest], timeout=self._ack_timeout)
                    if not oldest.done():
                        raise BusUnavailable(f"no JetStream ack within {self._ack_timeout}s")
                    if oldest.exception() is not None:
                        break  # every later publish would be rejected; report the first failure
                headers = {
                    Header.MSG_ID.value: str(envelope.position),
                    POSITION_HEADER: str(envelope.position),
                    # "0" means "stream is empty" (honoured by nats-server 2.9+).
                    Header.EXPECTED_LAST_SEQUENCE.value: str(last_seq + i),
                }
                futures.append(
                    await self._acks.publish(
                        f"{self._prefix}.{envelope.topic}", envelope.to_json(), headers
                    )
                )
            _, not_done = await asyncio.wait(futures, timeout=self._ack_timeout)
            if not_done:
                raise BusUnavailable(
                    f"no JetStream ack for {len(not_done)} of {len(futures)} messages "
                    f"within {self._ack_timeout}s"
                )
        finally:
            for future in futures:
                if not future.done():
                    future.cancel()
        acks: list[PubAck] = []
        for future in futures:  # the first failure in publish order is the cause
            error = future.exception()
            if error is None:
                acks.append(future.result())
                continue
            if (
                isinstance(error, nats.js.errors.APIError)
                and error.err_code == _WRONG_LAST_SEQUENCE
            ):
                raise _Conflict() from error
            raise BusUnavailable(f"JetStream rejected a publish: {error!r}") from error
        if any(ack.duplicate for ack in acks):
            raise _Conflict()  # the stream already had some of these: our view of its end was stale
        return envelopes[-1].position, acks[-1].seq

    async def last_published_position(self) -> int:
        """Exact, from the server: the Pryv-Position of the stream's last message (0 if empty)."""
        self._last = await self._read_last()
        return self._last[0]

    async def _read_last(self) -> tuple[int, int]:
        info = await self._js.stream_info(self._stream)
        last_seq = info.state.last_seq
        if info.state.messages == 0 or last_seq == 0:
            return 0, last_seq
        try:
            raw = await self._js.get_msg(self._stream, seq=last_seq)
        except nats.js.errors.NotFoundError:  # the last message was deleted by hand
            raw = await self._js.get_last_msg(self._stream, f"{self._prefix}.>")
        header = (raw.headers or {}).get(POSITION_HEADER)
        if header is not None:
            return int(header), last_seq
        return EventEnvelope.from_json(raw.data or b"{}").position, last_seq

    async def consumer(self, name: str, after_seq: int) -> NatsConsumer:
        """A fresh durable pull consumer at `after_seq + 1` (the caller owns the resume point)."""
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await self._js.delete_consumer(self._stream, name)
        config = ConsumerConfig(
            name=name,
            durable_name=name,
            deliver_policy=DeliverPolicy.ALL if after_seq <= 0 else DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=None if after_seq <= 0 else after_seq + 1,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=60.0,
            max_ack_pending=10_000,
        )
        await self._js.add_consumer(self._stream, config)
        sub = await self._js.pull_subscribe_bind(durable=name, stream=self._stream)
        consumer = NatsConsumer(self._nc, sub, self._consumers.discard)
        self._consumers.add(consumer)
        return consumer

    async def close(self) -> None:
        """Drain so buffered acks and publishes reach the server before the socket closes.

        Open pull subscriptions are dropped first: nats-py's drain waits for their queued
        (never-read) status messages and would otherwise hang until the drain timeout.
        """
        for consumer in list(self._consumers):
            await consumer.close()
        if self._nc.is_closed:
            return
        try:
            await self._nc.drain()
        except (nats.errors.Error, TimeoutError, OSError):
            await _close_quietly(self._nc)


class NatsConsumer:
    def __init__(
        self,
        nc: NATS,
        sub: JetStreamContext.PullSubscription,
        on_close: Callable[[NatsConsumer], None],
    ) -> None:
        self._nc = nc
        self._sub = sub
        self._on_close = on_close
        self._unacked: dict[int, Msg] = {}  # stream seq -> delivered message, until acked

    async def fetch(self, max_messages: int, timeout: float) -> list[BusMessage]:
        """Next messages in delivery order; [] when idle (nats-py raises TimeoutError then)."""
        try:
            msgs = await self._sub.fetch(batch=max(1, max_messages), timeout=max(timeout, 0.01))
        except TimeoutError:
            return []
        out: list[BusMessage] = []
        for msg in msgs:
            seq = msg.metadata.sequence.stream
            self._unacked[seq] = msg
            out.append(BusMessage(seq, EventEnvelope.from_json(msg.data)))
        return out

    async def ack(self, messages: Sequence[BusMessage]) -> None:
        """Ack each message, then flush: nats-py acks are fire-and-forget otherwise."""
        acked = False
        for message in messages:
            msg = self._unacked.pop(message.seq, None)
            if msg is not None:
                await msg.ack()
                acked = True
        if acked:
            await self._nc.flush()

    async def close(self) -> None:
        """Stop receiving; the durable consumer stays so operators can see its lag."""
        self._on_close(self)
        self._unacked.clear()
        with contextlib.suppress(nats.errors.Error, ValueError):
            await self._sub.unsubscribe()


class _AckInbox:
    """Pipelined JetStream publishes with their acks (and errors) delivered to futures.

    Used instead of `js.publish_async`: in nats-py 2.16 its reply handler calls
    `APIError.from_error`, which raises instead of returning, so a rejected publish leaves its
    future pending forever (the error only reaches the connection's error callback).
    """

    def __init__(self, nc: NATS) -> None:
        self._nc = nc
        self._prefix = ""
        self._futures: dict[str, asyncio.Future[PubAck]] = {}
        self._next = 0

    async def start(self) -> None:
        if not self._prefix:
            prefix = self._nc.new_inbox()
            await self._nc.subscribe(f"{prefix}.*", cb=self._on_reply)
            self._prefix = prefix

    async def publish(
        self, subject: str, payload: bytes, headers: dict[str, str]
    ) -> asyncio.Future[PubAck]:
        self._next += 1
        token = str(self._next)
        future: asyncio.Future[PubAck] = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda _: self._futures.pop(token, None))
        self._futures[token] = future
        await self._nc.publish(subject, payload, reply=f"{self._prefix}.{token}", headers=headers)
        return future

    def fail_pending(self, error: Exception) -> None:
        for future in list(self._futures.values()):
            if not future.done():
                future.set_exception(error)

    async def _on_reply(self, msg: Msg) -> None:
        future = self._futures.get(msg.subject.rsplit(".", 1)[-1])
        if future is None or future.done():
            return
        if msg.headers and msg.headers.get(Header.STATUS.value) == "503":
            future.set_exception(nats.js.errors.NoStreamResponseError())
            return
        try:
            resp = json.loads(msg.data)
            if "error" in resp:
                err = resp["error"]
                future.set_exception(
                    nats.js.errors.APIError(
                        code=err.get("code"),
                        err_code=err.get("err_code"),
                        description=err.get("description"),
                    )
                )
            else:
                future.set_result(PubAck.from_response(resp))
        except (ValueError, TypeError, KeyError) as exc:
            future.set_exception(BusUnavailable(f"unreadable JetStream ack: {exc!r}"))


async def _log_error(exc: Exception) -> None:
    log.warning("nats: %r", exc)


async def _close_quietly(nc: NATS) -> None:
    try:
        await nc.close()
    except Exception:  # closing a half-open client must not mask the real error
        log.debug("closing NATS connection failed", exc_info=True)
