"""EIP-191 personal_sign recovery with eth-account (coincurve backend: ~0.2 ms per recovery)."""

from __future__ import annotations

from eth_utils.address import is_hex_address, to_checksum_address

from domain.wallet_messages import WalletAuthCode, WalletAuthError
from infra.ethereum import Account, encode_defunct


def normalize_address(address: str) -> str:
    """Lower-case 0x address, or MESSAGE_INVALID for anything that is not one."""
    if not isinstance(address, str) or not is_hex_address(address):
        raise WalletAuthError(WalletAuthCode.MESSAGE_INVALID, "walletAddress is not a 0x address")
    return address.lower()


def recover_signer(message: str, signature: str) -> str:
    """Lower-case address that personal_signed `message`; SIGNATURE_VERIFY_ERROR if unreadable."""
    try:
        recovered = Account.recover_message(encode_defunct(text=message), signature=signature)
    except Exception as exc:  # eth-account raises several types for malformed signatures
        raise WalletAuthError(
            WalletAuthCode.SIGNATURE_VERIFY_ERROR, "signature could not be verified"
        ) from exc
    return str(recovered).lower()


def verify_signer(message: str, signature: str, wallet_address: str) -> str:
    """Check that `wallet_address` signed `message`; returns the normalized address."""
    wallet = normalize_address(wallet_address)
    if recover_signer(message, signature) != wallet:
        raise WalletAuthError(
            WalletAuthCode.SIGNATURE_INVALID,
            f"signature was not made by {to_checksum_address(wallet)}",
        )
    return wallet


def sign_message(private_key: str, message: str) -> tuple[str, str]:
    """(address, 0x signature) — for the local `pryv wallet sign` helper and tests."""
    account = Account.from_key(private_key)
    signed = Account.sign_message(encode_defunct(text=message), account.key)
    return account.address, "0x" + signed.signature.hex().removeprefix("0x")
