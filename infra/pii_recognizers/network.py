"""E-mail and IP addresses, including next to CJK text (no spaces around them).

E-mail (EMAIL_ADDRESS): Presidio's rule anchors on `\\b`, which never matches between a Han or
kana character and a Latin letter ("邮箱jane@example.com"), so the address is delimited here by
what may not be part of it; its domain must end in a real public suffix (tldextract's bundled
list, never fetched).

IP (IP_ADDRESS): IPv4 and IPv6 checked by the standard library's `ipaddress`. A dotted quad
next to a word about versions ("upgraded to 4.2.1.0", "build=3.14.7.120", "版本") is a version
number, not an address.
"""

from __future__ import annotations

import functools
import ipaddress
import re

from domain.pii import Finding

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9-])"
)
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.]*\d)(?!\.\d)")
_IPV6 = re.compile(r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Fa-f:])")
_VERSION_CONTEXT = re.compile(
    r"(?i)(?:\bv(?:er(?:sion|sión)?)?\.?\s*|version\s*|build\s*[=:]?\s*|release\s*|\brel\s*|"
    r"upgrad\w*\s+(?:to\s+)?|updat\w*\s+(?:to\s+)?|:\s*$|tag\s*|aktualisiert\s+auf\s+|"
    r"mise à jour\s+|actualizar\s+a\s+|versión\s+|обновлени\w*\s+до\s+|верси\w*\s+|"
    r"升级到|更新到|版本|バージョン|التحديث إلى\s*)$"
)
# a version word shortly before ("upgrade nginx to 1.25.3.4"), unless an address word is nearer
_VERSION_WORD = re.compile(
    r"(?i)\b(?:version|release|build|upgrad\w*|updat\w*|bump\w*|install\w*|pin\w*|"
    r"aktualisier\w*|versión|версия|обнов\w*)\b|升级|版本|更新"
)
_IP_CUE = re.compile(
    r"(?i)\b(?:ip|from|host|server|addr\w*|connect\w*|ssh|ping|von|depuis|desde|с)\b|@|从"
)
_VERSION_AFTER = re.compile(r"^(?:-(?:alpha|beta|rc|dev)|\s*(?:に更新|पर अपडेट|版))")


@functools.cache
def _suffixes():  # type: ignore[no-untyped-def]
    import tldextract

    return tldextract.TLDExtract(cache_dir=None, suffix_list_urls=())


def emails(text: str) -> list[Finding]:
    found = []
    for match in _EMAIL.finditer(text):
        address = match.group().rstrip(".")
        if _suffixes()(address.rsplit("@", 1)[1]).suffix:
            found.append(Finding("EMAIL_ADDRESS", match.start(), match.start() + len(address), 1.0))
    return found


def ips(text: str) -> list[Finding]:
    found = []
    for match in _IPV4.finditer(text):
        try:
            ipaddress.IPv4Address(match.group())
        except ValueError:
            continue
        before = text[max(0, match.start() - 24) : match.start()]
        after = text[match.end() : match.end() + 12]
        near = text[max(0, match.start() - 16) : match.start()]
        if not _IP_CUE.search(near) and (
            _VERSION_CONTEXT.search(before)
            or _VERSION_WORD.search(text[max(0, match.start() - 32) : match.start()])
            or _VERSION_AFTER.search(after)
        ):
            continue
        found.append(Finding("IP_ADDRESS", match.start(), match.end(), 0.9))
    for match in _IPV6.finditer(text):
        candidate = match.group()
        if candidate.count(":") < 2 or not re.search(r"[0-9A-Fa-f]{3}", candidate):
            continue  # "12:30:45" is a time
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        found.append(Finding("IP_ADDRESS", match.start(), match.end(), 0.9))
    return found
