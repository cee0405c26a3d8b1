"""A Tempo-like chain in memory, for tests and the embedded default: TIP-20 balances and the
stream-channel escrow, executing really signed EIP-1559 transactions.

Every transaction is decoded and its sender recovered from its signature; chain id and nonce
are checked; vouchers in `settle`/`close` are verified like the escrow contract does (EIP-712
with the escrow as verifying contract, low s, signer = authorized signer or payer). A call
that fails reverts: the transaction is included with a failed receipt and no effect, as on a
real chain.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

from commands.chain import ChainRejected, Log, TransactionReceipt
from domain import tempo
from domain.tempo import ChannelState
from infra.ethereum import decode_transaction, recover_typed_signer

CLOSE_GRACE_SECONDS = 15 * 60  # the escrow's forced-close grace period (session draft)


class _Revert(Exception):
    pass


def _topic_address(address: str) -> str:
    return "0x" + "00" * 12 + address.removeprefix("0x")


class InMemoryChain:
    def __init__(
        self,
        *,
        chain_id: int,
        tokens: tuple[str, ...],
        escrow: str,
        close_grace_seconds: int = CLOSE_GRACE_SECONDS,
    ) -> None:
        self.chain_id = chain_id
        self.close_grace_seconds = close_grace_seconds
        self.clock = time.time
        self.tokens = {t.lower() for t in tokens}
        self.escrow = escrow.lower()
        self._balances: dict[tuple[str, str], int] = defaultdict(int)
        self._nonces: dict[str, int] = defaultdict(int)
        self._receipts: dict[str, TransactionReceipt] = {}
        self._channels: dict[str, ChannelState] = {}
        self._lock = asyncio.Lock()

    # --- a faucet and a balance, for tests and the embedded demo -------------------------------

    def mint(self, token: str, owner: str, amount: int) -> None:
        self._balances[(token.lower(), owner.lower())] += amount

    def balance(self, token: str, owner: str) -> int:
        return self._balances[(token.lower(), owner.lower())]

    # --- Chain -----------------------------------------------------------------------------------

    async def send_raw_transaction(self, raw: bytes) -> str:
        try:
            tx = decode_transaction(raw)
        except ValueError as exc:
            raise ChainRejected(str(exc)) from None
        async with self._lock:
            if tx.tx_hash in self._receipts:
                raise ChainRejected("transaction already known")
            if tx.chain_id != self.chain_id:
                raise ChainRejected(f"wrong chain id {tx.chain_id}")
            if tx.nonce != self._nonces[tx.sender]:
                raise ChainRejected(f"nonce {tx.nonce}, expected {self._nonces[tx.sender]}")
            self._nonces[tx.sender] += 1
            logs: list[Log] = []
            try:
                self._execute(tx.sender, tx.to, tx.data, logs)
                succeeded = True
            except _Revert:
                succeeded, logs = False, []
            self._receipts[tx.tx_hash] = TransactionReceipt(
                tx.tx_hash, succeeded, tx.sender, tx.to, tuple(logs)
            )
        if not succeeded:
            raise ChainRejected(f"transaction {tx.tx_hash} reverted")
        return tx.tx_hash

    async def receipt(self, tx_hash: str) -> TransactionReceipt | None:
        return self._receipts.get(tx_hash.lower())

    async def channel(self, escrow: str, channel_id: str) -> ChannelState | None:
        if escrow.lower() != self.escrow:
            return None
        return self._channels.get(channel_id.lower())

    async def nonce(self, address: str) -> int:
        return self._nonces[address.lower()]

    async def gas_price(self) -> int:
        return 1

    async def close(self) -> None:
        return None

    # --- execution -------------------------------------------------------------------------------

    def _execute(self, sender: str, to: str | None, data: bytes, logs: list[Log]) -> None:
        call = tempo.decode_call(data)
        if to is None or call is None:
            raise _Revert()
        if to in self.tokens and call.name in ("transfer", "transferWithMemo"):
            recipient, amount = call.args[0], int(call.args[1])
            memo = call.args[2] if call.name == "transferWithMemo" else None
            self._transfer(to, sender, recipient, amount, logs, memo)
        elif to == self.escrow:
            self._escrow(sender, call, logs)
        else:
            raise _Revert()

    def _transfer(
        self,
        token: str,
        source: str,
        target: str,
        amount: int,
        logs: list[Log],
        memo: str | None = None,
    ) -> None:
        if amount < 0 or self._balances[(token, source)] < amount:
            raise _Revert()
        self._balances[(token, source)] -= amount
        self._balances[(token, target)] += amount
        data = amount.to_bytes(32, "big")
        topics: tuple[str, ...] = (
            tempo.TRANSFER_EVENT,
            _topic_address(source),
            _topic_address(target),
        )
        logs.append(Log(token, topics, data))
        if memo is not None:
            topics = (
                tempo.TRANSFER_WITH_MEMO_EVENT,
                _topic_address(source),
                _topic_address(target),
                memo,
            )
            logs.append(Log(token, topics, data))

    def _escrow(self, sender: str, call: tempo.Call, logs: list[Log]) -> None:
        if call.name == "open":
            payee, token, deposit, salt, signer = call.args
            if token not in self.tokens or deposit <= 0:
                raise _Revert()
            channel = tempo.channel_id(
                payer=sender,
                payee=payee,
                token=token,
                salt=salt,
                authorized_signer=signer,
                escrow=self.escrow,
                chain_id=self.chain_id,
            )
            if channel in self._channels:
                raise _Revert()
            self._transfer(token, sender, self.escrow, int(deposit), logs)
            self._channels[channel] = ChannelState(
                False, 0, sender, payee, token, signer, int(deposit), 0
            )
            return
        channel = str(call.args[0])
        state = self._channels.get(channel)
        if state is None or state.finalized:
            raise _Revert()
        if call.name == "topUp":
            if sender != state.payer or int(call.args[1]) <= 0:
                raise _Revert()
            self._transfer(state.token, sender, self.escrow, int(call.args[1]), logs)
            # A top-up cancels a pending close request (session draft, "topUp").
            self._replace(
                channel, state, deposit=state.deposit + int(call.args[1]), close_requested_at=0
            )
            return
        if call.name == "requestClose":
            if sender != state.payer or state.close_requested_at:
                raise _Revert()
            self._replace(channel, state, close_requested_at=int(self.clock()))
            return
        if call.name == "withdraw":
            grace_over = self.clock() >= state.close_requested_at + self.close_grace_seconds
            if sender != state.payer or not state.close_requested_at or not grace_over:
                raise _Revert()
            self._transfer(
                state.token, self.escrow, state.payer, state.deposit - state.settled, logs
            )
            self._replace(channel, state, finalized=True)
            return
        # settle / close: the payee claims with a voucher the channel's signer signed.
        cumulative, signature = int(call.args[1]), bytes(call.args[2])
        if sender != state.payee or not state.settled <= cumulative <= state.deposit:
            raise _Revert()
        typed = tempo.voucher_typed_data(
            channel=channel, cumulative=cumulative, escrow=self.escrow, chain_id=self.chain_id
        )
        try:
            signer = recover_typed_signer(typed, tempo.signature_bytes("0x" + signature.hex()))
        except ValueError:
            raise _Revert() from None
        if signer != state.signer:
            raise _Revert()
        self._transfer(state.token, self.escrow, state.payee, cumulative - state.settled, logs)
        if call.name == "close":
            self._transfer(state.token, self.escrow, state.payer, state.deposit - cumulative, logs)
            self._replace(channel, state, settled=cumulative, finalized=True)
        else:
            self._replace(channel, state, settled=cumulative)

    def _replace(self, channel: str, state: ChannelState, **changes: object) -> None:
        fields = {**state.__dict__, **changes}
        self._channels[channel] = ChannelState(**fields)
