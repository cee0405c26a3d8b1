"""Tempo's on-chain vocabulary for MPP (draft-tempo-charge-00, draft-tempo-session-00): TIP-20
calls and logs, the stream-channel escrow's calls and channel ids, vouchers (EIP-712), did:pkh.

Pure: ABI encoding (eth-abi), keccak (eth-utils), no keys and no I/O. Signing and signer
recovery are `infra/ethereum.py`'s; the chain itself is behind `commands.chain.Chain`.

TIP-20 tokens have 6 decimals, so one base unit of a USD stablecoin is one micro-USD: the unit
every Pryv amount is already kept in. The escrow is the session draft's contract-backed ("v1")
`TempoStreamChannel`; its `getChannel` layout is the reference contract's `Channel` struct.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode, encode
from eth_utils.crypto import keccak

from domain.errors import PryvError

DEFAULT_CHAIN_ID = 4217  # Tempo mainnet (the session draft's default)
ZERO_ADDRESS = "0x" + "00" * 20
MAX_UINT128 = 2**128 - 1
# secp256k1 half order: a voucher with s above it is malleable and refused (session draft).
SECP256K1_HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0

VOUCHER_DOMAIN_NAME = "Tempo Stream Channel"
VOUCHER_DOMAIN_VERSION = "1"
VOUCHER_TYPES = [
    {"name": "channelId", "type": "bytes32"},
    {"name": "cumulativeAmount", "type": "uint128"},
]

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_BYTES32 = re.compile(r"^0x[0-9a-fA-F]{64}$")
_DIGITS = re.compile(r"(?:0|[1-9][0-9]{0,38})")  # ASCII digits only: str.isdigit takes "²"
_SIGNATURE = re.compile(r"0x(?:[0-9a-fA-F]{128}|[0-9a-fA-F]{130})")
_DID_PKH = re.compile(r"^did:pkh:eip155:(?P<chain>[0-9]{1,12}):(?P<address>0x[0-9a-fA-F]{40})$")


class TempoFormatError(PryvError, ValueError):
    """A value that is not what the Tempo drafts say it must be (address, bytes32, amount)."""

    code = "invalid_tempo_value"


def selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def event_topic(signature: str) -> str:
    return "0x" + keccak(text=signature).hex()


TRANSFER = "transfer(address,uint256)"
TRANSFER_WITH_MEMO = "transferWithMemo(address,uint256,bytes32)"
OPEN = "open(address,address,uint128,bytes32,address)"
TOP_UP = "topUp(bytes32,uint128)"
SETTLE = "settle(bytes32,uint128,bytes)"
CLOSE = "close(bytes32,uint128,bytes)"
GET_CHANNEL = "getChannel(bytes32)"
REQUEST_CLOSE = "requestClose(bytes32)"
WITHDRAW = "withdraw(bytes32)"
TRANSFER_EVENT = event_topic("Transfer(address,address,uint256)")
TRANSFER_WITH_MEMO_EVENT = event_topic("TransferWithMemo(address,address,uint256,bytes32)")
CHANNEL_TUPLE = "(bool,uint64,address,address,address,address,uint128,uint128)"

_CALLS: dict[bytes, tuple[str, list[str]]] = {
    selector(TRANSFER): ("transfer", ["address", "uint256"]),
    selector(TRANSFER_WITH_MEMO): ("transferWithMemo", ["address", "uint256", "bytes32"]),
    selector(OPEN): ("open", ["address", "address", "uint128", "bytes32", "address"]),
    selector(TOP_UP): ("topUp", ["bytes32", "uint128"]),
    selector(SETTLE): ("settle", ["bytes32", "uint128", "bytes"]),
    selector(CLOSE): ("close", ["bytes32", "uint128", "bytes"]),
    selector(REQUEST_CLOSE): ("requestClose", ["bytes32"]),
    selector(WITHDRAW): ("withdraw", ["bytes32"]),
}


def address(value: Any, what: str = "address") -> str:
    """A 20-byte address, lower-cased (the drafts compare addresses by value)."""
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        raise TempoFormatError(f"{what} must be a 0x-prefixed 20-byte hex address")
    return value.lower()


def bytes32(value: Any, what: str = "value") -> str:
    if not isinstance(value, str) or not _BYTES32.fullmatch(value):
        raise TempoFormatError(f"{what} must be a 0x-prefixed 32-byte hex value")
    return value.lower()


def base_units(value: Any, what: str = "amount") -> int:
    """A decimal string of base units, as the drafts encode amounts (no sign, no exponent)."""
    if not isinstance(value, str) or not _DIGITS.fullmatch(value):
        raise TempoFormatError(f"{what} must be a decimal string of base units")
    amount = int(value)
    if amount > MAX_UINT128:
        raise TempoFormatError(f"{what} exceeds uint128")
    return amount


def did_pkh(chain_id: int, payer: str) -> str:
    return f"did:pkh:eip155:{chain_id}:{payer.lower()}"


def parse_did_pkh(value: Any) -> tuple[int, str]:
    """(chain id, address) of a `did:pkh:eip155:<chain>:<address>` payer DID."""
    match = _DID_PKH.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise TempoFormatError("source must be did:pkh:eip155:<chainId>:<address>")
    return int(match["chain"]), match["address"].lower()


@dataclass(frozen=True)
class TempoTerms:
    """Where Pryv is paid: chain, TIP-20 token, recipient (its payee wallet), escrow; and
    what the money buys (`env`: test credit on a test chain)."""

    chain_id: int
    currency: str
    recipient: str
    escrow: str
    env: str


@dataclass(frozen=True)
class Call:
    """One decoded call of a transaction: the function's name and its arguments."""

    name: str
    args: tuple[Any, ...]


