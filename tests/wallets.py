"""Test wallets that sign management messages like a browser wallet would (EIP-191)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from domain.wallet_messages import format_wallet_message
from infra.ethereum import Account
from infra.wallet_signatures import sign_message


@dataclass
class SigningWallet:
    private_key: str
    address: str

    @classmethod
    def create(cls) -> SigningWallet:
        account = Account.create()
        return cls(private_key=account.key.hex(), address=account.address)

    def fields(
        self,
        action: str,
        key_id: str = "",
        *,
        nonce: str | None = None,
        ts: datetime | None = None,
        signer: SigningWallet | None = None,
    ) -> dict[str, str]:
        """walletAddress/message/signature for one call; `signer` lets another wallet sign."""
        message = format_wallet_message(
            action, key_id, nonce or uuid.uuid4().hex, ts or datetime.now(UTC)
        )
        _address, signature = sign_message((signer or self).private_key, message)
        return {"walletAddress": self.address, "message": message, "signature": signature}

    def headers(self, action: str, key_id: str = "", **kwargs: object) -> dict[str, str]:
        f = self.fields(action, key_id, **kwargs)  # type: ignore[arg-type]
        return {
            "X-Wallet-Address": f["walletAddress"],
            "X-Wallet-Message": f["message"],
            "X-Wallet-Signature": f["signature"],
        }


STALE = timedelta(minutes=6)
