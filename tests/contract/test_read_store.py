"""One contract for both read stores: MemoryReadStore (embedded) and RedisReadStore (production).

The memory store is the reference; every test here runs on both, and a seeded random workload
must leave both with identical `dump()`s, so replays on either backend build the same read models.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from infra.read_store_memory import MemoryReadStore
from infra.read_store_redis import RedisReadStore
from projections.ops import (
    CloseHold,
    IncrField,
    Op,
    OpenHold,
    ProjectionPosition,
    ProjectionWrite,
    SetFields,
    SetValue,
    SortedAdd,
    SortedRemove,
)
from projections.store import ReadStore, RebuildLeaseLost
from tests.conftest import REDIS_URL

BIG = 9_000_000_000_000  # 9M USD in micros: beyond what a Lua double prints as an integer


@pytest.fixture
async def read_store(redis_prefix_or_none: str | None) -> AsyncIterator[ReadStore]:
    store: ReadStore
    if redis_prefix_or_none is None:
        store = MemoryReadStore()
    else:
        store = RedisReadStore.from_url(REDIS_URL, redis_prefix_or_none)
    yield store
    await store.close()


@pytest.fixture
async def raw_redis() -> AsyncIterator[redis.Redis]:
    client = redis.from_url(REDIS_URL, decode_responses=True)
    yield client
    await client.aclose()


def write(projection: str, position: int, *ops: Op, bus_seq: int | None = None) -> ProjectionWrite:
    return ProjectionWrite(projection, position, position if bus_seq is None else bus_seq, ops)


def hold(hold_id: str, amount: int, expires: int = 1_000, **fields: str) -> OpenHold:
    return OpenHold(f"hold:{hold_id}", ("bal",), "expiring", hold_id, amount, expires, dict(fields))


def close(hold_id: str) -> CloseHold:
    return CloseHold(f"hold:{hold_id}", ("bal",), "expiring", hold_id)


# 1. position guard ------------------------------------------------------------------------------


async def test_same_write_twice_applies_once(read_store: ReadStore) -> None:
    w = write("balance", 5, IncrField("acct", "credited", 100), bus_seq=7)
    assert await read_store.apply([w]) == 1
    assert await read_store.apply([w]) == 0
    assert await read_store.get_fields("acct") == {"credited": "100"}
    assert await read_store.position("balance") == ProjectionPosition(5, 7)


async def test_lower_position_after_higher_is_skipped(read_store: ReadStore) -> None:
    assert await read_store.apply([write("balance", 10, IncrField("acct", "n", 1))]) == 1
    assert await read_store.apply([write("balance", 9, IncrField("acct", "n", 1))]) == 0
    assert await read_store.get_fields("acct") == {"n": "1"}
    assert await read_store.position("balance") == ProjectionPosition(10, 10)


async def test_guard_applies_within_one_batch(read_store: ReadStore) -> None:
    batch = [
        write("balance", 3, IncrField("acct", "n", 1)),
        write("balance", 3, IncrField("acct", "n", 10)),  # redelivered in the same batch
        write("balance", 2, IncrField("acct", "n", 100)),  # older
        write("balance", 4, IncrField("acct", "n", 1000)),
    ]
    assert await read_store.apply(batch) == 2
    assert await read_store.get_fields("acct") == {"n": "1001"}
    assert await read_store.position("balance") == ProjectionPosition(4, 4)


async def test_positions_are_per_projection(read_store: ReadStore) -> None:
    assert await read_store.position("ledger") == ProjectionPosition(0, 0)
    assert await read_store.apply([write("balance", 50, IncrField("a", "n", 1), bus_seq=60)]) == 1
    assert await read_store.apply([write("ledger", 3, IncrField("b", "n", 1), bus_seq=61)]) == 1
    assert await read_store.position("balance") == ProjectionPosition(50, 60)
    assert await read_store.position("ledger") == ProjectionPosition(3, 61)
    assert await read_store.position("keys") == ProjectionPosition(0, 0)


async def test_positions_near_two_to_the_53(read_store: ReadStore) -> None:
    top = 2**53 - 2
    assert await read_store.apply([write("p", top - 1, bus_seq=top - 1)]) == 1
    assert await read_store.apply([write("p", top, bus_seq=top)]) == 1
    assert await read_store.apply([write("p", top - 1)]) == 0
    assert await read_store.position("p") == ProjectionPosition(top, top)


# 2. op semantics ---------------------------------------------------------------------------------


async def test_set_fields_and_values(read_store: ReadStore) -> None:
    await read_store.apply([write("k", 1, SetFields("key:1", {"name": "a", "env": "live"}))])
    await read_store.apply([write("k", 2, SetFields("key:1", {"name": "b", "rpm": "60"}))])
    await read_store.apply([write("k", 3, SetValue("idx:h", "key:1"), SetValue("u", "héllo 😀"))])
    assert await read_store.get_fields("key:1") == {"name": "b", "env": "live", "rpm": "60"}
    assert await read_store.get_fields("missing") == {}
    assert await read_store.get_value("idx:h") == "key:1"
    assert await read_store.get_value("u") == "héllo 😀"
    assert await read_store.get_value("missing") is None
    await read_store.apply([write("k", 4, SetValue("idx:h", "key:2"))])
    assert await read_store.get_value("idx:h") == "key:2"


async def test_incr_field_exact_for_big_and_negative_deltas(read_store: ReadStore) -> None:
    huge = 10**17 + 3  # not representable as a double
    await read_store.apply([write("b", 1, IncrField("bal", "credited", BIG))])
    await read_store.apply([write("b", 2, IncrField("bal", "credited", huge))])
    await read_store.apply([write("b", 3, IncrField("bal", "credited", -1))])
    await read_store.apply([write("b", 4, IncrField("bal", "debited", -BIG))])
    assert await read_store.get_fields("bal") == {
        "credited": str(BIG + huge - 1),
        "debited": str(-BIG),
    }


async def test_sorted_add_update_and_remove(read_store: ReadStore) -> None:
    await read_store.apply([write("l", 1, SortedAdd("z", 5, "a"), SortedAdd("z", 2**52 + 1, "b"))])
    await read_store.apply([write("l", 2, SortedAdd("z", 7, "a"))])  # re-add moves the member
    assert await read_store.sorted_desc("z", below=None, limit=10) == [(2**52 + 1, "b"), (7, "a")]
    await read_store.apply([write("l", 3, SortedRemove("z", "b"), SortedRemove("z", "nope"))])
    assert await read_store.sorted_desc("z", below=None, limit=10) == [(7, "a")]
    await read_store.apply([write("l", 4, SortedRemove("z", "a"), SortedRemove("none", "x"))])
    assert await read_store.sorted_desc("z", below=None, limit=10) == []
    assert await read_store.dump() == {}  # emptied sorted sets are gone


async def test_open_hold_twice_is_held_once(read_store: ReadStore) -> None:
    await read_store.apply([write("b", 1, IncrField("bal", "credited", 3 * BIG))])
    await read_store.apply([write("b", 2, hold("h1", BIG, 1_700, account_id="acc", env="live"))])
    # admission recorded it already / a different event re-opens it: whichever came first counts
    await read_store.apply([write("b", 3, hold("h1", 5, 9_999, account_id="other"))])
    assert await read_store.get_fields("bal") == {"credited": str(3 * BIG), "held": str(BIG)}
    assert await read_store.get_fields("hold:h1") == {
        "account_id": "acc",
        "env": "live",
        "amount": str(BIG),
    }
    assert await read_store.sorted_by_score("expiring", max_score=1_700, limit=10) == ["h1"]
    assert await read_store.sorted_by_score("expiring", max_score=1_699, limit=10) == []


async def test_hold_amount_field_wins_over_fields(read_store: ReadStore) -> None:
    opened = OpenHold("hold:h1", ("bal",), "expiring", "h1", 42, 1, {"amount": "999", "x": "y"})
    await read_store.apply([write("b", 1, opened)])
    assert await read_store.get_fields("hold:h1") == {"amount": "42", "x": "y"}
    assert await read_store.get_fields("bal") == {"held": "42"}


async def test_hold_moves_every_counter_it_names(read_store: ReadStore) -> None:
    """A hold counts against the account balance and the key's budget at once."""
    opened = OpenHold("hold:h1", ("bal", "keyheld"), "expiring", "h1", 70, 1, {})
    await read_store.apply([write("b", 1, opened)])
    assert await read_store.get_fields("bal") == {"held": "70"}
    assert await read_store.get_fields("keyheld") == {"held": "70"}
    await read_store.apply(
        [write("b", 2, CloseHold("hold:h1", ("bal", "keyheld"), "expiring", "h1"))]
    )
    assert await read_store.get_fields("bal") == {"held": "0"}
    assert await read_store.get_fields("keyheld") == {"held": "0"}


