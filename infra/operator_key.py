"""The operator key: who signs what the operator does (grants, CLI key creation and revocation).

An operator action carries this key's EIP-191 signature over `domain.evidence.
operator_statement` — the whole event — so an auditor holding only the operator's public
address can tell a grant the operator made from one inserted by hand, and sees who made it.
The key is PRYV_OPERATOR_KEY, else `<data_dir>/operator_key` (made on first use, 0600). Auditors
trust the addresses in PRYV_OPERATOR_ADDRESS (comma-separated, every key ever used).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from eth_utils.address import is_hex_address

from domain.evidence import Evidence, EvidenceKind, operator_statement
from infra.ethereum import Account, encode_defunct
from infra.key_files import load_or_create_key_file, read_key_file
from infra.settings import ConfigurationError, Settings

OPERATOR_KEY_FILE = "operator_key"
OPERATOR_ADDRESS_ENV = "PRYV_OPERATOR_ADDRESS"


class OperatorSigner:
    """An `Authorization` that signs each event it authorizes with the operator key."""

    def __init__(self, private_key_hex: str) -> None:
        self._account = Account.from_key(private_key_hex)
        self.address: str = str(self._account.address).lower()

    def evidence(
        self, event: str, aggregate_id: UUID, version: int, fields: Mapping[str, Any]
    ) -> Evidence:
        statement = operator_statement(event, aggregate_id, version, fields)
        signed = self._account.sign_message(encode_defunct(text=statement))
        return {
            "kind": EvidenceKind.OPERATOR.value,
            "operator": self.address,
            "signature": "0x" + bytes(signed.signature).hex(),
        }


def operator_signer(settings: Settings) -> OperatorSigner:
    """PRYV_OPERATOR_KEY, else the data dir's key (embedded stores only: on a shared database
    an unnamed key per machine would make every operator a stranger to the auditor)."""
    if settings.operator_key:
        return OperatorSigner(settings.operator_key)
    if settings.database_url:
        raise ConfigurationError(
            "operator actions on a shared database need PRYV_OPERATOR_KEY (the key auditors "
            "know as PRYV_OPERATOR_ADDRESS)"
        )
    return OperatorSigner(load_or_create_key_file(settings.data_dir / OPERATOR_KEY_FILE))


def trusted_operator_addresses(settings: Settings) -> tuple[str, ...]:
    """PRYV_OPERATOR_ADDRESS, else the address of PRYV_OPERATOR_KEY or the data dir's key;
    empty when none is known (never creates a key)."""
    if settings.operator_address:
        return parse_operator_addresses(settings.operator_address)
    key = settings.operator_key or read_key_file(settings.data_dir / OPERATOR_KEY_FILE)
    return (OperatorSigner(key).address,) if key else ()


def parse_operator_addresses(text: str) -> tuple[str, ...]:
    addresses = tuple(part.strip().lower() for part in text.split(",") if part.strip())
    for address in addresses:
        if not is_hex_address(address):
            raise ConfigurationError(f"{OPERATOR_ADDRESS_ENV}: {address!r} is not a 0x address")
    return addresses
