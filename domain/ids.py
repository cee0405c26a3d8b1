"""Deterministic aggregate ids: the same business fact always maps to the same aggregate id,
so a repeated command collides on (originator_id, version) and is reported as a duplicate."""

from __future__ import annotations

from uuid import UUID, uuid5

# Fixed namespace for every Pryv aggregate id; changing it would orphan every stored aggregate.
PRYV_NAMESPACE = UUID("5b0e3a52-8d1c-4c47-9a7e-2f0b8f6a9c11")


def account_id(wallet_address: str) -> UUID:
    """An account is its wallet: uuid5 of the lower-cased 0x address."""
    return uuid5(PRYV_NAMESPACE, f"account:{wallet_address.lower()}")


def api_key_id(key_id: str) -> UUID:
    return uuid5(PRYV_NAMESPACE, f"apikey:{key_id}")


def purchase_id(source_id: str) -> UUID:
    """A purchase is identified by its payment source (e.g. the Stripe checkout session id)."""
    return uuid5(PRYV_NAMESPACE, f"purchase:{source_id}")


def grant_id(grant_ref: str) -> UUID:
    return uuid5(PRYV_NAMESPACE, f"grant:{grant_ref}")


def hold_id(key_id: str, request_id: str) -> UUID:
    """A hold is one request on one key: a reused X-Request-Id on the same key collides."""
    return uuid5(PRYV_NAMESPACE, f"hold:{key_id}:{request_id}")


def refunds_id(charge_id: str) -> UUID:
    return uuid5(PRYV_NAMESPACE, f"refunds:{charge_id}")


def dispute_id(dispute_ref: str) -> UUID:
    return uuid5(PRYV_NAMESPACE, f"dispute:{dispute_ref}")


def rejected_payment_id(source_id: str) -> UUID:
    """A payment refused at the door (wrong currency, no valid wallet) is recorded once."""
    return uuid5(PRYV_NAMESPACE, f"rejected-payment:{source_id}")


def channel_id(tempo_channel_id: str) -> UUID:
    """A payment channel is its on-chain channel id (lower-case bytes32 hex)."""
    return uuid5(PRYV_NAMESPACE, f"channel:{tempo_channel_id.lower()}")