async def test_close_absent_hold_is_noop(read_store: ReadStore) -> None:
    await read_store.apply(
        [
            write("b", 1, IncrField("bal", "held", 7), SortedAdd("expiring", 1, "x")),
        ]
    )
    assert await read_store.apply([write("b", 2, close("x"))]) == 1  # applied, but changes nothing
    assert await read_store.get_fields("bal") == {"held": "7"}
    assert await read_store.sorted_desc("expiring", below=None, limit=5) == [(1, "x")]


async def test_close_hold_releases_exactly_the_recorded_amount(read_store: ReadStore) -> None:
    await read_store.apply(
        [
            write("b", 1, hold("h1", BIG, 100), hold("h2", 250, 200), hold("h0", 0, 50)),
        ]
    )
    assert await read_store.get_fields("bal") == {"held": str(BIG + 250)}
    assert await read_store.sorted_by_score("expiring", max_score=10**9, limit=10) == [
        "h0",
        "h1",
        "h2",
    ]
    await read_store.apply([write("b", 2, close("h1"), IncrField("bal", "debited", 1234))])
    assert await read_store.get_fields("bal") == {"held": "250", "debited": "1234"}
    assert await read_store.get_fields("hold:h1") == {}
    assert await read_store.sorted_by_score("expiring", max_score=10**9, limit=10) == ["h0", "h2"]
    # h1 again: a no-op
    await read_store.apply([write("b", 3, close("h1"), close("h2"), close("h0"))])
    assert await read_store.get_fields("bal") == {"held": "0", "debited": "1234"}
    assert await read_store.sorted_by_score("expiring", max_score=10**9, limit=10) == []
    # a closed hold can be opened again (a new hold with the same id) and closed again
    await read_store.apply([write("b", 4, hold("h2", 9)), write("b", 5, close("h2"))])
    assert await read_store.get_fields("bal") == {"held": "0", "debited": "1234"}
    assert await read_store.dump() == {"bal": {"debited": "1234", "held": "0"}}


