"""A JSON-RPC node in front of an InMemoryChain, so `JsonRpcChain` is tested over real HTTP
and real Ethereum JSON-RPC encoding (hex quantities, receipts, `eth_call` ABI data)."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from commands.chain import ChainRejected
from domain import tempo
from domain.tempo import ChannelState
from infra.chain_memory import InMemoryChain

_EMPTY_CHANNEL = ChannelState(False, 0, *(tempo.ZERO_ADDRESS,) * 4, 0, 0)


def tempo_node(chain: InMemoryChain) -> Starlette:
    async def rpc(request: Request) -> JSONResponse:
        body = await request.json()
        method, params, rid = body["method"], body.get("params") or [], body.get("id")
        try:
            result = await _answer(chain, method, params)
        except ChainRejected as exc:
            return JSONResponse(
                {"jsonrpc": "2.0", "id": rid, "error": {"code": -32000, "message": exc.message}}
            )
        return JSONResponse({"jsonrpc": "2.0", "id": rid, "result": result})

    return Starlette(routes=[Route("/", rpc, methods=["POST"])])


async def _answer(chain: InMemoryChain, method: str, params: list[Any]) -> Any:
    if method == "eth_sendRawTransaction":
        raw = bytes.fromhex(params[0].removeprefix("0x"))
        try:
            return await chain.send_raw_transaction(raw)
        except ChainRejected as exc:
            if "reverted" not in exc.message:
                raise
            # A real node includes a reverting transaction and reports it in the receipt.
            return exc.message.split()[1]
    if method == "eth_getTransactionReceipt":
        receipt = await chain.receipt(params[0])
        if receipt is None:
            return None
        return {
            "transactionHash": receipt.tx_hash,
            "status": "0x1" if receipt.succeeded else "0x0",
            "from": receipt.sender,
            "to": receipt.to,
            "logs": [
                {"address": log.address, "topics": list(log.topics), "data": "0x" + log.data.hex()}
                for log in receipt.logs
            ],
        }
    if method == "eth_call":
        call = tempo.decode_call(bytes.fromhex(params[0]["data"].removeprefix("0x")))
        data = bytes.fromhex(params[0]["data"].removeprefix("0x"))
        if call is not None or data[:4] != tempo.selector(tempo.GET_CHANNEL):
            raise ChainRejected("execution reverted")
        channel = "0x" + data[4:36].hex()
        state = await chain.channel(params[0]["to"], channel) or _EMPTY_CHANNEL
        return "0x" + state.encode().hex()
    if method == "eth_getTransactionCount":
        return hex(await chain.nonce(params[0]))
    if method == "eth_gasPrice":
        return hex(await chain.gas_price())
    raise ChainRejected(f"method {method} not found")
