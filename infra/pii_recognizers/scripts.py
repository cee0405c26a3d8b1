"""Which writing systems a text uses: recognizers pick phone regions, name rules and date
words by script (no language model needed, and no guessing of a language from a few words)."""

from __future__ import annotations

import re
import unicodedata

_SCRIPT_OF_BLOCK = (
    (0x0041, 0x024F, "LATIN"),
    (0x0370, 0x03FF, "GREEK"),
    (0x0400, 0x052F, "CYRILLIC"),
    (0x0590, 0x05FF, "HEBREW"),
    (0x0600, 0x06FF, "ARABIC"),
    (0x0750, 0x077F, "ARABIC"),
    (0x0900, 0x097F, "DEVANAGARI"),
    (0x0980, 0x09FF, "BENGALI"),
    (0x0E00, 0x0E7F, "THAI"),
    (0x1100, 0x11FF, "HANGUL"),
    (0x3040, 0x30FF, "KANA"),
    (0x3400, 0x4DBF, "HAN"),
    (0x4E00, 0x9FFF, "HAN"),
    (0xAC00, 0xD7AF, "HANGUL"),
    (0xF900, 0xFAFF, "HAN"),
)


def script_of(ch: str) -> str | None:
    code = ord(ch)
    for low, high, name in _SCRIPT_OF_BLOCK:
        if low <= code <= high:
            return name if ch.isalpha() or name in ("HAN", "KANA") else None
    if ch.isalpha():
        return unicodedata.name(ch, "OTHER").split()[0]
    return None


_PRESENCE = {
    "LATIN": re.compile(r"[A-Za-zÀ-ÖØ-öø-ɏ]"),
    "CYRILLIC": re.compile(r"[\u0400-\u052F]"),
    "ARABIC": re.compile(r"[\u0600-\u06FF\u0750-\u077F]"),
    "DEVANAGARI": re.compile(r"[\u0900-\u097F]"),
    "HAN": re.compile(r"[\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF]"),
    "KANA": re.compile(r"[\u3040-\u30FF]"),
    "HANGUL": re.compile(r"[\u1100-\u11FF\uAC00-\uD7AF]"),
    "HEBREW": re.compile(r"[\u0590-\u05FF]"),
    "GREEK": re.compile(r"[\u0370-\u03FF]"),
    "THAI": re.compile(r"[\u0E00-\u0E7F]"),
}


def scripts_of(text: str) -> frozenset[str]:
    """The scripts present in `text` (one regex scan per script, not a Python loop)."""
    return frozenset(name for name, pattern in _PRESENCE.items() if pattern.search(text))


def is_cjk(ch: str) -> bool:
    return script_of(ch) in ("HAN", "KANA", "HANGUL")
