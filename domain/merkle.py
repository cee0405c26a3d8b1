"""RFC 6962 Merkle tree over the notification log, and the signed checkpoints that seal it.

Pure: hashing, an incremental accumulator, inclusion/consistency proofs and the checkpoint
format. No I/O, no keys (signing and storage are in `infra.checkpoints`).

- Leaf hash `SHA-256(0x00 || leaf)`, node hash `SHA-256(0x01 || left || right)`, the empty tree
  is `SHA-256("")`, and a tree of n > 1 leaves splits at the largest power of two below n
  (RFC 6962 §2.1), so any RFC 6962 / Certificate Transparency verifier can check our roots.
- A leaf is one stored event: `leaf_bytes(notification id, originator id, originator version,
  topic, state bytes)` — exactly the row the event store holds, in an unambiguous encoding.
- `MerkleAccumulator` keeps only the roots of the perfect subtrees that make up the tree so far
  (one per set bit of the size: O(log n) memory), appends in amortised O(1) and gives the root at
  its current size in O(log n). That compact state is what a checkpoint stores to resume from.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from domain.errors import ErrorKind, PryvError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
LEAF_TAG = b"pryv-leaf/v1"
CHECKPOINT_TAG = "pryv-checkpoint/v1"

_U64 = struct.Struct(">Q")
_U64_U64 = struct.Struct(">QQ")
_TAG_FIELD = _U64.pack(len(LEAF_TAG)) + LEAF_TAG
_LEAF_RECORD = struct.Struct(">Q32s")  # (notification id, leaf hash): a checkpoint's leaf record
LEAF_RECORD_SIZE = _LEAF_RECORD.size


class MerkleError(PryvError, ValueError):
    """Malformed input: a hash of the wrong length, an index outside the tree, a bad state."""

    kind, code = ErrorKind.INTERNAL, "merkle_error"


# --- hashing ---------------------------------------------------------------------------------


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def canonical_originator_id(originator_id: UUID | str) -> str:
    """A UUID as its lower-case hyphenated string (what the leaf commits to)."""
    return str(originator_id) if isinstance(originator_id, UUID) else originator_id


def leaf_bytes(
    notification_id: int,
    originator_id: UUID | str,
    originator_version: int,
    topic: str,
    state: bytes,
) -> bytes:
    """The bytes one stored event contributes to the tree.

    `u64(len(tag)) tag · u64(notification id) · u64(len) originator id (UTF-8, UUIDs as
    lower-case hyphenated text) · u64(originator version) · u64(len) topic (UTF-8) · u64(len)
    state`, all integers big-endian: every field is fixed-width or length-prefixed, so no two
    different events share an encoding, and the tag keeps these leaves apart from any other
    use of the same hash.
    """
    oid = (str(originator_id) if isinstance(originator_id, UUID) else originator_id).encode()
    topic_bytes = topic.encode()
    try:
        return b"".join(
            (
                _TAG_FIELD,
                _U64_U64.pack(notification_id, len(oid)),
                oid,
                _U64_U64.pack(originator_version, len(topic_bytes)),
                topic_bytes,
                _U64.pack(len(state)),
                state,
            )
        )
    except struct.error as exc:  # a negative id or version
        raise MerkleError(f"not a leaf: {exc}") from exc


def event_leaf_hash(
    notification_id: int,
    originator_id: UUID | str,
    originator_version: int,
    topic: str,
    state: bytes,
) -> bytes:
    return leaf_hash(leaf_bytes(notification_id, originator_id, originator_version, topic, state))


def _check_hash(value: bytes, what: str = "hash") -> None:
    if len(value) != HASH_SIZE:
        raise MerkleError(f"{what} must be {HASH_SIZE} bytes, got {len(value)}")


def _split(n: int) -> int:
    """The largest power of two strictly below n (n >= 2): RFC 6962's k."""
    return 1 << ((n - 1).bit_length() - 1)


def merkle_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over already-hashed leaves, by the RFC's recursive definition (the reference)."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = _split(n)
    return node_hash(merkle_root(leaf_hashes[:k]), merkle_root(leaf_hashes[k:]))


# --- incremental accumulator -----------------------------------------------------------------


