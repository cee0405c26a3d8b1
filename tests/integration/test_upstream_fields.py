"""Nothing reaches the upstream unredacted: a planted e-mail in every field Pryv forwards —
tools and their schemas, response_format, prediction, user, metadata, message names, legacy
function calls, PDF filenames, `file` / `input_file` parts, scanned PDFs — never arrives at
the fake upstream verbatim in redact mode (the default). What cannot be redacted is refused
with 400 naming the field. Privacy logic is deployment-independent: embedded only."""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageDraw

from infra.settings import Settings
from tests.fakes.upstream import FakeUpstream
from tests.gateway_harness import Gateway, running_gateway
from tests.integration.test_pii_documents import make_pdf
from tests.integration.test_pii_images import font

EMAIL = "jane.doe@example.com"
PDF_EMAIL = "mark.twain@example.org"
CATALOG_EXTRA = """
[[models]]
id = "fake-echo"
upstream = "fake"
upstream_model = "echo"
input_price_per_million_usd = "1.00"
output_price_per_million_usd = "2.00"
context_length = 65536
max_output_tokens = 256
test_only = true
"""


@pytest.fixture
async def gateway(
    tmp_path: Path, upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Gateway]:
    from tests import gateway_harness

    monkeypatch.setattr(gateway_harness, "CATALOG", gateway_harness.CATALOG + CATALOG_EXTRA)
    settings = Settings(data_dir=tmp_path / "pryv", key_pepper=b"test-pepper")
    async with running_gateway(settings, upstream) as running:
        yield running


async def chat(gateway: Gateway, key: str, **body: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=120) as http:
        return await http.post(
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": "fake-echo", **body},
        )


def pdf_data_url(pdf: bytes) -> str:
    return "data:application/pdf;base64," + base64.b64encode(pdf).decode()


def scanned_pdf(text: str) -> bytes:
    """An image-only PDF (a scan): no text layer at all, the text is pixels."""
    image = Image.new("RGB", (1700, 600), "white")
    ImageDraw.Draw(image).text((80, 250), text, fill="black", font=font(56))
    out = io.BytesIO()
    image.save(out, format="PDF", resolution=200.0)
    return out.getvalue()


USER = {"role": "user", "content": "Please help."}
TEXT_PDF = make_pdf([[f"Contract for {PDF_EMAIL}"]])


def tool(description: str = "Look up a user", **prop: Any) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": "lookup_user",
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {"who": {"type": "string", **prop}},
                "required": ["who"],
            },
        },
    }


CASES: dict[str, Callable[[], dict[str, Any]]] = {
    "tool description": lambda: {"messages": [USER], "tools": [tool(f"Mail {EMAIL}")]},
    "tool schema": lambda: {
        "messages": [USER],
        "tools": [tool(description=f"x {EMAIL}", default=EMAIL, enum=[EMAIL])],
    },
    "response_format schema": lambda: {
        "messages": [USER],
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "answer",
                "schema": {"type": "object", "description": f"for {EMAIL}", "default": EMAIL},
            },
        },
    },
    "prediction": lambda: {
        "messages": [USER],
        "prediction": {"type": "content", "content": f"Dear {EMAIL},"},
    },
    "user": lambda: {"messages": [USER], "user": EMAIL},
    "metadata": lambda: {"messages": [USER], "metadata": {"customer": EMAIL}},
    "message name": lambda: {"messages": [{**USER, "name": EMAIL}]},
    "function_call": lambda: {
        "messages": [
            USER,
            {
                "role": "assistant",
                "content": None,
                "function_call": {"name": "lookup", "arguments": json.dumps({"who": EMAIL})},
            },
            {"role": "function", "name": "lookup", "content": "found"},
        ]
    },
    "unknown parameter": lambda: {"messages": [USER], "vendor_note": {"about": EMAIL}},
    "pdf filename": lambda: {
        "messages": [USER],
        "pdfs": [{"data": base64.b64encode(TEXT_PDF).decode(), "filename": f"{EMAIL}.pdf"}],
    },
    "file part": lambda: {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Summarize"},
                    {
                        "type": "file",
                        "file": {"file_data": pdf_data_url(TEXT_PDF), "filename": f"{EMAIL}.pdf"},
                    },
                ],
            }
        ]
    },
    "input_file part": lambda: {
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "input_file",
                        "file_data": pdf_data_url(make_pdf([[f"Invoice to {EMAIL}"]])),
                        "filename": "invoice.pdf",
                    }
                ],
            }
        ]
    },
    "scanned pdf": lambda: {
        "messages": [USER],
        "pdfs": [base64.b64encode(scanned_pdf(f"Contact {EMAIL}")).decode()],
    },
}


@pytest.mark.parametrize("field", list(CASES))
async def test_a_planted_email_in_any_forwarded_field_never_reaches_the_upstream(
    gateway: Gateway, upstream: FakeUpstream, field: str
) -> None:
    key = await gateway.funded_key()
    response = await chat(gateway, key, **CASES[field]())
    assert response.status_code == 200, response.text
    sent = json.dumps(upstream.received[-1])
    assert EMAIL not in sent and PDF_EMAIL not in sent
    assert "EMAIL_ADDRESS" in response.headers["x-pryv-pii-redacted"]


