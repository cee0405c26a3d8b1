"""`pryv audit`: check the event log against its signed Merkle checkpoints, and export one
account's events with the proofs an outside auditor needs.

    pryv audit verify [--json] [--signer 0x…[,0x…]]  exit 0 clean, 1 on the first problem found
    pryv audit export --account <wallet|uuid> [--from ISO] [--to ISO] [--format jsonl|csv]
                      [--output PATH]
    pryv audit seal [--once]                       run the sealer (see workers/sealer.py)
    pryv audit checkpoints [--json]                list the stored checkpoints

`verify` streams the raw log from the start and recomputes the RFC 6962 tree. For every stored
checkpoint it checks the signature (against the sealer address: --signer, PRYV_SEALER_ADDRESS,
PRYV_SEALER_KEY or <data_dir>/sealer_key; after key rotations, the addresses oldest first, and
a retired key may not sign after its successor did), the root at that size, the last
notification id and the resume state; every event's leaf against the checkpoint's leaf record
(which the signed root authenticates), so a changed, deleted or inserted event is named exactly;
that each aggregate's versions run 1..n; and that every event still decodes. With NATS
configured it also checks that every checkpoint on the undeletable `<stream>_CHECKPOINTS` stream
is the stored one.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import io
import json
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from uuid import UUID

from eventsourcing.persistence import Notification

from commands.application import PryvApplication, to_envelope
from domain import ids
from domain.merkle import (
    HASH_SIZE,
    Checkpoint,
    MerkleAccumulator,
    MerkleError,
    MerkleTree,
    unpack_leaf_records,
)
from infra.checkpoints import (
    CheckpointStore,
    NatsCheckpointPublisher,
    StoredCheckpoint,
    open_checkpoint_store,
    parse_sealer_addresses,
    read_published_checkpoints,
    sealer_signer,
    signature_problem,
    signer_rank,
    trusted_sealer_addresses,
)
from infra.platform import open_application
from infra.settings import Settings
from infra.wallet_signatures import normalize_address
from workers.sealer import RawEvent, ReadRaw, Sealer, leaf_of, raw_reader, stored_bytes

# Decoded fields that are secret material (or derived from it) and never leave the system.
SECRET_FIELDS = frozenset({"secret_hash"})
DEFAULT_PAGE_SIZE = 2000
_CHECKPOINT_PAGE = 50


# --- verify ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    kind: str  # changed | missing | inserted | decode | version | checkpoint | root | truncated
    message: str
    notification_id: int | None = None
    originator_id: str | None = None
    originator_version: int | None = None
    topic: str | None = None
    leaf_index: int | None = None
    checkpoint_size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "notificationId": self.notification_id,
            "originatorId": self.originator_id,
            "originatorVersion": self.originator_version,
            "topic": self.topic,
            "leafIndex": self.leaf_index,
            "checkpointSize": self.checkpoint_size,
        }

    def render(self) -> str:
        if self.originator_id is not None:
            where = (
                f"event {self.notification_id} (originator {self.originator_id}, "
                f"version {self.originator_version}, topic {self.topic})"
            )
        elif self.notification_id is not None:
            where = f"event {self.notification_id}"
        elif self.checkpoint_size is not None:
            where = f"checkpoint {self.checkpoint_size}"
        else:
            where = "log"
        return f"{where}: {self.message}"


def _event_problem(
    kind: str, event: RawEvent, index: int, message: str, checkpoint_size: int | None = None
) -> Problem:
    return Problem(
        kind,
        message,
        notification_id=event.id,
        originator_id=str(event.originator_id),
        originator_version=event.originator_version,
        topic=event.topic,
        leaf_index=index,
        checkpoint_size=checkpoint_size,
    )


@dataclass
class VerifyReport:
    events: int = 0
    checkpoints: int = 0
    sealed_events: int = 0  # tree size of the last checkpoint checked
    last_notification_id: int = 0
    seconds: float = 0.0
    signers: tuple[str, ...] = ()  # trusted sealer addresses, oldest key first
    published_checked: int | None = None
    problem: Problem | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "checkpoints": self.checkpoints,
            "sealedEvents": self.sealed_events,
            "unsealedEvents": max(0, self.events - self.sealed_events) if self.ok else None,
            "lastNotificationId": self.last_notification_id,
            "seconds": round(self.seconds, 3),
            "eventsPerSecond": round(self.events_per_second),
            "signer": self.signers[-1] if self.signers else None,  # the current key
            "signers": list(self.signers),
            "publishedCheckpointsChecked": self.published_checked,
            "problem": self.problem.to_dict() if self.problem else None,
            "warnings": self.warnings,
        }

    def render(self) -> str:
        rate = f"{self.events_per_second:,.0f} events/s ({self.seconds:.2f} s)"
        if self.problem is None:
            lines = [
                f"OK: {self.events:,} events, {self.checkpoints:,} checkpoints "
                f"(sealed through event {self.sealed_events:,}; "
                f"{self.events - self.sealed_events:,} not sealed yet); {rate}"
            ]
        else:
            lines = [
                f"FAILED: {self.problem.render()}",
                f"checked {self.events:,} events and {self.checkpoints:,} checkpoints "
                f"before it; {rate}",
            ]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


Decode = Callable[[RawEvent], object]


class LogVerifier:
    """The checks, one event at a time (no I/O: the driver feeds events and checkpoints)."""

    def __init__(self, trusted_signers: tuple[str, ...], decode: Decode | None) -> None:
        self.trusted_signers = trusted_signers
        self.decode = decode
        self.acc = MerkleAccumulator()
        self.versions: dict[int | str, int] = {}  # aggregate (UUID as int: smaller) -> version
        self.last_nid = 0
        self.checked = 0
        self.sealed = 0  # tree size of the last checkpoint whose range is fully checked
        self.checkpoint: StoredCheckpoint | None = None  # the one whose range we are in
        self.records: list[tuple[int, bytes]] = []
        self.range_start = MerkleAccumulator()
        self.records_authentic: bool | None = None
        self.signers: set[str] = set()
        self.rank = 0  # the newest sealer key seen so far, in the rotation history

    # -- checkpoints --

    def enter(self, record: StoredCheckpoint) -> Problem | None:
        """Start checking the events up to `record`'s tree size."""
        cp = record.checkpoint
        self.checkpoint, self.records_authentic = record, None
        self.range_start = self.acc.copy()
        bad = signature_problem(cp, self.trusted_signers)
        if bad:
            return Problem("checkpoint", bad, checkpoint_size=cp.tree_size)
        self.signers.add(cp.signer.lower())
        rank = signer_rank(cp.signer, self.trusted_signers)
        if rank < self.rank:  # a rotated-out key must not sign after its successor did
            return Problem(
                "checkpoint",
                f"signed by the retired sealer key {cp.signer.lower()} after the rotation to "
                f"{self.trusted_signers[self.rank]}",
                checkpoint_size=cp.tree_size,
            )
        self.rank = rank
        if not self.trusted_signers and len(self.signers) > 1:
            return Problem(
                "checkpoint",
                f"signed by {cp.signer}, but earlier checkpoints by {sorted(self.signers)}",
                checkpoint_size=cp.tree_size,
            )
        try:
            self.records = unpack_leaf_records(record.leaves)
        except MerkleError as exc:
            return Problem(
                "checkpoint", f"leaf record unreadable: {exc}", checkpoint_size=cp.tree_size
            )
        expected = cp.tree_size - self.acc.size
        if len(self.records) != expected:
            return Problem(
                "checkpoint",
                f"its leaf record covers {len(self.records)} events but it follows the "
                f"checkpoint at {self.acc.size}: a checkpoint in between was removed, or the "
                "record was altered",
                checkpoint_size=cp.tree_size,
            )
        return None

    def _records_check_out(self) -> bool:
        """Whether this range's leaf record reproduces the signed root (so it can be trusted)."""
        if self.records_authentic is None:
            assert self.checkpoint is not None
            acc = self.range_start.copy()
            acc.extend(h for _, h in self.records)
            self.records_authentic = acc.root().hex() == self.checkpoint.checkpoint.root_hex
        return self.records_authentic

    def at_boundary(self) -> bool:
        return self.checkpoint is not None and self.acc.size == self.checkpoint.tree_size

    def close(self, last: RawEvent) -> Problem | None:
        """The range is complete: root, last notification id and resume state."""
        assert self.checkpoint is not None
        record, cp = self.checkpoint, self.checkpoint.checkpoint
        self.checkpoint = None
        root = self.acc.root().hex()
        if root != cp.root_hex:
            first = self.records[0][0] if self.records else last.id
            return Problem(
                "root",
                f"the first {cp.tree_size:,} events hash to root {root}, but the checkpoint "
                f"signs {cp.root_hex}; its leaf record was rewritten to match events "
                f"{first}..{last.id}, which changed after sealing",
                checkpoint_size=cp.tree_size,
            )
        if last.id != cp.last_notification_id:
            return Problem(
                "checkpoint",
                f"sealed through notification id {cp.last_notification_id}, but event "
                f"{cp.tree_size:,} of the log is notification id {last.id}",
                checkpoint_size=cp.tree_size,
            )
        if record.compact != self.acc.compact_bytes():
            return Problem(
                "checkpoint",
                "its stored resume state is not the tree's (a sealer resuming from it would "
                "sign wrong roots)",
                checkpoint_size=cp.tree_size,
            )
        self.sealed = cp.tree_size
        return None

    # -- events --

    def feed(self, event: RawEvent) -> Problem | None:
        index = self.acc.size
        leaf = leaf_of(event)
        if self.checkpoint is not None:
            expected_nid, expected_leaf = self.records[index - self.range_start.size]
            if leaf != expected_leaf:
                return self._mismatch(event, index, leaf, expected_nid, expected_leaf)
        if event.id <= self.last_nid:
            return _event_problem(
                "inserted", event, index, f"out of order after notification id {self.last_nid}"
            )
        if not isinstance(event.state, bytes):
            return _event_problem(
                "changed",
                event,
                index,
                f"state is stored as {type(event.state).__name__}, not bytes (edited by hand)",
            )
        if self.decode is not None:
            try:
                self.decode(event)
            except Exception as exc:
                return _event_problem("decode", event, index, f"does not decode: {exc}")
        oid = event.originator_id
        key = oid.int if isinstance(oid, UUID) else oid
        last = self.versions.get(key, 0)
        version = event.originator_version
        if version != last + 1:
            if version <= last:
                message = f"version {version} repeats (this aggregate is already at {last})"
            else:
                missing = f"{last + 1}" if version == last + 2 else f"{last + 1}..{version - 1}"
                message = f"version {version} follows {last}: version {missing} is missing"
            return _event_problem("version", event, index, message)
        self.versions[key] = version
        self.acc.append(leaf)
        self.last_nid = event.id
        self.checked += 1
        return None

    def _mismatch(
        self, event: RawEvent, index: int, leaf: bytes, expected_nid: int, expected_leaf: bytes
    ) -> Problem:
        assert self.checkpoint is not None
        size = self.checkpoint.tree_size
        if not self._records_check_out():
            return Problem(
                "checkpoint",
                "its leaf record does not reproduce its signed root (the checkpoint table was "
                f"altered), and event {event.id} (leaf {index}) does not match it",
                notification_id=event.id,
                leaf_index=index,
                checkpoint_size=size,
            )
        if event.id == expected_nid:
            return _event_problem(
                "changed",
                event,
                index,
                f"stored event differs from what checkpoint {size} sealed "
                f"(leaf {leaf.hex()}, sealed {expected_leaf.hex()})",
                size,
            )
        if event.id > expected_nid:
            return Problem(
                "missing",
                f"deleted: checkpoint {size} sealed it as leaf {index} "
                f"(leaf hash {expected_leaf.hex()}); the log goes from notification id "
                f"{self.last_nid} to {event.id}",
                notification_id=expected_nid,
                leaf_index=index,
                checkpoint_size=size,
            )
        return _event_problem(
            "inserted",
            event,
            index,
            f"not in the sealed log: checkpoint {size} sealed notification id {expected_nid} "
            f"as leaf {index}",
            size,
        )

    def finish(self) -> Problem | None:
        """The log has ended: any checkpoint still open seals events that are gone."""
        if self.checkpoint is None:
            return None
        cp = self.checkpoint.checkpoint
        index = self.acc.size
        missing_nid = self.records[index - self.range_start.size][0]
        if self._records_check_out():
            return Problem(
                "truncated",
                f"deleted: the log ends after {index:,} events but checkpoint {cp.tree_size} "
                f"sealed {cp.tree_size:,}; the first missing is this one (leaf {index})",
                notification_id=missing_nid,
                leaf_index=index,
                checkpoint_size=cp.tree_size,
            )
        return Problem(
            "truncated",
            f"the log ends after {index:,} events but the checkpoint seals {cp.tree_size:,}",
            checkpoint_size=cp.tree_size,
        )


