"""The command side over both event stores: SQLite (embedded) and PostgreSQL (production)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bootstrap.platform import open_application
from commands.application import PryvApplication
from commands.results import InvalidCommand, NotFound
from domain import ids, topics
from infra.settings import Settings
from tests.conftest import POSTGRES_URL
from tests.evidence import OPERATOR, stripe
from tests.holds import place_hold

WALLET = "0x00000000000000000000000000000000000000aa"


@pytest.fixture(params=["sqlite", "postgres"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PryvApplication]:
    if request.param == "sqlite":
        settings = Settings(data_dir=tmp_path)
    else:
        schema = request.getfixturevalue("postgres_schema")
        settings = Settings(data_dir=tmp_path, database_url=POSTGRES_URL, database_schema=schema)
    application = open_application(settings)
    yield application
    application.close()


def topics_in_log(app: PryvApplication) -> list[str]:
    return [e.topic for e in app.read_log(0, 10_000)]


def hold_args(key_id: str = "k" * 16, request_id: str = "req-1") -> dict[str, object]:
    return dict(
        key_id=key_id,
        request_id=request_id,
        account_id=str(ids.account_id(WALLET)),
        env="live",
        amount_micros=1_000,
        expires_at=datetime.now(UTC) + timedelta(minutes=5),
        model="m",
    )


def test_commands_return_increasing_positions(app: PryvApplication) -> None:
    first = app.open_account(WALLET)
    created = app.create_key(
        authorization=OPERATOR,
        wallet=WALLET,
        name="k",
        env="live",
        models=["m"],
        rpm=1,
        tpm=2,
        monthly_budget_micros=3,
        expires_at=None,
        pepper=b"p",
    )
    assert first.position is not None and created.result.position is not None
    assert created.result.position > first.position
    assert created.result.position == app.max_position()


def test_same_purchase_twice_credits_once(app: PryvApplication) -> None:
    first = app.record_purchase(
        source_id="cs_1", wallet=WALLET, usd_micros=10_000_000, evidence=stripe()
    )
    second = app.record_purchase(
        source_id="cs_1", wallet=WALLET, usd_micros=10_000_000, evidence=stripe()
    )
    assert not first.duplicate and second.duplicate and second.position is None
    assert topics_in_log(app).count(topics.PURCHASE_COMPLETED) == 1


def test_dispute_is_withdrawn_once_and_reinstated_once(app: PryvApplication) -> None:
    dispute = dict(
        dispute_id="du_1",
        charge_id="ch_1",
        payment_intent="pi_1",
        wallet=WALLET,
        usd_micros=10_000_000,
        credits_micros=10_000_000,
        reason="fraudulent",
    )
    # Reinstated before its opening was recorded: both events are written, in order.
    won = app.record_dispute_reinstated(status="won", evidence=stripe(), **dispute)  # type: ignore[arg-type]
    again = app.record_dispute_reinstated(status="won", evidence=stripe(), **dispute)  # type: ignore[arg-type]
    late_open = app.record_dispute(evidence=stripe(), **dispute)  # type: ignore[arg-type]
    assert not won.duplicate and again.duplicate and late_open.duplicate
    log = [t for t in topics_in_log(app) if "ChargeDispute" in t]
    assert log == [topics.DISPUTE_OPENED, topics.DISPUTE_REINSTATED]


def test_reversals_that_keep_colliding_write_nothing_and_say_retry(
    app: PryvApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    from eventsourcing.persistence import IntegrityError

    from commands.results import ConcurrentUpdate

    app.open_account(WALLET)
    before = app.max_position()

    def always_lose(*_aggregates: object, **_kwargs: object) -> None:
        raise IntegrityError("another writer won")

    monkeypatch.setattr(app, "save", always_lose)
    with pytest.raises(ConcurrentUpdate):
        app.record_refund(
            evidence=stripe(),
            charge_id="ch_1",
            payment_intent=None,
            wallet=WALLET,
            charge_usd_micros=10,
            charge_credits_micros=10,
            total_refunded_usd_micros=5,
        )
    with pytest.raises(ConcurrentUpdate):
        app.record_dispute_reinstated(
            evidence=stripe(),
            dispute_id="du_1",
            charge_id="ch_1",
            payment_intent=None,
            wallet=WALLET,
            usd_micros=10,
            credits_micros=10,
            reason="fraudulent",
            status="won",
        )
    assert app.max_position() == before


def test_same_hold_twice_holds_once_and_settles_once(app: PryvApplication) -> None:
    placed = place_hold(app, **hold_args())
    again = place_hold(app, **hold_args())
    assert not placed.duplicate and again.duplicate
    settled = app.settle_hold(
        placed.aggregate_id, cost_micros=5, tokens_in=1, tokens_out=1, outcome="ok"
    )
    resettled = app.settle_hold(
        placed.aggregate_id, cost_micros=5, tokens_in=1, tokens_out=1, outcome="ok"
    )
    assert not settled.duplicate and resettled.duplicate
    log = topics_in_log(app)
    assert log.count(topics.HOLD_PLACED) == 1 and log.count(topics.HOLD_SETTLED) == 1


def test_concurrent_settlements_of_one_hold_write_one(app: PryvApplication) -> None:
    """Two writers racing on the same hold collide on the aggregate version: one wins."""
    placed = place_hold(app, **hold_args())
    hold_a = app.repository.get(placed.aggregate_id)
    hold_b = app.repository.get(placed.aggregate_id)
    a = app.settle_hold(hold_a, cost_micros=1, tokens_in=0, tokens_out=0, outcome="ok")
    b = app.settle_hold(hold_b, cost_micros=2, tokens_in=0, tokens_out=0, outcome="ok")
    assert [a.duplicate, b.duplicate] == [False, True]
    assert topics_in_log(app).count(topics.HOLD_SETTLED) == 1


def test_same_grant_ref_grants_once_and_reason_is_required(app: PryvApplication) -> None:
    kwargs = dict(
        wallet=WALLET, env="test", amount_micros=5, reason="dev", granted_by="ops", grant_ref="g-1"
    )
    assert not app.grant_credits(authorization=OPERATOR, **kwargs).duplicate  # type: ignore[arg-type]
    assert app.grant_credits(authorization=OPERATOR, **kwargs).duplicate  # type: ignore[arg-type]
    with pytest.raises(InvalidCommand):
        app.grant_credits(
            authorization=OPERATOR,
            **{**kwargs, "grant_ref": "g-2", "reason": " "},  # type: ignore[arg-type]
        )
    with pytest.raises(InvalidCommand):
        app.grant_credits(
            authorization=OPERATOR, **{**kwargs, "grant_ref": "g-3", "amount_micros": -1}
        )  # type: ignore[arg-type]


def test_revoke_is_owner_only_and_idempotent(app: PryvApplication) -> None:
    created = app.create_key(
        authorization=OPERATOR,
        wallet=WALLET,
        name="k",
        env="test",
        models=[],
        rpm=None,
        tpm=None,
        monthly_budget_micros=None,
        expires_at=None,
        pepper=b"p",
    )
    key_id = created.issued.key_id
    with pytest.raises(NotFound):
        app.revoke_key(wallet="0x" + "b" * 40, key_id=key_id, reason="x", authorization=OPERATOR)
    first = app.revoke_key(wallet=WALLET, key_id=key_id, reason="x", authorization=OPERATOR)
    second = app.revoke_key(wallet=WALLET, key_id=key_id, reason="x", authorization=OPERATOR)
    assert not first.duplicate and second.duplicate
    assert topics_in_log(app).count(topics.KEY_REVOKED) == 1


def test_expire_holds_settles_only_expired_open_holds(app: PryvApplication) -> None:
    past = place_hold(
        app,
        **{**hold_args(request_id="old"), "expires_at": datetime.now(UTC) - timedelta(seconds=1)},
    )
    future = place_hold(app, **hold_args(request_id="new"))
    phantom = ids.hold_id("k" * 16, "never-placed")
    report = app.expire_holds([past.aggregate_id, future.aggregate_id, phantom], datetime.now(UTC))
    assert [r.aggregate_id for r in report.settled] == [past.aggregate_id]
    assert report.never_placed == [phantom]
    settled = [e for e in app.read_log(0, 100) if e.topic == topics.HOLD_SETTLED]
    assert [(e.data["outcome"], e.data["actual_micros"]) for e in settled] == [("expired", 0)]
    assert app.expire_holds([past.aggregate_id], datetime.now(UTC)).settled == []  # done already


def test_log_uses_pinned_topics_and_plain_json(app: PryvApplication) -> None:
    app.record_purchase(source_id="cs_9", wallet=WALLET, usd_micros=1, evidence=stripe())
    envelopes = app.read_log(0, 100)
    assert [e.topic for e in envelopes] == [topics.ACCOUNT_OPENED, topics.PURCHASE_COMPLETED]
    assert envelopes[1].data["credits_micros"] == 1
    stored = app.recorder.select_notifications(start=1, limit=10)
    assert [n.topic for n in stored] == [topics.ACCOUNT_OPENED, topics.PURCHASE_COMPLETED]
    assert all(b"domain.aggregates" not in n.state for n in stored)


def test_settlement_beyond_the_hold_charges_the_hold_and_records_the_shortfall(
    app: PryvApplication,
) -> None:
    """The cap lives in the aggregate: whoever settles, a hold is never overdrawn, and what
    the upstream reported beyond it is kept on the event instead of vanishing."""
    placed = place_hold(app, **hold_args())  # holds 1,000
    app.settle_hold(
        placed.aggregate_id, cost_micros=2_500, tokens_in=900, tokens_out=10, outcome="ok"
    )
    [settled] = [e for e in app.read_log(0, 10_000) if e.topic == topics.HOLD_SETTLED]
    assert settled.data["actual_micros"] == 1_000
    assert settled.data["shortfall_micros"] == 1_500
    assert (settled.data["tokens_in"], settled.data["tokens_out"]) == (900, 10)


def test_rejected_payment_is_recorded_once(app: PryvApplication) -> None:
    kwargs = dict(source_id="cs_jpy", reason="currency 'jpy' is not 'usd'", currency="jpy")
    first = app.record_rejected_payment(amount_minor=1000, evidence=stripe(), **kwargs)  # type: ignore[arg-type]
    again = app.record_rejected_payment(amount_minor=1000, evidence=stripe(), **kwargs)  # type: ignore[arg-type]
    assert not first.duplicate and again.duplicate
    assert topics_in_log(app).count(topics.PAYMENT_REJECTED) == 1
    assert topics.PURCHASE_COMPLETED not in topics_in_log(app)


async def test_a_collision_in_a_group_commit_batch_marks_only_that_hold_duplicate(
    app: PryvApplication,
) -> None:
    from commands.group_commit import GroupCommitWriter

    place_hold(app, **hold_args(request_id="used-before"))
    writer = GroupCommitWriter(app)
    try:
        holds = [app.new_hold(**hold_args(request_id=r)) for r in ("a", "used-before", "b")]
        results = await asyncio.gather(*(writer.save(h) for h in holds))
    finally:
        await writer.close()
    assert writer.batch_sizes == {3: 1}  # one transaction was tried for all three
    assert [r.duplicate for r in results] == [False, True, False]
    assert results[0].position is not None and results[2].position is not None
    durable = {
        e.data["request_id"] for e in app.read_log(0, 10_000) if e.topic == topics.HOLD_PLACED
    }
    assert durable == {"a", "used-before", "b"}
