"""Pryv's privacy controls, as a request states them (chat completions, preview, account
defaults): thresholds, OCR and face blur, PDF page limits, what to skip."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from infra.pii_text import KNOWN_ENTITIES

PII_ENTITY_TYPES = KNOWN_ENTITIES  # every type the text engine can detect


# The PII configs are frozen: an account's saved one is validated once and shared by its
# requests (privacy.plan), so no request may change it for the next.


class TextPiiConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    threshold: float = Field(default=0.35, ge=0, le=1)


class FacesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    blur: Literal["none", "light", "strong"] = "strong"


class ImagePiiConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    ocr: bool = True
    threshold: float = Field(default=0.35, ge=0, le=1)
    faces: FacesConfig = Field(default_factory=FacesConfig)


class PdfPiiConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    pages: int | None = Field(default=None, ge=1, le=500, description="first N pages only")
    threshold: float = Field(default=0.35, ge=0, le=1)


class PiiConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    text: TextPiiConfig = Field(default_factory=TextPiiConfig)
    image: ImagePiiConfig = Field(default_factory=ImagePiiConfig)
    pdf: PdfPiiConfig = Field(default_factory=PdfPiiConfig)


class SkipRedaction(BaseModel):
    """`skip_pii_redaction: true` skips everything; an object skips per modality."""

    model_config = ConfigDict(extra="forbid")
    text: bool = False
    image: bool = False
    pdf: bool = False
    urls: bool = False


class PdfInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(default=None, max_length=2048)
    data: str | None = Field(default=None, description="base64 PDF bytes")
    filename: str | None = Field(default=None, max_length=255)

    @model_validator(mode="after")
    def _one_source(self) -> PdfInput:
        if (self.url is None) == (self.data is None):
            raise ValueError("give exactly one of url or data")
        return self
