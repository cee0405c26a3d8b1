"""Chains (in memory; JSON-RPC against a node): signed transfers and their logs, the stream
channel escrow, and refusals — the same behaviour through both."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from commands.chain import Chain, ChainRejected
from domain import tempo
from infra.chain_jsonrpc import JsonRpcChain
from infra.chain_memory import InMemoryChain
from infra.ethereum import Account, sign_transaction, sign_typed_data
from tests.fakes.tempo_node import tempo_node

CHAIN_ID = 4217
TOKEN = "0x20c0000000000000000000000000000000000000"
ESCROW = "0x" + "e5" * 20
SALT = "0x" + "5a" * 32


@pytest.fixture(params=["memory", "jsonrpc"])
async def chains(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Chain, InMemoryChain]]:
    memory = InMemoryChain(chain_id=CHAIN_ID, tokens=(TOKEN,), escrow=ESCROW)
    if request.param == "memory":
        yield memory, memory
        return
    node = httpx.ASGITransport(app=tempo_node(memory))
    chain = JsonRpcChain("http://tempo-node/", chain_id=CHAIN_ID, transport=node)
    yield chain, memory
    await chain.close()


class Wallet:
    def __init__(self) -> None:
        account = Account.create()
        self.key, self.address = account.key.hex(), account.address.lower()

    async def send(self, chain: Chain, to: str, data: bytes, *, chain_id: int = CHAIN_ID) -> str:
        raw = sign_transaction(
            self.key, self.tx(await chain.nonce(self.address), to, data, chain_id=chain_id)
        )
        return await chain.send_raw_transaction(raw)

    def tx(self, nonce: int, to: str, data: bytes, *, chain_id: int = CHAIN_ID) -> dict:
        return {
            "chainId": chain_id,
            "nonce": nonce,
            "to": to,
            "value": 0,
            "gas": 200_000,
            "maxFeePerGas": 1,
            "maxPriorityFeePerGas": 1,
            "data": data,
        }

    def voucher(self, channel: str, cumulative: int) -> bytes:
        typed = tempo.voucher_typed_data(
            channel=channel, cumulative=cumulative, escrow=ESCROW, chain_id=CHAIN_ID
        )
        return bytes.fromhex(sign_typed_data(self.key, typed)[2:])


async def test_a_signed_transfer_is_included_with_its_transfer_log(chains) -> None:
    chain, memory = chains
    payer, payee = Wallet(), Wallet()
    memory.mint(TOKEN, payer.address, 1_000_000)
    tx_hash = await payer.send(chain, TOKEN, tempo.transfer_call(payee.address, 50_000))
    receipt = await chain.receipt(tx_hash)
    assert receipt is not None and receipt.succeeded and receipt.sender == payer.address
    (log,) = receipt.logs
    assert log.address == TOKEN and log.topics[0] == tempo.TRANSFER_EVENT
    assert log.topics[2].endswith(payee.address[2:]) and int.from_bytes(log.data, "big") == 50_000
    assert memory.balance(TOKEN, payee.address) == 50_000
    assert await chain.nonce(payer.address) == 1


async def test_a_memo_transfer_logs_its_memo(chains) -> None:
    chain, memory = chains
    payer, payee = Wallet(), Wallet()
    memory.mint(TOKEN, payer.address, 10)
    memo = "0x" + "ab" * 32
    receipt = await chain.receipt(
        await payer.send(chain, TOKEN, tempo.transfer_call(payee.address, 10, memo))
    )
    assert receipt is not None
    assert [log.topics[0] for log in receipt.logs] == [
        tempo.TRANSFER_EVENT,
        tempo.TRANSFER_WITH_MEMO_EVENT,
    ]
    assert receipt.logs[1].topics[3] == memo


async def test_refusals_wrong_chain_replayed_nonce_and_a_revert(chains) -> None:
    chain, memory = chains
    payer, payee = Wallet(), Wallet()
    memory.mint(TOKEN, payer.address, 100)
    with pytest.raises(ChainRejected):
        await payer.send(chain, TOKEN, tempo.transfer_call(payee.address, 1), chain_id=1)
    raw = sign_transaction(payer.key, payer.tx(0, TOKEN, tempo.transfer_call(payee.address, 1)))
    await chain.send_raw_transaction(raw)
    with pytest.raises(ChainRejected):
        await chain.send_raw_transaction(raw)  # the same signed transaction again
    with pytest.raises(ChainRejected):  # more than the balance: included, reverted
        await payer.send(chain, TOKEN, tempo.transfer_call(payee.address, 1_000))
    assert memory.balance(TOKEN, payee.address) == 1
    with pytest.raises(ChainRejected):
        await chain.send_raw_transaction(b"\x02not a transaction")
    assert await chain.receipt("0x" + "00" * 32) is None


async def test_a_channel_opens_tops_up_and_closes_on_a_voucher(chains) -> None:
    chain, memory = chains
    payer, payee = Wallet(), Wallet()
    memory.mint(TOKEN, payer.address, 1_000)
    channel = tempo.channel_id(
        payer=payer.address,
        payee=payee.address,
        token=TOKEN,
        salt=SALT,
        authorized_signer=tempo.ZERO_ADDRESS,
        escrow=ESCROW,
        chain_id=CHAIN_ID,
    )
    assert await chain.channel(ESCROW, channel) is None
    await payer.send(
        chain, ESCROW, tempo.open_call(payee.address, TOKEN, 600, SALT, tempo.ZERO_ADDRESS)
    )
    state = await chain.channel(ESCROW, channel)
    assert state is not None and (state.payer, state.deposit, state.settled) == (
        payer.address,
        600,
        0,
    )
    await payer.send(chain, ESCROW, tempo.top_up_call(channel, 100))
    with pytest.raises(ChainRejected):  # only the payer tops up
        await payee.send(chain, ESCROW, tempo.top_up_call(channel, 1))
    with pytest.raises(ChainRejected):  # a voucher signed by someone else
        await payee.send(chain, ESCROW, tempo.close_call(channel, 50, payee.voucher(channel, 50)))
    with pytest.raises(ChainRejected):  # more than the deposit
        await payee.send(chain, ESCROW, tempo.close_call(channel, 701, payer.voucher(channel, 701)))
    await payee.send(chain, ESCROW, tempo.settle_call(channel, 200, payer.voucher(channel, 200)))
    await payee.send(chain, ESCROW, tempo.close_call(channel, 250, payer.voucher(channel, 250)))
    state = await chain.channel(ESCROW, channel)
    assert state is not None and state.finalized and state.settled == 250
    assert memory.balance(TOKEN, payee.address) == 250
    assert memory.balance(TOKEN, payer.address) == 1_000 - 250
    with pytest.raises(ChainRejected):  # finalized
        await payer.send(chain, ESCROW, tempo.top_up_call(channel, 1))


async def closing_channel(chain: Chain, memory: InMemoryChain) -> tuple[Wallet, Wallet, str]:
    """A channel of 600 whose payer has just asked the escrow to close it."""
    payer, payee = Wallet(), Wallet()
    memory.mint(TOKEN, payer.address, 1_000)
    channel = tempo.channel_id(
        payer=payer.address,
        payee=payee.address,
        token=TOKEN,
        salt=SALT,
        authorized_signer=tempo.ZERO_ADDRESS,
        escrow=ESCROW,
        chain_id=CHAIN_ID,
    )
    await payer.send(
        chain, ESCROW, tempo.open_call(payee.address, TOKEN, 600, SALT, tempo.ZERO_ADDRESS)
    )
    await payer.send(chain, ESCROW, tempo.request_close_call(channel))
    return payer, payee, channel


async def test_a_forced_close_waits_out_the_grace_period(chains) -> None:
    chain, memory = chains
    payer, payee, channel = await closing_channel(chain, memory)
    state = await chain.channel(ESCROW, channel)
    assert state is not None and state.close_requested_at > 0
    with pytest.raises(ChainRejected):  # inside the grace period
        await payer.send(chain, ESCROW, tempo.withdraw_call(channel))
    # The payee may still close with a voucher during the grace period.
    await payee.send(chain, ESCROW, tempo.close_call(channel, 100, payer.voucher(channel, 100)))
    assert memory.balance(TOKEN, payee.address) == 100
    memory.clock = lambda: 10**12  # long after
    with pytest.raises(ChainRejected):  # finalized: nothing left to withdraw
        await payer.send(chain, ESCROW, tempo.withdraw_call(channel))


async def test_after_the_grace_period_the_payer_takes_everything_back(chains) -> None:
    chain, memory = chains
    payer, _payee, channel = await closing_channel(chain, memory)
    memory.clock = lambda: 10**12
    await payer.send(chain, ESCROW, tempo.withdraw_call(channel))
    assert memory.balance(TOKEN, payer.address) == 1_000
    state = await chain.channel(ESCROW, channel)
    assert state is not None and state.finalized
