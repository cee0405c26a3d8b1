"""What outsiders can hold the log to (RFC 6962's signed tree heads and consistency proofs):
the checkpoints, and a proof that a later one extends an earlier one.

Both are computed from the checkpoint store alone (its records keep each range's leaf
hashes), never from the events: an auditor who saved a signed head can check, offline, that
every later head extends it (`domain.merkle.verify_consistency`), and with `pryv audit verify
--trusted-head FILE` that the log itself still does.
"""

from __future__ import annotations

from typing import Any

from domain.errors import ErrorKind, PryvError
from domain.merkle import MerkleTree, unpack_leaf_records
from infra.checkpoints import CheckpointStore, open_checkpoint_store, trusted_sealer_addresses
from infra.settings import Settings

MAX_PROOF_SIZE = 5_000_000  # leaves read for one proof (a bound on one request's work)


class NoSuchCheckpoint(PryvError):
    kind, code = ErrorKind.NOT_FOUND, "checkpoint_not_found"


def head_object(record: Any) -> dict[str, Any]:
    checkpoint = record.checkpoint
    return {**checkpoint.to_dict(), "payload": checkpoint.payload}


async def checkpoint_page(store: CheckpointStore, after: int, limit: int) -> list[dict[str, Any]]:
    """Signed tree heads with tree size > `after`, smallest first."""
    return [head_object(r) for r in await store.page(after, limit, with_leaves=False)]


async def consistency(store: CheckpointStore, first: int, second: int) -> dict[str, Any]:
    """RFC 6962 PROOF(first, second) between two stored checkpoints' trees."""
    if not 0 < first <= second or second > MAX_PROOF_SIZE:
        raise PryvError(f"need 0 < first <= second <= {MAX_PROOF_SIZE}", param="first")
    leaves: list[bytes] = []
    heads: dict[int, dict[str, Any]] = {}
    after = 0
    while after < second:
        page = await store.page(after, 100, with_leaves=True)
        if not page:
            break
        for record in page:
            leaves.extend(leaf for _nid, leaf in unpack_leaf_records(record.leaves))
            heads[record.tree_size] = head_object(record)
            after = record.tree_size
            if after >= second:
                break
    for size in (first, second):
        if size not in heads:
            raise NoSuchCheckpoint(f"no checkpoint of tree size {size}", param="first")
    tree = MerkleTree(leaves[:second])
    for size in (first, second):
        if tree.root(size).hex() != heads[size]["rootHex"]:
            raise PryvError(
                f"the stored leaves do not hash to the signed root at size {size}",
                code="checkpoint_store_corrupt",
                kind=ErrorKind.CONFLICT,
            )
    return {
        "object": "audit.consistency",
        "first": heads[first],
        "second": heads[second],
        "proof": [p.hex() for p in tree.consistency_proof(first, second)],
    }


async def public_heads(settings: Settings, after: int, limit: int) -> dict[str, Any]:
    """The public feed's page: signed heads and the sealer addresses that sign them."""
    store = await open_checkpoint_store(settings)
    try:
        heads = await checkpoint_page(store, after, limit)
    finally:
        await store.close()
    return {
        "object": "list",
        "data": heads,
        "signers": list(trusted_sealer_addresses(settings)),
        "hasMore": len(heads) == limit,
    }


async def public_consistency(settings: Settings, first: int, second: int) -> dict[str, Any]:
    store = await open_checkpoint_store(settings)
    try:
        return await consistency(store, first, second)
    finally:
        await store.close()
