"""Low-balance webhooks over both deployments: a signed `balance.low` POSTed once per fall of live
credit below the account's threshold, retried with the same event id when the receiver fails,
re-armed when credit is back above it."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from api.app import create_app
from bootstrap.platform import Platform, open_platform
from domain import alert_webhooks, ids
from infra.safe_fetch import FetchRejected, post_json
from infra.settings import Settings
from tests.browser.harness import serving_asgi
from tests.integration.test_management_api import fund
from tests.wallets import SigningWallet
from workers.embedded import running_workers


class Receiver:
    """A webhook endpoint that answers `statuses` in turn (then 200) and keeps what it got."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.received: list[tuple[dict[str, str], bytes]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.received.append((headers, body))
        status = self.statuses.pop(0) if self.statuses else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _headers, body in self.received]


@pytest.fixture
async def alerting(platform_settings: Settings) -> AsyncIterator[Platform]:
    settings = dataclasses.replace(
        platform_settings, alert_webhook_allow_addresses=("127.0.0.1",), alert_check_seconds=0.1
    )
    opened = await open_platform(settings)
    try:
        async with running_workers(opened):
            yield opened
    finally:
        await opened.close()


async def until(condition: Any, what: str, deadline: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not condition():
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_a_fall_below_the_threshold_is_posted_once_signed_and_re_armed(
    alerting: Platform,
) -> None:
    wallet = SigningWallet.create()
    account = str(ids.account_id(wallet.address))
    receiver = Receiver([500])  # the first delivery fails: retried with the same event
    transport = httpx.ASGITransport(app=create_app(alerting), raise_app_exceptions=False)
    async with (
        serving_asgi(receiver) as hook,  # type: ignore[arg-type]
        httpx.AsyncClient(transport=transport, base_url="http://pryv.test") as api,
    ):
        await fund(alerting, wallet, "first", 10_000_000, env="live")

        async def save(threshold: str) -> dict[str, Any]:
            alerts = {"lowBalanceUsd": threshold, "webhookUrl": f"{hook}/hook"}
            saved = await api.put(
                "/api/v1/settings", json={**wallet.fields("settings"), "alerts": alerts}
            )
            assert saved.status_code == 200, saved.text
            return dict(saved.json())

        saved = await save("20")
        secret = saved["alerts"]["webhookSecret"]
        assert secret == alert_webhooks.signing_secret(alerting.settings.key_pepper, account)
        await until(lambda: len(receiver.received) >= 2, "the retried delivery")
        first, retried = receiver.events()[:2]
        assert first["id"] == retried["id"] and first["type"] == "balance.low"
        assert retried["data"] == {
            "accountId": account,
            "env": "live",
            "currency": "usd",
            "availableUsd": "10.000000",
            "thresholdUsd": "20.000000",
        }
        headers, body = receiver.received[1]
        assert alert_webhooks.verify_signature(secret, headers["pryv-signature"], body)
        assert not alert_webhooks.verify_signature("whsec_other", headers["pryv-signature"], body)
        await asyncio.sleep(1.0)  # many passes later: still only the one delivered event
        assert len(receiver.received) == 2

        await fund(alerting, wallet, "second", 15_000_000, env="live")  # $25: above again, re-armed
        await asyncio.sleep(0.5)
        await save("30")  # below again: a new event
        await until(lambda: len(receiver.received) >= 3, "the second fall's event")
        third = receiver.events()[2]
        assert third["id"] != first["id"] and third["data"]["availableUsd"] == "25.000000"
        await asyncio.sleep(1.0)
        assert len(receiver.received) == 3

        cleared = await api.put(
            "/api/v1/settings",
            json={**wallet.fields("settings"), "alerts": {"lowBalanceUsd": None}},
        )
        assert cleared.status_code == 200 and "webhookSecret" not in cleared.json()["alerts"]


async def test_a_webhook_url_must_be_http_and_may_not_reach_private_addresses() -> None:
    with pytest.raises(FetchRejected, match="address not allowed"):
        await post_json("http://127.0.0.1:9/hook", b"{}", headers={})
    with pytest.raises(FetchRejected, match="address not allowed"):
        await post_json("http://169.254.169.254/latest", b"{}", headers={})


async def test_settings_refuse_a_webhook_url_that_is_not_a_url(platform: Platform) -> None:
    transport = httpx.ASGITransport(app=create_app(platform), raise_app_exceptions=False)
    wallet = SigningWallet.create()
    async with httpx.AsyncClient(transport=transport, base_url="http://pryv.test") as api:
        refused = await api.put(
            "/api/v1/settings",
            json={**wallet.fields("settings"), "alerts": {"webhookUrl": "ftp://x"}},
        )
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "validation_error"
    assert refused.json()["error"]["param"] == "alerts.webhookUrl"
