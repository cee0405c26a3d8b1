"""The chat-completions request: OpenAI's fields, plus Pryv's privacy controls and their aliases.

Other OpenAI parameters (temperature, top_p, tools, response_format, seed, …) are kept and
forwarded under the rules of `domain.upstream_body` (each field redacted, refused or
allowlisted); Pryv's own fields are validated here and never forwarded.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from privacy.controls import PII_ENTITY_TYPES, PdfInput, PiiConfig, SkipRedaction

REQUEST_ALIASES = {
    "pii_entities": "piiEntities",
    "pii_config": "piiConfig",
    "privacy_mode": "privacyMode",
    "skipPiiRedaction": "skip_pii_redaction",
    "no_pii_redaction": "skip_pii_redaction",
    "noPiiRedaction": "skip_pii_redaction",
}


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str = Field(min_length=1)


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    model: str = Field(min_length=1, max_length=200)
    messages: list[Message] = Field(min_length=1, max_length=2048)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=2**31 - 1)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=2**31 - 1)
    tools: list[dict[str, Any]] | None = Field(default=None, max_length=128)
    n: int | None = Field(default=None, ge=1, le=1, description="only n=1 is supported")

    # Pryv privacy controls (see docs/gateway-api.md).
    urls: list[str] | None = Field(default=None, max_length=10)
    pdfs: list[str | PdfInput] | None = Field(default=None, max_length=5)
    privacy_mode: Literal["redact", "pseudonymize", "off"] | None = Field(
        default=None, alias="privacyMode"
    )
    pii_entities: list[str] | None = Field(default=None, alias="piiEntities", max_length=64)
    pii_config: PiiConfig | None = Field(default=None, alias="piiConfig")
    skip_pii_redaction: bool | SkipRedaction | None = None

    @model_validator(mode="before")
    @classmethod
    def _fold_aliases(cls, data: Any) -> Any:
        """Accept every documented spelling; two spellings of one control is an error."""
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for alias, canonical in REQUEST_ALIASES.items():
            if alias in out:
                if canonical in out:
                    raise ValueError(f"{alias} and {canonical} are the same control; give one")
                out[canonical] = out.pop(alias)
        return out

    @field_validator("pii_entities")
    @classmethod
    def _known_entities(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            unknown = sorted(set(value) - PII_ENTITY_TYPES)
            if unknown:
                raise ValueError(f"unknown PII entity types: {', '.join(unknown)}")
        return value

    @field_validator("urls")
    @classmethod
    def _http_urls(cls, value: list[str] | None) -> list[str] | None:
        for url in value or []:
            if not url.startswith(("http://", "https://")) or len(url) > 2048:
                raise ValueError("urls must be http(s) URLs of at most 2048 characters")
        return value

    def output_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def wants_usage_chunk(self) -> bool:
        return bool((self.stream_options or {}).get("include_usage"))

    def needs_no_private_work(self) -> bool:
        """Nothing to redact, fetch or extract: the request itself turns redaction off and
        brings no documents. Then admission alone refuses it as cheaply as a precheck would."""
        off = self.skip_pii_redaction is True or self.privacy_mode == "off"
        return off and not self.pdfs and not self.urls

    def prompt_text(self) -> str:
        """The messages' own text (no media), for the cheap credit floor checked before any
        redaction: a lower bound of what the prompt will be held at."""
        texts: list[str] = []
        for message in self.messages:
            if isinstance(message.content, str):
                texts.append(message.content)
            for part in message.content if isinstance(message.content, list) else []:
                text = getattr(part, "text", None)
                if isinstance(text, str):
                    texts.append(text)
        return "\n".join(texts)

    def upstream_body(self, upstream_model: str) -> dict[str, Any]:
        """What the upstream receives before redaction (a fresh copy the caller may rewrite):
        OpenAI's fields only, our model name, and always a usage report (the settlement needs
        it). The caller sets `max_tokens` once the prompt is known."""
        body = self.model_dump(
            exclude_none=True,
            exclude={
                "urls",
                "pdfs",
                "privacy_mode",
                "pii_entities",
                "pii_config",
                "skip_pii_redaction",
                "max_completion_tokens",
            },
        )
        body["model"] = upstream_model
        body.pop("max_tokens", None)
        if self.stream:
            body["stream_options"] = {**(self.stream_options or {}), "include_usage": True}
        else:
            body.pop("stream_options", None)
        return body
