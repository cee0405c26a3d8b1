"""The EIP-4361 parser is strict, and the login checks bind a message to this dashboard, now."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from domain.siwe import (
    LoginPolicy,
    SiweCode,
    SiweError,
    SiweMessage,
    check_siwe_message,
    format_siwe_message,
    parse_siwe_message,
)
from gateway.sign_in import LoginNonces

NOW = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)
ADDRESS = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # EIP-55 test vector
POLICY = LoginPolicy(domain="platform.pryv.ai")


def message(**changes: object) -> SiweMessage:
    base = SiweMessage(
        scheme=None,
        domain="platform.pryv.ai",
        address=ADDRESS,
        statement="Sign in to the Pryv platform dashboard.",
        uri="https://platform.pryv.ai/",
        version="1",
        chain_id=1,
        nonce="a1b2c3d4e5f6a7b8",
        issued_at=NOW,
        expiration_time=NOW + timedelta(minutes=10),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


TEXT = format_siwe_message(message())


def code_of(text: str) -> SiweCode:
    with pytest.raises(SiweError) as caught:
        parse_siwe_message(text)
    return caught.value.code


def test_round_trip_and_the_exact_text() -> None:
    assert (
        "platform.pryv.ai wants you to sign in with your Ethereum account:\n"
        f"{ADDRESS}\n\n"
        "Sign in to the Pryv platform dashboard.\n\n"
        "URI: https://platform.pryv.ai/\n"
        "Version: 1\n"
        "Chain ID: 1\n"
        "Nonce: a1b2c3d4e5f6a7b8\n"
        "Issued At: 2026-11-03T12:00:00.000Z\n"
        "Expiration Time: 2026-11-03T12:10:00.000Z"
    ) == TEXT
    assert parse_siwe_message(TEXT) == message()


def test_optional_parts() -> None:
    full = message(
        scheme="https",
        statement=None,
        not_before=NOW,
        request_id="req-1",
        resources=("ipfs://bafy", "https://example.com/a"),
    )
    assert parse_siwe_message(format_siwe_message(full)) == full
    assert "account:\n" + ADDRESS + "\n\n\nURI:" in format_siwe_message(full)  # no statement


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (TEXT.replace("\n", "\r\n"), "CRLF line breaks"),
        (TEXT + "\n", "trailing newline"),
        (TEXT.replace(ADDRESS, ADDRESS.lower()), "address not EIP-55 checksummed"),
        (TEXT.replace(ADDRESS, ADDRESS.replace("a", "A", 1)), "wrong checksum"),
        (TEXT.replace("0x5aAeb", "0x5aAe"), "short address"),
        (TEXT.replace(" wants you to sign in", " wants you to log in"), "header"),
        (TEXT.replace("platform.pryv.ai wants", "platform pryv.ai wants"), "bad domain"),
        (TEXT.replace("Version: 1", "Version: 2"), "version"),
        (TEXT.replace("Chain ID: 1", "Chain ID: 01"), "chain id with a leading zero"),
        (TEXT.replace("Chain ID: 1", "Chain ID: x"), "chain id"),
        (TEXT.replace("Nonce: a1b2c3d4e5f6a7b8", "Nonce: short"), "nonce too short"),
        (TEXT.replace("Nonce: a1b2c3d4e5f6a7b8", "Nonce: a1b2c3d4-e5f6"), "nonce not alnum"),
        (TEXT.replace("12:00:00.000Z", "12:00:00"), "time without a zone"),
        (TEXT.replace("2026-11-03T12:00:00.000Z", "3 Nov 2026"), "not RFC 3339"),
        (TEXT.replace("2026-11-03T12:00", "2026-13-03T12:00"), "no such month"),
        (TEXT.replace("URI: https://platform.pryv.ai/", "URI: not a uri"), "uri"),
        (TEXT.replace("\nVersion: 1", ""), "missing Version"),
        (
            TEXT.replace("Version: 1\nChain ID: 1", "Chain ID: 1\nVersion: 1"),
            "fields out of order",
        ),
        (TEXT + "\nColor: blue", "unknown line"),
        (TEXT + "\nResources:\nnot-a-bullet", "resource without '- '"),
        (TEXT.replace("dashboard.\n\nURI", "dashboard.\nURI"), "no blank line after statement"),
        (TEXT.replace("dashboard.", "dashboard. ✓"), "non-ASCII statement"),
        ("", "empty"),
        ("x" * 5000, "too long"),
    ],
)
def test_malformed_messages_are_refused(text: str, why: str) -> None:
    assert code_of(text) == SiweCode.MESSAGE_INVALID, why


def check(msg: SiweMessage, *, now: datetime = NOW, policy: LoginPolicy = POLICY) -> None:
    check_siwe_message(msg, policy, now)


def code_of_check(msg: SiweMessage, **kwargs: object) -> SiweCode:
    with pytest.raises(SiweError) as caught:
        check(msg, **kwargs)  # type: ignore[arg-type]
    return caught.value.code


def test_a_good_message_passes_the_checks() -> None:
    check(message())
    check(message(domain="PLATFORM.pryv.ai", uri="https://platform.pryv.ai/signin"))
    check(message(), now=NOW + timedelta(minutes=9, seconds=59))


def test_wrong_domain_or_uri() -> None:
    assert code_of_check(message(domain="evil.example")) == SiweCode.DOMAIN_MISMATCH
    assert code_of_check(message(uri="https://evil.example/")) == SiweCode.URI_MISMATCH
    assert code_of_check(message(uri="ftp://platform.pryv.ai/")) == SiweCode.URI_MISMATCH
    assert code_of_check(message(scheme="http")) == SiweCode.URI_MISMATCH  # URI says https
    local = LoginPolicy(domain="127.0.0.1:8001")
    assert code_of_check(message(), policy=local) == SiweCode.DOMAIN_MISMATCH


def test_chain_id() -> None:
    assert code_of_check(message(chain_id=137)) == SiweCode.CHAIN_MISMATCH


def test_time_window() -> None:
    expired = NOW + timedelta(minutes=10)
    assert code_of_check(message(), now=expired) == SiweCode.TIMESTAMP_EXPIRED
    ahead = message(
        issued_at=NOW + timedelta(minutes=5), expiration_time=NOW + timedelta(minutes=10)
    )
    assert code_of_check(ahead) == SiweCode.TIMESTAMP_EXPIRED
    too_long = message(expiration_time=NOW + timedelta(minutes=10, seconds=1))
    assert code_of_check(too_long) == SiweCode.MESSAGE_INVALID
    assert code_of_check(message(expiration_time=None)) == SiweCode.MESSAGE_INVALID
    backwards = message(expiration_time=NOW - timedelta(seconds=1))
    assert code_of_check(backwards) == SiweCode.MESSAGE_INVALID
    not_yet = message(not_before=NOW + timedelta(minutes=5))
    assert code_of_check(not_yet) == SiweCode.TIMESTAMP_EXPIRED


def test_nonces_are_ours_and_fresh() -> None:
    nonces = LoginNonces(b"k" * 32)
    issued = nonces.issue(NOW)
    assert issued.nonce.isalnum() and len(issued.nonce) == 64
    assert issued.expires_at == NOW + timedelta(minutes=10)
    nonces.check(issued.nonce, NOW + timedelta(minutes=9))
    other = LoginNonces(b"j" * 32)
    for bad, now in [
        (issued.nonce, NOW + timedelta(minutes=11)),  # expired
        (issued.nonce[:-1] + ("0" if issued.nonce[-1] != "0" else "1"), NOW),  # tampered
        (other.issue(NOW).nonce, NOW),  # another deployment's
        ("a1b2c3d4e5f6a7b8", NOW),  # made up
    ]:
        with pytest.raises(SiweError) as caught:
            nonces.check(bad, now)
        assert caught.value.code == SiweCode.NONCE_INVALID
