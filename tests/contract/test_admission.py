"""Admission over both gates (memory, Redis): the same decisions, in the same order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from commands.admission import AdmissionGate, AdmissionRequest, Verdict
from infra.admission_memory import MemoryAdmission
from infra.read_store_memory import MemoryReadStore
from infra.read_store_redis import RedisReadStore
from projections import balance, keys, ratelimit_config, usage
from projections.ops import IncrField, ProjectionWrite, SetFields
from projections.store import ReadStore
from tests.conftest import REDIS_URL

KEY_AGG, KEY_ID, ACCOUNT = "agg-1", "KEYID00000000001", "acct-1"
NOW_S = 1_800_000_000


@pytest.fixture
async def gate(
    redis_prefix_or_none: str | None,
) -> AsyncIterator[tuple[ReadStore, AdmissionGate]]:
    if redis_prefix_or_none is None:
        memory = MemoryReadStore()
        yield memory, MemoryAdmission(memory)
        return
    from infra.admission_redis import RedisAdmission

    store = RedisReadStore.from_url(REDIS_URL, redis_prefix_or_none)
    yield store, RedisAdmission(store)
    # the redis_prefix fixture deletes {prefix}:* (read models and rate windows)
    await store.close()


async def seed(
    store: ReadStore,
    *,
    credited: int = 1_000_000,
    status: str = "active",
    models: str = "[]",
    rpm: str = "",
    tpm: str = "",
    budget: str = "",
    expires_epoch: str = "",
) -> None:
    await store.apply(
        [
            ProjectionWrite(
                "seed",
                1,
                0,
                (
                    SetFields(
                        keys.record_key(KEY_AGG),
                        {"status": status, "models": models, "expires_epoch": expires_epoch},
                    ),
                    SetFields(
                        ratelimit_config.limits_key(KEY_AGG),
                        {"rpm": rpm, "tpm": tpm, "monthly_budget_micros": budget},
                    ),
                    IncrField(balance.balance_key(ACCOUNT, "live"), "credited", credited),
                ),
            )
        ]
    )


def request(
    n: int = 0, *, amount: int = 1_000, tokens: int = 100, model: str = "m", now_s: int = NOW_S
) -> AdmissionRequest:
    hold_id = f"hold-{n}"
    placed = {
        "account_id": ACCOUNT,
        "env": "live",
        "key_id": KEY_ID,
        "amount_micros": amount,
        "expires_at": "2027-01-15T08:00:00+00:00",
    }
    return AdmissionRequest(
        key_id=KEY_ID,
        key_record_key=keys.record_key(KEY_AGG),
        limits_key=ratelimit_config.limits_key(KEY_AGG),
        spend_key=usage.key_month_key(KEY_ID, "2027-01"),
        key_held_key=balance.key_held_key(KEY_ID),
        balance_key=balance.balance_key(ACCOUNT, "live"),
        model=model,
        hold=balance.open_hold(hold_id, placed),
        estimated_tokens=tokens,
        now_ms=now_s * 1000,
        default_rpm=1000,
        default_tpm=1_000_000,
    )


async def test_admits_and_records_the_hold(gate: tuple[ReadStore, AdmissionGate]) -> None:
    store, admission = gate
    await seed(store, rpm="10", tpm="500")
    result = await admission.admit(request(amount=400))
    assert result.verdict is Verdict.ADMITTED
    assert result.available_micros == 1_000_000 - 400
    assert (result.rpm.limit, result.rpm.remaining) == (10, 9)  # type: ignore[union-attr]
    assert (result.tpm.limit, result.tpm.remaining) == (500, 400)  # type: ignore[union-attr]
    assert result.rpm.reset_seconds == 60  # type: ignore[union-attr]
    got = await balance.read_balance(store, ACCOUNT, "live")
    assert got.held_micros == 400
    assert (await store.get_fields(balance.key_held_key(KEY_ID))) == {"held": "400"}


@pytest.mark.parametrize(
    ("seeded", "req", "verdict"),
    [
        ({"status": "revoked"}, {}, Verdict.INACTIVE),
        ({"expires_epoch": str(NOW_S)}, {}, Verdict.INACTIVE),
        ({"models": '["a","b"]'}, {"model": "c"}, Verdict.MODEL_NOT_ALLOWED),
        ({"credited": 999}, {"amount": 1_000}, Verdict.CREDITS),
        ({"budget": "500"}, {"amount": 501}, Verdict.BUDGET),
        ({"tpm": "99"}, {"tokens": 100}, Verdict.TPM),
    ],
)
async def test_refusals(
    gate: tuple[ReadStore, AdmissionGate],
    seeded: dict[str, object],
    req: dict[str, object],
    verdict: Verdict,
) -> None:
    store, admission = gate
    await seed(store, **seeded)  # type: ignore[arg-type]
    result = await admission.admit(request(**req))  # type: ignore[arg-type]
    assert result.verdict is verdict
    assert (await balance.read_balance(store, ACCOUNT, "live")).held_micros == 0


async def test_unknown_key(gate: tuple[ReadStore, AdmissionGate]) -> None:
    _store, admission = gate
    assert (await admission.admit(request())).verdict is Verdict.UNKNOWN_KEY


async def test_entitled_model_passes(gate: tuple[ReadStore, AdmissionGate]) -> None:
    store, admission = gate
    await seed(store, models='["a","m"]')
    assert (await admission.admit(request(model="m"))).admitted


async def test_open_hold_id_is_a_duplicate(gate: tuple[ReadStore, AdmissionGate]) -> None:
    store, admission = gate
    await seed(store)
    assert (await admission.admit(request(1))).admitted
    duplicate = await admission.admit(request(1))
    assert duplicate.verdict is Verdict.DUPLICATE
    assert duplicate.rpm is not None and duplicate.rpm.remaining == 999  # headers still filled
    assert (await balance.read_balance(store, ACCOUNT, "live")).held_micros == 1_000


async def test_rpm_sliding_window_and_retry_after(gate: tuple[ReadStore, AdmissionGate]) -> None:
    store, admission = gate
    await seed(store, rpm="3")
    for n, second in enumerate([NOW_S, NOW_S + 10, NOW_S + 20]):
        assert (await admission.admit(request(n, now_s=second))).admitted
    refused = await admission.admit(request(9, now_s=NOW_S + 30))
    assert refused.verdict is Verdict.RPM
    assert refused.retry_after_seconds == 30  # the first request leaves the window at +60
    assert refused.rpm is not None and refused.rpm.remaining == 0
    # 60 s after the first request, one slot is free again: a sliding, not a fixed, window.
    assert (await admission.admit(request(10, now_s=NOW_S + 60))).admitted
    assert (await admission.admit(request(11, now_s=NOW_S + 61))).verdict is Verdict.RPM


async def test_tpm_counts_estimates_and_corrections(
    gate: tuple[ReadStore, AdmissionGate],
) -> None:
    store, admission = gate
    await seed(store, tpm="1000")
    assert (await admission.admit(request(1, tokens=900))).admitted
    assert (await admission.admit(request(2, tokens=200))).verdict is Verdict.TPM
    await admission.correct_tokens(KEY_ID, NOW_S, -800)  # the first used 100 tokens, not 900
    second = await admission.admit(request(3, tokens=200))
    assert second.admitted and second.tpm is not None and second.tpm.remaining == 700


async def test_budget_counts_settled_spend_and_open_holds(
    gate: tuple[ReadStore, AdmissionGate],
) -> None:
    store, admission = gate
    await seed(store, budget="3000")
    await store.apply(
        [
            ProjectionWrite(
                "seed2", 1, 0, (IncrField(usage.key_month_key(KEY_ID, "2027-01"), "micros", 1_500),)
            )
        ]
    )
    assert (await admission.admit(request(1, amount=1_000))).admitted  # 1500 + 1000 <= 3000
    assert (await admission.admit(request(2, amount=501))).verdict is Verdict.BUDGET
    assert (await admission.admit(request(3, amount=500))).admitted  # exactly at the budget


async def test_release_undoes_the_hold(gate: tuple[ReadStore, AdmissionGate]) -> None:
    store, admission = gate
    await seed(store)
    req = request(1)
    assert (await admission.admit(req)).admitted
    await admission.release(
        balance.close_hold("hold-1", {"account_id": ACCOUNT, "env": "live", "key_id": KEY_ID})
    )
    assert (await balance.read_balance(store, ACCOUNT, "live")).held_micros == 0
    assert (await admission.admit(req)).admitted  # the id is free again


async def test_concurrent_admissions_never_overspend(
    gate: tuple[ReadStore, AdmissionGate],
) -> None:
    store, admission = gate
    await seed(store, credited=20_000)
    results = await asyncio.gather(
        *(admission.admit(replace(request(n, amount=1_000))) for n in range(200))
    )
    assert sum(r.admitted for r in results) == 20
    assert sum(r.verdict is Verdict.CREDITS for r in results) == 180
    assert (await balance.read_balance(store, ACCOUNT, "live")).available_micros == 0


async def test_precheck_counts_the_request_and_holds_nothing(
    gate: tuple[ReadStore, AdmissionGate],
) -> None:
    store, admission = gate
    await seed(store, rpm="2", tpm="1000")
    checked = await admission.precheck(request(1, amount=400, tokens=300))
    assert checked.admitted and checked.available_micros == 1_000_000
    assert checked.rpm is not None and checked.rpm.remaining == 1  # counted
    assert checked.tpm is not None and checked.tpm.remaining == 1000  # checked, not counted
    assert (await balance.read_balance(store, ACCOUNT, "live")).held_micros == 0
    # the admission that follows a precheck does not count the request a second time
    admitted = await admission.admit(replace(request(1, amount=400), count_request=False))
    assert admitted.admitted and admitted.rpm is not None and admitted.rpm.remaining == 1
    assert (await admission.precheck(request(2))).admitted
    assert (await admission.precheck(request(3))).verdict is Verdict.RPM


@pytest.mark.parametrize(
    ("seeded", "req", "verdict"),
    [
        ({"status": "revoked"}, {}, Verdict.INACTIVE),
        ({"models": '["a"]'}, {"model": "c"}, Verdict.MODEL_NOT_ALLOWED),
        ({"credited": 0}, {"amount": 1}, Verdict.CREDITS),
        ({"budget": "500"}, {"amount": 501}, Verdict.BUDGET),
        ({"tpm": "99"}, {"tokens": 100}, Verdict.TPM),
    ],
)
async def test_precheck_refuses_what_admission_would(
    gate: tuple[ReadStore, AdmissionGate],
    seeded: dict[str, object],
    req: dict[str, object],
    verdict: Verdict,
) -> None:
    store, admission = gate
    await seed(store, **seeded)  # type: ignore[arg-type]
    assert (await admission.precheck(request(**req))).verdict is verdict  # type: ignore[arg-type]


async def test_a_revocation_mark_refuses_an_active_key_at_once(
    gate: tuple[ReadStore, AdmissionGate],
) -> None:
    store, admission = gate
    await seed(store)  # the key index still says active (its projector has not run)
    assert not await admission.is_revoked(KEY_ID)
    await admission.mark_revoked(KEY_ID)
    assert await admission.is_revoked(KEY_ID)
    assert (await admission.precheck(request(1))).verdict is Verdict.INACTIVE
    assert (await admission.admit(request(2))).verdict is Verdict.INACTIVE
    assert (await balance.read_balance(store, ACCOUNT, "live")).held_micros == 0


async def test_a_rolled_keys_previous_secret_is_admitted_only_during_its_grace(
    gate: tuple[ReadStore, AdmissionGate],
) -> None:
    """After a roll the record names the current secret and the previous one with the end of
    its grace: the current is admitted, the previous until then, any other never."""
    store, admission = gate
    await seed(store)
    await store.apply(
        [
            ProjectionWrite(
                "seed",
                2,
                0,
                (
                    SetFields(
                        keys.record_key(KEY_AGG),
                        {
                            "secret_hash": "new",
                            "previous_hash": "old",
                            "previous_expires_epoch": str(NOW_S + 60),
                        },
                    ),
                ),
            )
        ]
    )

    async def verdict(secret: str, now_s: int, n: int) -> Verdict:
        return (await admission.admit(replace(request(n, now_s=now_s), secret_hash=secret))).verdict

    assert await verdict("new", NOW_S, 1) is Verdict.ADMITTED
    assert await verdict("old", NOW_S + 59, 2) is Verdict.ADMITTED
    assert await verdict("old", NOW_S + 60, 3) is Verdict.INACTIVE  # grace over
    assert await verdict("older", NOW_S, 4) is Verdict.INACTIVE  # neither secret
    assert await verdict("", NOW_S, 5) is Verdict.ADMITTED  # a key Pryv meters itself
