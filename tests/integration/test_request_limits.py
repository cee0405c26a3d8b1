"""No input crashes a process or earns a 500: bodies are bounded in size and JSON depth before
any route parses them (API and dashboard), importing eth-account leaves the interpreter's
recursion limit alone, and malformed headers, queries and numbers are 4xx."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bootstrap.platform import Platform, open_platform
from infra.settings import Settings
from tests.gateway_harness import Gateway, serving
from tests.integration.test_gateway_crash import ROOT, free_port
from tests.wallets import SigningWallet
from workers.embedded import running_workers

DEEP = b"[" * 100_000 + b"]" * 100_000  # 200 KB; recursive parsing overflows the C stack

API_BODY_ROUTES = [
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/pii/preview"),
    ("POST", "/api/v1/keys"),
    ("DELETE", "/api/v1/keys/abcdefghijklmnop"),
    ("PUT", "/api/v1/settings"),
    ("POST", "/api/v1/billing/checkout"),
    ("POST", "/api/v1/billing/webhook"),
]
DASHBOARD_BODY_ROUTES = [
    ("POST", "/auth/login"),
    ("POST", "/app/api/keys"),
    ("PUT", "/app/api/settings"),
]


@contextlib.asynccontextmanager
async def pryv_serve(tmp_path: Path) -> AsyncIterator[tuple[str, str, subprocess.Popen[bytes]]]:
    """`pryv serve` (embedded default) with its dashboard, as a real process."""
    api_port, dashboard_port = free_port(), free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PRYV_DATA_DIR": str(tmp_path / "pryv"),
        "PRYV_LOG_FORMAT": "text",
    }
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "cli.main", "serve",
            "--port", str(api_port), "--dashboard-port", str(dashboard_port),
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    api, dashboard = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{dashboard_port}"
    try:
        deadline = asyncio.get_running_loop().time() + 180
        async with httpx.AsyncClient() as http:
            for url in (api, dashboard):
                while True:
                    with contextlib.suppress(httpx.TransportError):
                        if (await http.get(f"{url}/healthz")).status_code == 200:
                            break
                    assert proc.poll() is None, "pryv serve died at start"
                    assert asyncio.get_running_loop().time() < deadline, "never started"
                    await asyncio.sleep(0.1)
        yield api, dashboard, proc
    finally:
        proc.kill()
        proc.wait()


async def test_deep_json_is_refused_on_every_route_and_the_process_lives(tmp_path: Path) -> None:
    async with (
        pryv_serve(tmp_path) as (api, dashboard, proc),
        httpx.AsyncClient(timeout=60) as http,
    ):
        routes = [(api, *r) for r in API_BODY_ROUTES] + [
            (dashboard, *r) for r in DASHBOARD_BODY_ROUTES
        ]
        for base, method, path in routes:
            response = await http.request(
                method,
                f"{base}{path}",
                content=DEEP,
                headers={"content-type": "application/json", "authorization": "Bearer x"},
            )
            assert response.status_code == 400, (path, response.status_code, response.text)
            assert response.json()["error"]["code"] == "json_too_deep", path
            assert proc.poll() is None, f"{path} killed the process"
        # an oversize body is refused from its Content-Length, before a byte of it is read
        host, port = api.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"POST /api/v1/keys HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 2000000\r\n\r\n"
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 60)
        assert b" 413 " in status_line, status_line
        # Headers and body may arrive in separate reads: read to the close the server sends.
        assert b"request_too_large" in await asyncio.wait_for(reader.read(), 60)
        writer.close()
        for base in (api, dashboard):
            assert (await http.get(f"{base}/healthz")).status_code == 200
        assert proc.poll() is None


def test_importing_pryv_keeps_the_interpreters_recursion_limit() -> None:
    """py_ecc (through eth-account) raises it to 100,000 at import, which turns any deep
    recursion into a C-stack overflow (a segfault) instead of a RecursionError."""
    probe = (
        "import sys; default = sys.getrecursionlimit(); "
        "import api.app, dashboard.app, cli.main, infra.checkpoints, infra.wallet_signatures; "
        "print(default, sys.getrecursionlimit())"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    default, after = out.stdout.split()
    assert after == default


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    settings = Settings(data_dir=tmp_path / "pryv", key_pepper=b"test-pepper")
    platform: Platform = await open_platform(settings)
    try:
        async with running_workers(platform), serving(platform) as url:
            yield Gateway(url, platform)
    finally:
        await platform.close()


async def test_malformed_wallet_headers_queries_and_numbers_are_4xx(gateway: Gateway) -> None:
    wallet = SigningWallet.create()
    key = await gateway.funded_key()
    long_message = {**wallet.headers("list"), "X-Wallet-Message": "x" * 10_000}
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as http:
        answers = {
            "header GET": await http.get("/api/v1/keys", headers=long_message),
            "header DELETE": await http.delete(
                "/api/v1/keys/abcdefghijklmnop", headers=long_message
            ),
            "query": await http.get(
                "/api/v1/billing/balance", params={"walletAddress": "0x" + "a" * 5000}
            ),
            "cursor": await http.get(
                "/api/v1/keys", params={"cursor": "9" * 5000}, headers=wallet.headers("list")
            ),
            "max_tokens": await http.post(
                "/v1/chat/completions",
                headers={"Authorization": f"Bearer {key}", "content-type": "application/json"},
                content=b'{"model": "pryv-echo", "messages": [{"role": "user", "content": "hi"}],'
                b' "max_tokens": ' + b"9" * 5000 + b"}",
            ),
            "image_url": await http.post(
                "/v1/chat/completions",
                headers={"Authorization": f"Bearer {key}"},
                json={
                    "model": "pryv-echo",
                    "messages": [
                        {"role": "user", "content": [{"type": "image_url", "image_url": 5}]}
                    ],
                },
            ),
        }
    statuses = {name: r.status_code for name, r in answers.items()}
    assert statuses == {name: 400 for name in answers}, {n: r.text for n, r in answers.items()}
    assert answers["header GET"].json()["error"]["param"] == "x-wallet-message"


async def test_a_client_leaving_while_its_body_arrives_is_not_an_error(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    key = await gateway.funded_key()  # so that the route gets as far as reading the body
    host, port = gateway.url.removeprefix("http://").split(":")
    with caplog.at_level(logging.WARNING):
        for path in ("/api/v1/keys", "/v1/chat/completions"):
            _reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(
                f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Authorization: Bearer {key}\r\n"
                'Content-Length: 100000\r\n\r\n{"model": '.encode()
            )
            await writer.drain()
            writer.close()
            await writer.wait_closed()
        await asyncio.sleep(1.0)
        async with httpx.AsyncClient(base_url=gateway.url) as http:
            assert (await http.get("/healthz")).status_code == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
