"""Replay: dropping every read model and replaying the log rebuilds them byte-identically."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from bootstrap.platform import Platform
from commands.positions import wait_until_applied
from domain import ids
from infra.read_store_memory import MemoryReadStore
from projections import balance
from projections.catalog import PROJECTIONS, writes_for
from projections.replay import replay_log
from tests.evidence import OPERATOR, stripe
from tests.holds import place_hold
from workers.embedded import running_workers
from workers.projector import Projector

WALLETS = [f"0x{i:040x}" for i in range(1, 4)]


def write_history(platform: Platform) -> None:
    """A history touching every projection: keys, limits, revocations, credits, reversals,
    holds."""
    app = platform.app
    for n, wallet in enumerate(WALLETS):
        created = app.create_key(
            authorization=OPERATOR,
            wallet=wallet,
            name=f"key-{n}",
            env="live",
            models=["m"],
            rpm=60,
            tpm=1000,
            monthly_budget_micros=5_000_000,
            expires_at=None,
            pepper=b"p",
        )
        key_id = created.issued.key_id
        app.change_key_limits(
            wallet=wallet, key_id=key_id, changes={"rpm": 30}, authorization=OPERATOR
        )
        app.record_purchase(
            source_id=f"cs_{n}", wallet=wallet, usd_micros=20_000_000, evidence=stripe()
        )
        app.grant_credits(
            authorization=OPERATOR,
            wallet=wallet,
            env="test",
            amount_micros=1_000_000,
            reason="dev",
            granted_by="ops",
            grant_ref=f"g{n}",
        )
        for r in range(5):
            placed = place_hold(
                app,
                key_id=key_id,
                request_id=f"r{r}",
                account_id=str(ids.account_id(wallet)),
                env="live",
                amount_micros=100_000,
                model="m",
                expires_at=datetime.now(UTC) + timedelta(minutes=5),
            )
            if r < 4:  # one hold stays open: `held` must survive the replay too
                app.settle_hold(
                    placed.aggregate_id,
                    cost_micros=1_000 * (r + 1),
                    tokens_in=10,
                    tokens_out=r,
                    outcome="ok",
                )
        if n == 0:
            app.revoke_key(wallet=wallet, key_id=key_id, reason="rotated", authorization=OPERATOR)
        # Reversals: a partial refund, a dispute, and (for one wallet) its reinstatement.
        app.record_refund(
            evidence=stripe(),
            charge_id=f"ch_{n}",
            payment_intent=f"pi_{n}",
            wallet=wallet,
            charge_usd_micros=20_000_000,
            charge_credits_micros=20_000_000,
            total_refunded_usd_micros=2_000_000,
        )
        dispute = dict(
            dispute_id=f"du_{n}",
            charge_id=f"ch_{n}",
            payment_intent=f"pi_{n}",
            wallet=wallet,
            usd_micros=3_000_000,
            credits_micros=3_000_000,
            reason="fraudulent",
        )
        app.record_dispute(evidence=stripe(), **dispute)  # type: ignore[arg-type]
        if n == 1:
            app.record_dispute_reinstated(status="won", evidence=stripe(), **dispute)  # type: ignore[arg-type]


async def settled_dump(platform: Platform) -> str:
    target = platform.app.max_position()
    for name in PROJECTIONS:
        assert await wait_until_applied(platform.read_store, name, target, 10)
    return json.dumps(await platform.read_store.dump(), sort_keys=True)


async def test_replay_from_bus_and_from_store_rebuilds_identical_read_models(
    platform: Platform,
) -> None:
    await asyncio.to_thread(write_history, platform)
    async with running_workers(platform):
        live = await settled_dump(platform)
    first = await balance.read_balance(platform.read_store, str(ids.account_id(WALLETS[0])), "live")
    # usage 10_000 + refund 2_000_000 + dispute 3_000_000
    assert (first.credited_micros, first.debited_micros, first.held_micros) == (
        20_000_000,
        5_010_000,
        100_000,
    )
    won = await balance.read_balance(platform.read_store, str(ids.account_id(WALLETS[1])), "live")
    assert (won.credited_micros, won.debited_micros) == (23_000_000, 5_010_000)

    # 1. Drop everything and let a fresh projector replay the bus from its first message.
    await platform.read_store.clear()
    stop = asyncio.Event()
    task = asyncio.create_task(Projector(platform.bus, platform.read_store).run(stop))
    try:
        assert await settled_dump(platform) == live
    finally:
        stop.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    # 2. Drop everything and replay straight from the event store (the rebuild path).
    await platform.read_store.clear()
    await replay_log(platform.app.read_log, platform.read_store)
    assert await settled_dump(platform) == live

    # 3. Re-applying the whole log over the rebuilt models is a no-op (idempotent by position).
    everything = await asyncio.to_thread(platform.app.read_log, 0, 100_000)
    writes = [w for event in everything for w in writes_for(event, 0)]
    assert await platform.read_store.apply(writes) == 0
    assert await settled_dump(platform) == live


async def test_a_projector_rebuilds_a_read_store_that_lost_its_data(platform: Platform) -> None:
    """Redis restarted empty under a running projector: the next event makes it replay the bus
    from the start, instead of carrying on with models that miss everything before."""
    await asyncio.to_thread(write_history, platform)
    async with running_workers(platform):
        before = await settled_dump(platform)
        await platform.read_store.clear()  # what a Redis restart without persistence does
        await asyncio.to_thread(
            platform.app.grant_credits,
            authorization=OPERATOR,
            wallet=WALLETS[1],
            env="live",
            amount_micros=7,
            reason="after the wipe",
            granted_by="test",
            grant_ref="after-wipe",
        )
        after = await settled_dump(platform)
    assert after != before
    replayed = MemoryReadStore()
    await replay_log(platform.app.read_log, replayed)
    assert after == json.dumps(await replayed.dump(), sort_keys=True)
