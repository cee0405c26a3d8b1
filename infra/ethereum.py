"""eth-account, imported without its side effect on the interpreter.

eth-account imports py_ecc, whose `__init__` raises the process-wide recursion limit to 100,000.
With that limit any deeply recursive parse (a 200 KB JSON body nested 100,000 levels, a hostile
PDF's object graph) overflows the C stack and kills the process instead of raising
RecursionError. Nothing Pryv calls (EIP-191 signing and recovery via coincurve) recurses deeply,
so the limit is put back. Import eth-account only through this module.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hexbytes import HexBytes

_limit = sys.getrecursionlimit()
try:
    from eth_account import Account
    from eth_account.messages import encode_defunct, encode_typed_data
    from eth_account.typed_transactions.typed_transaction import TypedTransaction
finally:
    sys.setrecursionlimit(_limit)

__all__ = [
    "Account",
    "SignedTransaction",
    "decode_transaction",
    "encode_defunct",
    "recover_typed_signer",
    "sign_transaction",
    "sign_typed_data",
]


@dataclass(frozen=True)
class SignedTransaction:
    """A decoded EIP-1559 (type 2) transaction and who signed it."""

    tx_hash: str
    sender: str
    chain_id: int
    nonce: int
    to: str | None
    value: int
    data: bytes


def sign_transaction(private_key: str, fields: dict[str, Any]) -> bytes:
    """The raw bytes of a signed EIP-1559 transaction (`fields` as eth-account takes them)."""
    tx = {"type": 2, **fields}
    if tx.get("to"):
        tx["to"] = to_checksum_address(tx["to"])
    signed = Account.sign_transaction(tx, private_key)
    return bytes(signed.raw_transaction)


def decode_transaction(raw: bytes) -> SignedTransaction:
    """Decode and recover the sender of a signed EIP-1559 transaction. Only type 2 is read:
    Tempo's own 0x76 transactions are not (docs/mpp.md). Raises ValueError."""
    if not raw or raw[0] != 0x02:
        raise ValueError("only EIP-1559 (type 0x02) transactions are accepted")
    try:
        fields = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
        sender = Account.recover_transaction(raw)
    except Exception as exc:  # eth-account raises many types for malformed bytes
        raise ValueError(f"not a valid signed transaction: {type(exc).__name__}") from None
    to = fields.get("to")
    return SignedTransaction(
        tx_hash="0x" + keccak(raw).hex(),
        sender=sender.lower(),
        chain_id=int(fields["chainId"]),
        nonce=int(fields["nonce"]),
        to=_hex_address(to) if to else None,
        value=int(fields.get("value", 0)),
        data=bytes(fields.get("data") or b""),
    )


def sign_typed_data(private_key: str, typed: dict[str, Any]) -> str:
    """An EIP-712 signature, 0x-hex r||s||v."""
    signed = Account.sign_message(encode_typed_data(full_message=typed), private_key)
    return "0x" + bytes(signed.signature).hex()


def recover_typed_signer(typed: dict[str, Any], signature: bytes) -> str:
    """The lower-case address that signed the EIP-712 `typed` data. Raises ValueError."""
    try:
        return str(
            Account.recover_message(encode_typed_data(full_message=typed), signature=signature)
        ).lower()
    except Exception as exc:
        raise ValueError(f"signature does not recover: {type(exc).__name__}") from None


def _hex_address(value: Any) -> str:
    text = value.hex() if isinstance(value, bytes) else str(value)
    return ("0x" + text.removeprefix("0x")).lower()
