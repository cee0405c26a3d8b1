"""infra/alerts.yaml names only metrics that GET /metrics serves, and /metrics counts upstream
calls by model and outcome and reports the sealer's lag and the last checkpoint's age."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml

from infra.settings import Settings
from tests.fakes.upstream import FakeUpstream
from tests.gateway_harness import Gateway, running_gateway

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def gateway(platform_settings: Settings, upstream: FakeUpstream) -> AsyncIterator[Gateway]:
    async with running_gateway(platform_settings, upstream) as gw:
        yield gw


async def test_every_alert_names_a_served_metric(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="infra.upstreams")
    key = await gateway.funded_key(usd="1")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        ok = await http.post(
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": "pryv-echo", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert ok.status_code == 200
        failed = await http.post(
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": "fake-error", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert failed.status_code == 502
        text = (await http.get("/metrics")).text
    # The failure is logged with what ops needs (model, upstream status), not only as a 502.
    [logged] = [r for r in caplog.records if r.getMessage() == "upstream call failed"]
    details = logged.pryv  # type: ignore[attr-defined]
    assert details["model"] == "fake-error" and details["upstream_status"] is not None
    served = set(re.findall(r"^(pryv_[a-z_]+)", text, flags=re.MULTILINE))
    assert 'pryv_upstream_requests_total{model="pryv-echo",outcome="ok"} 1.0' in text
    assert 'pryv_upstream_requests_total{model="fake-error",outcome="error"} 1.0' in text
    assert "pryv_sealer_lag_events" in served and "pryv_checkpoint_age_seconds" in served
    rules = yaml.safe_load((ROOT / "infra" / "alerts.yaml").read_text())["groups"][0]["rules"]
    assert rules
    for rule in rules:
        for name in re.findall(r"pryv_[a-z_]+", rule["expr"]):
            assert name in served, f"{rule['alert']} uses {name}, which /metrics does not serve"
