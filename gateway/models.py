"""The models a key may call, as OpenAI model objects (with Pryv's prices and limits)."""

from __future__ import annotations

from typing import Any

from bootstrap.platform import Platform
from commands.metering import KeyIdentity
from domain.catalog import ModelSpec
from domain.errors import ErrorKind, PryvError
from domain.money import micros_to_usd
from projections import keys


class InactiveKey(PryvError):
    kind, code = ErrorKind.AUTHENTICATION, "inactive_api_key"

    def __init__(self) -> None:
        super().__init__("this API key is revoked or expired")


def model_object(model: ModelSpec) -> dict[str, Any]:
    return {
        "id": model.id,
        "object": "model",
        "created": model.created,
        "owned_by": model.owned_by,
        "context_length": model.context_length,
        "max_output_tokens": model.max_output_tokens,
        "pricing": {
            "input_per_million_usd": micros_to_usd(model.input_micros_per_million),
            "output_per_million_usd": micros_to_usd(model.output_micros_per_million),
        },
        "test_only": model.test_only,
        "description": model.description,
    }


async def visible_models(platform: Platform, identity: KeyIdentity) -> list[ModelSpec]:
    """The models this key may call now (its environment and entitlements)."""
    record = await keys.read_key(platform.read_store, identity.key_id)
    if (
        record is None
        or not record.usable_now()
        or await platform.meter.is_revoked(identity.key_id)
    ):
        raise InactiveKey()
    return platform.catalog.visible_to(identity.env, record.models)


async def find_model(platform: Platform, identity: KeyIdentity, model_id: str) -> ModelSpec:
    for model in await visible_models(platform, identity):
        if model.id == model_id:
            return model
    raise PryvError(
        f"model {model_id!r} does not exist or is not available to this key",
        code="model_not_found",
        kind=ErrorKind.NOT_FOUND,
        param="model",
    )
