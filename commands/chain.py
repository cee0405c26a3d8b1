"""The chain MPP settles on, as the gateway needs it: broadcast a signed transaction, read a
transaction's receipt (its Transfer logs) and a stream channel's escrow state.

One implementation per backend (`infra/chain_memory.py` for tests and the embedded default,
`infra/chain_jsonrpc.py` for a Tempo node); both pass `tests/contract/test_chain.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from domain.errors import ErrorKind, PryvError
from domain.tempo import ChannelState


@dataclass(frozen=True)
class Log:
    address: str  # the emitting contract, lower-case
    topics: tuple[str, ...]  # 0x-hex words
    data: bytes


@dataclass(frozen=True)
class TransactionReceipt:
    tx_hash: str
    succeeded: bool
    sender: str
    to: str | None
    logs: tuple[Log, ...]


class ChainRejected(PryvError):
    """The node refused a transaction (bad signature, nonce, chain id, or it reverted)."""

    kind, code = ErrorKind.PAYMENT_REQUIRED, "chain_rejected"


class ChainUnavailable(PryvError):
    """The node could not be reached or answered nonsense: nothing was verified (503, retry:
    the retry gets a fresh challenge)."""

    kind, code = ErrorKind.UNAVAILABLE, "chain_unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message, metadata={"Retry-After": "2"})


class Chain(Protocol):
    chain_id: int

    async def send_raw_transaction(self, raw: bytes) -> str:
        """Broadcast and wait for inclusion; the transaction hash. Raises ChainRejected if the
        node refuses it or it reverts."""
        ...

    async def receipt(self, tx_hash: str) -> TransactionReceipt | None:
        """The receipt of an included transaction, or None if the chain does not know it."""
        ...

    async def channel(self, escrow: str, channel_id: str) -> ChannelState | None:
        """The escrow's state of a channel, or None if it was never opened."""
        ...

    async def nonce(self, address: str) -> int:
        """The next nonce of `address` (its count of sent transactions)."""
        ...

    async def gas_price(self) -> int: ...

    async def close(self) -> None: ...