# 3. queries --------------------------------------------------------------------------------------


async def test_sorted_desc_pages_with_below_cursor(read_store: ReadStore) -> None:
    entries = [(10, "a"), (20, "b"), (30, "c"), (30, "c2"), (40, "d"), (50, "e")]
    await read_store.apply([write("l", 1, *(SortedAdd("led", s, m) for s, m in entries))])

    pages: list[list[tuple[int, str]]] = []
    below: int | None = None
    while True:
        page = await read_store.sorted_desc("led", below=below, limit=2)
        if not page:
            break
        pages.append(page)
        below = page[-1][0]
    assert pages == [[(50, "e"), (40, "d")], [(30, "c2"), (30, "c")], [(20, "b"), (10, "a")]]
    assert await read_store.sorted_desc("led", below=30, limit=10) == [(20, "b"), (10, "a")]
    assert await read_store.sorted_desc("led", below=31, limit=1) == [(30, "c2")]
    assert await read_store.sorted_desc("led", below=10, limit=10) == []
    assert await read_store.sorted_desc("led", below=None, limit=0) == []
    assert await read_store.sorted_desc("nothing", below=None, limit=5) == []


async def test_sorted_by_score_inclusive_lowest_first(read_store: ReadStore) -> None:
    await read_store.apply(
        [
            write(
                "e",
                1,
                SortedAdd("exp", 300, "late"),
                SortedAdd("exp", 100, "early"),
                SortedAdd("exp", 200, "mid"),
                SortedAdd("exp", 200, "mid0"),
            ),
        ]
    )
    assert await read_store.sorted_by_score("exp", max_score=99, limit=10) == []
    assert await read_store.sorted_by_score("exp", max_score=200, limit=10) == [
        "early",
        "mid",
        "mid0",
    ]
    assert await read_store.sorted_by_score("exp", max_score=10**12, limit=2) == ["early", "mid"]
    assert await read_store.sorted_by_score("exp", max_score=10**12, limit=0) == []
    assert await read_store.sorted_by_score("nothing", max_score=10**12, limit=5) == []


