"""Phone numbers in any region (PHONE_NUMBER), validated by libphonenumber (`phonenumbers`).

Presidio's rule runs libphonenumber's matcher once per configured region over the whole text
(four regions by default, ~19 ms/KB for many), so numbers of every other country are missed.
Here candidates are found once by shape (digits with the separators people use), then each is
parsed: a `+<country code>` number is valid or not on its own; a national-format number is
tried in the regions its script suggests (Cyrillic: RU/UA/KZ/BY, Arabic: SA/AE/EG/…, Han:
CN/TW/HK, kana: JP, Devanagari: IN) and, in Latin text, in ~30 regions of the world. A national
number counts only when it is written like one (grouped, or in parentheses) or a phone word
is near it, so order ids and amounts that happen to be valid somewhere are left alone.
"""

from __future__ import annotations

import re

import phonenumbers

from domain.pii import Finding
from infra.pii_recognizers.scripts import scripts_of

# ASCII look-arounds: a Han or kana character right before a number is no word boundary issue.
_CANDIDATE = re.compile(
    r"(?<![A-Za-z0-9+_-])(?:\+|00)?\(?\d[\d ()./-]{5,20}\d(?![A-Za-z0-9_-]*\d)(?![A-Za-z])"
)
_DATE_PREFIX = re.compile(r"^(?:\d{4}[./-]\d{1,2}[./-]\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{4})")
_DOTTED = re.compile(r"^\d+(?:\.\d+)+$")
_LATIN_REGIONS = (
    "US", "GB", "IN", "NG", "GH", "ZA", "KE", "AU", "NZ", "CA", "IE", "DE", "AT", "CH", "FR",
    "BE", "ES", "PT", "IT", "NL", "PL", "TR", "MX", "AR", "CO", "CL", "PE", "BR", "PH", "SG",
    "MY", "ID",
)  # fmt: skip
_SCRIPT_REGIONS = {
    "CYRILLIC": ("RU", "UA", "KZ", "BY"),
    "ARABIC": ("SA", "AE", "EG", "MA", "JO", "IQ", "KW", "QA", "DZ", "TN", "LB"),
    "HAN": ("CN", "TW", "HK", "SG"),
    "KANA": ("JP",),
    "DEVANAGARI": ("IN",),
    "HANGUL": ("KR",),
}
_CUE = re.compile(
    r"(?i)(?:phone|tel\b|tel\.|telephone|mobile|cell|call|ring|text\s+me|whats\s?app|number|"
    r"contact|fax|hotline|telefon|handy|rufnummer|ruf|anruf|téléphone|portable|appel|numéro|"
    r"teléfono|telefono|móvil|movil|celular|llám|número|tlf|电话|手机|号码|電話|携帯|番号|"
    r"هاتف|رقم|جوال|موبايل|फ़ोन|फोन|मोबाइल|नंबर|телефон|номер|звон|тел\.)"
)
_DATE_LIKE = re.compile(r"^\d{1,4}[./-]\d{1,2}[./-]\d{1,4}$")


def find(text: str) -> list[Finding]:
    scripts = scripts_of(text)
    regions: list[str] = []
    for script, codes in _SCRIPT_REGIONS.items():
        if script in scripts:
            regions.extend(codes)
    if "LATIN" in scripts or not regions:
        regions.extend(_LATIN_REGIONS)
    found = []
    for match in _CANDIDATE.finditer(text):
        raw = match.group().rstrip(" .-/)")
        if raw.count("(") != raw.count(")"):
            raw = raw.lstrip("(")
        start = match.start() + match.group().index(raw)
        digits = re.sub(r"\D", "", raw)
        if not 7 <= len(digits) <= 15 or _DATE_LIKE.match(raw) or _DATE_PREFIX.match(raw):
            continue
        groups = raw.split(".")
        if _DOTTED.match(raw) and (
            not all(2 <= len(g) <= 4 for g in groups)
            or (len(groups) == 4 and not _CUE.search(text[max(0, start - 40) : start]))
        ):
            continue  # an IP address or a version number, not "01.23.45.67.89"
        if _valid(raw, regions, text[max(0, start - 40) : start]):
            found.append(Finding("PHONE_NUMBER", start, start + len(raw), 0.85))
    return found


def _valid(raw: str, regions: list[str], before: str) -> bool:
    international = raw.startswith(("+", "00"))
    cued = bool(_CUE.search(before))
    if international:
        candidate = "+" + raw[2:] if raw.startswith("00") else raw
        try:
            number = phonenumbers.parse(candidate, None)
        except phonenumbers.NumberParseException:
            return False
        # valid, or at least possible (new ranges, drama numbers) where a phone word says so
        return phonenumbers.is_valid_number(number) or (
            cued and phonenumbers.is_possible_number(number)
        )
    grouped = bool(re.search(r"\d[ ()./-]+\d", raw))
    if not grouped and not cued:
        return False
    if grouped and not cued and len(re.sub(r"\D", "", raw)) < 8:
        return False
    for region in regions:
        try:
            number = phonenumbers.parse(raw, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return True
    return False