async def _checkpoints(store: CheckpointStore) -> AsyncIterator[StoredCheckpoint]:
    after = 0
    while True:
        page = await store.page(after, _CHECKPOINT_PAGE, with_leaves=True)
        if not page:
            return
        for record in page:
            yield record
        after = page[-1].tree_size


async def verify_log(
    read_raw: ReadRaw,
    store: CheckpointStore,
    *,
    trusted_signers: tuple[str, ...],
    decode: Decode | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    published: Sequence[Checkpoint] | None = None,
) -> VerifyReport:
    """Stream the whole log once; stop at the first problem."""
    report = VerifyReport(signers=trusted_signers)
    if not trusted_signers:
        report.warnings.append(
            "no sealer address configured (--signer, PRYV_SEALER_ADDRESS, PRYV_SEALER_KEY or "
            "<data_dir>/sealer_key): signatures were checked against the signer each "
            "checkpoint records, and all must agree"
        )
    verifier = LogVerifier(trusted_signers, decode)
    checkpoints = _checkpoints(store)
    stored: dict[int, Checkpoint] = {}
    started = time.perf_counter()

    async def enter_next() -> Problem | None:
        record = await anext(checkpoints, None)
        if record is None:
            return None
        stored[record.tree_size] = record.checkpoint
        report.checkpoints += 1
        return verifier.enter(record)

    def done(problem: Problem | None) -> VerifyReport:
        report.problem = problem
        report.events = verifier.checked
        report.sealed_events = verifier.sealed
        report.last_notification_id = verifier.last_nid
        report.seconds = time.perf_counter() - started
        if problem is None and not stored:
            report.warnings.append("no checkpoints stored yet: is the sealer running?")
        return report

    problem = await enter_next()
    if problem:
        return done(problem)
    after = 0
    next_page = asyncio.ensure_future(asyncio.to_thread(read_raw, after, page_size))
    while True:
        page = await next_page
        if not page:
            break
        next_page = asyncio.ensure_future(asyncio.to_thread(read_raw, page[-1].id, page_size))
        for event in page:
            problem = verifier.feed(event)
            if problem is None and verifier.at_boundary():
                problem = verifier.close(event) or await enter_next()
            if problem:
                next_page.cancel()
                return done(problem)
    problem = verifier.finish()
    if problem is None and published is not None:
        problem = _compare_published(published, stored)
        report.published_checked = len(published)
    return done(problem)


