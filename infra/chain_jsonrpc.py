"""The chain over Ethereum JSON-RPC (a Tempo node at PRYV_TEMPO_RPC_URL).

`eth_sendRawTransaction` then `eth_getTransactionReceipt` until the transaction is included
(Tempo finalizes in about half a second), `eth_call` of the escrow's `getChannel`,
`eth_getTransactionCount` and `eth_gasPrice`. Node errors become ChainRejected; transport
errors and malformed answers ChainUnavailable, so nothing is ever taken as verified by default.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import httpx

from commands.chain import ChainRejected, ChainUnavailable, Log, TransactionReceipt
from domain import tempo
from domain.tempo import ChannelState

_INCLUSION_POLLS = 120  # x 0.25 s: how long a broadcast waits to be included


class JsonRpcChain:
    def __init__(
        self, url: str, *, chain_id: int, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.chain_id = chain_id
        self._client = httpx.AsyncClient(base_url=url, timeout=10.0, transport=transport)
        self._ids = itertools.count(1)

    async def _call(self, method: str, *params: Any) -> Any:
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}
        try:
            response = await self._client.post("", json=body)
            answer = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ChainUnavailable(f"the Tempo node did not answer {method}: {exc}") from None
        if not isinstance(answer, dict):
            raise ChainUnavailable(f"the Tempo node answered {method} with non-JSON-RPC")
        if answer.get("error") is not None:
            error = answer["error"]
            message = error.get("message") if isinstance(error, dict) else str(error)
            raise ChainRejected(f"{method}: {message}")
        return answer.get("result")

    async def send_raw_transaction(self, raw: bytes) -> str:
        tx_hash = await self._call("eth_sendRawTransaction", "0x" + raw.hex())
        if not isinstance(tx_hash, str):
            raise ChainUnavailable("eth_sendRawTransaction returned no hash")
        for _ in range(_INCLUSION_POLLS):
            receipt = await self.receipt(tx_hash)
            if receipt is not None:
                if not receipt.succeeded:
                    raise ChainRejected(f"transaction {tx_hash} reverted")
                return receipt.tx_hash
            await asyncio.sleep(0.25)
        raise ChainUnavailable(f"transaction {tx_hash} was not included in time")

    async def receipt(self, tx_hash: str) -> TransactionReceipt | None:
        result = await self._call("eth_getTransactionReceipt", tx_hash)
        if result is None:
            return None
        try:
            logs = tuple(
                Log(
                    address=str(log["address"]).lower(),
                    topics=tuple(str(t).lower() for t in log["topics"]),
                    data=bytes.fromhex(str(log["data"]).removeprefix("0x")),
                )
                for log in result.get("logs") or []
            )
            to = result.get("to")
            return TransactionReceipt(
                tx_hash=str(result["transactionHash"]).lower(),
                succeeded=int(str(result["status"]), 16) == 1,
                sender=str(result["from"]).lower(),
                to=str(to).lower() if to else None,
                logs=logs,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ChainUnavailable(f"malformed receipt for {tx_hash}: {exc}") from None

    async def channel(self, escrow: str, channel_id: str) -> ChannelState | None:
        data = "0x" + tempo.get_channel_call(channel_id).hex()
        result = await self._call("eth_call", {"to": escrow, "data": data}, "latest")
        try:
            state = ChannelState.decode(bytes.fromhex(str(result).removeprefix("0x")))
        except Exception as exc:  # eth-abi's decoding errors have no common base
            raise ChainUnavailable(f"malformed getChannel answer: {type(exc).__name__}") from None
        return None if state.payer == tempo.ZERO_ADDRESS else state

    async def nonce(self, address: str) -> int:
        return int(str(await self._call("eth_getTransactionCount", address, "pending")), 16)

    async def gas_price(self) -> int:
        return int(str(await self._call("eth_gasPrice")), 16)

    async def close(self) -> None:
        await self._client.aclose()