async def test_pdf_parts_arrive_as_their_redacted_text_not_as_the_pdf(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    key = await gateway.funded_key()
    response = await chat(gateway, key, **CASES["file part"]())
    assert response.status_code == 200, response.text
    [_, document] = upstream.received[-1]["messages"][-1]["content"]
    assert document["type"] == "text"
    assert "Contract for" in document["text"] and "<EMAIL_ADDRESS>" in document["text"]
    assert "base64" not in json.dumps(upstream.received[-1])


async def test_scanned_pdf_pages_are_read_by_ocr(gateway: Gateway, upstream: FakeUpstream) -> None:
    key = await gateway.funded_key()
    scan = scanned_pdf("Meeting notes from Lisbon")
    response = await chat(gateway, key, messages=[USER], pdfs=[base64.b64encode(scan).decode()])
    assert response.status_code == 200, response.text
    documents = upstream.received[-1]["messages"][0]["content"]
    assert "Meeting notes" in documents  # the page's pixels became text (not an empty page)


async def test_pseudonymized_fields_are_restored_in_the_answer(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    key = await gateway.funded_key()
    response = await chat(
        gateway,
        key,
        privacyMode="pseudonymize",
        messages=[{"role": "user", "content": f"Write to {EMAIL}"}],
        prediction={"type": "content", "content": f"To: {EMAIL}"},
    )
    assert response.status_code == 200, response.text
    sent = upstream.received[-1]
    assert EMAIL not in json.dumps(sent)
    # one vault for every field: the prediction's placeholder is the message's
    assert "<EMAIL_ADDRESS_1>" in sent["prediction"]["content"]
    assert EMAIL in response.json()["choices"][0]["message"]["content"]


@pytest.mark.parametrize(
    ("content", "code", "param"),
    [
        (
            [{"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}],
            "unsupported_content_part",
            "messages.0.content.0.type",
        ),
        (
            [{"type": "file", "file": {"file_id": "file-abc123"}}],
            "unsupported_content_part",
            "messages.0.content.0.file.file_id",
        ),
        (
            [{"type": "image_url", "image_url": 5}],
            "invalid_params",
            "messages.0.content.0.image_url",
        ),
    ],
)
async def test_what_cannot_be_redacted_is_refused_naming_the_field(
    gateway: Gateway, upstream: FakeUpstream, content: list[Any], code: str, param: str
) -> None:
    key = await gateway.funded_key()
    before = len(upstream.received)
    response = await chat(gateway, key, messages=[{"role": "user", "content": content}])
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == (code, param)
    assert len(upstream.received) == before  # nothing was sent


async def test_unknown_parts_pass_when_the_request_turns_redaction_off(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    key = await gateway.funded_key()
    part = {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
    response = await chat(
        gateway,
        key,
        skip_pii_redaction=True,
        messages=[{"role": "user", "content": [part, {"type": "text", "text": EMAIL}]}],
    )
    assert response.status_code == 200, response.text
    assert upstream.received[-1]["messages"][0]["content"][0] == part


async def test_a_schema_key_that_is_personal_data_is_refused_not_renamed(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    key = await gateway.funded_key()
    schema = {"type": "object", "properties": {EMAIL: {"type": "string"}}}
    bad_tool = {"type": "function", "function": {"name": "f", "parameters": schema}}
    before = len(upstream.received)
    response = await chat(gateway, key, messages=[USER], tools=[bad_tool])
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "pii_in_field_name"
    assert error["param"] == f"tools.0.function.parameters.properties.{EMAIL}"
    assert len(upstream.received) == before


PERSONAL = {
    "secret": "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "birth date": "14 February 1990",
    "address": "742 Evergreen Terrace, Springfield, OR 97477",
    "russian name": "Ольга Смирнова",
    "passport": "C01X00T47",
}


async def test_secrets_birth_dates_addresses_and_names_in_any_script_are_redacted(
    gateway: Gateway, upstream: FakeUpstream
) -> None:
    key = await gateway.funded_key()
    prompt = (
        f"My Stripe key is {PERSONAL['secret']}. I was born on {PERSONAL['birth date']}, "
        f"I live at {PERSONAL['address']}. Меня зовут {PERSONAL['russian name']}. "
        f"Reisepassnummer: {PERSONAL['passport']}"
    )
    response = await chat(gateway, key, messages=[{"role": "user", "content": prompt}])
    assert response.status_code == 200, response.text
    sent = json.dumps(upstream.received[-1], ensure_ascii=False)
    for kind, value in PERSONAL.items():
        for part in value.split():
            assert not re.search(rf"\b{re.escape(part.strip(',.'))}\b", sent), (kind, part)
    counts = response.headers["x-pryv-pii-redacted"]
    for entity in ("SECRET", "DATE_OF_BIRTH", "STREET_ADDRESS", "PERSON", "PASSPORT"):
        assert entity in counts


@pytest.mark.parametrize(
    "prompt",
    [
        "Compare Redis and PostgreSQL for a session store.",
        "Explain how Kubernetes schedules pods, and upgrade nginx to 1.25.3.4.",
        'Convert this JSON to YAML: {"name": "service", "port": 8080}',
        "Tell me about the history of Rome and why Einstein is famous.",
    ],
)
async def test_ordinary_technical_prompts_reach_the_upstream_unchanged(
    gateway: Gateway, upstream: FakeUpstream, prompt: str
) -> None:
    key = await gateway.funded_key()
    response = await chat(gateway, key, messages=[{"role": "user", "content": prompt}])
    assert response.status_code == 200, response.text
    assert upstream.received[-1]["messages"][0]["content"] == prompt
    assert response.headers["x-pryv-pii-redacted"] == "none"