# 4. dump / clear ---------------------------------------------------------------------------------


async def test_dump_is_canonical_and_excludes_positions(read_store: ReadStore) -> None:
    await read_store.apply(
        [
            write("k", 1, SetFields("h", {"z": "1", "a": "2"}), SetValue("v", "x")),
            write("l", 9, SortedAdd("s", 2, "b"), SortedAdd("s", 1, "c"), SortedAdd("s", 2, "a")),
        ]
    )
    dumped = await read_store.dump()
    assert dumped == {"h": {"a": "2", "z": "1"}, "s": [[1, "c"], [2, "a"], [2, "b"]], "v": "x"}
    assert list(dumped) == ["h", "s", "v"]
    assert list(dumped["h"]) == ["a", "z"]
    assert await read_store.position("l") == ProjectionPosition(9, 9)  # kept, just not dumped


async def test_clear_empties_everything_and_resets_positions(read_store: ReadStore) -> None:
    await read_store.apply(
        [
            write(
                "k",
                5,
                SetFields("h", {"a": "1"}),
                SetValue("v", "x"),
                SortedAdd("s", 1, "m"),
                hold("h1", 10),
            ),
        ]
    )
    await read_store.clear()
    assert await read_store.dump() == {}
    assert await read_store.position("k") == ProjectionPosition(0, 0)
    assert await read_store.get_fields("bal") == {}
    # after a clear the same positions replay from scratch
    assert await read_store.apply([write("k", 5, IncrField("bal", "n", 1))]) == 1
    assert await read_store.dump() == {"bal": {"n": "1"}}


def _random_op(rng: random.Random) -> Op:
    amount = rng.choice([0, 1, 7, BIG, 10**17 + 3, rng.randint(1, 10**6)])
    kind = rng.randrange(8)
    if kind == 0:
        names = rng.sample("abc", rng.randint(0, 3))
        fields = {f: rng.choice(["x", "y", "é", "😀", ""]) for f in names}
        return SetFields(f"h:{rng.randrange(4)}", fields)
    if kind in (1, 2):
        return IncrField(f"h:{rng.randrange(4)}", rng.choice("nm"), rng.choice([1, -1]) * amount)
    if kind == 3:
        return SetValue(f"v:{rng.randrange(3)}", rng.choice(["a", "b", "ü", str(amount)]))
    if kind == 4:
        score = rng.choice([rng.randrange(5), rng.randrange(2**53)])
        return SortedAdd(f"z:{rng.randrange(3)}", score, f"m{rng.randrange(6)}")
    if kind == 5:
        return SortedRemove(f"z:{rng.randrange(3)}", f"m{rng.randrange(6)}")
    hold_id = f"hd{rng.randrange(6)}"
    balance = f"bal:{rng.randrange(2)}"
    if kind == 6:
        return OpenHold(
            f"hold:{hold_id}",
            (balance, f"keyheld:{hold_id}"),
            "exp",
            hold_id,
            amount,
            rng.randrange(1_700_000_000, 1_800_000_000),
            {"acct": balance},
        )
    return CloseHold(f"hold:{hold_id}", (balance, f"keyheld:{hold_id}"), "exp", hold_id)


def _random_writes(rng: random.Random, count: int) -> list[ProjectionWrite]:
    """Mixed ops over a small key space (so they collide), with replays of old positions."""
    heads = {"balance": 0, "keys": 2**52, "ledger": 1_000}
    writes = []
    for seq in range(1, count + 1):
        name = rng.choice(list(heads))
        if rng.random() < 0.2:
            position = heads[name] - rng.randrange(3)  # redelivery / replay: skipped
        else:
            heads[name] += rng.randint(1, 3)
            position = heads[name]
        ops = tuple(_random_op(rng) for _ in range(rng.randint(0, 4)))
        writes.append(ProjectionWrite(name, position, seq, ops))
    return writes


