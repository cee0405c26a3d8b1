"""Check the event log against its signed Merkle checkpoints (RFC 6962), stopping at the first
problem: a changed, deleted or inserted event is named exactly, with the checkpoint that proves it.

`pryv audit verify` and `bench/audit.py` both run `verify_log`; see cli/audit.py for the checks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from audit.evidence import EvidenceAudit, event_name, tracks
from audit.sealer import RawEvent, ReadRaw, leaf_of
from commands.application import PryvApplication
from domain.merkle import (
    Checkpoint,
    MerkleAccumulator,
    MerkleError,
    unpack_leaf_records,
)
from infra.checkpoints import (
    CheckpointStore,
    StoredCheckpoint,
    read_published_checkpoints,
    signature_problem,
    signer_rank,
)
from infra.settings import Settings

DEFAULT_PAGE_SIZE = 2000
_CHECKPOINT_PAGE = 50


@dataclass(frozen=True)
class Problem:
    kind: str  # changed | missing | inserted | decode | version | evidence | checkpoint | root
    # | truncated | trusted-head
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
    trusted_heads_checked: int = 0
    evidence_checked: int | None = None  # money and key events whose evidence was checked
    operators: tuple[str, ...] = ()  # operator keys that signed events, as found
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
            "trustedHeadsChecked": self.trusted_heads_checked,
            "evidenceChecked": self.evidence_checked,
            "operators": list(self.operators),
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
            if self.trusted_heads_checked:
                lines.append(f"the log extends the {self.trusted_heads_checked} head(s) you hold")
            if self.evidence_checked is not None:
                signed = f"; operator keys: {', '.join(self.operators)}" if self.operators else ""
                lines.append(
                    f"every money and key event is authorized ({self.evidence_checked:,} "
                    f"checked){signed}"
                )
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

    def __init__(
        self,
        trusted_signers: tuple[str, ...],
        decode: Decode | None,
        evidence: EvidenceAudit | None = None,
    ) -> None:
        """`evidence` (needs `decode`): also check each money and key event's evidence."""
        self.trusted_signers = trusted_signers
        self.decode = decode
        self.evidence = evidence
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
        decoded: object = None
        if self.decode is not None:
            try:
                decoded = self.decode(event)
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
        if self.evidence is not None and decoded is not None and tracks(event.topic):
            why = self.evidence.problem(event_name(event.topic), decoded)
            if why is not None:
                return _event_problem("evidence", event, index, why)
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
    trusted_heads: Sequence[Checkpoint] = (),
    require_checkpoints: bool = False,
    evidence: EvidenceAudit | None = None,
) -> VerifyReport:
    """Stream the whole log once; stop at the first problem. `trusted_heads`: signed tree
    heads an auditor saved earlier (from the public feed): the log must still extend each.
    `require_checkpoints`: events with no checkpoint at all are a failure, not a warning
    (`pryv audit verify` unless --allow-unsealed: deleted checkpoints look exactly so)."""
    report = VerifyReport(signers=trusted_signers)
    if not trusted_signers:
        report.warnings.append(
            "no sealer address configured (--signer, PRYV_SEALER_ADDRESS, PRYV_SEALER_KEY or "
            "<data_dir>/sealer_key): signatures were checked against the signer each "
            "checkpoint records, and all must agree"
        )
    verifier = LogVerifier(trusted_signers, decode, evidence)
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
        if evidence is not None:
            report.evidence_checked = evidence.checked
            report.operators = tuple(sorted(evidence.operators_seen))
            if not evidence.operators and evidence.operators_seen:
                report.warnings.append(
                    "no operator address configured (--operator or PRYV_OPERATOR_ADDRESS): "
                    "operator signatures were checked, but not pinned to a known key"
                )
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
                # Let the read already under way finish: cancelling the future would not stop
                # its thread, and the caller may close the store (SQLite) as soon as we return.
                await asyncio.gather(next_page, return_exceptions=True)
                return done(problem)
    problem = verifier.finish()
    if problem is None and require_checkpoints and verifier.checked and not stored:
        problem = Problem(
            "checkpoint",
            f"{verifier.checked} events and no checkpoint: the sealer never ran, or the "
            "checkpoints were deleted (--allow-unsealed for a log not sealed yet)",
        )
    if problem is None and published is not None:
        if stored and not published:
            problem = Problem(
                "checkpoint",
                f"{len(stored)} checkpoints are stored and none is on the checkpoint stream: "
                "the stream was deleted",
            )
        else:
            problem = _compare_published(published, stored)
        report.published_checked = len(published)
    if problem is None and trusted_heads:
        problem = _extends_trusted_heads(trusted_heads, stored, trusted_signers)
        report.trusted_heads_checked = len(trusted_heads)
    return done(problem)


def _extends_trusted_heads(
    heads: Sequence[Checkpoint], stored: dict[int, Checkpoint], trusted_signers: tuple[str, ...]
) -> Problem | None:
    """Each head an auditor holds must be validly signed and be the root the (just verified)
    log has at that size: else the log was truncated, rewritten or re-sealed since."""
    for head in heads:
        why = signature_problem(head, trusted_signers)
        if why is not None:
            return Problem(
                "trusted-head",
                f"the head you hold is not validly signed: {why}",
                checkpoint_size=head.tree_size,
            )
        mine = stored.get(head.tree_size)
        if mine is None:
            return Problem(
                "trusted-head",
                f"the log has no checkpoint at the size of the head you hold ({head.tree_size}):"
                " it was truncated or re-sealed since",
                checkpoint_size=head.tree_size,
            )
        if (mine.root_hex, mine.last_notification_id) != (
            head.root_hex,
            head.last_notification_id,
        ):
            return Problem(
                "trusted-head",
                f"the log's root at size {head.tree_size} is {mine.root_hex}, not the "
                f"{head.root_hex} you hold: it was rewritten",
                checkpoint_size=head.tree_size,
            )
    return None


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


async def published_checkpoints(settings: Settings) -> list[Checkpoint] | None:
    if not settings.nats_url:
        return None
    import nats

    nc = await nats.connect(settings.nats_url, connect_timeout=5, max_reconnect_attempts=1)
    try:
        return await read_published_checkpoints(nc.jetstream(), settings.nats_stream)
    finally:
        await nc.close()


def event_decoder(app: PryvApplication) -> Decode:
    to_domain_event = app.mapper.to_domain_event

    def decode(event: RawEvent) -> object:
        return to_domain_event(event)  # type: ignore[arg-type]

    return decode
