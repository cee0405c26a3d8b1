"""Fail closed: a backing service down means 503 and no upstream call — never free service."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eventsourcing.persistence import OperationalError

from api.app import create_app
from bootstrap.platform import open_platform
from domain.api_keys import issue_api_key, parse_api_key
from infra.settings import Settings
from projections import balance, keys
from tests.fakes.upstream import FakeUpstream, running_fake_upstream
from tests.gateway_harness import running_gateway
from tests.wallets import SigningWallet

HELLO = [{"role": "user", "content": "hi"}]


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with running_fake_upstream() as fake:
        yield fake


async def test_unreachable_redis_is_503(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, redis_url="redis://127.0.0.1:1/0", key_pepper=b"p")
    platform = await open_platform(settings)
    try:
        transport = httpx.ASGITransport(app=create_app(platform), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            chat = await http.post(
                "/v1/chat/completions",
                headers={"Authorization": f"Bearer {issue_api_key('test').token}"},
                json={"model": "pryv-echo", "messages": HELLO},
            )
            assert chat.status_code == 503
            assert chat.json()["error"]["code"] == "service_unavailable"
            listing = await http.get("/api/v1/keys", headers=SigningWallet.create().headers("list"))
            assert listing.status_code == 503
    finally:
        await platform.close()


async def test_event_store_down_at_hold_time_is_503_and_releases_the_hold(
    platform_settings: Settings, upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_gateway(dataclasses.replace(platform_settings), upstream) as gateway:
        key = await gateway.funded_key(usd="1")

        def store_down(*_args: Any, **_kwargs: Any) -> Any:
            raise OperationalError("connection refused")

        monkeypatch.setattr(gateway.platform.app, "save", store_down)
        async with httpx.AsyncClient(base_url=gateway.url) as http:
            response = await http.post(
                "/v1/chat/completions",
                headers={"Authorization": f"Bearer {key}"},
                json={"model": "fake-nousage", "messages": HELLO},
            )
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "service_unavailable"
        assert upstream.received == []  # no hold, no upstream call
        monkeypatch.undo()
        record = await keys.read_key(gateway.platform.read_store, parse_api_key(key).key_id)
        assert record is not None
        got = await balance.read_balance(gateway.platform.read_store, record.account_id, "test")
        assert got.held_micros == 0 and got.debited_micros == 0
