"""`pryv serve` on the embedded default with non-default ports: it says where it answers in
plain words, and Stripe's return pages lead back to the dashboard on the port it runs on."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.integration.test_gateway_crash import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_serve_announces_its_urls_and_checkout_returns_to_its_dashboard(tmp_path: Path) -> None:
    api_port, dashboard_port = free_port(), free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PRYV_") and k != "PROMETHEUS_MULTIPROC_DIR"
    }
    env["PRYV_DATA_DIR"] = str(tmp_path / "pryv")
    serve = [sys.executable, "-m", "cli.main", "serve", "--port", str(api_port)]
    proc = subprocess.Popen(
        [*serve, "--dashboard-port", str(dashboard_port), "--log-level", "warning"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        seen: list[str] = []
        deadline = time.monotonic() + 180  # a loaded 2-core box: imports and replay take a while
        while not any(line.startswith("PII models ready") for line in seen):
            assert time.monotonic() < deadline, seen
            line = proc.stderr.readline()
            assert line or proc.poll() is None, f"serve exited: {seen}"
            seen.append(line.strip())
        text = "\n".join(seen)
        assert "Starting Pryv" in text and "Press Ctrl-C to stop." in text
        assert "Loading the PII models" in text
        assert re.search(rf"^\s*API\s+http://127\.0\.0\.1:{api_port}/v1$", text, re.M), text
        dashboard = f"http://127.0.0.1:{dashboard_port}"
        assert re.search(rf"^\s*Dashboard\s+{re.escape(dashboard)}/$", text, re.M), text
        page = httpx.get(f"http://127.0.0.1:{api_port}/api/v1/billing/cancel", timeout=30)
        assert f'href="{dashboard}/#/credits"' in page.text and "Back to Credits" in page.text
        assert httpx.get(f"{dashboard}/", timeout=30).status_code == 200
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
