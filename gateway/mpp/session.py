"""Tempo `session` (draft-tempo-session-00): a stream channel pays for a chat as it streams.

`SessionChannels.apply` runs a credential's action — `open` (broadcast the client's signed
open transaction, check the escrow's state), `topUp`, `voucher`, `close` (the payee signs the
escrow close for exactly what was spent) — on the `PaymentChannel` aggregate, whose events are
the money truth. Vouchers are verified against the escrow's state (signer = authorized signer
or payer, EIP-712 with the escrow as verifying contract, low s), never against what the
payload claims.

`SessionStream` relays the upstream's chunks and, before each one, appends a `Spent` event
raising `spent` to the cost of everything delivered so far (the prompt with the first chunk).
When the accepted voucher does not cover the next chunk it emits `payment-need-voucher` and
pauses until a voucher (a request to the same resource, from any process) raises it, or ends
after `voucher_wait` seconds. Nothing is delivered that a persisted voucher does not cover.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from bootstrap.platform import Platform
from commands.chain import ChainRejected
from domain import ids, tempo
from domain.aggregates import DomainRuleViolation, PaymentChannel
from domain.catalog import ModelSpec
from domain.errors import PryvError
from domain.pricing import Usage, cost_micros
from domain.tempo import ChannelState, TempoFormatError, TempoTerms
from domain.tokens import estimate_text_tokens
from gateway.chat import PrivateRequest
from gateway.mpp.payment_auth import Offer, PresentedCredential
from gateway.mpp.problems import PaymentProblem
from infra.ethereum import decode_transaction, recover_typed_signer, sign_transaction
from infra.upstreams import UpstreamError
from privacy.restore import StreamRestorers

log = logging.getLogger("pryv.mpp")

VOUCHER_WAIT_SECONDS = 60.0  # the draft's example of a reasonable pause
_POLL_SECONDS = 0.05
ACTIONS = ("open", "topUp", "voucher", "close")


def session_offer(terms: TempoTerms, model: ModelSpec, suggested_deposit: int) -> Offer:
    """A session challenge for `model`: `amount` per `llm_token`, rounded up to whole base
    units (the exact charge is the model's prices over the tokens, docs/mpp.md)."""
    unit = max(
        1, math.ceil(max(model.input_micros_per_million, model.output_micros_per_million) / 1e6)
    )
    return Offer(
        method="tempo",
        intent="session",
        description=f"{model.id}, paid per token as it streams",
        request={
            "amount": str(unit),
            "unitType": "llm_token",
            "suggestedDeposit": str(suggested_deposit),
            "currency": terms.currency,
            "recipient": terms.recipient,
            "methodDetails": {"escrowContract": terms.escrow, "chainId": terms.chain_id},
        },
    )


@dataclass(frozen=True)
class ChannelUpdate:
    """A channel after a credential's action; `tx_hash` for on-chain actions."""

    channel: PaymentChannel
    action: str
    tx_hash: str | None = None
    raised: bool = False  # this credential raised the accepted voucher


def _problem_of(exc: DomainRuleViolation, channel_id: str) -> PaymentProblem:
    slugs = {
        "amount_exceeds_deposit": ("session/amount-exceeds-deposit", 402),
        "channel_finalized": ("session/channel-finalized", 410),
        "insufficient_balance": ("session/insufficient-balance", 402),
        "voucher_below_accepted": ("verification-failed", 402),
    }
    slug, status = slugs.get(exc.code, ("verification-failed", 402))
    return PaymentProblem(slug, exc.message, status=status, extra={"channelId": channel_id})


class SessionChannels:
    """The session actions on the platform's chain and event store."""

    def __init__(self, platform: Platform, voucher_wait: float = VOUCHER_WAIT_SECONDS) -> None:
        self.platform = platform
        self.terms = platform.tempo
        self.chain = platform.chain
        self.voucher_wait = voucher_wait

    # --- reading the log -------------------------------------------------------------------

    async def channel(self, channel_id: str) -> PaymentChannel | None:
        return await asyncio.to_thread(self.platform.app.payment_channel, channel_id)

    async def _change(
        self, channel_id: str, change: Any, known: PaymentChannel | None = None
    ) -> PaymentChannel:
        try:
            channel, _ = await asyncio.to_thread(
                self.platform.app.change_channel, channel_id, change, known
            )
        except DomainRuleViolation as exc:
            raise _problem_of(exc, channel_id) from None
        return channel

    # --- actions ---------------------------------------------------------------------------

    async def apply(self, presented: PresentedCredential) -> ChannelUpdate:
        payload = presented.payload
        action = payload.get("action")
        if action not in ACTIONS:
            raise PaymentProblem(
                "bad-request", f"payload.action must be one of {', '.join(ACTIONS)}", status=400
            )
        try:
            channel_id = tempo.bytes32(payload.get("channelId"), "payload.channelId")
        except TempoFormatError as exc:
            raise PaymentProblem("malformed-credential", exc.message) from None
        if action == "open":
            if presented.expired:
                raise PaymentProblem("invalid-challenge", "the challenge expired; ask a fresh one")
            return await self._open(channel_id, payload)
        channel = await self.channel(channel_id)
        if channel is None:
            raise PaymentProblem(
                "session/channel-not-found", "no open channel with this id", status=410
            )
        if channel.closed:
            raise PaymentProblem("session/channel-finalized", "the channel is closed", status=410)
        if action == "topUp":
            if presented.expired:
                raise PaymentProblem(
                    "session/challenge-not-found", "the challenge expired; ask a fresh one"
                )
            return await self._top_up(channel, payload)
        cumulative, signature = self._voucher_fields(payload)
        state = await self._verified_state(channel, cumulative, signature)
        if action == "close":
            return await self._close(channel, state, cumulative, signature)
        before = channel.accepted
        channel = await self._accept(channel, state, cumulative, signature)
        return ChannelUpdate(channel, "voucher", raised=channel.accepted > before)

    def _voucher_fields(self, payload: dict[str, Any]) -> tuple[int, str]:
        try:
            cumulative = tempo.base_units(payload.get("cumulativeAmount"), "cumulativeAmount")
            raw = tempo.signature_bytes(payload.get("signature"))
        except TempoFormatError as exc:
            raise PaymentProblem("session/invalid-signature", exc.message) from None
        return cumulative, "0x" + raw.hex()

    async def _verified_state(
        self, channel: PaymentChannel, cumulative: int, signature: str
    ) -> ChannelState:
        """The escrow's state of `channel`, once the voucher is proven signed by its signer
        (a closing channel's close may find it already closed on chain: a retry)."""
        state = await self.chain.channel(self.terms.escrow, channel.channel_id)
        if state is None:
            raise PaymentProblem(
                "session/channel-not-found", "the escrow knows no such channel", status=410
            )
        if state.finalized and not channel.closing:
            raise PaymentProblem("session/channel-finalized", "the channel is closed", status=410)
        if state.close_requested_at:
            raise PaymentProblem(
                "session/channel-finalized", "the payer asked the escrow to close the channel"
            )
        typed = tempo.voucher_typed_data(
            channel=channel.channel_id,
            cumulative=cumulative,
            escrow=self.terms.escrow,
            chain_id=self.terms.chain_id,
        )
        try:
            signer = recover_typed_signer(typed, bytes.fromhex(signature[2:]))
        except ValueError as exc:
            raise PaymentProblem("session/invalid-signature", str(exc)) from None
        if signer != state.signer:
            raise PaymentProblem(
                "session/signer-mismatch",
                "the voucher is not signed by this channel's signer",
                extra={"channelId": channel.channel_id},
            )
        return state

    async def _accept(
        self, channel: PaymentChannel, state: ChannelState, cumulative: int, signature: str
    ) -> PaymentChannel:
        def accept(current: PaymentChannel) -> None:
            if state.deposit > current.deposit:  # topped up on chain directly
                current.top_up(state.deposit, "")
            current.accept_voucher(cumulative, signature)

        return await self._change(channel.channel_id, accept, channel)

    def _transaction(self, payload: dict[str, Any]) -> tuple[bytes, Any, tempo.Call]:
        raw_hex = payload.get("transaction")
        if payload.get("type") != "transaction" or not isinstance(raw_hex, str):
            raise PaymentProblem(
                "malformed-credential", 'payload needs type "transaction" and a transaction'
            )
        try:
            raw = bytes.fromhex(raw_hex.removeprefix("0x"))
            tx = decode_transaction(raw)
        except ValueError as exc:
            raise PaymentProblem("verification-failed", str(exc)) from None
        call = tempo.decode_call(tx.data)
        if tx.chain_id != self.terms.chain_id or tx.to != self.terms.escrow or call is None:
            raise PaymentProblem(
                "verification-failed", f"the transaction must call the escrow {self.terms.escrow}"
            )
        return raw, tx, call

    async def _broadcast(self, raw: bytes) -> str:
        try:
            return await self.chain.send_raw_transaction(raw)
        except ChainRejected as exc:
            raise PaymentProblem(
                "verification-failed", f"the chain refused it: {exc.message}"
            ) from None

    async def _open(self, channel_id: str, payload: dict[str, Any]) -> ChannelUpdate:
        terms = self.terms
        raw, tx, call = self._transaction(payload)
        if call.name != "open":
            raise PaymentProblem("verification-failed", "the transaction must call open()")
        payee, token, _deposit, salt, signer = call.args
        if payee != terms.recipient or token != terms.currency:
            raise PaymentProblem(
                "verification-failed", f"the channel must pay {terms.recipient} in {terms.currency}"
            )
        computed = tempo.channel_id(
            payer=tx.sender,
            payee=payee,
            token=token,
            salt=salt,
            authorized_signer=signer,
            escrow=terms.escrow,
            chain_id=terms.chain_id,
        )
        if computed != channel_id:
            raise PaymentProblem(
                "verification-failed", "channelId does not match the open transaction"
            )
        claimed_signer = payload.get("authorizedSigner")
        if claimed_signer is not None and str(claimed_signer).lower() not in (signer, tx.sender):
            raise PaymentProblem("verification-failed", "authorizedSigner is not the calldata's")
        channel = await self.channel(channel_id)
        tx_hash = None
        if channel is None:
            state = await self.chain.channel(terms.escrow, channel_id)
            if state is None:
                tx_hash = await self._broadcast(raw)
                state = await self.chain.channel(terms.escrow, channel_id)
            if state is None or state.finalized or state.payer != tx.sender:
                raise PaymentProblem("verification-failed", "the escrow holds no such channel")
            opened = PaymentChannel(
                channel_id=channel_id,
                chain_id=terms.chain_id,
                escrow=terms.escrow,
                token=state.token,
                payer=state.payer,
                payee=state.payee,
                authorized_signer=state.authorized_signer,
                deposit=state.deposit,
                open_tx=tx_hash or tx.tx_hash,
                account_id=str(ids.account_id(state.payer)),
                wallet=state.payer,
                env=terms.env,
            )
            await asyncio.to_thread(self.platform.app.open_channel, opened)
            channel = await self.channel(channel_id)
            assert channel is not None
        cumulative, signature = self._voucher_fields(payload)
        state = await self._verified_state(channel, cumulative, signature)
        before = channel.accepted
        channel = await self._accept(channel, state, cumulative, signature)
        return ChannelUpdate(channel, "open", tx_hash, raised=channel.accepted > before)

    async def _top_up(self, channel: PaymentChannel, payload: dict[str, Any]) -> ChannelUpdate:
        raw, tx, call = self._transaction(payload)
        try:
            additional = tempo.base_units(payload.get("additionalDeposit"), "additionalDeposit")
        except TempoFormatError as exc:
            raise PaymentProblem("malformed-credential", exc.message) from None
        if (
            call.name != "topUp"
            or call.args != (channel.channel_id, additional)
            or tx.sender != channel.payer
        ):
            raise PaymentProblem(
                "verification-failed", "the transaction must be the payer's topUp of this channel"
            )
        tx_hash = await self._broadcast(raw)
        state = await self.chain.channel(self.terms.escrow, channel.channel_id)
        if state is None or state.deposit <= channel.deposit:
            raise PaymentProblem("verification-failed", "the escrow shows no higher deposit")
        deposit = state.deposit
        channel = await self._change(
            channel.channel_id, lambda c: c.top_up(deposit, tx_hash), channel
        )
        return ChannelUpdate(channel, "topUp", tx_hash)

    async def _close(
        self, channel: PaymentChannel, state: ChannelState, cumulative: int, signature: str
    ) -> ChannelUpdate:
        """Close on chain capturing exactly `spent` (never more than was served): the close
        voucher must be for that amount."""
        if cumulative != channel.spent:
            raise PaymentProblem(
                "verification-failed",
                f"the close voucher must be for exactly the amount spent, {channel.spent}",
                extra={"channelId": channel.channel_id, "spent": str(channel.spent)},
            )
        channel, tx_hash = await self._close_on_chain(channel, state, cumulative, signature)
        return ChannelUpdate(channel, "close", tx_hash or None)

    async def _close_on_chain(
        self, channel: PaymentChannel, state: ChannelState, cumulative: int, signature: str
    ) -> tuple[PaymentChannel, str]:
        """`CloseStarted` (every stream stops spending), the escrow close with the voucher
        for `cumulative`, the payer refunded whatever that captured beyond `spent`, then
        `Closed`. A failed broadcast leaves the channel closing: a retry finishes it."""
        channel = await self._change(
            channel.channel_id,
            lambda c: c.start_close(c.captured if c.closing else c.spent),
            channel,
        )
        tx_hash = refund_tx = ""
        if not state.finalized:
            tx_hash = await self._payee_send(
                self.terms.escrow,
                tempo.close_call(channel.channel_id, cumulative, bytes.fromhex(signature[2:])),
            )
            excess = cumulative - channel.captured
            if excess > 0:
                refund_tx = await self._payee_send(
                    channel.token, tempo.transfer_call(channel.payer, excess)
                )
        after = await self.chain.channel(self.terms.escrow, channel.channel_id)
        settled = after.settled if after is not None else 0
        channel = await self._change(
            channel.channel_id,
            lambda c: c.close(tx_hash=tx_hash, settled=settled, refund_tx=refund_tx),
            channel,
        )
        return channel, tx_hash

    async def _payee_send(self, to: str, data: bytes) -> str:
        chain = self.chain
        raw = sign_transaction(
            self.platform.payee_key,
            {
                "chainId": self.terms.chain_id,
                "nonce": await chain.nonce(self.terms.recipient),
                "to": to,
                "value": 0,
                "gas": 300_000,
                "maxFeePerGas": await chain.gas_price(),
                "maxPriorityFeePerGas": 0,
                "data": data,
            },
        )
        return await self._broadcast(raw)

    async def secure(self, channel_id: str) -> bool:
        """If the payer asked the escrow to close `channel_id` (a forced close, which would
        let them withdraw everything after the grace period), close it now with the highest
        voucher and refund what that captures beyond what was spent. True if it acted."""
        channel = await self.channel(channel_id)
        if channel is None or channel.closed:
            return False
        state = await self.chain.channel(self.terms.escrow, channel_id)
        if state is None or not (state.close_requested_at or state.finalized or channel.closing):
            return False
        log.warning("channel %s: the payer is forcing a close; settling it now", channel_id)
        if channel.spent == 0:  # nothing was served: the whole deposit is the payer's
            await self._change(channel_id, lambda c: c.start_close(0), channel)
            await self._change(channel_id, lambda c: c.close(tx_hash="", settled=0))
            return True
        await self._close_on_chain(channel, state, channel.accepted, channel.signature)
        return True

    # --- metering a stream -----------------------------------------------------------------

    async def spend(
        self,
        channel: PaymentChannel,
        amount: int,
        *,
        request_id: str,
        model: str,
        tokens_in: int,
        tokens_out: int,
    ) -> PaymentChannel:
        """Append `Spent` raising the channel's spent by `amount` (raises PaymentProblem
        session/insufficient-balance if no accepted voucher covers it)."""
        return await self._change(
            channel.channel_id,
            lambda c: c.spend(
                amount=amount,
                request_id=request_id,
                model=model,
                tokens_in=tokens_in,
                tokens_out=tokens_out,
            ),
            channel,
        )

    async def wait_for_voucher(self, channel: PaymentChannel, need: int) -> PaymentChannel:
        """The channel once an accepted voucher covers `need`, it closed, or the wait ended."""
        deadline = time.monotonic() + self.voucher_wait
        app = self.platform.app
        while channel.accepted < need and not channel.closed and time.monotonic() < deadline:
            await asyncio.sleep(_POLL_SECONDS)
            channel = await asyncio.to_thread(app.refresh_channel, channel)
        return channel

    def receipt_fields(
        self, channel: PaymentChannel, challenge_id: str, **more: Any
    ) -> dict[str, Any]:
        return {
            "intent": "session",
            "challengeId": challenge_id,
            "channelId": channel.channel_id,
            "acceptedCumulative": str(channel.accepted),
            "spent": str(channel.spent),
            **{k: v for k, v in more.items() if v is not None},
        }


@dataclass(frozen=True)
class SessionItem:
    """One thing the stream sends: a completion chunk, a `payment-need-voucher` or
    `payment-receipt` event, or an `error`."""

    kind: Literal["chunk", "payment-need-voucher", "payment-receipt", "error"]
    data: dict[str, Any]


class SessionStream:
    """A chat answer paid from a channel as it streams (see the module docstring).

    `charged` is what this stream has billed so far; each increment spends its difference
    from the cost of everything delivered, so several streams on one channel each pay for
    their own."""

    def __init__(
        self,
        channels: SessionChannels,
        channel: PaymentChannel,
        private: PrivateRequest,
        *,
        request_id: str,
        challenge_id: str,
        wants_usage: bool,
        receipt: Any,
    ) -> None:
        self.channels = channels
        self.channel = channel
        self.private = private
        self.request_id = request_id
        self.challenge_id = challenge_id
        self.wants_usage = wants_usage
        self.charged = 0
        self.covered = True
        self.initial_receipt = receipt(
            channel.channel_id, **channels.receipt_fields(channel, challenge_id)
        )

    async def pay_prompt(self) -> None:
        """Spend the prompt's cost before the upstream sees it (PaymentProblem
        session/insufficient-balance when the accepted voucher does not cover it)."""
        private = self.private
        cost = cost_micros(private.model, Usage(private.prompt_tokens, 0))
        if cost > 0:
            self.channel = await self.channels.spend(
                self.channel,
                cost,
                request_id=self.request_id,
                model=private.model.id,
                tokens_in=private.prompt_tokens,
                tokens_out=0,
            )
        self.charged = cost

    def __aiter__(self) -> AsyncIterator[SessionItem]:
        return self._items()

    async def _cover(self, total: int, tokens_out: int) -> AsyncGenerator[SessionItem, None]:
        """Persist this stream's cost up to `total` before what it pays for is delivered,
        pausing for a voucher when the accepted one does not cover it. Leaves `covered`
        False if none came in time (or the channel closed)."""
        self.covered = True
        app = self.channels.platform.app
        while (need := total - self.charged) > 0:
            channel = self.channel
            if channel.available >= need:
                try:
                    self.channel = await self.channels.spend(
                        channel,
                        need,
                        request_id=self.request_id,
                        model=self.private.model.id,
                        tokens_in=0,
                        tokens_out=tokens_out,
                    )
                    self.charged = total
                    return
                except PaymentProblem as exc:
                    if exc.slug != "session/insufficient-balance":
                        raise
                    self.channel = await asyncio.to_thread(app.refresh_channel, channel)
                    continue
            required = channel.spent + need
            yield SessionItem(
                "payment-need-voucher",
                {
                    "channelId": channel.channel_id,
                    "requiredCumulative": str(required),
                    "acceptedCumulative": str(channel.accepted),
                    "deposit": str(channel.deposit),
                },
            )
            self.channel = channel = await self.channels.wait_for_voucher(channel, required)
            if channel.closed or channel.closing or channel.accepted < required:
                self.covered = False
                return

    async def _items(self) -> AsyncGenerator[SessionItem, None]:
        private, model = self.private, self.private.model
        upstream = aiter(
            self.channels.platform.upstreams.for_model(model).stream(model, private.prepared.body)
        )
        vault = private.prepared.vault
        restorers = StreamRestorers(vault) if vault is not None else None
        streamed: list[str] = []
        reported: Any = None
        out_tokens = 0
        try:
            try:
                chunk: dict[str, Any] | None = await anext(upstream, None)
                while chunk is not None:
                    if chunk.get("usage") is not None:
                        reported = chunk["usage"]
                        if not self.wants_usage:
                            chunk = {k: v for k, v in chunk.items() if k != "usage"}
                    streamed.extend(delivered_text(chunk))
                    out_tokens = estimate_text_tokens("".join(streamed))
                    total = cost_micros(model, Usage(private.prompt_tokens, out_tokens))
                    async for item in self._cover(total, out_tokens):
                        yield item
                    if not self.covered:
                        break
                    if chunk.get("choices") or "usage" in chunk:
                        chunk["model"] = model.id
                        if restorers is not None:
                            restorers.chunk(chunk)
                        yield SessionItem("chunk", chunk)
                    chunk = await anext(upstream, None)
                else:
                    if restorers is not None:
                        for index, text in restorers.leftovers().items():
                            yield SessionItem("chunk", _text_chunk(model.id, index, text))
                    # The upstream's own count, when it is higher than ours, is owed too.
                    usage = _reported_usage(reported)
                    if usage is not None:
                        async for item in self._cover(cost_micros(model, usage), 0):
                            yield item
                        out_tokens = max(out_tokens, usage.completion_tokens)
            except UpstreamError as exc:
                yield SessionItem(
                    "error",
                    {
                        "error": {
                            "message": f"the model server failed: {exc.message}",
                            "type": "api_error",
                            "code": "upstream_error",
                        }
                    },
                )
            except PaymentProblem as problem:  # the channel closed, or changed too often
                yield SessionItem("error", problem.body())
            except PryvError as error:
                yield SessionItem(
                    "error", {"error": {"message": error.message, "code": error.code}}
                )
            # The receipt states the log's truth, read afresh.
            latest = await asyncio.to_thread(
                self.channels.platform.app.payment_channel, self.channel.channel_id
            )
            yield SessionItem(
                "payment-receipt",
                {
                    "method": "tempo",
                    "status": "success",
                    "reference": self.channel.channel_id,
                    "timestamp": _now(),
                    **self.channels.receipt_fields(
                        latest or self.channel, self.challenge_id, units=out_tokens
                    ),
                },
            )
        finally:
            closing = getattr(upstream, "aclose", None)
            if closing is not None:
                with contextlib.suppress(Exception):
                    await closing()


def delivered_text(chunk: dict[str, Any]) -> list[str]:
    """Everything a chunk delivers that costs output tokens: content, refusals, reasoning,
    tool-call names and arguments (metered as they stream, not only at the end)."""
    texts: list[str] = []
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if not isinstance(delta, dict):
            continue
        for name in ("content", "refusal", "reasoning", "reasoning_content"):
            if isinstance(delta.get(name), str):
                texts.append(delta[name])
        for call in delta.get("tool_calls") or []:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                texts.extend(str(function[k]) for k in ("name", "arguments") if function.get(k))
    return texts


def _reported_usage(reported: Any) -> Usage | None:
    if isinstance(reported, dict) and isinstance(reported.get("prompt_tokens"), int):
        completion = reported.get("completion_tokens")
        return Usage(reported["prompt_tokens"], completion if isinstance(completion, int) else 0)
    return None


def _text_chunk(model_id: str, index: int, text: str) -> dict[str, Any]:
    return {
        "object": "chat.completion.chunk",
        "model": model_id,
        "choices": [{"index": index, "delta": {"content": text}, "finish_reason": None}],
    }


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
