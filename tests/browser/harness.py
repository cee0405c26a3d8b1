"""The platform served for browser tests: the public API and the dashboard on two free loopback
ports, in the test's own event loop, sharing one Platform (as `pryv serve` runs them), with the
relay, projector and sweeper running; plus a test EIP-1193 wallet injected into the page."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from api.app import create_app
from bootstrap.platform import Platform, open_platform
from commands.positions import wait_until_applied
from dashboard.app import create_dashboard
from domain.money import usd_to_micros
from infra.settings import Settings
from projections.catalog import PROJECTIONS
from tests.evidence import OPERATOR
from tests.wallets import SigningWallet
from workers.embedded import running_workers

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"


@contextlib.asynccontextmanager
async def serving_asgi(app: FastAPI) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1 (free port) in this event loop; yields its base URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class Site:
    api_url: str
    dashboard_url: str
    platform: Platform
    deployment: str

    async def settled(self) -> None:
        """Every projection has applied the whole log (read-your-writes for assertions)."""
        target = await asyncio.to_thread(self.platform.app.max_position)
        for name in PROJECTIONS:
            assert await wait_until_applied(self.platform.read_store, name, target, 15)

    async def grant(self, wallet: str, usd: str, *, env: str = "live", ref: str) -> None:
        await asyncio.to_thread(
            self.platform.app.grant_credits,
            authorization=OPERATOR,
            wallet=wallet.lower(),
            env=env,
            amount_micros=usd_to_micros(usd),
            reason=f"test grant {ref}",
            granted_by="test",
            grant_ref=ref,
        )
        await self.settled()


@contextlib.asynccontextmanager
async def running_site(settings: Settings) -> AsyncIterator[Site]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    platform = await open_platform(settings)
    deployment = "embedded" if settings.embedded else "services"
    try:
        async with running_workers(platform):
            api_app = create_app(platform)
            async with serving_asgi(api_app) as api_url:
                dashboard = create_dashboard(platform, api_base_url=api_url, api_app=api_app)
                async with serving_asgi(dashboard) as dashboard_url:
                    yield Site(api_url, dashboard_url, platform, deployment)
    finally:
        await platform.close()


PROVIDER_JS = """
(() => {
  const address = %s;
  const listeners = {};
  window.ethereum = {
    isPryvBrowserWallet: true,
    async request({ method, params }) {
      if (method === "eth_requestAccounts" || method === "eth_accounts") return [address];
      if (method === "eth_chainId") return "0x1";
      if (method === "personal_sign") return await window.pryvTestSign(params[0], params[1]);
      throw Object.assign(new Error("unsupported method " + method), { code: 4200 });
    },
    on(event, handler) { (listeners[event] = listeners[event] || []).push(handler); },
    removeListener() {},
  };
})();
"""


@dataclass
class BrowserWallet:
    """An EIP-1193 wallet for the page: reports `account`'s address (lower case, as wallets
    do) and personal_signs with `signer`'s key in Python — normally the same wallet; tests swap
    the signer (or return garbage) to check that everything fails closed."""

    account: SigningWallet
    signer: SigningWallet | None = None
    garbage: bool = False
    signed: list[str] = field(default_factory=list)

    def sign(self, message_hex: str, address: str) -> str:
        from infra.wallet_signatures import sign_message

        text = bytes.fromhex(message_hex.removeprefix("0x")).decode()
        self.signed.append(text)
        if self.garbage:
            return "0xdeadbeef"
        _addr, signature = sign_message((self.signer or self.account).private_key, text)
        return signature

    async def install(self, page: Any) -> None:
        import json

        await page.expose_function("pryvTestSign", self.sign)
        await page.add_init_script(PROVIDER_JS % json.dumps(self.account.address.lower()))
