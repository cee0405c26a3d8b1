"""Balance per account and key environment: credited, debited (settled usage), held (open holds).

available = credited - debited - held. Holds are released only by their settlement, so available
credit is never overstated; `hold:*` records and the expiry index let admission and the sweeper
find open holds without reading the event store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from domain import topics
from domain.envelope import EventEnvelope
from projections.ops import CloseHold, IncrField, Op, OpenHold
from projections.store import ReadStore

NAME = "balance"
# First segments of the keys this projection owns (projections/keyspace.py).
SEGMENTS = ("balance", "hold", "holds", "keyheld")
EXPIRY_KEY = "holds:expiring"


def balance_key(account_id: str, env: str) -> str:
    return f"balance:{account_id}:{env}"


def hold_key(hold_id: str) -> str:
    return f"hold:{hold_id}"


def key_held_key(key_id: str) -> str:
    """Credit held by a key's in-flight requests: its monthly budget counts them as spent."""
    return f"keyheld:{key_id}"


def hold_counters(account_id: str, env: str, key_id: str) -> tuple[str, ...]:
    return (balance_key(account_id, env), key_held_key(key_id))


def project(event: EventEnvelope) -> list[Op]:
    data = event.data
    if event.topic == topics.PURCHASE_COMPLETED:
        account = data["account_id"]
        return [IncrField(balance_key(account, "live"), "credited", data["credits_micros"])]
    if event.topic == topics.GRANT_GRANTED:
        account, env = data["account_id"], data["env"]
        return [IncrField(balance_key(account, env), "credited", data["amount_micros"])]
    if event.topic in (topics.REFUNDED, topics.DISPUTE_OPENED):
        # Reversed credit is debited like usage; the balance may go below zero (the customer
        # already spent it), which blocks further spending until credit is added.
        account = data["account_id"]
        return [IncrField(balance_key(account, "live"), "debited", data["credits_micros"])]
    if event.topic == topics.DISPUTE_REINSTATED:
        account = data["account_id"]
        return [IncrField(balance_key(account, "live"), "credited", data["credits_micros"])]
    if event.topic == topics.CHANNEL_SPENT:
        # Paid by a voucher and consumed at once: credited and debited alike, so the account's
        # balance is untouched and its totals show the channel's money like card money.
        key = balance_key(data["account_id"], data["env"])
        return [IncrField(key, "credited", data["delta"]), IncrField(key, "debited", data["delta"])]
    if event.topic == topics.HOLD_PLACED:
        return [open_hold(event.originator_id, data)]
    if event.topic == topics.HOLD_SETTLED:
        return [
            close_hold(event.originator_id, data),
            IncrField(
                balance_key(data["account_id"], data["env"]), "debited", data["actual_micros"]
            ),
        ]
    return []


def open_hold(hold_id: str, placed: Mapping[str, object]) -> OpenHold:
    """The OpenHold for a Placed event's data; admission records the very same op ahead of it."""
    account, env, key_id = str(placed["account_id"]), str(placed["env"]), str(placed["key_id"])
    expires_at = str(placed["expires_at"])
    return OpenHold(
        hold_key=hold_key(hold_id),
        counter_keys=hold_counters(account, env, key_id),
        expiry_key=EXPIRY_KEY,
        hold_id=hold_id,
        amount=int(str(placed["amount_micros"])),
        expires_epoch=int(datetime.fromisoformat(expires_at).timestamp()),
        fields={"account_id": account, "env": env, "key_id": key_id, "expires_at": expires_at},
    )


def close_hold(hold_id: str, data: Mapping[str, object]) -> CloseHold:
    counters = hold_counters(str(data["account_id"]), str(data["env"]), str(data["key_id"]))
    return CloseHold(hold_key(hold_id), counters, EXPIRY_KEY, hold_id)


@dataclass(frozen=True)
class Balance:
    credited_micros: int = 0
    debited_micros: int = 0
    held_micros: int = 0

    @property
    def balance_micros(self) -> int:
        return self.credited_micros - self.debited_micros

    @property
    def available_micros(self) -> int:
        return self.credited_micros - self.debited_micros - self.held_micros


async def read_balance(store: ReadStore, account_id: str, env: str) -> Balance:
    fields = await store.get_fields(balance_key(account_id, env))
    return Balance(
        credited_micros=int(fields.get("credited", 0)),
        debited_micros=int(fields.get("debited", 0)),
        held_micros=int(fields.get("held", 0)),
    )


async def expired_hold_ids(store: ReadStore, now_epoch: int, limit: int = 500) -> list[str]:
    """Open holds whose expiry has passed: candidates for the sweeper."""
    return await store.sorted_by_score(EXPIRY_KEY, max_score=now_epoch, limit=limit)