class MerkleAccumulator:
    """Append-only Merkle tree that keeps only its compact range (the perfect-subtree roots).

    `subtrees()` lists the roots left to right, largest first; their sizes are the set bits of
    `size`, highest first. `MerkleAccumulator(size, subtrees)` resumes from that state.
    """

    __slots__ = ("_size", "_stack")

    def __init__(self, size: int = 0, subtrees: Iterable[bytes] = ()) -> None:
        stack = [bytes(h) for h in subtrees]
        if size < 0 or len(stack) != size.bit_count():
            raise MerkleError(f"a tree of size {size} has {size.bit_count()} subtrees")
        for h in stack:
            _check_hash(h, "subtree root")
        self._size = size
        self._stack = stack

    @property
    def size(self) -> int:
        return self._size

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash (not the leaf data: hash it with `leaf_hash` first)."""
        stack = self._stack
        stack.append(leaf)
        n = self._size
        while n & 1:  # every trailing one bit is a perfect subtree the new leaf completes
            right = stack.pop()
            stack[-1] = node_hash(stack[-1], right)
            n >>= 1
        self._size += 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        stack = self._stack
        if not stack:
            return EMPTY_ROOT
        root = stack[-1]
        for subtree in reversed(stack[:-1]):
            root = node_hash(subtree, root)
        return root

    def subtrees(self) -> tuple[bytes, ...]:
        return tuple(self._stack)

    def copy(self) -> MerkleAccumulator:
        clone = MerkleAccumulator()
        clone._size = self._size
        clone._stack = list(self._stack)
        return clone

    def compact_bytes(self) -> bytes:
        """The subtree roots concatenated (32 bytes each): with `size`, the whole resume state."""
        return b"".join(self._stack)

    @classmethod
    def from_compact(cls, size: int, compact: bytes) -> MerkleAccumulator:
        if len(compact) % HASH_SIZE:
            raise MerkleError("compact state is not a whole number of hashes")
        return cls(size, (compact[i : i + HASH_SIZE] for i in range(0, len(compact), HASH_SIZE)))


# --- proofs ----------------------------------------------------------------------------------


class MerkleTree:
    """All leaf hashes of a tree plus every perfect aligned subtree root: O(log^2 n) proofs.

    Each level is one packed bytes object (32 bytes a node), so a tree of n leaves takes about
    64n bytes; building it costs about n node hashes.
    """

    def __init__(self, leaf_hashes: Iterable[bytes]) -> None:
        leaves = list(leaf_hashes)
        for h in leaves:
            _check_hash(h, "leaf hash")
        self._build(b"".join(leaves))

    @classmethod
    def from_packed(cls, leaves: bytes | bytearray) -> MerkleTree:
        """From leaf hashes concatenated (32 bytes each)."""
        if len(leaves) % HASH_SIZE:
            raise MerkleError("packed leaves are not a whole number of hashes")
        tree = cls.__new__(cls)
        tree._build(bytes(leaves))  # a copy only if handed a bytearray
        return tree

    def _build(self, level: bytes) -> None:
        self._levels: list[bytes] = [level]
        width = 2 * HASH_SIZE
        while len(level) > HASH_SIZE:
            level = b"".join(
                hashlib.sha256(b"\x01" + level[i : i + width]).digest()
                for i in range(0, len(level) - width + 1, width)
            )
            self._levels.append(level)

    def _node(self, height: int, index: int) -> bytes:
        return self._levels[height][index * HASH_SIZE : (index + 1) * HASH_SIZE]

    @property
    def size(self) -> int:
        return len(self._levels[0]) // HASH_SIZE

    def leaf(self, index: int) -> bytes:
        if not 0 <= index < self.size:
            raise MerkleError(f"no leaf {index} in a tree of size {self.size}")
        return self._node(0, index)

    def subtree_root(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for the ranges the RFC recursion visits (start aligned to k)."""
        n = end - start
        if n == 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0 and start % n == 0:
            height = n.bit_length() - 1
            return self._node(height, start >> height)
        k = _split(n)
        return node_hash(self.subtree_root(start, start + k), self.subtree_root(start + k, end))

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise MerkleError(f"tree size {size} outside 0..{self.size}")
        return self.subtree_root(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 6962 §2.1.1 PATH(index, D[0:size]), leaf-side first."""
        size = self.size if size is None else size
        if not 0 <= index < size <= self.size:
            raise MerkleError(f"leaf {index} is not in a tree of size {size}")
        return self._path(index, 0, size)

    def _path(self, m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return [*self._path(m, start, start + k), self.subtree_root(start + k, end)]
        return [*self._path(m - k, start + k, end), self.subtree_root(start, start + k)]

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        """RFC 6962 §2.1.2 PROOF(first, D[0:second])."""
        second = self.size if second is None else second
        if not 0 <= first <= second <= self.size:
            raise MerkleError(f"no consistency proof from {first} to {second}")
        if first == 0 or first == second:
            return []
        return self._subproof(first, 0, second, True)

    def _subproof(self, m: int, start: int, end: int, complete: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if complete else [self.subtree_root(start, end)]
        k = _split(n)
        if m <= k:
            return [
                *self._subproof(m, start, start + k, complete),
                self.subtree_root(start + k, end),
            ]
        return [*self._subproof(m - k, start + k, end, False), self.subtree_root(start, start + k)]


def root_from_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes | None:
    """The root that `proof` implies for `leaf` at `index` (RFC 9162 §2.1.3.2), or None."""
    if not 0 <= index < size or len(leaf) != HASH_SIZE:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if len(p) != HASH_SIZE or sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    return root_from_inclusion(leaf, index, size, proof) == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether the tree of `second` leaves extends the tree of `first` (RFC 9162 §2.1.4.2)."""
    if not 0 <= first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof and first_root == EMPTY_ROOT
    if not proof or any(len(p) != HASH_SIZE for p in proof):
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # a power of two: first_root is itself a node of the proof
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


# --- leaf records ----------------------------------------------------------------------------


def pack_leaf_records(records: Iterable[tuple[int, bytes]]) -> bytes:
    """(notification id, leaf hash) pairs as 40-byte records: a checkpoint's per-leaf record."""
    return b"".join(_LEAF_RECORD.pack(nid, h) for nid, h in records)


def unpack_leaf_records(blob: bytes) -> list[tuple[int, bytes]]:
    if len(blob) % LEAF_RECORD_SIZE:
        raise MerkleError("leaf record is not a whole number of entries")
    return list(_iter_leaf_records(blob))


def _iter_leaf_records(blob: bytes) -> Iterator[tuple[int, bytes]]:
    for nid, h in _LEAF_RECORD.iter_unpack(blob):
        yield int(nid), bytes(h)


# --- checkpoints -----------------------------------------------------------------------------


def checkpoint_payload(
    tree_size: int, root_hex: str, last_notification_id: int, created_at: str
) -> str:
    """The exact text a sealer signs (EIP-191 personal_sign) for one checkpoint."""
    return f"{CHECKPOINT_TAG}\n{tree_size}\n{root_hex}\n{last_notification_id}\n{created_at}"


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement: the first `tree_size` events of the log, the last of which has
    notification id `last_notification_id`, have Merkle root `root_hex`."""

    tree_size: int
    root_hex: str
    last_notification_id: int
    created_at: str  # ISO-8601 UTC, signed as written
    signer: str  # 0x address (lower-case) that signed `payload`
    signature: str  # 0x-hex EIP-191 signature

    @property
    def payload(self) -> str:
        return checkpoint_payload(
            self.tree_size, self.root_hex, self.last_notification_id, self.created_at
        )

    @property
    def root(self) -> bytes:
        return bytes.fromhex(self.root_hex)

    def to_dict(self) -> dict[str, Any]:
        return {
            "treeSize": self.tree_size,
            "rootHex": self.root_hex,
            "lastNotificationId": self.last_notification_id,
            "createdAt": self.created_at,
            "signer": self.signer,
            "signature": self.signature,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Checkpoint:
        return cls(
            tree_size=int(doc["treeSize"]),
            root_hex=str(doc["rootHex"]),
            last_notification_id=int(doc["lastNotificationId"]),
            created_at=str(doc["createdAt"]),
            signer=str(doc["signer"]),
            signature=str(doc["signature"]),
        )
