"""POST /v1/pii/preview: what Pryv would remove from a text, image, PDF or web page, and the
result — a paid call ($0.05) metered through the same hold and settlement as a completion."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from api.bearer import authenticate_key
from api.chat_schemas import PII_ENTITY_TYPES, PdfInput, PiiConfig
from api.errors import ApiError
from api.gateway import rate_headers, refusal
from api.privacy import PrivacyFilter, PrivacyPlan, resolve_plan
from bootstrap.platform import Platform
from commands.metering import AdmissionRefused
from domain.catalog import ModelSpec
from domain.money import micros_to_usd
from domain.pricing import Usage
from infra.pii_images import (
    to_data_url,
)
from infra.pii_text import PseudonymVault
from infra.pii_text import run_off_loop as run_pii

router = APIRouter(prefix="/v1", tags=["privacy"])

PREVIEW_PRICE_MICROS = 50_000  # $0.05, the seed's price
PREVIEW_MODEL = ModelSpec(
    id="pii-preview",
    upstream="builtin:preview",
    upstream_model="pii-preview",
    input_micros_per_million=0,
    output_micros_per_million=0,
    context_length=1,
    max_output_tokens=1,
    description="PII preview (flat price)",
)


class PiiPreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    text: str | None = Field(default=None, max_length=200_000)
    image: str | None = Field(default=None, description="a data: URL")
    pdf: str | PdfInput | None = None
    url: str | None = Field(default=None, max_length=2048)
    privacy_mode: Literal["redact", "pseudonymize"] = Field(default="redact", alias="privacyMode")
    pii_entities: list[str] | None = Field(default=None, alias="piiEntities", max_length=64)
    pii_config: PiiConfig | None = Field(default=None, alias="piiConfig")

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for alias, name in (
                ("pii_entities", "piiEntities"),
                ("pii_config", "piiConfig"),
                ("privacy_mode", "privacyMode"),
            ):
                if alias in data:
                    data[name] = data.pop(alias)
        return data

    @model_validator(mode="after")
    def _something(self) -> PiiPreviewRequest:
        if self.text is None and self.image is None and self.pdf is None and self.url is None:
            raise ValueError("give at least one of text, image, pdf or url")
        unknown = sorted(set(self.pii_entities or []) - PII_ENTITY_TYPES)
        if unknown:
            raise ValueError(f"unknown PII entity types: {', '.join(unknown)}")
        return self


def _platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


async def _text_section(
    privacy: PrivacyFilter,
    text: str,
    plan: PrivacyPlan,
    vault: PseudonymVault | None,
    threshold: float,
) -> dict[str, Any]:
    engine = await privacy.engine()

    def run() -> dict[str, Any]:
        result = (
            engine.pseudonymize(text, vault, plan.entities, threshold)
            if vault is not None
            else engine.redact(text, plan.entities, threshold)
        )
        return {
            "redacted": result.text,
            "entities": [
                {"type": f.entity_type, "start": f.start, "end": f.end, "score": round(f.score, 3)}
                for f in result.findings
            ],
            "counts": result.counts,
        }

    try:
        return await run_pii(run)
    except ValueError as exc:
        raise ApiError(400, "invalid_params", str(exc), param="piiEntities") from exc


async def _image_section(privacy: PrivacyFilter, image: str, plan: PrivacyPlan) -> dict[str, Any]:
    result = await privacy.redact_image_url(image, plan, param="image")
    return {
        "redacted": to_data_url(result.mime, result.data),
        "entities": [{"type": f.entity_type, "score": round(f.score, 3)} for f in result.findings],
        "faces": result.faces,
        "counts": dict(result.counts),
    }


@router.post("/pii/preview", response_model=None)
async def pii_preview(request: Request) -> JSONResponse:
    """Entities found (type, span, score) and the redacted text / image / PDF / page."""
    platform = _platform(request)
    identity = await authenticate_key(request, platform)
    try:
        body = PiiPreviewRequest.model_validate(await request.json())
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        raise ApiError(400, "validation_error", str(first["msg"]), param=param) from exc
    except ValueError as exc:
        raise ApiError(400, "invalid_json", "request body is not valid JSON") from exc
    plan = resolve_plan(
        mode=body.privacy_mode,
        entities=body.pii_entities,
        config=body.pii_config,
        skip=None,
        account={},
    )
    request_id = request.headers.get("x-request-id") or f"req_{uuid.uuid4().hex}"
    try:
        metered = await platform.meter.admit(
            identity,
            PREVIEW_MODEL,
            request_id,
            hold_micros=PREVIEW_PRICE_MICROS,
            estimated_tokens=0,
            check_entitlement=False,
        )
    except AdmissionRefused as refused:
        raise refusal(refused.admission, request_id) from None
    privacy: PrivacyFilter = request.app.state.privacy
    vault = PseudonymVault() if plan.pseudonymize else None
    price, outcome = 0, "upstream_error"
    counts: dict[str, int] = {}
    try:
        out: dict[str, Any] = {"object": "pii.preview", "mode": plan.mode}
        if body.text is not None:
            out["text"] = await _text_section(
                privacy, body.text, plan, vault, plan.config.text.threshold
            )
        if body.image is not None:
            out["image"] = await _image_section(privacy, body.image, plan)
        if body.pdf is not None:
            name, text = await privacy.pdf_text(body.pdf, plan)
            out["pdf"] = {
                "name": name,
                **await _text_section(privacy, text, plan, vault, plan.config.pdf.threshold),
            }
        if body.url is not None:
            url, text = await privacy.url_text(body.url)
            out["url"] = {
                "url": url,
                **await _text_section(privacy, text, plan, vault, plan.config.text.threshold),
            }
        for section in ("text", "image", "pdf", "url"):
            for entity, count in out.get(section, {}).get("counts", {}).items():
                counts[entity] = counts.get(entity, 0) + count
        if vault is not None:
            out["placeholders"] = dict(vault.as_mapping())
        out["counts"] = dict(sorted(counts.items()))
        out["costUsd"] = micros_to_usd(PREVIEW_PRICE_MICROS)
        price, outcome = PREVIEW_PRICE_MICROS, "ok"
    finally:
        # Charged only when a preview was delivered; a refused input costs nothing.
        await platform.meter.settle(
            metered, Usage(0, 0), outcome, price_micros=price, pii_counts=counts
        )
    return JSONResponse(
        out, headers={**rate_headers(metered.admission), "X-Request-Id": request_id}
    )
