"""Property tests (hypothesis, fixed seed in CI via the profile below) for the pure core:
money, keys, the wallet message grammar, and projections under duplicated, reordered delivery."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Sequence

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain import ids, topics
from domain.api_keys import MalformedApiKey, issue_api_key, parse_api_key
from domain.envelope import EventEnvelope
from domain.money import token_cost_micros
from domain.wallet_messages import WalletAuthError, parse_wallet_message
from infra.bus import BusMessage
from infra.bus_memory import MemoryBus
from infra.read_store_memory import MemoryReadStore
from projections.catalog import page_writes, writes_for
from workers.projector import Projector

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ci")


@given(st.integers(0, 10**7), st.integers(0, 10**7), st.integers(0, 10**8))
def test_token_costs_round_up_and_split_at_most_one_micro(a: int, b: int, price: int) -> None:
    whole = token_cost_micros(a + b, price)
    parts = token_cost_micros(a, price) + token_cost_micros(b, price)
    assert whole * 1_000_000 >= (a + b) * price  # never under the exact cost
    assert parts - 1 <= whole <= parts  # splitting a bill never costs more than one micro extra


@given(st.sampled_from(["live", "test"]), st.data())
def test_issued_keys_always_parse_and_any_truncation_fails(env: str, data: st.DataObject) -> None:
    token = issue_api_key(env).token  # type: ignore[arg-type]
    assert parse_api_key(token).token == token
    cut = data.draw(st.integers(0, len(token) - 1))
    try:
        parse_api_key(token[:cut])
    except MalformedApiKey:
        return
    raise AssertionError("a truncated key parsed")


@given(st.text(max_size=300))
def test_wallet_parser_only_ever_refuses_with_its_own_error(text: str) -> None:
    with contextlib.suppress(WalletAuthError):
        parse_wallet_message(text)


# --- projections under redelivery -------------------------------------------------------------

ACCOUNTS = [str(ids.account_id(f"0x{n:040x}")) for n in (1, 2)]
TS = "2026-11-23T00:00:00+00:00"


@st.composite
def event_logs(draw: st.DrawFn) -> list[EventEnvelope]:
    """A plausible log: credits, holds placed then settled, keys created then revoked."""
    events: list[EventEnvelope] = []
    open_holds: list[tuple[str, dict[str, object]]] = []
    position = 0
    for _ in range(draw(st.integers(1, 40))):
        position += draw(st.integers(1, 3))  # notification ids have gaps
        account = draw(st.sampled_from(ACCOUNTS))
        kind = draw(st.sampled_from(["grant", "purchase", "place", "settle", "key"]))
        oid = f"agg-{position}"
        if kind == "grant":
            data = {
                "grant_ref": oid,
                "account_id": account,
                "wallet": "w",
                "env": "live",
                "amount_micros": draw(st.integers(1, 10**9)),
                "reason": "r",
                "granted_by": "t",
            }
            topic = topics.GRANT_GRANTED
        elif kind == "purchase":
            usd = draw(st.integers(1, 10**9))
            data = {
                "source_id": oid,
                "account_id": account,
                "wallet": "w",
                "usd_micros": usd,
                "credits_micros": usd,
                "source": "stripe",
                "payment_intent": None,
            }
            topic = topics.PURCHASE_COMPLETED
        elif kind == "place" or not open_holds:
            data = {
                "key_id": "K" * 16,
                "request_id": oid,
                "account_id": account,
                "env": "live",
                "amount_micros": draw(st.integers(0, 10**6)),
                "expires_at": "2030-01-01T00:00:00+00:00",
                "model": "m",
            }
            topic = topics.HOLD_PLACED
            open_holds.append((oid, data))
        elif kind == "settle":
            hold_oid, placed = open_holds.pop(draw(st.integers(0, len(open_holds) - 1)))
            oid = hold_oid
            data = {
                **placed,
                "held_micros": placed["amount_micros"],
                "actual_micros": draw(st.integers(0, int(placed["amount_micros"]))),  # type: ignore[call-overload]
                "tokens_in": 1,
                "tokens_out": 1,
                "outcome": "ok",
                "estimated": False,
            }
            topic = topics.HOLD_SETTLED
        else:
            data = {
                "key_id": oid[:16].ljust(16, "x"),
                "account_id": account,
                "wallet": "w",
                "name": "k",
                "env": "live",
                "secret_hash": f"h{position}",
                "prefix": "p",
                "last4": "abcd",
                "models": [],
                "rpm": None,
                "tpm": None,
                "monthly_budget_micros": None,
                "expires_at": None,
            }
            topic = topics.KEY_CREATED
        events.append(EventEnvelope(position, topic, oid, 1, TS, data))
    return events


def _apply_all(store: MemoryReadStore, batches: Sequence[Sequence[EventEnvelope]]) -> None:
    async def run() -> None:
        for batch in batches:
            await store.apply([w for e in batch for w in writes_for(e, 0)])

    asyncio.run(run())


def _dump(store: MemoryReadStore) -> dict[str, object]:
    return asyncio.run(store.dump())


@given(event_logs(), st.randoms(use_true_random=False))
def test_redelivered_events_change_nothing(log: list[EventEnvelope], rnd: random.Random) -> None:
    """Any event delivered again — at once, or after later ones — is a no-op."""
    once = MemoryReadStore()
    _apply_all(once, [log])
    chaotic = MemoryReadStore()
    batches: list[list[EventEnvelope]] = []
    for index, event in enumerate(log):
        batches.append([event])
        for _ in range(rnd.randint(0, 2)):  # duplicates of this or of any earlier event
            batches.append([log[rnd.randint(0, index)]])
    _apply_all(chaotic, batches)
    assert _dump(chaotic) == _dump(once)


@given(event_logs(), st.integers(1, 7))
def test_a_rebuild_page_as_one_write_per_projection_equals_one_write_per_event(
    log: list[EventEnvelope], page: int
) -> None:
    """What a rebuild applies (projections.catalog.page_writes) builds the same read model,
    positions included, as each event applied on its own."""
    per_event = MemoryReadStore()
    _apply_all(per_event, [log])
    per_page = MemoryReadStore()

    async def run() -> None:
        for start in range(0, len(log), page):
            await per_page.apply(page_writes(log[start : start + page]))

    asyncio.run(run())
    assert _dump(per_page) == _dump(per_event)


class ChaoticConsumer:
    """Delivers bus messages duplicated and out of order, like redelivery after a failure."""

    def __init__(self, bus: MemoryBus, after_seq: int, rnd: random.Random) -> None:
        self._bus, self._next, self._rnd = bus, after_seq, rnd

    async def fetch(self, max_messages: int, timeout: float) -> list[BusMessage]:
        batch = self._bus.after(self._next, max_messages)
        if not batch:
            await asyncio.sleep(0)
            return []
        self._next = batch[-1].seq
        extra = [self._rnd.choice(batch) for _ in range(self._rnd.randint(0, 3))]
        mixed = batch + extra
        if self._rnd.random() < 0.5:
            self._rnd.shuffle(mixed)
        return mixed

    async def ack(self, messages: Sequence[BusMessage]) -> None:
        return None

    async def close(self) -> None:
        return None


@settings(max_examples=25)
@given(event_logs(), st.randoms(use_true_random=False))
def test_projector_survives_duplicated_and_reordered_delivery(
    log: list[EventEnvelope], rnd: random.Random
) -> None:
    reference = MemoryReadStore()
    _apply_all(reference, [log])

    async def run() -> dict[str, object]:
        bus = MemoryBus()
        await bus.publish(log)

        async def consumer(name: str, after_seq: int) -> ChaoticConsumer:
            return ChaoticConsumer(bus, after_seq, rnd)

        bus.consumer = consumer  # type: ignore[method-assign]
        store = MemoryReadStore()
        projector = Projector(bus, store, batch_size=rnd.randint(1, 8))
        stop = asyncio.Event()
        task = asyncio.create_task(projector.run(stop, idle_timeout=0.01))
        for _ in range(2000):
            if (await store.position("balance")).position == log[-1].position:
                break
            await asyncio.sleep(0)
        stop.set()
        await asyncio.wait_for(task, 5)
        return await store.dump()

    assert asyncio.run(run()) == _dump(reference)
