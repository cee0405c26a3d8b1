"""Tempo `charge` (draft-tempo-charge-00): the offer, and verifying a credential that pays it.

Pull mode (`type="transaction"`): the client's signed transaction is decoded and checked —
chain, token, `transferWithMemo` to our recipient of exactly the amount with the challenge's
memo — before the challenge is claimed and the transaction broadcast. Push mode
(`type="hash"`): the receipt of a transaction the client broadcast must hold that transfer
in its logs. The memo is a random bytes32 per challenge, so a transfer pays one challenge
only and nobody can claim a payment they did not make. Only EIP-1559 (type 2) transactions
are decoded; Tempo's 0x76 transactions are not (docs/mpp.md).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from commands.chain import Chain, ChainRejected
from domain import tempo
from domain.tempo import TempoFormatError, TempoTerms
from gateway.mpp.payment_auth import Offer, PresentedCredential
from gateway.mpp.problems import PaymentProblem
from infra.ethereum import decode_transaction


@dataclass(frozen=True)
class PaidCharge:
    tx_hash: str
    payer: str  # the address that paid (the transaction's signer)
    amount: int  # base units = micro-USD


def charge_offer(terms: TempoTerms, amount: int, description: str) -> Offer:
    return Offer(
        method="tempo",
        intent="charge",
        description=description,
        request={
            "amount": str(amount),
            "currency": terms.currency,
            "recipient": terms.recipient,
            "description": description,
            "methodDetails": {
                "chainId": terms.chain_id,
                "memo": "0x" + secrets.token_hex(32),
                "supportedModes": ["pull", "push"],
            },
        },
    )


def _topic_address(topic: str) -> str:
    return "0x" + topic[-40:]


def _asked(request: dict[str, Any], terms: TempoTerms) -> tuple[int, str, str]:
    """(amount, memo, chain id check) of a request we issued, against today's terms."""
    details = request.get("methodDetails") or {}
    try:
        amount = tempo.base_units(request.get("amount"))
        memo = tempo.bytes32(details.get("memo"), "methodDetails.memo")
        currency = tempo.address(request.get("currency"), "currency")
        recipient = tempo.address(request.get("recipient"), "recipient")
    except TempoFormatError as exc:
        raise PaymentProblem("invalid-challenge", exc.message) from None
    if (currency, recipient, details.get("chainId")) != (
        terms.currency,
        terms.recipient,
        terms.chain_id,
    ):
        raise PaymentProblem("invalid-challenge", "the challenge names other payment terms")
    return amount, memo, recipient


async def verify_charge(
    chain: Chain,
    presented: PresentedCredential,
    terms: TempoTerms,
    claim: Callable[[str], Awaitable[bool]],
) -> PaidCharge:
    """The payment `presented` makes, verified and (pull mode) broadcast. `claim(challenge
    id)` makes each challenge single use. Raises PaymentProblem."""
    if presented.expired:
        raise PaymentProblem("invalid-challenge", "the challenge expired; pay a fresh one")
    amount, memo, recipient = _asked(presented.request, terms)
    payload = presented.payload
    kind = payload.get("type")
    if kind == "transaction":
        return await _pull(chain, presented, terms, claim, amount, memo, recipient)
    if kind == "hash":
        return await _push(chain, presented, terms, claim, amount, memo, recipient)
    raise PaymentProblem("malformed-credential", 'payload.type must be "transaction" or "hash"')


def _check_source(presented: PresentedCredential, terms: TempoTerms, payer: str) -> None:
    if presented.source is None:
        return
    try:
        chain_id, address = tempo.parse_did_pkh(presented.source)
    except TempoFormatError as exc:
        raise PaymentProblem("malformed-credential", exc.message) from None
    if (chain_id, address) != (terms.chain_id, payer):
        raise PaymentProblem("verification-failed", "source is not the transaction's signer")


async def _claim(claim: Callable[[str], Awaitable[bool]], challenge_id: str) -> None:
    if not await claim(challenge_id):
        raise PaymentProblem("invalid-challenge", "this challenge was already used")


async def _pull(
    chain: Chain,
    presented: PresentedCredential,
    terms: TempoTerms,
    claim: Callable[[str], Awaitable[bool]],
    amount: int,
    memo: str,
    recipient: str,
) -> PaidCharge:
    signature = presented.payload.get("signature")
    if not isinstance(signature, str) or not signature.startswith("0x"):
        raise PaymentProblem("malformed-credential", "payload.signature must be 0x-hex")
    try:
        tx = decode_transaction(bytes.fromhex(signature[2:]))
    except ValueError as exc:
        raise PaymentProblem("verification-failed", str(exc)) from None
    call = tempo.decode_call(tx.data)
    if tx.chain_id != terms.chain_id:
        raise PaymentProblem("verification-failed", f"the transaction is for chain {tx.chain_id}")
    if tx.to != terms.currency or call is None or call.name != "transferWithMemo":
        raise PaymentProblem(
            "verification-failed", f"the transaction must call transferWithMemo on {terms.currency}"
        )
    to, paid, paid_memo = call.args
    if to != recipient:
        raise PaymentProblem("verification-failed", f"the transfer must go to {recipient}")
    if paid_memo != memo:
        raise PaymentProblem("verification-failed", "the transfer's memo is not this challenge's")
    if paid != amount:
        slug = "payment-insufficient" if paid < amount else "verification-failed"
        raise PaymentProblem(slug, f"the transfer pays {paid}; the challenge asks {amount}")
    _check_source(presented, terms, tx.sender)
    await _claim(claim, presented.challenge_id)
    try:
        tx_hash = await chain.send_raw_transaction(bytes.fromhex(signature[2:]))
    except ChainRejected as exc:
        raise PaymentProblem(
            "verification-failed", f"the chain refused it: {exc.message}"
        ) from None
    return PaidCharge(tx_hash, tx.sender, amount)


async def _push(
    chain: Chain,
    presented: PresentedCredential,
    terms: TempoTerms,
    claim: Callable[[str], Awaitable[bool]],
    amount: int,
    memo: str,
    recipient: str,
) -> PaidCharge:
    try:
        tx_hash = tempo.bytes32(presented.payload.get("hash"), "payload.hash")
    except TempoFormatError as exc:
        raise PaymentProblem("malformed-credential", exc.message) from None
    await _claim(claim, presented.challenge_id)
    receipt = await chain.receipt(tx_hash)
    if receipt is None or not receipt.succeeded:
        raise PaymentProblem("verification-failed", "no successful transaction with this hash")
    for log in receipt.logs:
        if (
            log.address == terms.currency
            and len(log.topics) == 4
            and log.topics[0] == tempo.TRANSFER_WITH_MEMO_EVENT
            and _topic_address(log.topics[2]) == recipient
            and log.topics[3] == memo
        ):
            paid, payer = int.from_bytes(log.data[:32], "big"), _topic_address(log.topics[1])
            if paid != amount:
                slug = "payment-insufficient" if paid < amount else "verification-failed"
                raise PaymentProblem(slug, f"the transfer pays {paid}; the challenge asks {amount}")
            _check_source(presented, terms, payer)
            return PaidCharge(receipt.tx_hash, payer, amount)
    raise PaymentProblem(
        "verification-failed", "the transaction holds no transfer to us with this challenge's memo"
    )
