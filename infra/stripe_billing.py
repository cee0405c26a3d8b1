"""Stripe, through the official SDK: Checkout Sessions, webhook verification, and the records
finance reconciles against. Tests point the real SDK at a local fake (`stripe_api_base`)."""

from __future__ import annotations

import csv
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import stripe

from domain.errors import ErrorKind, PryvError
from domain.money import BILLING_CURRENCY, cents_to_micros, usd_to_micros
from domain.reconciliation import Kind, PaymentFact

log = logging.getLogger("pryv.billing")

WEBHOOK_TOLERANCE_SECONDS = 300


class BillingNotConfigured(PryvError):
    """No Stripe key: checkout is unavailable (operators grant credit with `pryv credits grant`)."""

    kind, code = ErrorKind.UNAVAILABLE, "billing_not_configured"


class BillingUnavailable(PryvError):
    """Stripe refused or could not be reached; nothing was charged by us."""

    kind, code = ErrorKind.UNAVAILABLE, "billing_error"


class SharedTokenRefused(PryvError):
    """Stripe would not charge a Shared Payment Token (used, declined, over its limits)."""

    kind, code = ErrorKind.PAYMENT_REQUIRED, "shared_token_refused"


class InvalidWebhook(PryvError, ValueError):
    """Bad signature, stale timestamp, or a payload that is not a Stripe event."""

    code = "invalid_signature"


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str


