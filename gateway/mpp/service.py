"""The paid flows under /mpp/*, on the one pipeline: a PII preview for a $0.05 charge, an API
key bought with a credit pack, and a chat paid from a stream channel as it streams.

Money enters the books as it does for cards: a charge is a credit to the payer's account
(`CreditPurchase` with source `tempo` and the transaction hash, once per transaction; on a
test chain a test-credit `CreditGrant`), then the preview is held and settled like any
request — on a key Pryv keeps for the payer's pay-per-call use, whose secret nobody sees.
A session's increments are `PaymentChannel.Spent` events. Every payer is an account: its
wallet is the paying address (`did:pkh:eip155:<chain>:<address>`), so the same wallet can
sign in to the dashboard and see it all.

Each unpaid or failed call answers 402 with fresh challenges; a call that was paid and then
refused is 403 and the payment stays credited to the payer's account.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from bootstrap.platform import Platform
from commands.chain import ChainRejected
from commands.metering import KeyIdentity
from commands.positions import wait_until_applied
from domain import ids, tempo
from domain.api_keys import derived_key_id
from domain.credit_packs import CreditPack
from domain.errors import ErrorKind, PryvError
from domain.evidence import Presented, mpp_payment
from domain.pricing import Usage, cost_micros, hold_micros
from domain.tokens import estimate_text_tokens
from gateway.accounts import create_key
from gateway.chat import ChatService
from gateway.chat_request import ChatCompletionRequest
from gateway.mpp.charge import Ledger, PaidCharge, charge_offer, verify_charge
from gateway.mpp.payment_auth import Offer, PaymentAuth, PresentedCredential
from gateway.mpp.problems import PaymentProblem
from gateway.mpp.session import (
    ChannelUpdate,
    SessionChannels,
    SessionStream,
    session_offer,
)
from gateway.mpp.stripe_charge import stripe_charge_offer, verify_stripe_charge
from gateway.preview import PREVIEW_PRICE_MICROS, PiiPreviewRequest, PreviewService
from infra.chain_memory import InMemoryChain
from infra.settings import PATH_USD
from projections import balance, keys, ratelimit_config

PREVIEW_PATH = "/mpp/pii/preview"
KEYS_PATH = "/mpp/keys"
CHAT_PATH = "/mpp/chat/completions"
FAUCET_MAX = 100_000_000  # 100 test USD a call
_CHALLENGE_CLAIMS = "mpp:challenge"  # the nonce store's namespace for spent challenge ids


class BuyKeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pack: str = Field(min_length=1, max_length=64, description="a credit pack id")
    name: str = Field(default="MPP key", min_length=1, max_length=100)
    models: list[str] = Field(default_factory=list, max_length=64)


@dataclass
class Paid:
    """A paid answer: its JSON body (None for a bare voucher), Payment-Receipt, headers."""

    body: dict[str, Any] | None
    receipt: str
    headers: dict[str, str] = field(default_factory=dict)


def challenge_secret(pepper: bytes) -> str:
    """The challenge-binding HMAC key, derived from the key pepper (one secret to keep)."""
    return hmac.new(pepper, b"pryv:mpp-challenge", hashlib.sha256).hexdigest()


class MppService:
    def __init__(
        self,
        platform: Platform,
        chat: ChatService,
        preview: PreviewService,
        *,
        voucher_wait: float | None = None,
    ) -> None:
        self.platform = platform
        self.chat = chat
        self.preview_service = preview
        settings = platform.settings
        realm = settings.mpp_realm or urlsplit(settings.public_url).hostname or "pryv"
        self.auth = PaymentAuth(challenge_secret(settings.key_pepper), realm)
        self.channels = (
            SessionChannels(platform)
            if voucher_wait is None
            else SessionChannels(platform, voucher_wait)
        )

    # --- offers (also what discovery lists) -------------------------------------------------

    def charge_offers(self, amount_micros: int, description: str) -> list[Offer]:
        """Tempo, and Stripe SPT when Stripe is configured with a Business Network profile."""
        offers = [charge_offer(self.platform.tempo, amount_micros, description)]
        network = self.platform.settings.stripe_network_id
        if self.platform.billing.configured and network:
            offers.append(stripe_charge_offer(network, amount_micros, description))
        return offers

    def preview_offers(self) -> list[Offer]:
        return self.charge_offers(PREVIEW_PRICE_MICROS, "Pryv PII preview")

    def key_offers(self, pack: CreditPack) -> list[Offer]:
        return self.charge_offers(pack.usd_micros, f"Pryv API key with credit pack {pack.id}")

    def chat_offer(self, body: ChatCompletionRequest | None) -> Offer:
        """The session offer for the model `body` names (the catalog's first usable model for
        discovery); `suggestedDeposit` covers this request's worst case."""
        env = self.platform.tempo.env
        if body is not None:
            model = self.chat.model_for(env, body)
        else:  # a bare voucher: any model the chain's money may use names the offer
            usable = [m for m in self.platform.catalog.models if m.usable_by(env)]
            if not usable:
                raise PryvError(
                    f"no model is offered to {env} MPP sessions",
                    code="model_not_allowed",
                    kind=ErrorKind.PERMISSION,
                )
            model = usable[0]
        prompt = estimate_text_tokens(body.prompt_text()) if body is not None else 1000
        deposit = hold_micros(model, prompt, model.max_output_tokens)
        return session_offer(self.platform.tempo, model, deposit)

    def pack(self, pack_id: str) -> CreditPack:
        for pack in self.platform.credit_packs:
            if pack.id == pack_id:
                return pack
        known = ", ".join(p.id for p in self.platform.credit_packs)
        raise PryvError(f"unknown credit pack {pack_id!r}; one of {known}", param="pack")

    # --- challenges -------------------------------------------------------------------------

    def challenged(
        self, problem: PaymentProblem, offers: list[Offer], path: str, body: bytes | None
    ) -> PaymentProblem:
        """`problem` with fresh challenges for `offers` (402s only)."""
        if problem.status == 402:
            challenges = [self.auth.issue(offer, path, body) for offer in offers]
            problem.challenges = [self.auth.header(c) for c in challenges]
            problem.challenge_id = challenges[0].id
        return problem

    def _required(self, offers: list[Offer], path: str, body: bytes | None) -> PaymentProblem:
        return self.challenged(
            PaymentProblem("payment-required", "this resource is paid per call; pay a challenge"),
            offers,
            path,
            body,
        )

    async def _claim(self, challenge_id: str) -> bool:
        return await self.platform.nonces.claim(_CHALLENGE_CLAIMS, challenge_id, datetime.now(UTC))

    async def _credited(self, tx_hash: str) -> bool:
        app = self.platform.app
        if self.platform.tempo.env == "live":
            return await asyncio.to_thread(app.has_purchase, tx_hash)
        return await asyncio.to_thread(app.has_grant, f"tempo:{tx_hash}")

    async def _charge(
        self, authorization: str | None, offers: list[Offer], path: str, body: bytes
    ) -> PaidCharge:
        if authorization is None:
            raise self._required(offers, path, body)
        try:
            presented = self.auth.read(authorization, path=path, offers=offers, body=body)
            if presented.credential.challenge.method == "stripe":
                return await verify_stripe_charge(
                    self.platform.billing,
                    presented,
                    self.platform.settings.stripe_network_id or "",
                    self._claim,
                )
            return await verify_charge(
                self.platform.chain,
                presented,
                self.platform.tempo,
                Ledger(self._claim, self._credited),
            )
        except ChainRejected as exc:  # the node refused a read: nothing was verified
            problem = PaymentProblem("verification-failed", f"the chain refused: {exc.message}")
            raise self.challenged(problem, offers, path, body) from None
        except PaymentProblem as problem:
            raise self.challenged(problem, offers, path, body) from None

    def _env(self, paid: PaidCharge) -> str:
        return paid.env or self.platform.tempo.env

    @staticmethod
    def _evidence(paid: PaidCharge) -> Presented:
        """The payment itself authorizes what it buys (credit, a key)."""
        return mpp_payment(paid.method, paid.tx_hash)

    async def _credit(
        self, paid: PaidCharge, credits_micros: int, offers: list[Offer], path: str, body: bytes
    ) -> int:
        """Credit the payment to the payer's account once; its log position."""
        app = self.platform.app
        if self._env(paid) == "live":
            result = await asyncio.to_thread(
                app.record_purchase,
                source_id=paid.tx_hash,
                wallet=paid.payer,
                usd_micros=paid.amount,
                credits_micros=credits_micros,
                source=paid.method,
                payment_intent=paid.tx_hash if paid.method == "stripe" else None,
                evidence=self._evidence(paid),
            )
        else:
            result = await asyncio.to_thread(
                app.grant_credits,
                wallet=paid.payer,
                env="test",
                amount_micros=credits_micros,
                reason="mpp test-chain payment",
                granted_by="mpp",
                grant_ref=f"{paid.method}:{paid.tx_hash}",
                authorization=self._evidence(paid),
            )
        if result.duplicate or result.position is None:
            raise self.challenged(
                PaymentProblem("verification-failed", "this payment was already used"),
                offers,
                path,
                body,
            )
        await self._applied(balance.NAME, result.position)
        return result.position

    async def _applied(self, projection: str, position: int) -> None:
        await wait_until_applied(
            self.platform.read_store,
            projection,
            position,
            self.platform.settings.revocation_wait_seconds,
        )

    def _payer(self, paid: PaidCharge) -> str:
        """The payer as a DID for a chain payment; a card payer's pseudo-address."""
        if paid.method == "tempo":
            return tempo.did_pkh(self.platform.tempo.chain_id, paid.payer)
        return paid.payer

    def _receipt(self, paid: PaidCharge) -> str:
        return self.auth.receipt(paid.tx_hash, method=paid.method, payer=self._payer(paid))

    def _refused(self, error: PryvError, paid: PaidCharge) -> PaymentProblem:
        """Paid, then refused: 403; the money stays on the payer's account."""
        payer = self._payer(paid)
        return PaymentProblem(
            "payment-refused",
            f"{error.message} (the payment is credited to {payer}'s Pryv account)",
            status=403,
            extra={"code": error.code, "reference": paid.tx_hash},
        )

    # --- the paid preview ---------------------------------------------------------------------

    async def paid_preview(
        self,
        authorization: str | None,
        raw_body: bytes,
        body: PiiPreviewRequest,
        request_id: str,
    ) -> Paid:
        offers = self.preview_offers()
        paid = await self._charge(authorization, offers, PREVIEW_PATH, raw_body)
        await self._credit(paid, PREVIEW_PRICE_MICROS, offers, PREVIEW_PATH, raw_body)
        try:
            identity = await self._service_key(paid)
            result = await self.preview_service.preview(identity, body, f"mpp-{paid.tx_hash}")
        except PryvError as error:
            raise self._refused(error, paid) from None
        return Paid(result.body, self._receipt(paid), dict(result.metadata))

    async def _service_key(self, paid: PaidCharge) -> KeyIdentity:
        """The key a wallet's pay-per-call requests are metered on (created on first use,
        authorized by the payment that first used it)."""
        platform = self.platform
        wallet, env = paid.payer, self._env(paid)
        key_id = derived_key_id(platform.settings.key_pepper, f"mpp:{env}:{wallet}")
        result = await asyncio.to_thread(
            platform.app.ensure_service_key,
            wallet=wallet,
            key_id=key_id,
            name="MPP pay-per-call",
            env=env,
            pepper=platform.settings.key_pepper,
            authorization=self._evidence(paid),
        )
        if result.position is not None:
            await self._applied(keys.NAME, result.position)
            await self._applied(ratelimit_config.NAME, result.position)
        return KeyIdentity(key_id, str(ids.api_key_id(key_id)), str(ids.account_id(wallet)), env)

    # --- buying a key -------------------------------------------------------------------------

    async def buy_key(
        self, authorization: str | None, raw_body: bytes, body: BuyKeyRequest
    ) -> Paid:
        pack = self.pack(body.pack)
        offers = self.key_offers(pack)
        for model in body.models:
            if self.platform.catalog.get(model) is None:
                raise PryvError(f"unknown model {model!r}", code="invalid_model", param="models")
        paid = await self._charge(authorization, offers, KEYS_PATH, raw_body)
        await self._credit(paid, pack.credits_micros, offers, KEYS_PATH, raw_body)
        try:
            created = await create_key(
                self.platform,
                paid.payer,
                name=body.name,
                env=self._env(paid),
                models=body.models,
                rpm=None,
                tpm=None,
                monthly_budget_usd=None,
                expires_at=None,
                expires_in_days=None,
                authorization=self._evidence(paid),
            )
        except PryvError as error:
            raise self._refused(error, paid) from None
        return Paid(
            {
                **created,
                "account": self._payer(paid),
                "pack": pack.public(),
                "reference": paid.tx_hash,
            },
            self._receipt(paid),
        )

    # --- test money -----------------------------------------------------------------------------

    async def faucet(self, address: str, amount: int) -> dict[str, Any]:
        """Mint test tokens on the in-memory chain (there is nothing to mint on a real one)."""
        chain, currency = self.platform.chain, self.platform.tempo.currency
        if not isinstance(chain, InMemoryChain):
            raise PryvError(
                "there is no faucet on a real chain", code="not_found", kind=ErrorKind.NOT_FOUND
            )
        try:
            owner = tempo.address(address)
        except tempo.TempoFormatError as exc:
            raise PryvError(exc.message, code="invalid_params", param="address") from None
        if not 0 < amount <= FAUCET_MAX:
            raise PryvError(f"amount must be 1..{FAUCET_MAX} base units", param="amount")
        chain.mint(currency, owner, amount)
        return {
            "object": "mpp.faucet",
            "address": owner,
            "token": currency,
            "amount": str(amount),
            "balance": str(chain.balance(currency, owner)),
        }

    # --- the session chat ---------------------------------------------------------------------

    async def session(
        self,
        authorization: str | None,
        body: ChatCompletionRequest | None,
        request_id: str,
    ) -> Paid | SessionStream:
        """A voucher, top-up or close (no body): the channel's receipt. A chat (`body`): a
        SessionStream paid from the credential's channel."""
        if body is not None:
            if not body.stream:
                raise PryvError(
                    "an MPP session pays a stream: set stream to true (or buy a key at "
                    "/mpp/keys for one-shot calls)",
                    param="stream",
                )
            self.chat.model_for(self.platform.tempo.env, body)
        offers = [self.chat_offer(body)]
        if authorization is None:
            raise self._required(offers, CHAT_PATH, None)
        try:
            presented = self.auth.read(authorization, path=CHAT_PATH, offers=offers, body=None)
            update = await self.channels.apply(presented)
        except ChainRejected as exc:
            problem = PaymentProblem("verification-failed", f"the chain refused: {exc.message}")
            raise self.challenged(problem, offers, CHAT_PATH, None) from None
        except PaymentProblem as problem:
            raise self.challenged(problem, offers, CHAT_PATH, None) from None
        if body is None or update.action in ("close", "topUp"):  # these answer a receipt
            return self._channel_receipt(update, presented)
        return await self._stream(update, presented, body, request_id, offers)

    def _channel_receipt(self, update: ChannelUpdate, presented: PresentedCredential) -> Paid:
        channel = update.channel
        fields = self.channels.receipt_fields(
            channel, presented.challenge_id, txHash=update.tx_hash
        )
        return Paid(
            {
                "object": "mpp.session",
                "action": update.action,
                "deposit": str(channel.deposit),
                "closed": channel.closed,
                **fields,
            },
            self.auth.receipt(channel.channel_id, **fields),
        )

    async def _stream(
        self,
        update: ChannelUpdate,
        presented: PresentedCredential,
        body: ChatCompletionRequest,
        request_id: str,
        offers: list[Offer],
    ) -> SessionStream:
        channel = update.channel
        if channel.closed:
            raise PaymentProblem("session/channel-finalized", "the channel is closed", status=410)
        model = self.chat.model_for(self.platform.tempo.env, body)
        if not update.raised:
            # A credential seen before (a captured header, a client's blind retry) must not
            # start another stream on the channel's remaining balance.
            raise self.challenged(
                PaymentProblem(
                    "verification-failed",
                    f"a stream starts with a voucher above the accepted one ({channel.accepted})",
                    extra={"channelId": channel.channel_id},
                ),
                offers,
                CHAT_PATH,
                None,
            )
        private = await self.chat.prepare(model, channel.account_id, body)
        # The prompt is paid before the upstream sees it; the answer as it streams.
        needed = channel.spent + cost_micros(model, Usage(private.prompt_tokens, 0))
        if channel.accepted < needed:
            raise self.challenged(
                PaymentProblem(
                    "session/insufficient-balance",
                    f"the prompt costs {needed - channel.spent}; the accepted voucher leaves "
                    f"{channel.available}",
                    extra={
                        "channelId": channel.channel_id,
                        "requiredCumulative": str(needed),
                        "requiredTopUp": str(needed - channel.accepted),
                    },
                ),
                offers,
                CHAT_PATH,
                None,
            )
        stream = SessionStream(
            self.channels,
            channel,
            private,
            request_id=request_id,
            challenge_id=presented.challenge_id,
            wants_usage=body.wants_usage_chunk(),
            receipt=self.auth.receipt,
        )
        try:
            await stream.pay_prompt()  # before the upstream sees it
        except PaymentProblem as problem:
            raise self.challenged(problem, offers, CHAT_PATH, None) from None
        return stream


