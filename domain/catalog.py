"""The model catalog: which models exist, where they run, what they cost, who may call them.

Parsed from a TOML document (see `infra/models.toml`) into immutable specs. Prices are quoted
in USD per 1M tokens, as OpenAI and OpenRouter quote them, and held as integer micro-USD.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from domain.errors import ErrorKind, PryvError
from domain.money import MoneyError, usd_to_micros

BUILTIN_PREFIX = "builtin:"


class CatalogError(PryvError, ValueError):
    """The catalog file is inconsistent; the gateway refuses to start with it."""

    kind, code = ErrorKind.INTERNAL, "catalog_error"


@dataclass(frozen=True)
class UpstreamSpec:
    name: str
    base_url: str
    api_key_env: str | None = None
    timeout_seconds: float = 600.0
    connect_timeout_seconds: float = 5.0
    max_connections: int = 100


@dataclass(frozen=True)
class ModelSpec:
    id: str
    upstream: str  # an [upstreams.<name>] entry, or "builtin:echo"
    upstream_model: str
    input_micros_per_million: int
    output_micros_per_million: int
    context_length: int
    max_output_tokens: int
    test_only: bool = False
    description: str = ""
    owned_by: str = "pryv"
    created: int = 0
    stream_delay_ms: int = 0  # builtin echo only: pause between streamed words

    @property
    def builtin(self) -> bool:
        return self.upstream.startswith(BUILTIN_PREFIX)

    def usable_by(self, env: str) -> bool:
        """Test keys may use only test models; live keys only live ones (test keys never spend
        live credit, and live traffic never lands on a fake)."""
        return self.test_only == (env == "test")


@dataclass(frozen=True)
class Catalog:
    models: tuple[ModelSpec, ...]
    upstreams: Mapping[str, UpstreamSpec]

    def get(self, model_id: str) -> ModelSpec | None:
        for model in self.models:
            if model.id == model_id:
                return model
        return None

    def visible_to(self, env: str, allowed: Iterable[str]) -> list[ModelSpec]:
        """Models a key of `env` may call; `allowed` empty means every model of that env."""
        allowed_set = set(allowed)
        return [
            m for m in self.models if m.usable_by(env) and (not allowed_set or m.id in allowed_set)
        ]


def _price(entry: Mapping[str, Any], field: str, model_id: str) -> int:
    try:
        micros = usd_to_micros(str(entry[field]))
    except KeyError as exc:
        raise CatalogError(f"model {model_id}: missing {field}") from exc
    except MoneyError as exc:
        raise CatalogError(f"model {model_id}: {field}: {exc}") from exc
    if micros < 0:
        raise CatalogError(f"model {model_id}: {field} is negative")
    return micros


def parse_catalog(document: Mapping[str, Any]) -> Catalog:
    upstreams: dict[str, UpstreamSpec] = {}
    for name, entry in dict(document.get("upstreams", {})).items():
        if "base_url" not in entry:
            raise CatalogError(f"upstream {name}: missing base_url")
        upstreams[name] = UpstreamSpec(
            name=name,
            base_url=str(entry["base_url"]).rstrip("/"),
            api_key_env=entry.get("api_key_env"),
            timeout_seconds=float(entry.get("timeout_seconds", 600)),
            connect_timeout_seconds=float(entry.get("connect_timeout_seconds", 5)),
            max_connections=int(entry.get("max_connections", 100)),
        )
    models: list[ModelSpec] = []
    for entry in document.get("models", []):
        model_id = str(entry.get("id", ""))
        if not model_id:
            raise CatalogError("every model needs an id")
        upstream = str(entry.get("upstream", ""))
        if upstream not in upstreams and upstream != f"{BUILTIN_PREFIX}echo":
            raise CatalogError(f"model {model_id}: unknown upstream {upstream!r}")
        spec = ModelSpec(
            id=model_id,
            upstream=upstream,
            upstream_model=str(entry.get("upstream_model", model_id)),
            input_micros_per_million=_price(entry, "input_price_per_million_usd", model_id),
            output_micros_per_million=_price(entry, "output_price_per_million_usd", model_id),
            context_length=int(entry.get("context_length", 8192)),
            max_output_tokens=int(entry.get("max_output_tokens", 4096)),
            test_only=bool(entry.get("test_only", False)),
            description=str(entry.get("description", "")),
            owned_by=str(entry.get("owned_by", "pryv")),
            created=int(entry.get("created", 0)),
            stream_delay_ms=int(entry.get("stream_delay_ms", 0)),
        )
        if spec.max_output_tokens <= 0 or spec.context_length <= 0:
            raise CatalogError(f"model {model_id}: token limits must be positive")
        if any(m.id == model_id for m in models):
            raise CatalogError(f"model {model_id} listed twice")
        models.append(spec)
    return Catalog(models=tuple(models), upstreams=upstreams)