def decode_call(data: bytes) -> Call | None:
    """The TIP-20 or escrow call `data` makes, or None for anything else."""
    known = _CALLS.get(bytes(data[:4]))
    if known is None:
        return None
    name, types = known
    try:
        args = decode(types, bytes(data[4:]))
    except Exception:  # eth-abi raises several unrelated types for bad input
        return None
    return Call(name, tuple(_normalize(a) for a in args))


def _normalize(value: Any) -> Any:
    if isinstance(value, bytes) and len(value) == 32:
        return "0x" + value.hex()
    if isinstance(value, str) and value.startswith("0x"):
        return value.lower()
    return value


def _word(hex_value: str) -> bytes:
    return bytes.fromhex(hex_value[2:])


def transfer_call(recipient: str, amount: int, memo: str | None = None) -> bytes:
    if memo is None:
        return selector(TRANSFER) + encode(["address", "uint256"], [recipient, amount])
    return selector(TRANSFER_WITH_MEMO) + encode(
        ["address", "uint256", "bytes32"], [recipient, amount, _word(memo)]
    )


def open_call(payee: str, token: str, deposit: int, salt: str, authorized_signer: str) -> bytes:
    return selector(OPEN) + encode(
        ["address", "address", "uint128", "bytes32", "address"],
        [payee, token, deposit, _word(salt), authorized_signer],
    )


def top_up_call(channel_id: str, additional: int) -> bytes:
    return selector(TOP_UP) + encode(["bytes32", "uint128"], [_word(channel_id), additional])


def close_call(channel_id: str, cumulative: int, signature: bytes) -> bytes:
    return selector(CLOSE) + encode(
        ["bytes32", "uint128", "bytes"], [_word(channel_id), cumulative, signature]
    )


def settle_call(channel_id: str, cumulative: int, signature: bytes) -> bytes:
    return selector(SETTLE) + encode(
        ["bytes32", "uint128", "bytes"], [_word(channel_id), cumulative, signature]
    )


def request_close_call(channel_id: str) -> bytes:
    return selector(REQUEST_CLOSE) + encode(["bytes32"], [_word(channel_id)])


def withdraw_call(channel_id: str) -> bytes:
    return selector(WITHDRAW) + encode(["bytes32"], [_word(channel_id)])


def get_channel_call(channel_id: str) -> bytes:
    return selector(GET_CHANNEL) + encode(["bytes32"], [_word(channel_id)])


