"""Low-balance webhooks: POST a signed `balance.low` event to the account's URL each time its
live credit available falls below its threshold (docs/management-api.md).

A poll over the accounts that configured one, not a reaction to each debit: debits are the hot
path, and a crossing noticed a few seconds late is still news. Per account the state is `ok`
(armed), `pending` (delivery failing, retried with backoff), `sent` or `failed` (given up);
credit back above the threshold re-arms it. Delivery is at least once (the event `id` is kept
across retries, so receivers can drop duplicates); run it in one process (the sweeper's).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from dataclasses import dataclass

from domain import alert_webhooks
from domain.money import micros_to_usd, usd_to_micros
from infra.safe_fetch import FetchRejected, post_json
from infra.settings import Settings
from projections import balance
from projections import settings as settings_projection
from projections.ops import SetValue
from projections.store import ReadStore

log = logging.getLogger("pryv.alerts")
MAX_ATTEMPTS = 8
MAX_BACKOFF_SECONDS = 3600


def state_key(account_id: str) -> str:
    """Delivery state, not a projection of the log: kept across rebuilds (unowned key)."""
    return f"alertstate:{account_id}"


@dataclass(frozen=True)
class AlertState:
    state: str = "ok"
    event_id: str = ""
    attempts: int = 0
    next_attempt: float = 0.0

    def encode(self) -> str:
        return json.dumps(self.__dict__, separators=(",", ":"))

    @classmethod
    def decode(cls, raw: str | None) -> AlertState:
        return cls(**json.loads(raw)) if raw else cls()


class LowBalanceNotifier:
    def __init__(self, store: ReadStore, settings: Settings) -> None:
        self._store = store
        self._pepper = settings.key_pepper
        self._allow = settings.alert_webhook_allow_addresses
        self._interval = settings.alert_check_seconds

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        return await post_json(url, body, headers=headers, allow_addresses=self._allow)

    async def check_once(self) -> int:
        """One pass over the watched accounts; how many events were delivered."""
        delivered = 0
        for account in await settings_projection.alert_webhook_accounts(self._store):
            delivered += await self._check_account(account)
        return delivered

    async def _check_account(self, account: str) -> int:
        alerts = (await settings_projection.read_settings(self._store, account)).get("alerts")
        url, threshold = (alerts or {}).get("webhookUrl"), (alerts or {}).get("lowBalanceUsd")
        if not url or threshold is None:
            return 0
        threshold_micros = usd_to_micros(str(threshold))
        available = (await balance.read_balance(self._store, account, "live")).available_micros
        state = AlertState.decode(await self._store.get_value(state_key(account)))
        if available >= threshold_micros:
            if state.state != "ok":
                await self._save(account, AlertState())  # re-armed for the next fall
            return 0
        now = time.time()
        if state.state in ("sent", "failed") or now < state.next_attempt:
            return 0
        event_id = state.event_id or f"evt_{uuid.uuid4().hex}"
        body = alert_webhooks.low_balance_event(
            event_id=event_id,
            account_id=account,
            created=int(now),
            available_usd=micros_to_usd(available),
            threshold_usd=micros_to_usd(threshold_micros),
        )
        secret = alert_webhooks.signing_secret(self._pepper, account)
        headers = {
            alert_webhooks.SIGNATURE_HEADER: alert_webhooks.signature_header(
                secret, int(now), body
            ),
            "User-Agent": "Pryv-Webhooks/1.0",
        }
        try:
            status = await self._post(str(url), body, headers)
            problem = None if 200 <= status < 300 else f"HTTP {status}"
        except FetchRejected as exc:
            problem = str(exc)
        if problem is None:
            await self._save(account, AlertState("sent", event_id, state.attempts + 1))
            return 1
        attempts = state.attempts + 1
        if attempts >= MAX_ATTEMPTS:
            log.error("low-balance webhook of %s given up after %s: %s", account, attempts, problem)
            await self._save(account, AlertState("failed", event_id, attempts))
            return 0
        backoff = min(self._interval * 2**attempts, MAX_BACKOFF_SECONDS)
        log.warning(
            "low-balance webhook of %s failed (%s); retry in %.0fs", account, problem, backoff
        )
        await self._save(account, AlertState("pending", event_id, attempts, now + backoff))
        return 0

    async def _save(self, account: str, state: AlertState) -> None:
        await self._store.apply_ops_atomically([SetValue(state_key(account), state.encode())])

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.check_once()
            except Exception:  # a store hiccup: the next pass tries again
                log.exception("low-balance check failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval)