def _compare_published(
    published: Sequence[Checkpoint], stored: dict[int, Checkpoint]
) -> Problem | None:
    """Every checkpoint on the undeletable stream must be exactly the stored one."""
    for cp in published:
        mine = stored.get(cp.tree_size)
        if mine is None:
            return Problem(
                "checkpoint",
                "published on the checkpoint stream but missing from the store",
                checkpoint_size=cp.tree_size,
            )
        if mine != cp:
            return Problem(
                "checkpoint",
                f"the stored checkpoint (root {mine.root_hex}) differs from the published "
                f"one (root {cp.root_hex}): the store was rewritten",
                checkpoint_size=cp.tree_size,
            )
    return None


async def _published_checkpoints(settings: Settings) -> list[Checkpoint] | None:
    if not settings.nats_url:
        return None
    import nats

    nc = await nats.connect(settings.nats_url, connect_timeout=5, max_reconnect_attempts=1)
    try:
        return await read_published_checkpoints(nc.jetstream(), settings.nats_stream)
    finally:
        await nc.close()


def _decoder(app: PryvApplication) -> Decode:
    to_domain_event = app.mapper.to_domain_event

    def decode(event: RawEvent) -> object:
        return to_domain_event(event)  # type: ignore[arg-type]

    return decode


async def run_verify(
    settings: Settings, *, signer: str | None = None, page_size: int = DEFAULT_PAGE_SIZE
) -> VerifyReport:
    app = open_application(settings)
    store = await open_checkpoint_store(settings)
    try:
        trusted = parse_sealer_addresses(signer) if signer else trusted_sealer_addresses(settings)
        return await verify_log(
            raw_reader(app.recorder),
            store,
            trusted_signers=trusted,
            decode=_decoder(app),
            page_size=page_size,
            published=await _published_checkpoints(settings),
        )
    finally:
        await store.close()
        app.close()


