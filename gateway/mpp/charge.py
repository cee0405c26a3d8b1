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
    tx_hash: str  # the payment's reference: a transaction hash, or a Stripe PaymentIntent
    payer: str  # the address that paid (the transaction's signer; a card's pseudo-address)
    amount: int  # micro-USD (a TIP-20 base unit is one)
    method: str = "tempo"
    env: str | None = None  # what it buys; None: the chain's (test on a test chain)


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


@dataclass(frozen=True)
class Asked:
    """What a challenge we issued asks: the amount, to whom, with which memo."""

    amount: int
    memo: str
    recipient: str


def _asked(request: dict[str, Any], terms: TempoTerms) -> Asked:
    """What a request we issued asks, checked against today's terms."""
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
    return Asked(amount, memo, recipient)


@dataclass(frozen=True)
class Ledger:
    """What verification asks of the books: claim a challenge id once, and whether a
    transaction was already credited (crediting is idempotent by transaction hash)."""

    claim: Callable[[str], Awaitable[bool]]
    credited: Callable[[str], Awaitable[bool]]


async def verify_charge(
    chain: Chain, presented: PresentedCredential, terms: TempoTerms, ledger: Ledger
) -> PaidCharge:
    """The payment `presented` makes, verified and (pull mode) broadcast. Raises
    PaymentProblem. The challenge is claimed once verification passed; a credential whose
    challenge is claimed but whose payment was never credited (the process died between
    broadcast and credit, or the answer was lost before it) is verified again and credited
    rather than lost."""
    if presented.expired:
        raise PaymentProblem("invalid-challenge", "the challenge expired; pay a fresh one")
    asked = _asked(presented.request, terms)
    kind = presented.payload.get("type")
    if kind == "transaction":
        return await _pull(chain, presented, terms, ledger, asked)
    if kind == "hash":
        return await _push(chain, presented, terms, ledger, asked)
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


async def _first_use(ledger: Ledger, challenge_id: str, tx_hash: str) -> bool:
    """True the first time; False for a claimed challenge whose payment was not credited
    (recover it); refused when it was."""
    if await ledger.claim(challenge_id):
        return True
    if await ledger.credited(tx_hash):
        raise PaymentProblem("invalid-challenge", "this challenge was already used")
    return False


def _paid_amount(paid: int, amount: int) -> None:
    if paid != amount:
        slug = "payment-insufficient" if paid < amount else "verification-failed"
        raise PaymentProblem(slug, f"the transfer pays {paid}; the challenge asks {amount}")


async def _pull(
    chain: Chain, presented: PresentedCredential, terms: TempoTerms, ledger: Ledger, asked: Asked
) -> PaidCharge:
    amount, memo, recipient = asked.amount, asked.memo, asked.recipient
    signature = presented.payload.get("signature")
    if not isinstance(signature, str) or not signature.startswith("0x"):
        raise PaymentProblem("malformed-credential", "payload.signature must be 0x-hex")
    try:
        raw = bytes.fromhex(signature[2:])
        tx = decode_transaction(raw)
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
    _paid_amount(paid, amount)
    _check_source(presented, terms, tx.sender)
    if not await _first_use(ledger, presented.challenge_id, tx.tx_hash):
        receipt = await chain.receipt(tx.tx_hash)
        if receipt is not None:  # broadcast before: credit it if it succeeded
            if not receipt.succeeded:
                raise PaymentProblem("verification-failed", "the transaction reverted")
            return PaidCharge(receipt.tx_hash, tx.sender, amount)
    try:
        tx_hash = await chain.send_raw_transaction(raw)
    except ChainRejected as exc:
        raise PaymentProblem(
            "verification-failed", f"the chain refused it: {exc.message}"
        ) from None
    return PaidCharge(tx_hash, tx.sender, amount)


async def _push(
    chain: Chain, presented: PresentedCredential, terms: TempoTerms, ledger: Ledger, asked: Asked
) -> PaidCharge:
    amount, memo, recipient = asked.amount, asked.memo, asked.recipient
    try:
        tx_hash = tempo.bytes32(presented.payload.get("hash"), "payload.hash")
    except TempoFormatError as exc:
        raise PaymentProblem("malformed-credential", exc.message) from None
    receipt = await chain.receipt(tx_hash)
    if receipt is None or not receipt.succeeded:
        raise PaymentProblem(
            "verification-failed", "no successful transaction with this hash (yet): retry"
        )
    for log in receipt.logs:
        if (
            log.address == terms.currency
            and len(log.topics) == 4
            and log.topics[0] == tempo.TRANSFER_WITH_MEMO_EVENT
            and _topic_address(log.topics[2]) == recipient
            and log.topics[3] == memo
        ):
            paid, payer = int.from_bytes(log.data[:32], "big"), _topic_address(log.topics[1])
            _paid_amount(paid, amount)
            _check_source(presented, terms, payer)
            await _first_use(ledger, presented.challenge_id, receipt.tx_hash)
            return PaidCharge(receipt.tx_hash, payer, amount)
    raise PaymentProblem(
        "verification-failed", "the transaction holds no transfer to us with this challenge's memo"
    )
