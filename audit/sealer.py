"""Sealer: folds the raw notification log into an RFC 6962 Merkle tree and signs checkpoints.

It reads the events exactly as stored (notification id, originator id and version, topic, state
bytes — not the decoded envelopes, which could hide a changed byte), appends one leaf per event,
and writes a signed checkpoint every `every_events` events, or after `every_seconds` when some
event is still unsealed. Each checkpoint is stored durably first, then published (when a sink is
configured); a publication that fails is retried, and on start every stored checkpoint the sink
has not seen yet is published.

Authorization: with a `SealingGate` (always, in `opened_sealer`), every money and key event's
evidence is checked before it is sealed (audit/evidence.py). An event without valid evidence —
a grant inserted by hand, a revocation no wallet signed — is never sealed: the sealer seals
what precedes it and stops there, logging the event and why, and its lag grows until someone
removes the unauthorized row (it was never sealed, so removing it is no tampering).

Resumption: a checkpoint row keeps the accumulator's compact state (one subtree root per set bit
of the tree size), so a restarted sealer continues from the last checkpoint in O(log n) instead
of re-hashing the log from zero. It first checks that checkpoint's signature (its own key) and
that the state reproduces the signed root, and that the last sealed event still hashes to its
recorded leaf; it does not re-verify the history (that is `pryv audit verify`'s job, which
trusts nothing the sealer stored but what its signatures cover).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder

from audit.evidence import EvidenceAudit, SealingGate
from commands.application import PryvApplication
from commands.retries import until_done
from domain.errors import ErrorKind, PryvError
from domain.merkle import (
    Checkpoint,
    MerkleAccumulator,
    event_leaf_hash,
    pack_leaf_records,
    unpack_leaf_records,
)
from infra.checkpoints import (
    CheckpointSigner,
    CheckpointStore,
    NatsCheckpointPublisher,
    StoredCheckpoint,
    open_checkpoint_store,
    sealer_signer,
    signature_problem,
    signer_rank,
    trusted_sealer_addresses,
)
from infra.operator_key import trusted_operator_addresses
from infra.settings import Settings

log = logging.getLogger("pryv.sealer")


class RawEvent(Protocol):
    """What the event store holds for one event (eventsourcing's `Notification` fits)."""

    @property
    def id(self) -> int: ...

    @property
    def originator_id(self) -> UUID | str: ...

    @property
    def originator_version(self) -> int: ...

    @property
    def topic(self) -> str: ...

    @property
    def state(self) -> bytes: ...


ReadRaw = Callable[[int, int], Sequence[RawEvent]]  # (after notification id, limit)


class CheckpointSink(Protocol):
    async def publish(self, checkpoint: Checkpoint) -> None: ...

    async def last_published_size(self) -> int: ...


def raw_reader(recorder: ApplicationRecorder) -> ReadRaw:
    """`read_raw` over an eventsourcing application recorder (`app.recorder`)."""

    def read(after: int, limit: int) -> Sequence[RawEvent]:
        return recorder.select_notifications(start=after + 1, limit=limit)

    return read


def stored_bytes(state: object) -> bytes:
    """The state column as bytes. SQLite is dynamically typed: a hand-edited row can hold TEXT
    (or a number) where eventsourcing wrote a BLOB; hash its UTF-8 text rather than fail, and
    let `pryv audit verify` report the changed type."""
    if isinstance(state, bytes):
        return state
    if isinstance(state, bytearray | memoryview):
        return bytes(state)
    return str(state).encode()


def leaf_of(event: RawEvent) -> bytes:
    return event_leaf_hash(
        event.id,
        event.originator_id,
        event.originator_version,
        event.topic,
        stored_bytes(event.state),
    )


class SealerStateError(PryvError):
    """The last stored checkpoint is not one this sealer can extend: not signed by its key, or
    its resume state does not reproduce its signed root."""

    kind, code = ErrorKind.INTERNAL, "sealer_state"


class Sealer:
    def __init__(
        self,
        read_raw: ReadRaw,
        store: CheckpointStore,
        signer: CheckpointSigner,
        publish: CheckpointSink | None = None,
        every_events: int = 1000,
        every_seconds: float = 10.0,
        *,
        page_size: int = 1000,
        poll_interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        trusted_signers: tuple[str, ...] = (),
        gate: SealingGate | None = None,
    ) -> None:
        """`trusted_signers`: the sealer addresses oldest first (PRYV_SEALER_ADDRESS) when the
        key was rotated; this sealer extends a tree signed by its own or an earlier key.
        `gate`: refuse to seal events without valid authorization evidence."""
        if every_events < 1:
            raise ValueError("every_events must be at least 1")
        self._read_raw = read_raw
        self._store = store
        self._signer = signer
        self._trusted = tuple(address.lower() for address in trusted_signers)
        self._sink = publish
        self._every_events = every_events
        self._every_seconds = every_seconds
        self._page_size = max(1, page_size)
        self._poll_interval = poll_interval
        self._coalesce_seconds = min(poll_interval, 0.25)
        self._clock = clock
        self._now = now
        self._acc: MerkleAccumulator | None = None
        self._position = 0  # notification id of the last leaf appended
        self._pending: list[tuple[int, bytes]] = []  # leaves since the last checkpoint
        self._last_seal = clock()
        self._published_size: int | None = None  # None: ask the sink
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._gate = gate
        self.refused: tuple[int, str] | None = None  # (notification id, why) it stopped at
        self.sealed_events = 0  # events appended by this process
        self.checkpoints_written = 0

    @property
    def tree_size(self) -> int:
        return self._acc.size if self._acc else 0

    @property
    def position(self) -> int:
        return self._position

    def wake(self, _position: int = 0) -> None:
        """Thread-safe nudge after a local write (embedded mode)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def resume(self) -> None:
        """Load the accumulator from the last checkpoint (or start an empty tree)."""
        latest = await self._store.latest()
        if latest is None:
            self._acc, self._position = MerkleAccumulator(), 0
        else:
            cp = latest.checkpoint
            self._check_signer(cp)
            acc = MerkleAccumulator.from_compact(cp.tree_size, latest.compact)
            if acc.root().hex() != cp.root_hex:
                raise SealerStateError(
                    f"checkpoint {cp.tree_size}: stored compact state does not give its root"
                )
            self._acc, self._position = acc, cp.last_notification_id
            await asyncio.to_thread(self._check_tail, latest)
        if self._gate is not None:
            await asyncio.to_thread(self._prime_gate)
        self._pending = []
        self._last_seal = self._clock()

    def _check_signer(self, cp: Checkpoint) -> None:
        """Never extend a tree that neither this key nor one it replaced signed."""
        own = self._signer.address.lower()
        trusted = self._trusted or (own,)
        if own not in trusted:
            raise SealerStateError(
                f"this sealer's key {own} is not among the sealer addresses {', '.join(trusted)}"
            )
        forged = signature_problem(cp, trusted)
        if forged:
            raise SealerStateError(f"checkpoint {cp.tree_size}: {forged}")
        if signer_rank(cp.signer, trusted) > signer_rank(own, trusted):
            raise SealerStateError(
                f"checkpoint {cp.tree_size} is signed by {cp.signer.lower()}, which replaced "
                f"this sealer's key {own}: a retired key must not seal again"
            )

    def _check_tail(self, latest: StoredCheckpoint) -> None:
        records = unpack_leaf_records(latest.leaves)
        if not records:
            return
        nid, recorded = records[-1]
        found = self._read_raw(nid - 1, 1)
        if not found or found[0].id != nid or leaf_of(found[0]) != recorded:
            log.error(
                "the last sealed event (notification id %s) is missing or changed since "
                "checkpoint %s; run `pryv audit verify`",
                nid,
                latest.tree_size,
            )

    def _prime_gate(self) -> None:
        """Replay what is sealed into the gate's history (once per process: it only grows)."""
        assert self._gate is not None
        while self._gate.seen_to < self._position:
            page = self._read_raw(self._gate.seen_to, self._page_size)
            page = [event for event in page if event.id <= self._position]
            if not page:
                break
            self._gate.prime(page)

    def _ingest(self, limit: int) -> int:
        """Read up to `limit` events after the position and append their leaves (in a thread);
        stop before an event the gate refuses."""
        assert self._acc is not None
        events = self._read_raw(self._position, limit)
        appended = 0
        for event in events:
            why = self._gate.refusal(event) if self._gate is not None else None
            if why is not None:
                if self.refused != (event.id, why):
                    log.error(
                        "not sealing event %s (%s): %s; sealing stops here until it is removed",
                        event.id,
                        event.topic,
                        why,
                    )
                self.refused = (event.id, why)
                break
            leaf = leaf_of(event)
            self._acc.append(leaf)
            self._pending.append((event.id, leaf))
            self._position = event.id
            appended += 1
        else:
            self.refused = None
        return appended

    async def seal_pending(self, *, force: bool = False) -> int:
        """Hash everything readable now; write the checkpoints that are due. Returns how many.

        With `force`, also seal a partial batch regardless of `every_seconds`.
        """
        if self._acc is None:
            await self.resume()
        written = 0
        while True:
            room = self._every_events - len(self._pending)
            asked = min(self._page_size, room)
            count = await asyncio.to_thread(self._ingest, asked)
            self.sealed_events += count
            if len(self._pending) >= self._every_events:
                await self._seal()
                written += 1
                continue
            if count < asked:  # the log's end (or a refused event): no second read
                break
        due = self._clock() - self._last_seal >= self._every_seconds
        if self._pending and (force or due):
            await self._seal()
            written += 1
        await self._publish_backlog()
        return written

    async def _seal(self) -> None:
        assert self._acc is not None
        acc = self._acc
        created_at = self._now().astimezone(UTC).isoformat(timespec="microseconds")
        checkpoint = await asyncio.to_thread(
            self._signer.checkpoint, acc.size, acc.root().hex(), self._position, created_at
        )
        record = StoredCheckpoint(checkpoint, acc.compact_bytes(), pack_leaf_records(self._pending))
        await self._store.append(record)
        self._pending = []
        self._last_seal = self._clock()
        self.checkpoints_written += 1
        log.debug("sealed %s events, root %s", checkpoint.tree_size, checkpoint.root_hex)

    async def _publish_backlog(self) -> None:
        """Publish every stored checkpoint the sink does not have yet, in order."""
        if self._sink is None:
            return
        try:
            if self._published_size is None:
                self._published_size = await self._sink.last_published_size()
            while self._published_size < self.tree_size:
                page = await self._store.page(self._published_size, 100, with_leaves=False)
                if not page:
                    return
                for record in page:
                    await self._sink.publish(record.checkpoint)
                    self._published_size = record.tree_size
        except Exception:
            self._published_size = None  # ask the sink again next time
            log.exception("publishing checkpoints failed; will retry")

    def _forget_state(self) -> None:
        self._acc = None

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        while not stop.is_set():
            self._wake.clear()  # before reading: a write during the cycle wakes the next one
            # A store or database outage: start over from the last checkpoint.
            await until_done(
                self.seal_pending,
                stop=stop,
                log=log,
                what="sealer cycle",
                on_failure=self._forget_state,
            )
            # Nothing waits on a leaf: read the log once per burst, not once per event (it was
            # 6% of an embedded request's CPU at concurrency 1, bench/overhead.py --embedded).
            await _wait(stop, self._coalesce_seconds)
            await _wait(stop, self._poll_interval, self._wake.wait())
        if self._acc is not None:  # seal everything written so far before stopping
            try:
                await self.seal_pending(force=True)
            except Exception:
                log.exception("final seal failed")


async def _wait(stop: asyncio.Event, timeout: float, *others: Awaitable[object]) -> None:
    waits = [asyncio.ensure_future(stop.wait()), *(asyncio.ensure_future(o) for o in others)]
    await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waits:
        waiter.cancel()


@contextlib.asynccontextmanager
async def opened_sealer(
    app: PryvApplication, settings: Settings, *, every_events: int, every_seconds: float
) -> AsyncIterator[Sealer]:
    """A sealer over `app`'s log: checkpoints in the event store's database, published to
    `<stream>_CHECKPOINTS` when NATS is configured; its store and publisher close on exit."""
    store = await open_checkpoint_store(settings)
    publisher: NatsCheckpointPublisher | None = None
    try:
        if settings.nats_url:
            publisher = await NatsCheckpointPublisher.connect(
                settings.nats_url, settings.nats_stream
            )
        yield Sealer(
            raw_reader(app.recorder),
            store,
            sealer_signer(settings),
            publisher,
            every_events=every_events,
            every_seconds=every_seconds,
            trusted_signers=trusted_sealer_addresses(settings),  # after sealer_signer made a key
            gate=SealingGate(
                app.mapper.to_domain_event,
                EvidenceAudit(operators=trusted_operator_addresses(settings)),
            ),
        )
    finally:
        if publisher is not None:
            await publisher.close()
        await store.close()


@contextlib.asynccontextmanager
async def running_sealer(
    app: PryvApplication,
    settings: Settings,
    *,
    every_events: int = 1000,
    every_seconds: float = 10.0,
    final_seal_timeout: float = 5.0,
) -> AsyncIterator[Sealer]:
    """Run a sealer as a task beside the API; on exit, seal what is pending, then stop."""
    async with opened_sealer(
        app, settings, every_events=every_events, every_seconds=every_seconds
    ) as sealer:
        stop = asyncio.Event()
        unsubscribe = app.on_recorded(sealer.wake)
        task = asyncio.create_task(sealer.run(stop))
        try:
            yield sealer
        finally:
            unsubscribe()
            stop.set()
            await asyncio.wait([task], timeout=final_seal_timeout)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
