"""What Pryv would remove from a text, image, PDF or web page, and the result — a paid call
($0.05) metered through the same hold and settlement as a completion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bootstrap.platform import Platform
from commands.metering import AdmissionRefused, KeyIdentity
from domain.catalog import ModelSpec
from domain.errors import PryvError
from domain.money import micros_to_usd
from domain.pricing import Usage
from gateway.refusals import rate_metadata, refusal
from infra.pii_images import to_data_url
from infra.pii_text import PseudonymVault
from infra.pii_text import run_off_loop as run_pii
from privacy.controls import PII_ENTITY_TYPES, PdfInput, PiiConfig
from privacy.pipeline import PrivacyFilter
from privacy.plan import PrivacyPlan, resolve_plan

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


@dataclass(frozen=True)
class Preview:
    body: dict[str, Any]  # the pii.preview object
    metadata: dict[str, str]


class PreviewService:
    def __init__(self, platform: Platform, privacy: PrivacyFilter) -> None:
        self.platform = platform
        self.privacy = privacy

    async def preview(
        self, identity: KeyIdentity, body: PiiPreviewRequest, request_id: str
    ) -> Preview:
        """Entities found (type, span, score) and the redacted text / image / PDF / page;
        charged only when a preview was delivered."""
        plan = resolve_plan(
            mode=body.privacy_mode,
            entities=body.pii_entities,
            config=body.pii_config,
            skip=None,
            account={},
        )
        try:
            metered = await self.platform.meter.admit(
                identity,
                PREVIEW_MODEL,
                request_id,
                hold_micros=PREVIEW_PRICE_MICROS,
                estimated_tokens=0,
                check_entitlement=False,
            )
        except AdmissionRefused as refused:
            raise refusal(refused.admission, request_id) from None
        privacy = self.privacy
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
            await self.platform.meter.settle(
                metered, Usage(0, 0), outcome, price_micros=price, pii_counts=counts
            )
        return Preview(out, {**rate_metadata(metered.admission), "X-Request-Id": request_id})


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
    except ValueError as exc:  # e.g. PERSON asked for while NER is disabled here
        raise PryvError(str(exc), code="invalid_params", param="piiEntities") from exc


async def _image_section(privacy: PrivacyFilter, image: str, plan: PrivacyPlan) -> dict[str, Any]:
    result = await privacy.redact_image_url(image, plan, param="image")
    return {
        "redacted": to_data_url(result.mime, result.data),
        "entities": [{"type": f.entity_type, "score": round(f.score, 3)} for f in result.findings],
        "faces": result.faces,
        "counts": dict(result.counts),
    }
