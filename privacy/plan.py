"""Which PII a request removes, and how: the request's controls, then the account's saved
defaults, then ours."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from domain.upstream_body import Redacting
from infra.pii_text import DEFAULT_ENTITIES
from privacy.controls import PiiConfig, SkipRedaction

Mode = Literal["redact", "pseudonymize", "off"]


@dataclass(frozen=True)
class PrivacyPlan:
    mode: Mode
    entities: tuple[str, ...]
    config: PiiConfig
    skip_text: bool = False
    skip_image: bool = False
    skip_pdf: bool = False
    skip_urls: bool = False

    @property
    def pseudonymize(self) -> bool:
        return self.mode == "pseudonymize"

    @property
    def redacting(self) -> Redacting:
        return Redacting(text=not self.skip_text, image=not self.skip_image, pdf=not self.skip_pdf)


DEFAULT_PII_CONFIG = PiiConfig()


def saved_pii_config(raw: dict[str, Any] | None) -> PiiConfig:
    """An account's saved PII config, validated once per distinct value: validating it on
    every request was 5% of the gateway's CPU on a streamed answer (bench/overhead.py)."""
    if not raw:
        return DEFAULT_PII_CONFIG
    return _validated_config(json.dumps(raw, sort_keys=True, separators=(",", ":")))


@functools.lru_cache(maxsize=4096)
def _validated_config(canonical: str) -> PiiConfig:
    return PiiConfig.model_validate_json(canonical)


def resolve_plan(
    *,
    mode: Mode | None,
    entities: Sequence[str] | None,
    config: PiiConfig | None,
    skip: bool | SkipRedaction | None,
    account: dict[str, Any],
) -> PrivacyPlan:
    """Request controls first, then the account's saved defaults, then ours."""
    saved = account.get("privacy") or {}
    chosen: Mode = mode or saved.get("mode") or "redact"
    wanted = tuple(entities or saved.get("piiEntities") or DEFAULT_ENTITIES)
    pii_config = config or saved_pii_config(saved.get("piiConfig"))
    if chosen == "off" or skip is True:
        return PrivacyPlan(chosen, wanted, pii_config, True, True, True, True)
    parts = skip if isinstance(skip, SkipRedaction) else SkipRedaction()
    return PrivacyPlan(chosen, wanted, pii_config, parts.text, parts.image, parts.pdf, parts.urls)
