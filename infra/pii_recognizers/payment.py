"""Payment cards and crypto-currency addresses.

Cards (CREDIT_CARD): 13-19 digits, grouped by spaces or dashes or not at all, passing Luhn
(python-stdnum) and starting with an issuer range that exists. Presidio's card rule predates
Mastercard's 2-series (2221-2720) and misses 14-digit Diners and 19-digit Visa numbers; the
ranges below are the issuers' published IIN ranges (ISO/IEC 7812), which no maintained Python
package lists.

Crypto (CRYPTO): Bitcoin addresses checked by python-stdnum (base58check and bech32), and
Ethereum addresses: EIP-55 mixed-case checksummed ones (eth-utils verifies the checksum), or
all-lower/upper-case ones next to a wallet-ish word.
"""

from __future__ import annotations

import re

from stdnum import bitcoin, luhn

from domain.pii import Finding

_CARD = re.compile(r"(?<![\d.,-])(?:\d[ -]?){12,18}\d(?![\d.,]*\d)")
_IIN_RANGES: tuple[tuple[int, int, frozenset[int]], ...] = (
    (4, 4, frozenset({13, 16, 19})),  # Visa
    (51, 55, frozenset({16})),  # Mastercard
    (2221, 2720, frozenset({16})),  # Mastercard 2-series
    (34, 34, frozenset({15})),  # American Express
    (37, 37, frozenset({15})),
    (300, 305, frozenset({14, 16, 19})),  # Diners Club
    (36, 36, frozenset({14, 16, 19})),
    (38, 39, frozenset({16, 19})),
    (6011, 6011, frozenset({16, 19})),  # Discover
    (644, 649, frozenset({16, 19})),
    (65, 65, frozenset({16, 19})),
    (3528, 3589, frozenset({16, 17, 18, 19})),  # JCB
    (62, 62, frozenset({16, 17, 18, 19})),  # UnionPay
    (2200, 2204, frozenset({16, 17, 18, 19})),  # Mir
    (5018, 5020, frozenset({12, 13, 14, 15, 16, 17, 18, 19})),  # Maestro
    (5038, 5038, frozenset({12, 13, 14, 15, 16, 17, 18, 19})),
    (5893, 5893, frozenset({16, 19})),
    (6304, 6304, frozenset({16, 19})),
    (6759, 6763, frozenset({16, 19})),
    (60, 60, frozenset({16})),  # RuPay
    (6521, 6522, frozenset({16})),
    (81, 82, frozenset({16})),
    (508, 508, frozenset({16})),
)


def _issued(digits: str) -> bool:
    for low, high, lengths in _IIN_RANGES:
        width = len(str(low))
        if low <= int(digits[:width]) <= high and len(digits) in lengths:
            return True
    return False


def cards(text: str) -> list[Finding]:
    found = []
    for match in _CARD.finditer(text):
        raw = match.group()
        digits = re.sub(r"[ -]", "", raw)
        separators = set(re.findall(r"[ -]", raw))
        if len(separators) > 1 or "  " in raw:  # one grouping style, as printed on cards
            continue
        if 13 <= len(digits) <= 19 and _issued(digits) and luhn.is_valid(digits):
            found.append(Finding("CREDIT_CARD", match.start(), match.end(), 0.95))
    return found


_BTC = re.compile(
    r"(?<![A-Za-z0-9])(?:[13][1-9A-HJ-NP-Za-km-z]{25,34}|bc1[02-9ac-hj-np-z]{11,71})(?![A-Za-z0-9])"
)
_ETH = re.compile(r"(?<![A-Za-z0-9])0x[0-9a-fA-F]{40}(?![0-9a-fA-F])")
_WALLET_WORDS = re.compile(
    r"(?i)wallet|address|eth|ether|usdt|usdc|send|pay|recipient|钱包|地址|ウォレット|кошел|محفظ|वॉलेट"
)


def crypto(text: str) -> list[Finding]:
    found = []
    for match in _BTC.finditer(text):
        if bitcoin.is_valid(match.group()):
            found.append(Finding("CRYPTO", match.start(), match.end(), 0.95))
    for match in _ETH.finditer(text):
        address = match.group()
        body = address[2:]
        mixed = body != body.lower() and body != body.upper()
        if mixed and _eip55(address):
            found.append(Finding("CRYPTO", match.start(), match.end(), 0.95))
        elif not mixed and _WALLET_WORDS.search(text[max(0, match.start() - 60) : match.start()]):
            found.append(Finding("CRYPTO", match.start(), match.end(), 0.8))
    return found


def _eip55(address: str) -> bool:
    from eth_utils.address import is_checksum_address

    return bool(is_checksum_address(address))
