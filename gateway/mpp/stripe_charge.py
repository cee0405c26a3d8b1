"""Stripe `charge` (draft-stripe-charge-00): a Shared Payment Token charged at once.

Offered beside Tempo when Stripe is configured with a Business Network profile
(PRYV_STRIPE_NETWORK_ID). The token is charged with a PaymentIntent (`confirm: true`,
idempotency key `<challenge id>_<spt>`, as the draft recommends), which must have succeeded
for exactly the challenge's amount. A card payer has no wallet: its account is a fresh
pseudo-address derived from the PaymentIntent, so a payment can never attach to (and spend
from) someone else's account; the bought key is its only handle.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

from domain.money import micros_to_cents
from gateway.mpp.charge import PaidCharge
from gateway.mpp.payment_auth import Offer, PresentedCredential
from gateway.mpp.problems import PaymentProblem
from infra.stripe_billing import SharedTokenRefused, StripeBilling

PAYMENT_METHOD_TYPES = ["card", "link"]


def stripe_charge_offer(network_id: str, amount_micros: int, description: str) -> Offer:
    return Offer(
        method="stripe",
        intent="charge",
        description=description,
        request={
            "amount": str(micros_to_cents(amount_micros)),
            "currency": "usd",
            "description": description,
            "methodDetails": {
                "networkId": network_id,
                "paymentMethodTypes": PAYMENT_METHOD_TYPES,
            },
        },
    )


def card_payer(payment_intent: str) -> str:
    """The pseudo-address a card payment's account is opened for (nobody holds its key)."""
    return "0x" + hashlib.sha256(f"pryv:stripe-payer:{payment_intent}".encode()).hexdigest()[:40]


async def verify_stripe_charge(
    billing: StripeBilling,
    presented: PresentedCredential,
    network_id: str,
    claim: Callable[[str], Awaitable[bool]],
) -> PaidCharge:
    """Charge the credential's SPT for the challenge's amount. Raises PaymentProblem (and
    BillingUnavailable when Stripe cannot be reached: nothing was charged, retry)."""
    if presented.expired:
        raise PaymentProblem("invalid-challenge", "the challenge expired; pay a fresh one")
    request = presented.request
    details = request.get("methodDetails") or {}
    if request.get("currency") != "usd" or details.get("networkId") != network_id:
        raise PaymentProblem("invalid-challenge", "the challenge names other payment terms")
    cents = int(str(request.get("amount")))
    spt = presented.payload.get("spt")
    if not isinstance(spt, str) or not spt.startswith("spt_") or len(spt) > 200:
        raise PaymentProblem("malformed-credential", "payload.spt must be a Shared Payment Token")
    # Not fatal when taken: the PaymentIntent is idempotent on (challenge, token) and the
    # credit on the PaymentIntent, so a retry after a lost answer finds the same payment.
    await claim(presented.challenge_id)
    try:
        intent = await billing.charge_shared_token(
            spt=spt,
            amount_cents=cents,
            description=str(request.get("description") or "Pryv"),
            metadata={"mpp_challenge_id": presented.challenge_id},
            idempotency_key=f"{presented.challenge_id}_{spt}",
        )
    except SharedTokenRefused as exc:
        raise PaymentProblem("verification-failed", exc.message) from None
    if intent.get("status") != "succeeded":
        raise PaymentProblem(
            "verification-failed", f"the payment is {intent.get('status')}, not succeeded"
        )
    if intent.get("amount_received") != cents or intent.get("currency") != "usd":
        raise PaymentProblem("verification-failed", "Stripe charged another amount")
    pi = str(intent["id"])
    return PaidCharge(pi, card_payer(pi), cents * 10_000, method="stripe", env="live")