def cmd_verify(args: argparse.Namespace) -> int:
    try:
        report = asyncio.run(
            run_verify(Settings.from_env(), signer=args.signer, page_size=max(500, args.page_size))
        )
    except ValueError as exc:  # a malformed --signer or PRYV_SEALER_ADDRESS
        print(f"pryv audit verify: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.render())
    return 0 if report.ok else 1


# --- export ----------------------------------------------------------------------------------


def account_uuid(account: str) -> UUID:
    """A wallet address (→ uuid5 of it, as accounts are keyed) or an account uuid."""
    if account.lower().startswith("0x"):
        return ids.account_id(normalize_address(account))
    return UUID(account)


def parse_moment(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class ExportedEvent:
    leaf_index: int
    notification_id: int
    topic: str
    originator_id: str
    originator_version: int
    timestamp: str
    data: dict[str, Any]
    state: bytes | None  # the stored bytes, None when they hold secret material
    leaf_hash: bytes
    proof: list[bytes] | None = None
    checkpoint: Checkpoint | None = None

    def to_dict(self) -> dict[str, Any]:
        inclusion = None
        if self.proof is not None and self.checkpoint is not None:
            inclusion = {
                "treeSize": self.checkpoint.tree_size,
                "path": [p.hex() for p in self.proof],
                "checkpoint": self.checkpoint.to_dict(),
            }
        return {
            "notificationId": self.notification_id,
            "leafIndex": self.leaf_index,
            "topic": self.topic,
            "originatorId": self.originator_id,
            "originatorVersion": self.originator_version,
            "timestamp": self.timestamp,
            "data": self.data,
            "state": base64.b64encode(self.state).decode() if self.state is not None else None,
            "stateRedacted": self.state is None,
            "leafHash": self.leaf_hash.hex(),
            "inclusion": inclusion,
        }


@dataclass
class ExportResult:
    events: list[ExportedEvent]
    log_size: int
    checkpoint: Checkpoint | None  # the one the inclusion proofs are against
    warnings: list[str] = field(default_factory=list)
    log_matches_checkpoint: bool = True


async def export_account(
    app: PryvApplication,
    store: CheckpointStore,
    account: UUID,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> ExportResult:
    """Every event of every aggregate that belongs to `account`, in log order, with proofs.

    An aggregate belongs to the account when it is the account or when one of its events
    carries `account_id` = the account (every first event of a key, purchase, grant, hold,
    refund or dispute does), so later events that do not repeat it (a key's LimitsChanged or
    Revoked) are included too. `start` is inclusive, `end` exclusive (event timestamps).
    """
    select = app.recorder.select_notifications
    decode = app.mapper.to_domain_event
    marker = str(account).encode()
    # Encrypted or compressed state cannot be searched for the account id: decode everything.
    must_decode = bool(app.mapper.cipher or app.mapper.compressor)
    members: set[UUID | str] = {account}
    leaves = bytearray()  # every leaf hash, packed: 32 bytes an event
    out: list[ExportedEvent] = []
    after = 0
    while True:
        page = await asyncio.to_thread(select, start=after + 1, limit=page_size)
        if not page:
            break
        for raw in page:
            leaf = leaf_of(raw)
            leaves += leaf
            event: Any = None
            if raw.originator_id not in members and (
                must_decode or marker in stored_bytes(raw.state)
            ):
                event = _decode_for_export(decode, raw)
                if getattr(event, "account_id", None) == str(account):
                    members.add(raw.originator_id)
            if raw.originator_id not in members:
                continue
            event = event or _decode_for_export(decode, raw)
            moment: datetime = event.timestamp
            if (start and moment < start) or (end and moment >= end):
                continue
            envelope = to_envelope(raw, event)
            secret = SECRET_FIELDS.intersection(envelope.data)
            data = {k: v for k, v in envelope.data.items() if k not in SECRET_FIELDS}
            out.append(
                ExportedEvent(
                    leaf_index=len(leaves) // HASH_SIZE - 1,
                    notification_id=raw.id,
                    topic=raw.topic,
                    originator_id=str(raw.originator_id),
                    originator_version=raw.originator_version,
                    timestamp=envelope.timestamp,
                    data=data,
                    state=None if secret else stored_bytes(raw.state),
                    leaf_hash=leaf,
                )
            )
        after = page[-1].id
    log_size = len(leaves) // HASH_SIZE
    result = ExportResult(out, log_size, None)
    checkpoint = await _covering_checkpoint(store, log_size)
    if checkpoint is None:
        if out:
            result.warnings.append("no checkpoint covers these events yet: no inclusion proofs")
        return result
    del leaves[checkpoint.tree_size * HASH_SIZE :]  # newer events: no proof against it yet
    tree = MerkleTree.from_packed(leaves)
    del leaves
    if tree.root().hex() != checkpoint.root_hex:
        result.log_matches_checkpoint = False
        result.warnings.append(
            f"the log does not match checkpoint {checkpoint.tree_size}: run `pryv audit verify`;"
            " no inclusion proofs"
        )
        return result
    result.checkpoint = checkpoint
    for item in out:
        if item.leaf_index < checkpoint.tree_size:
            item.proof = tree.inclusion_proof(item.leaf_index, checkpoint.tree_size)
            item.checkpoint = checkpoint
    unproven = sum(item.proof is None for item in out)
    if unproven:
        result.warnings.append(
            f"{unproven} events are newer than checkpoint {checkpoint.tree_size}: no proof yet"
        )
    return result


def _decode_for_export(decode: Callable[[Notification], Any], raw: Notification) -> Any:
    try:
        return decode(raw)
    except Exception as exc:
        raise ValueError(
            f"event {raw.id} does not decode ({exc}); run `pryv audit verify`"
        ) from exc


async def _covering_checkpoint(store: CheckpointStore, log_size: int) -> Checkpoint | None:
    """The newest checkpoint within the log's current size."""
    best: Checkpoint | None = None
    after = 0
    while True:
        page = await store.page(after, 500, with_leaves=False)
        if not page:
            return best
        for record in page:
            if record.tree_size <= log_size:
                best = record.checkpoint
        after = page[-1].tree_size


CSV_COLUMNS = (
    "notification_id",
    "leaf_index",
    "topic",
    "originator_id",
    "originator_version",
    "timestamp",
    "data",
    "state_base64",
    "leaf_hash",
    "checkpoint_tree_size",
    "checkpoint_root",
    "inclusion_path",
)


def write_export(events: Sequence[ExportedEvent], fmt: str, out: TextIO) -> None:
    if fmt == "jsonl":
        for item in events:
            out.write(json.dumps(item.to_dict(), separators=(",", ":"), sort_keys=True) + "\n")
        return
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for item in events:
        doc = item.to_dict()
        writer.writerow(
            (
                item.notification_id,
                item.leaf_index,
                item.topic,
                item.originator_id,
                item.originator_version,
                item.timestamp,
                json.dumps(item.data, separators=(",", ":"), sort_keys=True),
                doc["state"] or "",
                item.leaf_hash.hex(),
                item.checkpoint.tree_size if item.checkpoint else "",
                item.checkpoint.root_hex if item.checkpoint else "",
                " ".join(p.hex() for p in item.proof or []),
            )
        )


@contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    with path.open("w", newline="" if path.suffix == ".csv" else None, encoding="utf-8") as f:
        yield f


def cmd_export(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    account = account_uuid(args.account)

    async def run() -> ExportResult:
        app = open_application(settings)
        store = await open_checkpoint_store(settings)
        try:
            return await export_account(
                app, store, account, start=parse_moment(args.start), end=parse_moment(args.end)
            )
        finally:
            await store.close()
            app.close()

    result = asyncio.run(run())
    with _output(args.output) as out:
        write_export(result.events, args.format, out)
    for warning in result.warnings:
        print(f"pryv audit export: warning: {warning}", file=sys.stderr)
    print(
        f"pryv audit export: {len(result.events)} events of account {account}"
        + (
            f" (proofs against checkpoint {result.checkpoint.tree_size})"
            if result.checkpoint
            else ""
        ),
        file=sys.stderr,
    )
    return 0 if result.log_matches_checkpoint else 1


# --- seal / checkpoints ----------------------------------------------------------------------


async def run_sealer(
    settings: Settings,
    *,
    once: bool,
    every_events: int,
    every_seconds: float,
    stop: asyncio.Event | None = None,
) -> Sealer:
    app = open_application(settings)
    store = await open_checkpoint_store(settings)
    publisher = (
        await NatsCheckpointPublisher.connect(settings.nats_url, settings.nats_stream)
        if settings.nats_url
        else None
    )
    try:
        sealer = Sealer(
            raw_reader(app.recorder),
            store,
            sealer_signer(settings),
            publisher,
            every_events=every_events,
            every_seconds=every_seconds,
            trusted_signers=trusted_sealer_addresses(settings),  # after sealer_signer made a key
        )
        if once:
            await sealer.seal_pending(force=True)
        else:
            stop = stop or asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)  # seal what is pending, then exit
            await sealer.run(stop)
        return sealer
    finally:
        if publisher is not None:
            await publisher.close()
        await store.close()
        app.close()


def cmd_seal(args: argparse.Namespace) -> int:
    sealer = asyncio.run(
        run_sealer(
            Settings.from_env(),
            once=args.once,
            every_events=args.every_events,
            every_seconds=args.every_seconds,
        )
    )
    print(
        json.dumps(
            {
                "treeSize": sealer.tree_size,
                "lastNotificationId": sealer.position,
                "checkpointsWritten": sealer.checkpoints_written,
                "eventsHashed": sealer.sealed_events,
            }
        )
    )
    return 0


def cmd_checkpoints(args: argparse.Namespace) -> int:
    settings = Settings.from_env()

    async def run() -> list[Checkpoint]:
        store = await open_checkpoint_store(settings)
        try:
            out: list[Checkpoint] = []
            after = 0
            while page := await store.page(after, 500, with_leaves=False):
                out += [r.checkpoint for r in page]
                after = page[-1].tree_size
            return out
        finally:
            await store.close()

    checkpoints = asyncio.run(run())
    sealers = trusted_sealer_addresses(settings)
    sealer = sealers[-1] if sealers else None
    if args.json:
        doc = {
            "sealer": sealer,
            "sealers": list(sealers),
            "checkpoints": [c.to_dict() for c in checkpoints],
        }
        print(json.dumps(doc, indent=2))
        return 0
    buffer = io.StringIO()
    buffer.write(f"sealer address: {sealer or 'unknown (no key or address configured)'}\n")
    if len(sealers) > 1:
        buffer.write(f"earlier sealer keys: {', '.join(sealers[:-1])}\n")
    for c in checkpoints:
        buffer.write(
            f"{c.tree_size:>12,}  {c.root_hex}  nid {c.last_notification_id}  {c.created_at}\n"
        )
    sys.stdout.write(buffer.getvalue())
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    audit = sub.add_parser("audit", help="tamper-evident log: verify, export, seal").add_subparsers(
        dest="audit_command", required=True
    )
    verify = audit.add_parser(
        "verify", help="recompute the Merkle tree and check every checkpoint; exit 1 on a problem"
    )
    verify.add_argument("--json", action="store_true")
    verify.add_argument(
        "--signer",
        help="the sealer's 0x address, or after key rotations its addresses oldest first, "
        "comma-separated (default: from configuration)",
    )
    verify.add_argument("--page-size", type=int, default=DEFAULT_PAGE_SIZE)
    verify.set_defaults(func=cmd_verify)

    export = audit.add_parser("export", help="one account's events with leaf hashes and proofs")
    export.add_argument("--account", required=True, help="wallet address or account uuid")
    export.add_argument("--from", dest="start", help="ISO-8601, inclusive")
    export.add_argument("--to", dest="end", help="ISO-8601, exclusive")
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    export.add_argument("--output", type=Path, help="file to write (default: stdout)")
    export.set_defaults(func=cmd_export)

    seal = audit.add_parser("seal", help="run the sealer (signed checkpoints of the log)")
    seal.add_argument("--once", action="store_true", help="seal everything now and exit")
    seal.add_argument("--every-events", type=int, default=1000)
    seal.add_argument("--every-seconds", type=float, default=10.0)
    seal.set_defaults(func=cmd_seal)

    listing = audit.add_parser("checkpoints", help="list stored checkpoints and the sealer address")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_checkpoints)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m cli.audit …` (the same commands as `pryv audit …`)."""
    parser = argparse.ArgumentParser(prog="pryv")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["audit", *(sys.argv[1:] if argv is None else argv)])
    try:
        code: int = args.func(args)
    except ValueError as exc:
        print(f"pryv: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    raise SystemExit(main())