class StripeBilling:
    def __init__(
        self,
        secret_key: str | None,
        webhook_secret: str | None,
        api_base: str | None = None,
    ) -> None:
        self._webhook_secret = webhook_secret
        self._client: stripe.StripeClient | None = None
        if secret_key:
            # No automatic retries: a checkout must never be created twice behind the user's
            # back (the seed's guidance); our idempotency key makes an explicit retry safe.
            self._client = stripe.StripeClient(
                secret_key,
                base_addresses={"api": api_base} if api_base else None,
                max_network_retries=0,
            )

    @property
    def configured(self) -> bool:
        return self._client is not None

    def _require(self) -> stripe.StripeClient:
        if self._client is None:
            raise BillingNotConfigured("Stripe is not configured on this deployment")
        return self._client

    async def create_checkout(
        self,
        *,
        wallet: str,
        account_id: str,
        usd_cents: int,
        credits_micros: int,
        pack_id: str | None,
        success_url: str,
        cancel_url: str,
        idempotency_key: str,
    ) -> CheckoutSession:
        metadata = {
            "pryv_account_id": account_id,
            "pryv_wallet": wallet,
            "pryv_usd_micros": str(cents_to_micros(usd_cents)),
            "pryv_credits_micros": str(credits_micros),
        }
        if pack_id:  # Stripe drops empty metadata values: only send what has one
            metadata["pryv_pack_id"] = pack_id
        label = f"Pryv credits ({credits_micros / 1_000_000:.2f} USD)"
        try:
            session = await self._require().v1.checkout.sessions.create_async(
                params={
                    "mode": "payment",
                    "line_items": [
                        {
                            "price_data": {
                                "currency": BILLING_CURRENCY,
                                "unit_amount": usd_cents,
                                "product_data": {"name": label},
                            },
                            "quantity": 1,
                        }
                    ],
                    "success_url": success_url,
                    "cancel_url": cancel_url,
                    "client_reference_id": account_id,
                    "metadata": metadata,
                    # Copied to the payment: refunds and disputes name their account through it.
                    "payment_intent_data": {"metadata": metadata},
                },
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            log.warning("checkout creation failed: %s", exc.user_message or type(exc).__name__)
            raise BillingUnavailable("Stripe did not create the checkout session") from exc
        return CheckoutSession(id=str(session.id), url=str(session.url))

    async def charge_shared_token(
        self,
        *,
        spt: str,
        amount_cents: int,
        description: str,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> dict[str, Any]:
        """Charge a Shared Payment Token at once (MPP's stripe charge): the PaymentIntent,
        whatever its status. Stripe's refusal (used, declined, over its limit) is
        SharedTokenRefused; an unreachable Stripe BillingUnavailable."""
        try:
            intent = await self._require().v1.payment_intents.create_async(
                # shared_payment_granted_token is newer than the SDK's typed parameters.
                params={  # type: ignore[typeddict-unknown-key]
                    "amount": amount_cents,
                    "currency": BILLING_CURRENCY,
                    "shared_payment_granted_token": spt,
                    "confirm": True,
                    "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
                    "description": description,
                    "metadata": metadata,
                },
                options={"idempotency_key": idempotency_key},
            )
        except (stripe.CardError, stripe.InvalidRequestError) as exc:
            raise SharedTokenRefused(exc.user_message or "Stripe refused the token") from exc
        except stripe.StripeError as exc:
            raise BillingUnavailable("Stripe could not be reached") from exc
        data: dict[str, Any] = intent.to_dict()
        return data

    async def retrieve_session(self, session_id: str) -> dict[str, Any] | None:
        try:
            session = await self._require().v1.checkout.sessions.retrieve_async(
                session_id, options={"max_network_retries": 2}
            )
        except stripe.InvalidRequestError:
            return None
        except stripe.StripeError as exc:
            raise BillingUnavailable("Stripe could not be reached") from exc
        return session.to_dict()

    async def payment_intent_metadata(self, payment_intent: str) -> dict[str, str]:
        try:
            intent = await self._require().v1.payment_intents.retrieve_async(
                payment_intent, options={"max_network_retries": 2}
            )
        except stripe.StripeError as exc:
            raise BillingUnavailable(f"could not read payment {payment_intent}") from exc
        return {str(k): str(v) for k, v in (intent.to_dict().get("metadata") or {}).items()}

    async def balance_transactions(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Balance transactions created in [since, until), sources expanded (charge, refund or
        dispute objects), page by page: never the whole history in memory."""
        client = self._require()
        params: dict[str, Any] = {"limit": 100, "expand": ["data.source"]}
        created: dict[str, int] = {}
        if since is not None:
            created["gte"] = int(since.timestamp())
        if until is not None:
            created["lt"] = int(until.timestamp())
        if created:
            params["created"] = created
        try:
            page = await client.v1.balance_transactions.list_async(
                params=params,  # type: ignore[arg-type]
                options={"max_network_retries": 2},
            )
            async for txn in page.auto_paging_iter():
                yield txn.to_dict()
        except stripe.StripeError as exc:
            raise BillingUnavailable(f"Stripe could not be reached: {type(exc).__name__}") from exc

    def verify_webhook(self, payload: bytes, signature: str | None) -> dict[str, Any]:
        """The event, if Stripe-Signature proves Stripe sent exactly these bytes recently."""
        if not self._webhook_secret:
            raise BillingNotConfigured("no webhook secret configured")
        try:
            event = stripe.Webhook.construct_event(
                payload, signature, self._webhook_secret, tolerance=WEBHOOK_TOLERANCE_SECONDS
            )
        except stripe.SignatureVerificationError as exc:
            raise InvalidWebhook("signature verification failed") from exc
        except ValueError as exc:
            raise InvalidWebhook("payload is not a Stripe event") from exc
        data: dict[str, Any] = event.to_dict()
        return data


def _major_units_to_micros(value: str) -> int:
    """ "12.34" (major units, as Stripe's CSV reports write them) -> micro-USD, exactly."""
    return abs(usd_to_micros(value.strip()))


def _signed_major_units(value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    return usd_to_micros(value.strip())


def _csv_time(value: str | None) -> datetime | None:
    """Stripe's report times are UTC ("2026-12-01 10:00:00")."""
    if not value or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise StripeCsvError(f"created_utc {value!r} is not a time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


CSV_COLUMNS = frozenset(
    {
        "balance_transaction_id",
        "reporting_category",
        "gross",
        "currency",
        "charge_id",
        "payment_intent_id",
        "dispute_id",
        "source_id",
    }
)


class StripeCsvError(PryvError, ValueError):
    """A file that is not Stripe's itemized balance-change export."""

    code = "invalid_stripe_csv"


def facts_from_csv(path: Path) -> Iterator[PaymentFact]:
    """Stripe's itemized balance-change export (one row per balance transaction), streamed.
    A file without its columns is refused (it would read as no payments at all); `fee`, `net`
    and `created_utc` are used when present."""
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = sorted(CSV_COLUMNS - set(reader.fieldnames or ()))
        if missing:
            raise StripeCsvError(
                f"{path} is not Stripe's itemized balance-change export: no column "
                + ", ".join(missing)
            )
        for row in reader:
            category = (row.get("reporting_category") or "").strip()
            if category == "charge":
                kind, key = Kind.CHARGE, row["payment_intent_id"]
            elif category == "refund":
                kind, key = Kind.REFUND, row["charge_id"]
            elif category in ("dispute", "dispute_reversal"):
                kind, key = Kind(category), row.get("dispute_id") or row["source_id"]
            else:
                continue
            yield PaymentFact(
                kind,
                key,
                _major_units_to_micros(row.get("gross") or "0"),
                row.get("balance_transaction_id", ""),
                at=_csv_time(row.get("created_utc")),
                currency=(row.get("currency") or BILLING_CURRENCY).strip().lower(),
                fee_usd_micros=abs(_signed_major_units(row.get("fee")) or 0),
                net_usd_micros=_signed_major_units(row.get("net")),
            )


def fact_from_balance_transaction(row: dict[str, Any]) -> PaymentFact | None:
    """The payment fact of one API balance transaction (source expanded); None for the
    kinds reconciliation does not match (payouts, fees, adjustments...)."""
    source = row.get("source") if isinstance(row.get("source"), dict) else {}
    assert isinstance(source, dict)
    category = row.get("reporting_category") or row.get("type")
    if category == "charge":
        kind, key = Kind.CHARGE, source.get("payment_intent") or source.get("id") or ""
    elif category == "refund":
        kind, key = Kind.REFUND, source.get("charge") or ""
    elif category in ("dispute", "dispute_reversal"):
        kind, key = Kind(category), source.get("id") or ""
    else:
        return None
    created = row.get("created")
    net = row.get("net")
    return PaymentFact(
        kind,
        str(key),
        cents_to_micros(abs(int(row.get("amount") or 0))),
        str(row.get("id", "")),
        at=datetime.fromtimestamp(int(created), UTC) if created is not None else None,
        currency=str(row.get("currency") or BILLING_CURRENCY).lower(),
        fee_usd_micros=cents_to_micros(abs(int(row.get("fee") or 0))),
        net_usd_micros=None if net is None else cents_to_micros(int(net)),
    )
