"""MPP's pure parts: the challenge id is the draft's HMAC, vouchers hash as the draft writes
them out, signatures are canonical, and the PaymentChannel aggregate keeps the session
accounting's invariants."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
import rfc8785
from eth_account.messages import _hash_eip191_message, encode_typed_data
from mpp import Credential

from domain import tempo
from domain.aggregates import DomainRuleViolation, PaymentChannel
from gateway.mpp.payment_auth import Offer, PaymentAuth, content_digest
from gateway.mpp.problems import PaymentProblem
from infra.ethereum import Account, recover_typed_signer, sign_typed_data

SECRET, REALM = "s3cret", "api.pryv.test"
OFFER = Offer("tempo", "charge", {"amount": "50000", "currency": "0x" + "20" * 20}, "preview")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_the_challenge_id_is_the_drafts_hmac_over_seven_slots() -> None:
    auth = PaymentAuth(SECRET, REALM)
    body = b'{"text":"hi"}'
    challenge = auth.issue(OFFER, "/mpp/pii/preview", body)
    assert (
        challenge.digest
        == "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"
    )
    slots = [
        REALM,
        "tempo",
        "charge",
        b64url(rfc8785.dumps(OFFER.request)),
        challenge.expires or "",
        challenge.digest or "",
        b64url(rfc8785.dumps(challenge.opaque)),
    ]
    expected = b64url(hmac.new(SECRET.encode(), "|".join(slots).encode(), hashlib.sha256).digest())
    assert challenge.id == expected
    assert challenge.opaque is not None and challenge.opaque["path"] == "/mpp/pii/preview"
    assert auth.issue(OFFER, "/mpp/pii/preview", body).id != challenge.id  # a nonce each time


def presented(auth: PaymentAuth, challenge: object, **kw: object) -> object:
    credential = Credential(challenge=challenge.to_echo(), payload={"type": "hash"})  # type: ignore[attr-defined]
    return auth.read(credential.to_authorization(), offers=[OFFER], **kw)  # type: ignore[arg-type]


def test_reading_a_credential_checks_binding_resource_body_and_expiry() -> None:
    auth = PaymentAuth(SECRET, REALM)
    body = b"{}"
    challenge = auth.issue(OFFER, "/mpp/pii/preview", body)
    ok = presented(auth, challenge, path="/mpp/pii/preview", body=body)
    assert not ok.expired  # type: ignore[attr-defined]
    with pytest.raises(PaymentProblem) as other_path:
        presented(auth, challenge, path="/mpp/keys", body=body)
    assert other_path.value.slug == "invalid-challenge"
    with pytest.raises(PaymentProblem) as other_body:
        presented(auth, challenge, path="/mpp/pii/preview", body=b"[]")
    assert other_body.value.slug == "invalid-challenge"
    with pytest.raises(PaymentProblem) as other_secret:
        presented(PaymentAuth("another", REALM), challenge, path="/mpp/pii/preview", body=body)
    assert other_secret.value.slug == "invalid-challenge"
    later = datetime.now(UTC) + timedelta(minutes=6)
    stale = presented(auth, challenge, path="/mpp/pii/preview", body=body, now=later)
    assert stale.expired  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("value", "slug"),
    [
        ("Bearer abc", "malformed-credential"),
        ("Payment abc=", "malformed-credential"),
        ("Payment +/+/", "malformed-credential"),
        ("Payment " + b64url(b"[1]"), "malformed-credential"),
        ("Payment " + b64url(json.dumps({"payload": {}}).encode()), "malformed-credential"),
        ("Payment a, Payment b", "bad-request"),
        ("Payment " + "A" * 20_000, "malformed-credential"),
    ],
)
def test_malformed_credentials_are_named(value: str, slug: str) -> None:
    with pytest.raises(PaymentProblem) as refused:
        PaymentAuth(SECRET, REALM).read(value, path="/p", offers=[OFFER], body=None)
    assert refused.value.slug == slug


def test_problem_bodies_follow_rfc_9457() -> None:
    problem = PaymentProblem("verification-failed", "bad proof", extra={"channelId": "0x1"})
    problem.challenge_id = "abc"
    assert problem.body() == {
        "type": "https://paymentauth.org/problems/verification-failed",
        "title": "Payment Verification Failed",
        "status": 402,
        "detail": "bad proof",
        "channelId": "0x1",
        "challengeId": "abc",
    }


def test_content_digest_is_rfc_9530() -> None:
    assert content_digest(b"") == "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"


CHANNEL = "0x" + "6d" * 32
ESCROW = "0x" + "12" * 20


def test_the_voucher_digest_is_the_drafts_signing_procedure() -> None:
    typed = tempo.voucher_typed_data(
        channel=CHANNEL, cumulative=250_000, escrow=ESCROW, chain_id=4217
    )
    assert _hash_eip191_message(encode_typed_data(full_message=typed)) == tempo.voucher_digest(
        channel=CHANNEL, cumulative=250_000, escrow=ESCROW, chain_id=4217
    )
    account = Account.create()
    signature = tempo.signature_bytes(sign_typed_data(account.key.hex(), typed))
    assert recover_typed_signer(typed, signature) == account.address.lower()
    # EIP-2098 compact form is the same signature.
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    compact = r + ((v - 27) << 255 | s).to_bytes(32, "big")
    assert tempo.signature_bytes("0x" + compact.hex()) == signature


def test_a_high_s_signature_is_refused() -> None:
    account = Account.create()
    typed = tempo.voucher_typed_data(channel=CHANNEL, cumulative=1, escrow=ESCROW, chain_id=4217)
    raw = tempo.signature_bytes(sign_typed_data(account.key.hex(), typed))
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    high = (
        raw[:32]
        + (n - int.from_bytes(raw[32:64], "big")).to_bytes(32, "big")
        + bytes([raw[64] ^ 1])
    )
    with pytest.raises(tempo.TempoFormatError):
        tempo.signature_bytes("0x" + high.hex())


def test_the_channel_id_binds_every_field() -> None:
    fields = {
        "payer": "0x" + "11" * 20,
        "payee": "0x" + "22" * 20,
        "token": "0x" + "33" * 20,
        "salt": "0x" + "44" * 32,
        "authorized_signer": tempo.ZERO_ADDRESS,
        "escrow": ESCROW,
        "chain_id": 4217,
    }
    base = tempo.channel_id(**fields)  # type: ignore[arg-type]
    for name, other in (("payer", "0x" + "55" * 20), ("salt", "0x" + "66" * 32), ("chain_id", 1)):
        assert tempo.channel_id(**{**fields, name: other}) != base  # type: ignore[arg-type]


def channel(deposit: int = 1_000) -> PaymentChannel:
    return PaymentChannel(
        channel_id=CHANNEL,
        chain_id=4217,
        escrow=ESCROW,
        token="0x" + "33" * 20,
        payer="0x" + "11" * 20,
        payee="0x" + "22" * 20,
        authorized_signer=tempo.ZERO_ADDRESS,
        deposit=deposit,
        open_tx="0x" + "00" * 32,
        account_id="a",
        wallet="0x" + "11" * 20,
        env="test",
    )


def test_the_channel_keeps_spent_within_the_voucher_and_the_voucher_within_the_deposit() -> None:
    c = channel()
    assert c.accept_voucher(300, "0xsig")
    assert not c.accept_voucher(300, "0xsig")  # a resubmission changes nothing
    with pytest.raises(DomainRuleViolation) as lower:
        c.accept_voucher(200, "0xsig")
    assert lower.value.code == "voucher_below_accepted"
    with pytest.raises(DomainRuleViolation) as beyond:
        c.accept_voucher(1_001, "0xsig")
    assert beyond.value.code == "amount_exceeds_deposit"
    c.spend(amount=200, request_id="r1", model="m", tokens_in=1, tokens_out=2)
    c.spend(amount=50, request_id="r2", model="m", tokens_in=1, tokens_out=0)  # a 2nd stream
    assert c.spent == 250
    with pytest.raises(DomainRuleViolation) as uncovered:
        c.spend(amount=51, request_id="r", model="m", tokens_in=0, tokens_out=1)
    assert uncovered.value.code == "insufficient_balance"
    with pytest.raises(DomainRuleViolation):
        c.spend(amount=0, request_id="r", model="m", tokens_in=0, tokens_out=0)
    with pytest.raises(DomainRuleViolation):
        c.start_close(300)  # more than was spent
    assert c.start_close(250)
    assert not c.start_close(250)  # a retry of the same close
    with pytest.raises(DomainRuleViolation) as closing:
        c.spend(amount=1, request_id="r", model="m", tokens_in=0, tokens_out=1)
    assert closing.value.code == "channel_finalized"  # nothing is served once closing
    with pytest.raises(DomainRuleViolation):
        c.accept_voucher(400, "0xsig")
    c.close(tx_hash="0xclose", settled=250)
    assert c.closed and c.captured == 250
    with pytest.raises(DomainRuleViolation) as closed:
        c.accept_voucher(400, "0xsig")
    assert closed.value.code == "channel_finalized"
    with pytest.raises(DomainRuleViolation):
        c.top_up(2_000, "0xtx")


@pytest.mark.parametrize("value", ["²", "٣", "-1", "1e3", " 1", "01", "1\n", 1, None, "9" * 40])
def test_base_units_are_ascii_decimal_strings(value: object) -> None:
    with pytest.raises(tempo.TempoFormatError):
        tempo.base_units(value)


def test_hex_values_must_match_whole() -> None:
    with pytest.raises(tempo.TempoFormatError):
        tempo.bytes32("0x" + "ab" * 32 + "\n")
    with pytest.raises(tempo.TempoFormatError):
        tempo.address("0x" + "ab" * 20 + "\n")


@pytest.mark.parametrize(
    "json_text",
    ["[" * 3000 + "]" * 3000, '{"a": NaN}', '{"a": 1e400}', '{"a": "\\ud800"}'],
)
def test_hostile_json_in_a_credential_is_malformed_not_a_crash(json_text: str) -> None:
    auth = PaymentAuth(SECRET, REALM)
    request = b64url(json_text.encode())
    credential = {
        "challenge": {
            "id": "x",
            "realm": REALM,
            "method": "tempo",
            "intent": "charge",
            "request": request,
        },
        "payload": {},
    }
    value = "Payment " + b64url(json.dumps(credential).encode())
    with pytest.raises(PaymentProblem) as refused:
        auth.read(value, path="/p", offers=[OFFER], body=None)
    assert refused.value.slug in ("malformed-credential", "invalid-challenge")
    nested = "Payment " + b64url(json_text.encode())
    with pytest.raises(PaymentProblem):
        auth.read(nested, path="/p", offers=[OFFER], body=None)


def test_live_mpp_money_needs_a_real_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    from infra.settings import ConfigurationError, read_environment

    monkeypatch.setenv("PRYV_MPP_ENV", "live")
    with pytest.raises(ConfigurationError):
        read_environment().to_settings()
    monkeypatch.setenv("PRYV_TEMPO_RPC_URL", "http://127.0.0.1:8545")
    monkeypatch.setenv("PRYV_MPP_ESCROW", "0x" + "12" * 20)
    assert read_environment().to_settings().mpp_credit_env == "live"
    monkeypatch.delenv("PRYV_MPP_ENV")
    assert read_environment().to_settings().mpp_credit_env == "live"
