"""Sign-In with Ethereum (EIP-4361) messages: a small, strict parser and the login-time checks.

Written by hand on purpose: the PyPI `siwe` package is broken with current eth-account
(docs/architecture.md, "Measured pitfalls"), and the grammar is small. Strict means exactly
EIP-4361's ABNF:

    [scheme "://"] domain " wants you to sign in with your Ethereum account:" LF
    address LF
    LF
    [statement LF]
    LF
    "URI: " uri LF
    "Version: 1" LF
    "Chain ID: " chain-id LF
    "Nonce: " nonce LF
    "Issued At: " issued-at
    [LF "Expiration Time: " expiration-time]
    [LF "Not Before: " not-before]
    [LF "Request ID: " request-id]
    [LF "Resources:" *(LF "- " uri)]

No CR, no trailing newline, no unknown or reordered lines, an EIP-55 checksummed address,
RFC 3339 times with a zone. Anything else is MESSAGE_INVALID. Pure: no I/O, no signatures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from eth_utils.address import is_checksum_address

from domain.errors import ErrorKind, PryvError

HEADER_SUFFIX = " wants you to sign in with your Ethereum account:"
MAX_MESSAGE_CHARS = 4096
MAX_LIFETIME = timedelta(minutes=10)  # Expiration Time - Issued At
CLOCK_SKEW = timedelta(minutes=2)  # how far in the future Issued At may be

_SCHEME = r"[A-Za-z][A-Za-z0-9+.-]*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_AUTHORITY = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{{1,5}})?"
_HEADER = re.compile(
    rf"^(?:(?P<scheme>{_SCHEME})://)?(?P<domain>{_AUTHORITY}){re.escape(HEADER_SUFFIX)}$"
)
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_STATEMENT = re.compile(r"^[\x20-\x7e]+$")
_URI = re.compile(rf"^{_SCHEME}:[\x21-\x7e]+$")
_CHAIN_ID = re.compile(r"^[1-9][0-9]{0,18}$")
_NONCE = re.compile(r"^[A-Za-z0-9]{8,128}$")
_REQUEST_ID = re.compile(r"^[\x21-\x7e]{0,200}$")
_RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:Z|[+-][0-9]{2}:[0-9]{2})$"
)


class SiweCode(StrEnum):
    MESSAGE_INVALID = "MESSAGE_INVALID"
    DOMAIN_MISMATCH = "DOMAIN_MISMATCH"
    URI_MISMATCH = "URI_MISMATCH"
    CHAIN_MISMATCH = "CHAIN_MISMATCH"
    TIMESTAMP_EXPIRED = "TIMESTAMP_EXPIRED"
    NONCE_INVALID = "NONCE_INVALID"
    NONCE_REPLAY = "NONCE_REPLAY"
    SIGNATURE_INVALID = "SIGNATURE_INVALID"
    SIGNATURE_VERIFY_ERROR = "SIGNATURE_VERIFY_ERROR"


class SiweError(PryvError):
    kind = ErrorKind.PERMISSION

    def __init__(self, code: SiweCode, message: str) -> None:
        super().__init__(message, code=code)


@dataclass(frozen=True)
class SiweMessage:
    scheme: str | None
    domain: str
    address: str  # as written: EIP-55 mixed case
    statement: str | None
    uri: str
    version: str
    chain_id: int
    nonce: str
    issued_at: datetime
    expiration_time: datetime | None = None
    not_before: datetime | None = None
    request_id: str | None = None
    resources: tuple[str, ...] = ()


def _invalid(reason: str) -> SiweError:
    return SiweError(SiweCode.MESSAGE_INVALID, f"not an EIP-4361 message: {reason}")


def _time(value: str, name: str) -> datetime:
    if not _RFC3339.match(value):
        raise _invalid(f"{name} must be an RFC 3339 time with a zone")
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise _invalid(f"{name} is not a valid time") from exc


class _Lines:
    """The message's lines with a cursor; tagged fields are consumed in grammar order."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.at = 0

    def next(self, what: str) -> str:
        if self.at >= len(self.lines):
            raise _invalid(f"missing {what}")
        line = self.lines[self.at]
        self.at += 1
        return line

    def tag(self, name: str, pattern: re.Pattern[str]) -> str:
        line = self.next(f"'{name}: '")
        prefix = f"{name}: "
        if not line.startswith(prefix):
            raise _invalid(f"expected '{prefix}' at line {self.at}")
        value = line[len(prefix) :]
        if not pattern.match(value):
            raise _invalid(f"malformed {name}")
        return value

    def optional(self, name: str, pattern: re.Pattern[str]) -> str | None:
        if self.at < len(self.lines) and self.lines[self.at].startswith(f"{name}: "):
            return self.tag(name, pattern)
        return None


