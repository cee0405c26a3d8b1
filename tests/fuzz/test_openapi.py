"""Schemathesis against the app's own OpenAPI document: positive and negative cases for every
operation, fixed seed and bounded examples. No 500s; status codes, content types and bodies as
documented. Requests carry a valid key and freshly signed wallet fields, so the fuzzing gets
past authentication into validation, admission and the handlers."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from bootstrap.platform import open_application
from infra.settings import Settings
from tests.evidence import OPERATOR
from tests.wallets import SigningWallet

CATALOG = """
[[models]]
id = "pryv-echo"
upstream = "builtin:echo"
input_price_per_million_usd = "1.00"
output_price_per_million_usd = "2.00"
context_length = 16384
max_output_tokens = 64
test_only = true
"""

# (method, path) -> the signed action each wallet-authenticated operation expects
ACTIONS = {
    ("POST", "/api/v1/keys"): "create",
    ("GET", "/api/v1/keys"): "list",
    ("DELETE", "/api/v1/keys/{key_id}"): "revoke",
    ("GET", "/api/v1/settings"): "settings",
    ("PUT", "/api/v1/settings"): "settings",
    ("GET", "/api/v1/billing/balance"): "balance",
    ("GET", "/api/v1/billing/ledger"): "ledger",
    ("POST", "/api/v1/billing/checkout"): "checkout",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, SigningWallet]]:
    data_dir = tmp_path_factory.mktemp("fuzz")
    (data_dir / "models.toml").write_text(CATALOG)
    settings_ = Settings(
        data_dir=data_dir, key_pepper=b"fuzz", models_file=data_dir / "models.toml"
    )
    wallet = SigningWallet.create()
    app = open_application(settings_)
    try:
        token = app.create_key(
            authorization=OPERATOR,
            wallet=wallet.address,
            name="fuzz",
            env="test",
            models=[],
            rpm=100_000,
            tpm=10**9,
            monthly_budget_micros=None,
            expires_at=None,
            pepper=b"fuzz",
        ).issued.token
        app.grant_credits(
            authorization=OPERATOR,
            wallet=wallet.address,
            env="test",
            amount_micros=10**10,
            reason="fuzz",
            granted_by="test",
            grant_ref="fuzz",
        )
    finally:
        app.close()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings=settings_, workers=True),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
    )
    uv_server = uvicorn.Server(config)
    thread = threading.Thread(target=uv_server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        time.sleep(0.1)
    try:
        yield url, token, wallet
    finally:
        uv_server.should_exit = True
        thread.join(30)


# The document is the app's own, built without a platform (routes only); the requests go to
# the real server of the `server` fixture.
schema = schemathesis.openapi.from_dict(create_app().openapi())
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=25,
    deterministic=True,
)


def authenticate(case: Any, token: str, wallet: SigningWallet) -> None:
    """A valid key for /v1, and freshly signed wallet fields for the management operations."""
    path, method = case.operation.path, case.method.upper()
    headers = dict(case.headers or {})
    if path.startswith("/v1/"):
        headers["Authorization"] = f"Bearer {token}"
    action = ACTIONS.get((method, path))
    if action is not None:
        key_id = str((case.path_parameters or {}).get("key_id", ""))
        if isinstance(case.body, dict):
            case.body = {**case.body, **wallet.fields(action, key_id)}
        else:
            headers.update(wallet.headers(action, key_id))
    case.headers = headers


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_every_operation_matches_its_documentation(
    case: Any, server: tuple[str, str, SigningWallet]
) -> None:
    url, token, wallet = server
    authenticate(case, token, wallet)
    response = case.call(base_url=url, timeout=60)
    assert response.status_code < 500 or response.status_code in (502, 503), (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
    )
    case.validate_response(
        response,
        checks=[status_code_conformance, content_type_conformance, response_schema_conformance],
    )
