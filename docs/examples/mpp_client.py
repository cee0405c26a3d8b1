"""Pay Pryv by MPP from a script: a throwaway wallet buys a PII preview, an API key and a
streamed chat on the embedded server's in-memory chain (docs/mpp.md).

    uv run pryv serve &                       # the embedded default
    uv run python docs/examples/mpp_client.py --url http://127.0.0.1:8000

Needs only pympp (challenges and credentials), eth-account and eth-abi (signatures and
calldata), httpx. Against a real Tempo chain, take nonces from your node and fund the wallet
with the currency the challenge names instead of calling the faucet.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
from typing import Any

import httpx
from eth_abi.abi import encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from mpp import Challenge, Credential, Receipt

ZERO = "0x" + "00" * 20


def selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


class Wallet:
    """A throwaway payer. The in-memory chain starts every new address at nonce 0."""

    def __init__(self, chain_id: int = 4217) -> None:
        self.account = Account.create()
        self.address = self.account.address.lower()
        self.chain_id = chain_id
        self.nonce = 0

    @property
    def did(self) -> str:
        return f"did:pkh:eip155:{self.chain_id}:{self.address}"

    def transaction(self, to: str, data: bytes) -> str:
        tx = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": self.nonce,
            "to": to_checksum_address(to),
            "value": 0,
            "gas": 200_000,
            "maxFeePerGas": 1,
            "maxPriorityFeePerGas": 1,
            "data": data,
        }
        self.nonce += 1
        return "0x" + bytes(self.account.sign_transaction(tx).raw_transaction).hex()

    def voucher(self, challenge: Challenge, channel_id: str, cumulative: int) -> str:
        details = challenge.request["methodDetails"]
        typed = {
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "Voucher": [
                    {"name": "channelId", "type": "bytes32"},
                    {"name": "cumulativeAmount", "type": "uint128"},
                ],
            },
            "primaryType": "Voucher",
            "domain": {
                "name": "Tempo Stream Channel",
                "version": "1",
                "chainId": details["chainId"],
                "verifyingContract": details["escrowContract"],
            },
            "message": {"channelId": bytes.fromhex(channel_id[2:]), "cumulativeAmount": cumulative},
        }
        signed = self.account.sign_message(encode_typed_data(full_message=typed))
        return "0x" + bytes(signed.signature).hex()


def pay_charge(wallet: Wallet, challenge: Challenge) -> str:
    """Pull mode: sign transferWithMemo(recipient, amount, memo) for the server to broadcast."""
    request = challenge.request
    memo = bytes.fromhex(request["methodDetails"]["memo"][2:])
    data = selector("transferWithMemo(address,uint256,bytes32)") + encode(
        ["address", "uint256", "bytes32"], [request["recipient"], int(request["amount"]), memo]
    )
    payload = {"type": "transaction", "signature": wallet.transaction(request["currency"], data)}
    return Credential(
        challenge=challenge.to_echo(), payload=payload, source=wallet.did
    ).to_authorization()


def only_challenge(response: httpx.Response) -> Challenge:
    assert response.status_code == 402, response.text
    return Challenge.from_www_authenticate(response.headers["www-authenticate"])


async def paid_preview(http: httpx.AsyncClient, wallet: Wallet) -> dict[str, Any]:
    body = {"text": "Write to jane.doe@example.com"}
    challenge = only_challenge(await http.post("/mpp/pii/preview", json=body))
    print(
        "preview costs", challenge.request["amount"], "base units of", challenge.request["currency"]
    )
    answer = await http.post(
        "/mpp/pii/preview", json=body, headers={"Authorization": pay_charge(wallet, challenge)}
    )
    answer.raise_for_status()
    receipt = Receipt.from_payment_receipt(answer.headers["payment-receipt"])
    print("preview:", answer.json()["text"]["redacted"], "| paid in", receipt.reference)
    return dict(answer.json())


async def buy_key(http: httpx.AsyncClient, wallet: Wallet) -> str:
    body = {"pack": "pack_10", "name": "my agent"}
    challenge = only_challenge(await http.post("/mpp/keys", json=body))
    answer = await http.post(
        "/mpp/keys", json=body, headers={"Authorization": pay_charge(wallet, challenge)}
    )
    answer.raise_for_status()
    key = str(answer.json()["key"])  # shown once: store it
    print("bought", answer.json()["prefix"], "for", answer.json()["account"])
    return key


async def session_chat(http: httpx.AsyncClient, wallet: Wallet, model: str) -> str:
    """Open a channel, stream a chat, sign a voucher each time the server asks, then close."""
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "a b c d e"}]}
    challenge = only_challenge(await http.post("/mpp/chat/completions", json=body))
    request = challenge.request
    escrow, deposit = request["methodDetails"]["escrowContract"], 100_000
    salt = "0x" + secrets.token_hex(32)
    channel_id = (
        "0x"
        + keccak(
            encode(
                ["address", "address", "address", "bytes32", "address", "address", "uint256"],
                [
                    wallet.address,
                    request["recipient"],
                    request["currency"],
                    bytes.fromhex(salt[2:]),
                    ZERO,
                    escrow,
                    wallet.chain_id,
                ],
            )
        ).hex()
    )
    open_data = selector("open(address,address,uint128,bytes32,address)") + encode(
        ["address", "address", "uint128", "bytes32", "address"],
        [request["recipient"], request["currency"], deposit, bytes.fromhex(salt[2:]), ZERO],
    )
    first = 200  # enough for the prompt; the server asks for more as it streams

    def credential(payload: dict[str, Any]) -> str:
        return Credential(
            challenge=challenge.to_echo(), payload=payload, source=wallet.did
        ).to_authorization()

    opening = credential(
        {
            "action": "open",
            "type": "transaction",
            "channelId": channel_id,
            "transaction": wallet.transaction(escrow, open_data),
            "cumulativeAmount": str(first),
            "signature": wallet.voucher(challenge, channel_id, first),
        }
    )
    text, spent = "", "0"
    async with http.stream(
        "POST", "/mpp/chat/completions", json=body, headers={"Authorization": opening}
    ) as stream:
        event = "message"
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
                continue
            if not line.startswith("data: "):
                continue
            data = line[6:]
            if event == "payment-need-voucher":
                need = int(json.loads(data)["requiredCumulative"])
                voucher = credential(
                    {
                        "action": "voucher",
                        "channelId": channel_id,
                        "cumulativeAmount": str(need),
                        "signature": wallet.voucher(challenge, channel_id, need),
                    }
                )
                (
                    await http.head("/mpp/chat/completions", headers={"Authorization": voucher})
                ).raise_for_status()
            elif event == "payment-receipt":
                spent = json.loads(data)["spent"]
            elif data != "[DONE]":
                for choice in json.loads(data).get("choices") or []:
                    text += choice["delta"].get("content") or ""
            event = "message"
    closing = credential(
        {
            "action": "close",
            "channelId": channel_id,
            "cumulativeAmount": spent,
            "signature": wallet.voucher(challenge, channel_id, int(spent)),
        }
    )
    closed = await http.post("/mpp/chat/completions", headers={"Authorization": closing})
    closed.raise_for_status()
    print(f"chat: {text!r} | spent {spent} | closed in {closed.json()['txHash']}")
    return text


async def main(url: str, model: str = "pryv-echo") -> None:
    wallet = Wallet()
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        offers = (await http.get("/mpp/openapi.json")).json()["paths"]
        print("paid operations:", ", ".join(p for p in offers if p != "/mpp/openapi.json"))
        minted = await http.post(
            "/mpp/faucet", json={"address": wallet.address, "amount": 50_000_000}
        )
        minted.raise_for_status()  # test money: the in-memory chain only
        await paid_preview(http, wallet)
        key = await buy_key(http, wallet)
        answer = await http.post(
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": model, "messages": [{"role": "user", "content": "hello"}]},
        )
        print("with the key:", answer.json()["choices"][0]["message"]["content"])
        await session_chat(http, wallet, model)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--model", default="pryv-echo")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.url, arguments.model))