async def test_memory_and_redis_dumps_are_equal(redis_prefix: str) -> None:
    rng = random.Random(20240611)
    writes = _random_writes(rng, 400)
    memory = MemoryReadStore()
    redis_store = RedisReadStore.from_url(REDIS_URL, redis_prefix)
    try:
        start = 0
        while start < len(writes):
            batch = writes[start : start + rng.randint(1, 40)]
            start += len(batch)
            assert await redis_store.apply(batch) == await memory.apply(batch)
        expected = await memory.dump()
        assert expected  # the workload left something to compare
        assert any(isinstance(v, list) for v in expected.values())
        assert any("held" in v for v in expected.values() if isinstance(v, dict))
        assert await redis_store.dump() == expected
        for name in ("balance", "keys", "ledger"):
            assert await redis_store.position(name) == await memory.position(name)
        for key in [f"h:{i}" for i in range(4)] + ["bal:0", "bal:1"]:
            assert await redis_store.get_fields(key) == await memory.get_fields(key)
        for key in ("z:0", "z:1", "z:2", "exp"):
            assert await redis_store.sorted_desc(key, below=None, limit=100) == (
                await memory.sorted_desc(key, below=None, limit=100)
            )
        # a full replay of the same log after clear() rebuilds the identical read models
        await redis_store.clear()
        assert await redis_store.apply(writes) == await MemoryReadStore().apply(writes)
        assert await redis_store.dump() == expected
    finally:
        await redis_store.close()


# Redis specifics: key layout, ops without guard, atomicity ---------------------------------------


async def test_redis_key_layout_and_clear_scope(redis_prefix: str, raw_redis: redis.Redis) -> None:
    store = RedisReadStore.from_url(REDIS_URL, redis_prefix)
    neighbour = RedisReadStore.from_url(REDIS_URL, redis_prefix + "x")
    try:
        await store.apply([write("balance", 4, SetValue("v", "1"), bus_seq=8)])
        await neighbour.apply([write("balance", 1, SetValue("v", "2"))])
        await raw_redis.set(f"{redis_prefix}:rl:counter", "5")
        # <owner>.<generation>:<logical>: "v" belongs to no projection, positions to theirs
        assert await raw_redis.get(f"{redis_prefix}:rm:_.0:v") == "1"
        assert await raw_redis.hgetall(f"{redis_prefix}:rm:balance.0:pos:balance") == {
            "position": "4",
            "bus_seq": "8",
        }
        await store.clear()
        assert await raw_redis.get(f"{redis_prefix}:rl:counter") == "5"
        assert await neighbour.dump() == {"v": "2"}
        assert await neighbour.position("balance") == ProjectionPosition(1, 1)
        await neighbour.clear()
    finally:
        await store.close()
        await neighbour.close()


async def test_redis_apply_ops_atomically_has_no_guard(redis_prefix: str) -> None:
    store = RedisReadStore.from_url(REDIS_URL, redis_prefix)
    try:
        await store.apply_ops_atomically([hold("h1", BIG), IncrField("bal", "n", 1)])
        await store.apply_ops_atomically([hold("h1", BIG), IncrField("bal", "n", 1)])
        assert await store.get_fields("bal") == {"held": str(BIG), "n": "2"}
        assert await store.position("balance") == ProjectionPosition(0, 0)
        # the projected Placed event after admission: the hold is not counted twice
        assert await store.apply([write("balance", 1, hold("h1", BIG))]) == 1
        assert await store.get_fields("bal") == {"held": str(BIG), "n": "2"}
    finally:
        await store.close()


