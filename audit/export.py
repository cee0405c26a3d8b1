"""One account's events, each with its RFC 6962 inclusion proof against a signed checkpoint, so an
outside auditor can check them without trusting us (`pryv audit export`)."""

from __future__ import annotations

import asyncio
import base64
import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO
from uuid import UUID

from eventsourcing.persistence import Notification

from audit.sealer import leaf_of, stored_bytes
from audit.verify import DEFAULT_PAGE_SIZE
from commands.application import PryvApplication, to_envelope
from domain import ids
from domain.merkle import (
    HASH_SIZE,
    Checkpoint,
    MerkleTree,
)
from infra.checkpoints import (
    CheckpointStore,
)
from infra.wallet_signatures import normalize_address

# Decoded fields that are secret material (or derived from it) and never leave the system.
SECRET_FIELDS = frozenset({"secret_hash"})


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
            out.append(_exported(raw, event, leaf, len(leaves) // HASH_SIZE - 1))
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


def _exported(raw: Notification, event: Any, leaf: bytes, index: int) -> ExportedEvent:
    envelope = to_envelope(raw, event)
    secret = SECRET_FIELDS.intersection(envelope.data)
    return ExportedEvent(
        leaf_index=index,
        notification_id=raw.id,
        topic=raw.topic,
        originator_id=str(raw.originator_id),
        originator_version=raw.originator_version,
        timestamp=envelope.timestamp,
        data={k: v for k, v in envelope.data.items() if k not in SECRET_FIELDS},
        state=None if secret else stored_bytes(raw.state),
        leaf_hash=leaf,
    )


async def export_log(
    app: PryvApplication,
    store: CheckpointStore,
    fmt: str,
    out: TextIO,
    *,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> ExportResult:
    """The whole log, streamed, every event with its inclusion proof against the newest
    checkpoint that covers it. Two passes: the leaf hashes first (32 bytes an event, so the
    proofs need not hold the events), then the events, written as they are read."""
    select = app.recorder.select_notifications
    leaves = bytearray()
    after = 0
    while page := await asyncio.to_thread(select, start=after + 1, limit=page_size):
        for raw in page:
            leaves += leaf_of(raw)
        after = page[-1].id
    log_size = len(leaves) // HASH_SIZE
    result = ExportResult([], log_size, await _covering_checkpoint(store, log_size))
    tree = None
    if result.checkpoint is not None:
        tree = MerkleTree.from_packed(leaves[: result.checkpoint.tree_size * HASH_SIZE])
        if tree.root().hex() != result.checkpoint.root_hex:
            result.log_matches_checkpoint, tree = False, None
            result.warnings.append(
                f"the log does not match checkpoint {result.checkpoint.tree_size}: run "
                "`pryv audit verify`; no inclusion proofs"
            )
    elif log_size:
        result.warnings.append("no checkpoint covers the log yet: no inclusion proofs")
    del leaves
    decode, index, after = app.mapper.to_domain_event, 0, 0
    first = True
    while page := await asyncio.to_thread(select, start=after + 1, limit=page_size):
        batch = []
        for raw in page:
            item = _exported(raw, _decode_for_export(decode, raw), leaf_of(raw), index)
            if tree is not None and result.checkpoint and index < result.checkpoint.tree_size:
                item.proof = tree.inclusion_proof(index, result.checkpoint.tree_size)
                item.checkpoint = result.checkpoint
            batch.append(item)
            index += 1
        write_export(batch, fmt, out, header=first)
        first = False
        after = page[-1].id
    if first:
        write_export([], fmt, out)
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


def write_export(
    events: Sequence[ExportedEvent], fmt: str, out: TextIO, *, header: bool = True
) -> None:
    """JSON lines, or CSV (with the header row unless `header` is False: a later chunk)."""
    if fmt == "jsonl":
        for item in events:
            out.write(json.dumps(item.to_dict(), separators=(",", ":"), sort_keys=True) + "\n")
        return
    writer = csv.writer(out)
    if header:
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
