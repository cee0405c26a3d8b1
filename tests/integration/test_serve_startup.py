"""`pryv serve` on the embedded default with non-default ports: it says where it answers in
plain words, and Stripe's return pages lead back to the dashboard on the port it runs on."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.served import served_pryv


def test_serve_announces_its_urls_and_checkout_returns_to_its_dashboard(tmp_path: Path) -> None:
    with served_pryv(tmp_path / "pryv") as served:
        text = "\n".join(served.startup)
        assert "Starting Pryv" in text and "Press Ctrl-C to stop." in text
        assert "Loading the PII models" in text
        api = re.escape(served.api_url)
        assert re.search(rf"^\s*API\s+{api}/v1$", text, re.M), text
        dashboard = served.dashboard_url
        assert re.search(rf"^\s*Dashboard\s+{re.escape(dashboard)}/$", text, re.M), text
        page = httpx.get(f"{served.api_url}/api/v1/billing/cancel", timeout=30)
        assert f'href="{dashboard}/#/credits"' in page.text and "Back to Credits" in page.text
        assert httpx.get(f"{dashboard}/", timeout=30).status_code == 200