async def test_redis_readers_never_see_half_a_batch(redis_prefix: str) -> None:
    """A projector-sized batch (500 events x 5 projections) lands in one step for readers."""
    store = RedisReadStore.from_url(REDIS_URL, redis_prefix)
    events, projections = 500, 5
    writes = [
        write(
            f"p{p}",
            e + 1,
            IncrField("pair:a", "n", 1),
            SetFields(f"k:{p}", {"e": str(e)}),
            SortedAdd(f"s:{p}", e, f"m{e}"),
            IncrField("pair:b", "n", 1),
        )
        for e in range(events)
        for p in range(projections)
    ]
    total = str(events * projections)
    done = asyncio.Event()
    seen: list[tuple[str | None, str | None]] = []

    async def reader() -> None:
        while not done.is_set():
            a = (await store.get_fields("pair:a")).get("n")
            b = (await store.get_fields("pair:b")).get("n")
            seen.append((a, b))

    readers = [asyncio.create_task(reader()) for _ in range(4)]
    try:
        while not seen:
            await asyncio.sleep(0)
        assert await store.apply(writes) == events * projections
        await asyncio.sleep(0.01)
    finally:
        done.set()
        await asyncio.gather(*readers)
        await store.close()
    # a is read before b, so once a shows the batch, b must too; nothing in between ever shows
    assert set(seen) <= {(None, None), (None, total), (total, total)}
    assert (None, None) in seen and (total, total) in seen


# Generations: rebuild beside the served models, then swap --------------------------------------


async def test_rebuilt_generation_is_invisible_until_swapped(read_store: ReadStore) -> None:
    await read_store.apply([write("balance", 5, IncrField("balance:a:live", "credited", 10))])
    rebuilt = [write("balance", 5, IncrField("balance:a:live", "credited", 11), bus_seq=0)]
    assert await read_store.apply(rebuilt, into={"balance": 1}) == 1
    assert await read_store.get_fields("balance:a:live") == {"credited": "10"}  # still gen 0
    assert await read_store.position("balance", 1) == ProjectionPosition(5, 0)
    assert await read_store.swap_generation("balance", 1)
    assert await read_store.generations() == {"balance": 1}
    await asyncio.sleep(RedisReadStore.GENERATIONS_TTL + 0.05)  # another process's cache
    assert await read_store.get_fields("balance:a:live") == {"credited": "11"}
    assert await read_store.dump() == {"balance:a:live": {"credited": "11"}}
    # the bus resumes where the live projector was, never from the rebuild's bus_seq 0
    assert await read_store.position("balance") == ProjectionPosition(5, 5)
    # live writes now land in the new generation; the old one can go
    await read_store.apply([write("balance", 6, IncrField("balance:a:live", "credited", 1))])
    assert await read_store.get_fields("balance:a:live") == {"credited": "12"}
    assert await read_store.drop_generation("balance", 0) >= 1
    assert await read_store.dump() == {"balance:a:live": {"credited": "12"}}


async def test_swap_waits_until_the_new_generation_caught_up(read_store: ReadStore) -> None:
    await read_store.apply([write("keys", 9, SetValue("keyhash:x", "k"))])
    await read_store.apply([write("keys", 7, SetValue("keyhash:x", "k"))], into={"keys": 1})
    assert not await read_store.swap_generation("keys", 1)  # 7 < 9: would go back in time
    await read_store.apply([write("keys", 9, SetValue("keyhash:x", "k"))], into={"keys": 1})
    assert await read_store.swap_generation("keys", 1)


async def test_balance_swap_carries_holds_admission_recorded(read_store: ReadStore) -> None:
    """A hold admitted (not yet in the log) must survive the swap with its `held` amount."""
    from projections import balance as bal

    placed = {
        "account_id": "a",
        "env": "live",
        "key_id": "k",
        "amount_micros": 300,
        "expires_at": "2030-01-01T00:00:00+00:00",
    }
    await read_store.apply(
        [write("balance", 3, IncrField(bal.balance_key("a", "live"), "credited", 1000))]
    )
    await read_store.apply_ops_atomically([bal.open_hold("h-admitted", placed)])
    await read_store.apply(
        [write("balance", 3, IncrField(bal.balance_key("a", "live"), "credited", 1000))],
        into={"balance": 1},
    )
    assert await read_store.swap_generation("balance", 1)
    await asyncio.sleep(RedisReadStore.GENERATIONS_TTL + 0.05)
    got = await bal.read_balance(read_store, "a", "live")
    assert (got.credited_micros, got.held_micros) == (1000, 300)
    assert await read_store.get_fields(bal.key_held_key("k")) == {"held": "300"}
    assert await bal.expired_hold_ids(read_store, 2_000_000_000) == ["h-admitted"]
    # and its settlement releases it from the new generation
    await read_store.apply([write("balance", 4, bal.close_hold("h-admitted", placed))])
    assert (await bal.read_balance(read_store, "a", "live")).held_micros == 0


