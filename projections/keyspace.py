"""Which projection owns a read-model key, so each projection can live in its own generation.

A key's owner is decided by its first segment (`balance:…` belongs to the balance projection);
`pos:<projection>` belongs to that projection. Stores prefix every physical key with
`<owner>.<generation>:`, which lets `pryv projections rebuild` fill a new generation of one
projection while the old one keeps serving, then switch atomically.
"""

from __future__ import annotations

from projections.catalog import MODULES

UNOWNED = "_"  # keys of no projection (tests, tools): always generation 0
POSITION_SEGMENT = "pos"

SEGMENT_OWNERS: dict[str, str] = {
    segment: module.NAME for module in MODULES for segment in module.SEGMENTS
}


def owner_of(logical_key: str) -> str:
    segment, _, rest = logical_key.partition(":")
    if segment == POSITION_SEGMENT:
        return rest
    return SEGMENT_OWNERS.get(segment, UNOWNED)


def physical(logical_key: str, generations: dict[str, int]) -> str:
    owner = owner_of(logical_key)
    return f"{owner}.{generations.get(owner, 0)}:{logical_key}"


def logical(physical_key: str) -> tuple[str, int, str]:
    """(owner, generation, logical key) of a physical key."""
    head, _, key = physical_key.partition(":")
    owner, _, generation = head.rpartition(".")
    return owner, int(generation), key
