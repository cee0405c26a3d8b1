"""An MPP client for tests, the way an agent's wallet would pay (pympp's Challenge and
Credential, eth-account signatures): Tempo charges in pull or push mode, and stream channels
(open, voucher, top-up, close)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx
from mpp import Challenge, Credential, Receipt

from commands.chain import Chain
from domain import tempo
from infra.ethereum import Account, sign_transaction, sign_typed_data


def challenges(response: httpx.Response) -> list[Challenge]:
    return [
        Challenge.from_www_authenticate(v) for v in response.headers.get_list("www-authenticate")
    ]


def receipt_of(response: httpx.Response) -> Receipt:
    return Receipt.from_payment_receipt(response.headers["payment-receipt"])


@dataclass
class Channel:
    channel_id: str
    salt: str
    deposit: int
    challenge: Challenge


@dataclass
class TempoPayer:
    chain: Chain
    key: str = field(default_factory=lambda: Account.create().key.hex())

    @property
    def address(self) -> str:
        return str(Account.from_key(self.key).address).lower()

    @property
    def did(self) -> str:
        return tempo.did_pkh(self.chain.chain_id, self.address)

    async def _signed(self, to: str, data: bytes, *, chain_id: int | None = None) -> bytes:
        return sign_transaction(
            self.key,
            {
                "chainId": chain_id or self.chain.chain_id,
                "nonce": await self.chain.nonce(self.address),
                "to": to,
                "value": 0,
                "gas": 200_000,
                "maxFeePerGas": 1,
                "maxPriorityFeePerGas": 1,
                "data": data,
            },
        )

    # --- charge ------------------------------------------------------------------------------

    async def pay(
        self,
        challenge: Challenge,
        *,
        mode: str = "pull",
        amount: int | None = None,
        recipient: str | None = None,
        memo: str | None = None,
        source: str | None = None,
    ) -> str:
        """The `Authorization` value paying `challenge` (what it asks, unless overridden)."""
        request = challenge.request
        details = request["methodDetails"]
        call = tempo.transfer_call(
            recipient or request["recipient"],
            int(request["amount"]) if amount is None else amount,
            memo or details["memo"],
        )
        raw = await self._signed(request["currency"], call)
        if mode == "pull":
            payload: dict[str, Any] = {"type": "transaction", "signature": "0x" + raw.hex()}
        else:
            tx_hash = await self.chain.send_raw_transaction(raw)
            payload = {"type": "hash", "hash": tx_hash}
        return Credential(
            challenge=challenge.to_echo(), payload=payload, source=source or self.did
        ).to_authorization()

    # --- session -----------------------------------------------------------------------------

    def voucher_signature(self, challenge: Challenge, channel_id: str, cumulative: int) -> str:
        details = challenge.request["methodDetails"]
        typed = tempo.voucher_typed_data(
            channel=channel_id,
            cumulative=cumulative,
            escrow=details["escrowContract"],
            chain_id=details["chainId"],
        )
        return sign_typed_data(self.key, typed)

    async def open(
        self, challenge: Challenge, deposit: int, cumulative: int = 0
    ) -> tuple[Channel, str]:
        request = challenge.request
        escrow = request["methodDetails"]["escrowContract"]
        salt = "0x" + secrets.token_hex(32)
        channel_id = tempo.channel_id(
            payer=self.address,
            payee=request["recipient"],
            token=request["currency"],
            salt=salt,
            authorized_signer=tempo.ZERO_ADDRESS,
            escrow=escrow,
            chain_id=self.chain.chain_id,
        )
        raw = await self._signed(
            escrow,
            tempo.open_call(
                request["recipient"], request["currency"], deposit, salt, tempo.ZERO_ADDRESS
            ),
        )
        payload = {
            "action": "open",
            "type": "transaction",
            "channelId": channel_id,
            "transaction": "0x" + raw.hex(),
            "cumulativeAmount": str(cumulative),
            "signature": self.voucher_signature(challenge, channel_id, cumulative),
        }
        credential = Credential(challenge=challenge.to_echo(), payload=payload, source=self.did)
        return Channel(channel_id, salt, deposit, challenge), credential.to_authorization()

    def voucher(
        self,
        channel: Channel,
        cumulative: int,
        *,
        action: str = "voucher",
        channel_id: str | None = None,
        signer: TempoPayer | None = None,
    ) -> str:
        signed_for = channel_id or channel.channel_id
        payload = {
            "action": action,
            "channelId": signed_for if channel_id is None else channel.channel_id,
            "cumulativeAmount": str(cumulative),
            "signature": (signer or self).voucher_signature(
                channel.challenge, signed_for, cumulative
            ),
        }
        return Credential(
            challenge=channel.challenge.to_echo(), payload=payload, source=self.did
        ).to_authorization()

    async def top_up(self, channel: Channel, additional: int) -> str:
        escrow = channel.challenge.request["methodDetails"]["escrowContract"]
        raw = await self._signed(escrow, tempo.top_up_call(channel.channel_id, additional))
        payload = {
            "action": "topUp",
            "type": "transaction",
            "channelId": channel.channel_id,
            "transaction": "0x" + raw.hex(),
            "additionalDeposit": str(additional),
        }
        channel.deposit += additional
        return Credential(
            challenge=channel.challenge.to_echo(), payload=payload, source=self.did
        ).to_authorization()

    async def request_close(self, channel: Channel) -> str:
        """Force a close on chain (the payer's way out when the payee does not close)."""
        escrow = channel.challenge.request["methodDetails"]["escrowContract"]
        raw = await self._signed(escrow, tempo.request_close_call(channel.channel_id))
        return await self.chain.send_raw_transaction(raw)