def channel_id(
    *,
    payer: str,
    payee: str,
    token: str,
    salt: str,
    authorized_signer: str,
    escrow: str,
    chain_id: int,
) -> str:
    """The escrow's `computeChannelId`: keccak256(abi.encode(payer, payee, token, salt,
    authorizedSigner, escrow, chainId))."""
    encoded = encode(
        ["address", "address", "address", "bytes32", "address", "address", "uint256"],
        [payer, payee, token, _word(salt), authorized_signer, escrow, chain_id],
    )
    return "0x" + keccak(encoded).hex()


@dataclass(frozen=True)
class ChannelState:
    """What the escrow holds for one channel (`getChannel`)."""

    finalized: bool
    close_requested_at: int
    payer: str
    payee: str
    token: str
    authorized_signer: str
    deposit: int
    settled: int

    @property
    def signer(self) -> str:
        """Who signs vouchers: the authorized signer, or the payer when none is set."""
        return self.payer if self.authorized_signer == ZERO_ADDRESS else self.authorized_signer

    def encode(self) -> bytes:
        return encode(
            [CHANNEL_TUPLE],
            [
                (
                    self.finalized,
                    self.close_requested_at,
                    self.payer,
                    self.payee,
                    self.token,
                    self.authorized_signer,
                    self.deposit,
                    self.settled,
                )
            ],
        )

    @classmethod
    def decode(cls, data: bytes) -> ChannelState:
        (fields,) = decode([CHANNEL_TUPLE], data)
        finalized, close_at, payer, payee, token, signer, deposit, settled = fields
        return cls(
            bool(finalized),
            int(close_at),
            payer.lower(),
            payee.lower(),
            token.lower(),
            signer.lower(),
            int(deposit),
            int(settled),
        )


def voucher_typed_data(
    *, channel: str, cumulative: int, escrow: str, chain_id: int
) -> dict[str, Any]:
    """The EIP-712 typed data a voucher signs (session draft, "Voucher Signing Format")."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Voucher": VOUCHER_TYPES,
        },
        "primaryType": "Voucher",
        "domain": {
            "name": VOUCHER_DOMAIN_NAME,
            "version": VOUCHER_DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": escrow,
        },
        "message": {"channelId": _word(channel), "cumulativeAmount": cumulative},
    }


def voucher_digest(*, channel: str, cumulative: int, escrow: str, chain_id: int) -> bytes:
    """keccak256("\\x19\\x01" || domainSeparator || structHash), written out as the draft's
    signing procedure so a test can hold eth-account's typed-data hashing to it."""
    domain_type = keccak(
        text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    )
    separator = keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                domain_type,
                keccak(text=VOUCHER_DOMAIN_NAME),
                keccak(text=VOUCHER_DOMAIN_VERSION),
                chain_id,
                escrow,
            ],
        )
    )
    struct = keccak(
        encode(
            ["bytes32", "bytes32", "uint128"],
            [
                keccak(text="Voucher(bytes32 channelId,uint128 cumulativeAmount)"),
                _word(channel),
                cumulative,
            ],
        )
    )
    return keccak(b"\x19\x01" + separator + struct)


def signature_bytes(value: Any, what: str = "signature") -> bytes:
    """A 65-byte r‖s‖v signature with a canonical (low) s; 64-byte EIP-2098 compact form is
    expanded. Anything else is refused."""
    if not isinstance(value, str) or not re.fullmatch(
        r"0x(?:[0-9a-fA-F]{128}|[0-9a-fA-F]{130})", value
    ):
        raise TempoFormatError(f"{what} must be a 0x-prefixed 64- or 65-byte hex signature")
    raw = bytes.fromhex(value[2:])
    if len(raw) == 64:  # EIP-2098: the top bit of s is y-parity
        r, vs = raw[:32], int.from_bytes(raw[32:], "big")
        parity, s = vs >> 255, vs & ((1 << 255) - 1)
        raw = r + s.to_bytes(32, "big") + bytes([27 + parity])
    if int.from_bytes(raw[32:64], "big") > SECP256K1_HALF_ORDER:
        raise TempoFormatError(f"{what} has a non-canonical (high) s value")
    if raw[64] not in (0, 1, 27, 28):
        raise TempoFormatError(f"{what} has an invalid recovery id")
    return raw