async def test_balance_swap_does_not_revive_holds_the_rebuild_saw_settled(
    read_store: ReadStore,
) -> None:
    """The live projector lags: the served generation still has a hold open whose settlement
    the rebuilt generation already applied. The swap must not carry that hold over."""
    from projections import balance as bal

    placed = {
        "account_id": "a",
        "env": "live",
        "key_id": "k",
        "amount_micros": 300,
        "expires_at": "2030-01-01T00:00:00+00:00",
    }
    opened = write("balance", 2, bal.open_hold("h1", placed))
    settled = write(
        "balance",
        3,
        bal.close_hold("h1", placed),
        IncrField(bal.balance_key("a", "live"), "debited", 100),
    )
    await read_store.apply([opened])  # live projector: Placed only
    await read_store.apply([opened, settled], into={"balance": 1})  # rebuild: both
    assert await read_store.swap_generation("balance", 1)
    await asyncio.sleep(RedisReadStore.GENERATIONS_TTL + 0.05)
    got = await bal.read_balance(read_store, "a", "live")
    assert (got.debited_micros, got.held_micros) == (100, 0)
    assert await read_store.dump() == {
        bal.balance_key("a", "live"): {"debited": "100", "held": "0"},
        bal.key_held_key("k"): {"held": "0"},
    }


async def test_one_rebuild_lease_at_a_time_with_growing_fencing_tokens(
    read_store: ReadStore,
) -> None:
    first = await read_store.acquire_rebuild_lease("host:1", ttl=30)
    assert first is not None
    assert await read_store.acquire_rebuild_lease("host:2", ttl=30) is None
    holder = await read_store.rebuild_lease()
    assert holder is not None and (holder.token, holder.owner) == (first.token, "host:1")
    assert 0 < holder.expires_in <= 30
    assert await read_store.renew_rebuild_lease(first.token, 30)
    assert not await read_store.renew_rebuild_lease(first.token + 1, 30)
    await read_store.release_rebuild_lease(first.token)
    assert await read_store.rebuild_lease() is None
    second = await read_store.acquire_rebuild_lease("host:2", ttl=30)
    assert second is not None and second.token > first.token


async def test_a_lapsed_lease_fences_its_holder_out(read_store: ReadStore) -> None:
    stale = await read_store.acquire_rebuild_lease("host:1", ttl=0.2)
    assert stale is not None
    await asyncio.sleep(0.4)  # it stalled past its TTL
    fresh = await read_store.acquire_rebuild_lease("host:2", ttl=30)
    assert fresh is not None and fresh.token > stale.token
    with pytest.raises(RebuildLeaseLost):
        await read_store.apply(
            [write("keys", 1, SetValue("k:1", "x"))], into={"keys": 1}, fence=stale.token
        )
    with pytest.raises(RebuildLeaseLost):
        await read_store.swap_generation("keys", 1, fence=stale.token)
    with pytest.raises(RebuildLeaseLost):
        await read_store.drop_generation("keys", 1, fence=stale.token)
    assert not await read_store.renew_rebuild_lease(stale.token, 30)
    applied = await read_store.apply(
        [write("keys", 1, SetValue("k:1", "x"))], into={"keys": 1}, fence=fresh.token
    )
    assert applied == 1


async def test_the_served_generation_is_never_dropped(read_store: ReadStore) -> None:
    await read_store.apply([write("keys", 1, SetValue("k:1", "x"))])
    with pytest.raises(ValueError):
        await read_store.drop_generation("keys", 0)
    assert await read_store.get_value("k:1") == "x"