def payment_info(platform: Platform | None) -> dict[str, dict[str, Any]]:
    """Each paid operation's `x-payment-info` (draft-payment-discovery), by path; without a
    platform (the document built from the routes alone), the default terms."""
    currency = platform.tempo.currency if platform is not None else PATH_USD
    packs = (
        ", ".join(f"{p.id} ({p.public()['usd']} USD)" for p in platform.credit_packs)
        if platform is not None
        else "see GET /api/v1/billing/credit-packs"
    )

    def offer(intent: str, amount: str | None, description: str) -> dict[str, Any]:
        return {
            "intent": intent,
            "method": "tempo",
            "amount": amount,
            "currency": currency,
            "description": description,
        }

    stripe = (
        platform is not None
        and platform.billing.configured
        and platform.settings.stripe_network_id is not None
    )

    def card(amount: str | None, description: str) -> list[dict[str, Any]]:
        if not stripe:
            return []
        return [
            {
                "intent": "charge",
                "method": "stripe",
                "amount": amount,
                "currency": "usd",
                "description": description,
            }
        ]

    preview_cents = str(PREVIEW_PRICE_MICROS // 10_000)
    return {
        PREVIEW_PATH: {
            "offers": [
                offer("charge", str(PREVIEW_PRICE_MICROS), "one PII preview, $0.05"),
                *card(preview_cents, "one PII preview, $0.05 (a Shared Payment Token)"),
            ]
        },
        KEYS_PATH: {
            "offers": [
                offer("charge", None, f"the price of the chosen credit pack: {packs}"),
                *card(None, f"the chosen credit pack's price in cents: {packs}"),
            ]
        },
        CHAT_PATH: {
            "offers": [offer("session", None, "per token as it streams, at the model's prices")]
        },
    }
