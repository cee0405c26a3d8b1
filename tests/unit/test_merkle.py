"""RFC 6962 Merkle hashing, the incremental accumulator, proofs and the leaf encoding."""

from __future__ import annotations

import hashlib
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.merkle import (
    EMPTY_ROOT,
    Checkpoint,
    MerkleAccumulator,
    MerkleError,
    MerkleTree,
    checkpoint_payload,
    event_leaf_hash,
    leaf_bytes,
    leaf_hash,
    merkle_root,
    node_hash,
    pack_leaf_records,
    unpack_leaf_records,
    verify_consistency,
    verify_inclusion,
)

# The Certificate Transparency reference leaves and tree heads for sizes 0..8 (RFC 6962 test
# data, as used by the CT, Trillian and transparency-dev test suites).
CT_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = [
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]
CT_CONSISTENCY = [
    (
        2,
        8,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]
CT_LEAF_HASHES = [leaf_hash(leaf) for leaf in CT_LEAVES]


def synthetic_leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def test_empty_tree_is_the_hash_of_nothing() -> None:
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert merkle_root([]).hex() == CT_ROOTS[0]
    assert MerkleAccumulator().root().hex() == CT_ROOTS[0]


def test_prefixes_are_the_rfcs() -> None:
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    a, b = b"a" * 32, b"b" * 32
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()


@pytest.mark.parametrize("size", range(9))
def test_reference_roots(size: int) -> None:
    assert merkle_root(CT_LEAF_HASHES[:size]).hex() == CT_ROOTS[size]
    accumulator = MerkleAccumulator()
    accumulator.extend(CT_LEAF_HASHES[:size])
    assert accumulator.root().hex() == CT_ROOTS[size]
    assert MerkleTree(CT_LEAF_HASHES).root(size).hex() == CT_ROOTS[size]


@pytest.mark.parametrize(("index", "size", "proof"), CT_INCLUSION)
def test_reference_inclusion_proofs(index: int, size: int, proof: list[str]) -> None:
    tree = MerkleTree(CT_LEAF_HASHES)
    assert [p.hex() for p in tree.inclusion_proof(index, size)] == proof
    root = bytes.fromhex(CT_ROOTS[size])
    assert verify_inclusion(CT_LEAF_HASHES[index], index, size, tree.inclusion_proof(index), root)


@pytest.mark.parametrize(("first", "second", "proof"), CT_CONSISTENCY)
def test_reference_consistency_proofs(first: int, second: int, proof: list[str]) -> None:
    tree = MerkleTree(CT_LEAF_HASHES)
    assert [p.hex() for p in tree.consistency_proof(first, second)] == proof
    first_root, second_root = bytes.fromhex(CT_ROOTS[first]), bytes.fromhex(CT_ROOTS[second])
    assert verify_consistency(first, second, first_root, second_root, tree.consistency_proof(first))


def test_accumulator_matches_recomputing_from_scratch_at_every_size_to_100() -> None:
    leaves = synthetic_leaves(100)
    accumulator = MerkleAccumulator()
    assert accumulator.root() == merkle_root([])
    for n, leaf in enumerate(leaves, start=1):
        accumulator.append(leaf)
        assert accumulator.size == n
        assert accumulator.root() == merkle_root(leaves[:n]), n
        assert len(accumulator.subtrees()) == n.bit_count()  # O(log n) state


@given(st.lists(st.binary(max_size=40), max_size=70), st.data())
@settings(max_examples=60, deadline=None)
def test_resuming_from_compact_state_is_the_same_tree(
    data: list[bytes], draw: st.DataObject
) -> None:
    leaves = [leaf_hash(d) for d in data]
    cut = draw.draw(st.integers(min_value=0, max_value=len(leaves)))
    first = MerkleAccumulator()
    first.extend(leaves[:cut])
    resumed = MerkleAccumulator.from_compact(first.size, first.compact_bytes())
    resumed.extend(leaves[cut:])
    assert resumed.root() == merkle_root(leaves)
    assert first.copy().root() == merkle_root(leaves[:cut])


def test_compact_state_must_fit_its_size() -> None:
    with pytest.raises(MerkleError):
        MerkleAccumulator(3, [b"x" * 32])  # 3 = 0b11 needs two subtrees
    with pytest.raises(MerkleError):
        MerkleAccumulator.from_compact(1, b"short")


def test_every_inclusion_and_consistency_proof_up_to_40_verifies_and_tampering_fails() -> None:
    leaves = synthetic_leaves(40)
    tree = MerkleTree(leaves)
    roots = [merkle_root(leaves[:n]) for n in range(41)]
    for size in range(1, 41):
        for index in range(size):
            proof = tree.inclusion_proof(index, size)
            assert verify_inclusion(leaves[index], index, size, proof, roots[size])
            assert not verify_inclusion(leaves[index], index, size, proof, roots[size - 1])
            if proof:
                bent = [*proof[:-1], bytes([proof[-1][0] ^ 1]) + proof[-1][1:]]
                assert not verify_inclusion(leaves[index], index, size, bent, roots[size])
                assert not verify_inclusion(leaves[index], index, size, proof[:-1], roots[size])
            other = (index + 1) % size
            if other != index:
                assert not verify_inclusion(leaves[other], index, size, proof, roots[size])
        for first in range(size + 1):
            proof = tree.consistency_proof(first, size)
            assert verify_consistency(first, size, roots[first], roots[size], proof)
            if 0 < first < size:
                assert not verify_consistency(first, size, roots[first - 1], roots[size], proof)
                assert not verify_consistency(first, size, roots[first], roots[size], proof[:-1])


def test_a_tree_from_packed_leaves_is_the_same_tree() -> None:
    leaves = synthetic_leaves(13)
    packed = MerkleTree.from_packed(bytearray(b"".join(leaves)))
    assert packed.root() == MerkleTree(leaves).root() == merkle_root(leaves)
    assert packed.inclusion_proof(12) == MerkleTree(leaves).inclusion_proof(12)
    assert packed.leaf(3) == leaves[3]
    with pytest.raises(MerkleError):
        MerkleTree.from_packed(b"x" * 33)


def test_proofs_reject_sizes_outside_the_tree() -> None:
    tree = MerkleTree(synthetic_leaves(5))
    with pytest.raises(MerkleError):
        tree.inclusion_proof(5, 5)
    with pytest.raises(MerkleError):
        tree.consistency_proof(3, 6)
    assert not verify_inclusion(tree.leaf(0), 5, 5, [], tree.root())


ORIGINATOR = UUID("5b0e3a52-8d1c-4c47-9a7e-2f0b8f6a9c11")


def test_leaf_commits_to_every_field() -> None:
    base = (7, ORIGINATOR, 1, "pryv.CreditGrant.Granted.v1", b'{"a":1}')
    variants = [
        (8, ORIGINATOR, 1, "pryv.CreditGrant.Granted.v1", b'{"a":1}'),
        (7, UUID(int=ORIGINATOR.int + 1), 1, "pryv.CreditGrant.Granted.v1", b'{"a":1}'),
        (7, ORIGINATOR, 2, "pryv.CreditGrant.Granted.v1", b'{"a":1}'),
        (7, ORIGINATOR, 1, "pryv.CreditGrant.Granted.v2", b'{"a":1}'),
        (7, ORIGINATOR, 1, "pryv.CreditGrant.Granted.v1", b'{"a":2}'),
    ]
    hashes = {event_leaf_hash(*base), *(event_leaf_hash(*v) for v in variants)}
    assert len(hashes) == 1 + len(variants)
    # a UUID and its canonical text are the same leaf
    assert leaf_bytes(*base) == leaf_bytes(7, str(ORIGINATOR), 1, base[3], base[4])


def test_leaf_encoding_is_pinned() -> None:
    """The exact bytes, so an auditor's own implementation can be checked against ours."""
    expected = (
        (12).to_bytes(8, "big")
        + b"pryv-leaf/v1"
        + (7).to_bytes(8, "big")
        + (36).to_bytes(8, "big")
        + b"5b0e3a52-8d1c-4c47-9a7e-2f0b8f6a9c11"
        + (1).to_bytes(8, "big")
        + (3).to_bytes(8, "big")
        + b"t.x"
        + (2).to_bytes(8, "big")
        + b"{}"
    )
    assert leaf_bytes(7, ORIGINATOR, 1, "t.x", b"{}") == expected
    assert (
        event_leaf_hash(7, ORIGINATOR, 1, "t.x", b"{}")
        == hashlib.sha256(b"\x00" + expected).digest()
    )
    with pytest.raises(MerkleError):
        leaf_bytes(-1, ORIGINATOR, 1, "t.x", b"{}")


@given(st.text(max_size=8), st.binary(max_size=8), st.text(max_size=8), st.binary(max_size=8))
def test_moving_bytes_between_fields_changes_the_leaf(
    topic_a: str, state_a: bytes, topic_b: str, state_b: bytes
) -> None:
    a = leaf_bytes(1, "o", 1, topic_a, state_a)
    b = leaf_bytes(1, "o", 1, topic_b, state_b)
    assert (a == b) == (topic_a == topic_b and state_a == state_b)


def test_leaf_records_round_trip() -> None:
    records = [(3, b"a" * 32), (2**40, b"b" * 32)]
    assert unpack_leaf_records(pack_leaf_records(records)) == records
    with pytest.raises(MerkleError):
        unpack_leaf_records(b"x" * 39)


def test_checkpoint_payload_is_pinned() -> None:
    payload = checkpoint_payload(3, "ab" * 32, 17, "2026-11-23T00:00:00+00:00")
    assert payload == ("pryv-checkpoint/v1\n3\n" + "ab" * 32 + "\n17\n2026-11-23T00:00:00+00:00")
    checkpoint = Checkpoint(3, "ab" * 32, 17, "2026-11-23T00:00:00+00:00", "0xabc", "0xsig")
    assert checkpoint.payload == payload
    assert Checkpoint.from_dict(checkpoint.to_dict()) == checkpoint
