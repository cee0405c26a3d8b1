from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.wallet_messages import (
    WalletAction,
    WalletAuthCode,
    WalletAuthError,
    check_wallet_message,
    format_wallet_message,
    parse_wallet_message,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_seed_example_parses() -> None:
    text = (
        "Pryv API key mgmt | action=create | keyId= | nonce=0b6f3c1e-8f5a-4bd2"
        " | ts=2026-11-23T12:00:00.000Z"
    )
    message = parse_wallet_message(text)
    assert (message.action, message.key_id, message.nonce) == ("create", "", "0b6f3c1e-8f5a-4bd2")
    assert message.ts == NOW


@given(
    st.sampled_from(list(WalletAction)),
    st.text(alphabet="abcXYZ019", max_size=16),
    st.text(alphabet="abcdef0123456789-", min_size=8, max_size=40),
)
def test_format_parse_roundtrip(action: WalletAction, key_id: str, nonce: str) -> None:
    message = parse_wallet_message(format_wallet_message(action.value, key_id, nonce, NOW))
    assert (message.action, message.key_id, message.nonce, message.ts) == (
        action.value,
        key_id,
        nonce,
        NOW,
    )


@pytest.mark.parametrize(
    "text",
    [
        "hello",
        "Pryv API key mgmt | action=create | nonce=abcdefgh | ts=2026-11-23T12:00:00Z",
        "Pryv API key mgmt | keyId= | action=create | nonce=abcdefgh | ts=2026-11-23T12:00:00Z",
        "Pryv API key mgmt | action=create | keyId= | nonce=short | ts=2026-11-23T12:00:00Z",
        "Pryv API key mgmt | action=create | keyId= | nonce=abcdefgh | ts=yesterday",
        "Pryv API key mgmt | action=create | keyId= | nonce=abcdefgh | ts=2026-11-23T12:00:00",
    ],
)
def test_malformed_messages(text: str) -> None:
    with pytest.raises(WalletAuthError) as info:
        parse_wallet_message(text)
    assert info.value.code is WalletAuthCode.MESSAGE_INVALID


def _check(
    action: str, key_id: str, ts: datetime, expect_action: WalletAction, expect_key: str
) -> None:
    message = parse_wallet_message(format_wallet_message(action, key_id, "nonce-123", ts))
    check_wallet_message(message, action=expect_action, key_id=expect_key, now=NOW)


def test_checks_and_their_codes() -> None:
    _check("revoke", "k1", NOW, WalletAction.REVOKE, "k1")  # fine
    cases = [
        (("create", "", NOW, WalletAction.LIST, ""), WalletAuthCode.ACTION_MISMATCH),
        (("revoke", "k1", NOW, WalletAction.REVOKE, "k2"), WalletAuthCode.KEY_ID_MISMATCH),
        (
            ("list", "", NOW - timedelta(minutes=6), WalletAction.LIST, ""),
            WalletAuthCode.TIMESTAMP_EXPIRED,
        ),
        (
            ("list", "", NOW + timedelta(minutes=6), WalletAction.LIST, ""),
            WalletAuthCode.TIMESTAMP_EXPIRED,
        ),
    ]
    for args, code in cases:
        with pytest.raises(WalletAuthError) as info:
            _check(*args)
        assert info.value.code is code
    _check("list", "", NOW - timedelta(minutes=4, seconds=59), WalletAction.LIST, "")
