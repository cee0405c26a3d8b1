"""PII through the gateway: what the upstream receives, pseudonymization round trips, images,
documents, the paid preview, and that events and logs keep counts only — over both deployments."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytesseract
import pytest
from PIL import Image, ImageDraw, ImageFont

from domain.api_keys import parse_api_key
from infra.settings import Settings
from projections import balance, keys, ledger
from tests.fakes.upstream import FakeUpstream
from tests.gateway_harness import Gateway, running_gateway
from tests.wallets import SigningWallet

EMAIL = "jane.doe@example.com"
PHONE = "+1 212 555 0147"
CARD = "4111 1111 1111 1111"
IBAN = "GB82 WEST 1234 5698 7654 32"
NAME = "John Smith"
PLANTED = (
    f"Hi, I am {NAME}. Mail me at {EMAIL} or call {PHONE}. My card is {CARD} and my IBAN is {IBAN}."
)
SECRETS = (EMAIL, PHONE, CARD, IBAN, "John", "Smith")

CATALOG_EXTRA = """
[[models]]
id = "fake-echo"
upstream = "fake"
upstream_model = "echo"
input_price_per_million_usd = "1.00"
output_price_per_million_usd = "2.00"
context_length = 16384
max_output_tokens = 1024
test_only = true
"""


@pytest.fixture
async def gateway(
    platform_settings: Settings, upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Gateway]:
    from tests import gateway_harness

    monkeypatch.setattr(gateway_harness, "CATALOG", gateway_harness.CATALOG + CATALOG_EXTRA)
    async with running_gateway(platform_settings, upstream) as running:
        yield running


async def chat(gateway: Gateway, key: str, **body: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as http:
        return await http.post(
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": "fake-echo", **body},
        )


def sent_text(upstream: FakeUpstream) -> str:
    return json.dumps(upstream.received[-1])


async def test_redaction_on_by_default_nothing_planted_reaches_the_upstream(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    key = await gateway.funded_key()
    response = await chat(
        gateway,
        key,
        messages=[
            {"role": "system", "content": f"Customer record: {EMAIL}"},
            {"role": "user", "content": PLANTED},
        ],
    )
    assert response.status_code == 200, response.text
    received = sent_text(upstream)
    for secret in SECRETS:
        assert secret not in received, secret
    assert "<EMAIL_ADDRESS>" in received and "<PERSON>" in received
    assert "<CREDIT_CARD>" in received and "<IBAN_CODE>" in received
    assert "<PHONE_NUMBER>" in received
    header = response.headers["x-pryv-pii-redacted"]
    assert "EMAIL_ADDRESS=2" in header and "PERSON" in header
    assert response.headers["x-pryv-privacy-mode"] == "redact"


async def test_skip_sends_everything_and_entity_selection_narrows(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    key = await gateway.funded_key()
    assert (
        await chat(
            gateway, key, skip_pii_redaction=True, messages=[{"role": "user", "content": PLANTED}]
        )
    ).status_code == 200
    assert all(secret in sent_text(upstream) for secret in (EMAIL, CARD, NAME))
    for alias in ("noPiiRedaction", "no_pii_redaction", "skipPiiRedaction"):
        await chat(gateway, key, messages=[{"role": "user", "content": PLANTED}], **{alias: True})
        assert EMAIL in sent_text(upstream), alias
    for spelling in ("piiEntities", "pii_entities"):
        response = await chat(
            gateway,
            key,
            messages=[{"role": "user", "content": PLANTED}],
            **{spelling: ["EMAIL_ADDRESS"]},
        )
        assert response.status_code == 200
        received = sent_text(upstream)
        assert EMAIL not in received and "<EMAIL_ADDRESS>" in received
        assert CARD in received and NAME in received  # emails only


async def test_pseudonymize_round_trip_json_and_sse(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    key = await gateway.funded_key()
    text = f"Please greet {NAME} and write to {EMAIL}; {NAME} is waiting."
    response = await chat(
        gateway, key, privacyMode="pseudonymize", messages=[{"role": "user", "content": text}]
    )
    assert response.status_code == 200, response.text
    received = sent_text(upstream)
    assert NAME not in received and EMAIL not in received
    assert "<PERSON_1>" in received and "<EMAIL_ADDRESS_1>" in received
    assert received.count("<PERSON_1>") == 2  # stable placeholder for the same person
    assert response.json()["choices"][0]["message"]["content"] == text  # restored

    async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as http:
        streamed = await http.post(
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={
                "model": "fake-echo",
                "stream": True,
                "privacy_mode": "pseudonymize",
                "messages": [{"role": "user", "content": text}],
            },
        )
    chunks = [
        json.loads(line[6:]) for line in streamed.text.splitlines() if line.startswith("data: {")
    ]
    pieces = [c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]]
    assert "".join(pieces) == text  # placeholders split in 3-character chunks, restored
    assert not any("<PERSON_1>" in p for p in pieces)


def text_image(text: str) -> str:
    image = Image.new("RGB", (1100, 140), "white")
    ImageDraw.Draw(image).text((20, 40), text, fill="black", font=ImageFont.load_default(size=44))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def ocr(data_url: str) -> str:
    raw = base64.b64decode(data_url.split(",", 1)[1])
    return str(pytesseract.image_to_string(Image.open(io.BytesIO(raw))))


async def test_images_are_redacted_before_the_upstream(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    key = await gateway.funded_key()
    image = text_image(f"Contact: {EMAIL}")
    assert EMAIL in ocr(image).replace(" ", "")  # the planted email is readable
    response = await chat(
        gateway,
        key,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what does this say?"},
                    {"type": "image_url", "image_url": {"url": image}},
                ],
            }
        ],
    )
    assert response.status_code == 200, response.text
    forwarded = upstream.received[-1]["messages"][-1]["content"][1]["image_url"]["url"]
    assert forwarded.startswith("data:image/png;base64,") and forwarded != image
    assert EMAIL not in ocr(forwarded).replace(" ", "")
    remote = await chat(
        gateway,
        key,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
                ],
            }
        ],
    )
    assert remote.status_code == 400
    assert remote.json()["error"]["code"] == "unsupported_image_url"


def minimal_pdf(text: str) -> bytes:
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return out


async def test_pdfs_are_extracted_redacted_and_sent_as_context(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    key = await gateway.funded_key()
    pdf = base64.b64encode(minimal_pdf(f"Invoice for {EMAIL}, total 40 EUR")).decode()
    response = await chat(
        gateway,
        key,
        pdfs=[{"data": pdf, "filename": "invoice.pdf"}],
        messages=[{"role": "user", "content": "summarise the invoice"}],
    )
    assert response.status_code == 200, response.text
    context = upstream.received[-1]["messages"][0]
    assert context["role"] == "system" and "[Document 1: invoice.pdf]" in context["content"]
    assert "total 40 EUR" in context["content"] and EMAIL not in context["content"]
    bad = await chat(
        gateway, key, pdfs=["bm90IGEgcGRm"], messages=[{"role": "user", "content": "x"}]
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_pdf"
    refused = await chat(
        gateway,
        key,
        urls=["http://169.254.169.254/latest/meta-data"],
        messages=[{"role": "user", "content": "x"}],
    )
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "url_fetch_failed"


async def test_events_and_logs_hold_counts_never_values(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    key = await gateway.funded_key()
    with caplog.at_level(logging.DEBUG):
        assert (
            await chat(gateway, key, messages=[{"role": "user", "content": PLANTED}])
        ).status_code == 200
        [settled] = await gateway.settlements(1)
    assert settled.data["pii_counts"]["EMAIL_ADDRESS"] == 1
    log = await asyncio.to_thread(gateway.platform.app.read_log, 0, 100_000)
    everything = json.dumps([e.data for e in log]) + "\n".join(
        r.getMessage() for r in caplog.records
    )
    for secret in SECRETS:
        assert secret not in everything, secret
    entries = await ledger.ledger_page(
        gateway.platform.read_store, settled.data["account_id"], before=None, limit=5
    )
    assert next(e["pii_redacted"] for e in entries if e["type"] == "usage")["CREDIT_CARD"] == 1


async def test_account_defaults_apply_and_requests_override_them(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    wallet = SigningWallet.create()
    key = await gateway.funded_key(wallet=wallet.address)
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        saved = await http.put(
            "/api/v1/settings",
            json={
                **wallet.fields("settings"),
                "privacy": {"mode": "off"},
                "consent": {"analytics": True},
            },
        )
        assert saved.status_code == 200, saved.text
        assert saved.json()["privacy"]["mode"] == "off"
        read = await http.get("/api/v1/settings", headers=wallet.headers("settings"))
        assert read.json()["consent"] == {"analytics": True, "marketing": False}
    await asyncio.sleep(5.1)  # the per-process settings cache
    assert (
        await chat(gateway, key, messages=[{"role": "user", "content": PLANTED}])
    ).status_code == 200
    assert EMAIL in sent_text(upstream)  # the account chose "off"
    await chat(gateway, key, privacyMode="redact", messages=[{"role": "user", "content": PLANTED}])
    assert EMAIL not in sent_text(upstream)  # the request's choice wins


async def test_preview_returns_entities_and_costs_five_cents(gateway: Gateway) -> None:
    key = await gateway.funded_key(usd="0.07")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as http:
        preview = await http.post(
            "/v1/pii/preview",
            headers={"Authorization": f"Bearer {key}"},
            json={"text": PLANTED, "image": text_image(f"Mail {EMAIL}")},
        )
        assert preview.status_code == 200, preview.text
        doc = preview.json()
        assert doc["costUsd"] == "0.050000"
        found = {e["type"] for e in doc["text"]["entities"]}
        assert {"EMAIL_ADDRESS", "PERSON", "CREDIT_CARD", "IBAN_CODE"} <= found
        first = next(e for e in doc["text"]["entities"] if e["type"] == "EMAIL_ADDRESS")
        assert PLANTED[first["start"] : first["end"]] == EMAIL
        assert EMAIL not in doc["text"]["redacted"]
        assert EMAIL not in ocr(doc["image"]["redacted"]).replace(" ", "")
        # 0.07 - 0.05 leaves 0.02: the second preview is unaffordable
        again = await http.post(
            "/v1/pii/preview", headers={"Authorization": f"Bearer {key}"}, json={"text": "hello"}
        )
        assert again.status_code == 402
        assert again.json()["error"]["code"] == "insufficient_credits"
        empty = await http.post(
            "/v1/pii/preview", headers={"Authorization": f"Bearer {key}"}, json={}
        )
        assert empty.status_code == 400
    [settled] = await gateway.settlements(1)
    assert (settled.data["model"], settled.data["actual_micros"]) == ("pii-preview", 50_000)
    record = await keys.read_key(gateway.platform.read_store, parse_api_key(key).key_id)
    assert record is not None
    got = await balance.read_balance(gateway.platform.read_store, record.account_id, "test")
    assert got.balance_micros == 20_000