def parse_siwe_message(text: str) -> SiweMessage:
    """Parse an EIP-4361 message exactly; MESSAGE_INVALID for anything off-grammar."""
    if not isinstance(text, str) or len(text) > MAX_MESSAGE_CHARS:
        raise _invalid("too long")
    if "\r" in text:
        raise _invalid("line breaks must be LF")
    lines = _Lines(text.split("\n"))
    header = _HEADER.match(lines.next("header"))
    if header is None:
        raise _invalid(f"first line must be '<domain>{HEADER_SUFFIX}'")
    address = lines.next("address")
    if not _ADDRESS.match(address) or not is_checksum_address(address):
        raise _invalid("address must be an EIP-55 checksummed 0x address")
    if lines.next("blank line") != "":
        raise _invalid("expected a blank line after the address")
    statement: str | None = lines.next("statement or blank line")
    if statement:
        if not _STATEMENT.match(statement):
            raise _invalid("statement must be printable ASCII on one line")
        if lines.next("blank line") != "":
            raise _invalid("expected a blank line after the statement")
    else:
        statement = None
    uri = lines.tag("URI", _URI)
    version = lines.tag("Version", re.compile(r"^1$"))
    chain_id = int(lines.tag("Chain ID", _CHAIN_ID))
    nonce = lines.tag("Nonce", _NONCE)
    issued_at = _time(lines.tag("Issued At", _RFC3339), "Issued At")
    expiration = lines.optional("Expiration Time", _RFC3339)
    not_before = lines.optional("Not Before", _RFC3339)
    request_id = lines.optional("Request ID", _REQUEST_ID)
    resources: list[str] = []
    if lines.at < len(lines.lines) and lines.lines[lines.at] == "Resources:":
        lines.at += 1
        while lines.at < len(lines.lines) and lines.lines[lines.at].startswith("- "):
            resource = lines.next("resource")[2:]
            if not _URI.match(resource):
                raise _invalid("malformed resource URI")
            resources.append(resource)
    if lines.at != len(lines.lines):
        raise _invalid(f"unexpected line {lines.at + 1}")
    return SiweMessage(
        scheme=header.group("scheme"),
        domain=header.group("domain"),
        address=address,
        statement=statement,
        uri=uri,
        version=version,
        chain_id=chain_id,
        nonce=nonce,
        issued_at=issued_at,
        expiration_time=None if expiration is None else _time(expiration, "Expiration Time"),
        not_before=None if not_before is None else _time(not_before, "Not Before"),
        request_id=request_id,
        resources=tuple(resources),
    )


@dataclass(frozen=True)
class LoginPolicy:
    """What a sign-in message must say to be accepted here."""

    domain: str  # host[:port] of the dashboard, exactly as the browser shows it
    chain_ids: frozenset[int] = frozenset({1})
    max_lifetime: timedelta = MAX_LIFETIME
    clock_skew: timedelta = CLOCK_SKEW


def check_siwe_message(message: SiweMessage, policy: LoginPolicy, now: datetime) -> None:
    """Bind the message to this dashboard and this moment (the signature is checked elsewhere)."""
    if message.domain.lower() != policy.domain.lower():
        raise SiweError(
            SiweCode.DOMAIN_MISMATCH,
            f"message is for {message.domain!r}, this dashboard is {policy.domain!r}",
        )
    uri = urlsplit(message.uri)
    if uri.scheme not in ("http", "https") or uri.netloc.lower() != policy.domain.lower():
        raise SiweError(SiweCode.URI_MISMATCH, "URI must be this dashboard's origin")
    if message.scheme is not None and message.scheme != uri.scheme:
        raise SiweError(SiweCode.URI_MISMATCH, "scheme and URI disagree")
    if message.chain_id not in policy.chain_ids:
        raise SiweError(SiweCode.CHAIN_MISMATCH, f"Chain ID {message.chain_id} is not accepted")
    expires = message.expiration_time
    if expires is None:
        raise SiweError(SiweCode.MESSAGE_INVALID, "Expiration Time is required")
    if not timedelta(0) < expires - message.issued_at <= policy.max_lifetime:
        minutes = int(policy.max_lifetime.total_seconds() // 60)
        raise SiweError(
            SiweCode.MESSAGE_INVALID,
            f"Expiration Time must be after Issued At and at most {minutes} min later",
        )
    if message.issued_at > now + policy.clock_skew:
        raise SiweError(SiweCode.TIMESTAMP_EXPIRED, "Issued At is in the future")
    if now >= expires:
        raise SiweError(SiweCode.TIMESTAMP_EXPIRED, "the sign-in message has expired")
    if message.not_before is not None and now + policy.clock_skew < message.not_before:
        raise SiweError(SiweCode.TIMESTAMP_EXPIRED, "the sign-in message is not valid yet")


def format_siwe_message(message: SiweMessage) -> str:
    """The exact text for `message` (tests, and the reference for the page's builder)."""

    def stamp(value: datetime) -> str:
        return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    head = f"{message.scheme}://{message.domain}" if message.scheme else message.domain
    lines = [head + HEADER_SUFFIX, message.address, ""]
    if message.statement:
        lines.append(message.statement)
    lines += [
        "",
        f"URI: {message.uri}",
        f"Version: {message.version}",
        f"Chain ID: {message.chain_id}",
        f"Nonce: {message.nonce}",
        f"Issued At: {stamp(message.issued_at)}",
    ]
    if message.expiration_time is not None:
        lines.append(f"Expiration Time: {stamp(message.expiration_time)}")
    if message.not_before is not None:
        lines.append(f"Not Before: {stamp(message.not_before)}")
    if message.request_id is not None:
        lines.append(f"Request ID: {message.request_id}")
    if message.resources:
        lines += ["Resources:", *(f"- {r}" for r in message.resources)]
    return "\n".join(lines)
