"""Street addresses (STREET_ADDRESS), the whole of them: house number, street, flat, postcode
and town go together, so no part of the address survives redaction.

US and Canadian addresses are parsed by `pyap`; the other formats below follow each country's
postal addressing rules (street-type words and postcode shapes), which no maintained Python
library covers beyond North America: the UK (postcodes), Germany, France, Spain, Russia, China,
Japan, India and Arabic-script addresses. A city or country on its own is not an address and
is not personal (docs/gateway-api.md).
"""

from __future__ import annotations

import re

from domain.pii import Finding

_WORD = r"[^\W\d_][\w'’.-]*"
_CAP = r"[A-ZÄÖÜÉÈÁÍÓÚÑ][\w'’.-]*"
_UK_POSTCODE = r"[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}"
_US_STATE = (
    r"(?:A[LKZR]|C[AOT]|D[EC]|FL|GA|HI|I[DLNA]|K[SY]|LA|M[EDAINSOT]|N[EVHJMYCD]|O[HKR]|PA|RI|S[CD]|"
    r"T[NX]|UT|V[TA]|W[AVIY])"
)
_PATTERNS = [
    # US: 61 Sunset Avenue, Apt 14, Chicago, IL 60614 (pyap below covers more shapes)
    rf"\b\d{{1,6}}\s+(?:[NSEW]\.?\s+)?(?:{_CAP}\s+){{1,3}}(?:Street|St\.?|Avenue|Ave\.?|Road|Rd\.?|"
    rf"Boulevard|Blvd\.?|Lane|Ln\.?|Drive|Dr\.?|Court|Ct\.?|Parkway|Pkwy\.?|Place|Pl\.?|Way|"
    rf"Terrace|Circle|Highway|Hwy\.?)(?:\s+(?:N|S|E|W|NE|NW|SE|SW)\b)?"
    rf"(?:,?\s+(?:Apt\.?|Suite|Ste\.?|Unit|#)\s*[\w-]+)?,\s*"
    rf"(?:{_CAP}\s?){{1,3}},\s*{_US_STATE}\s+\d{{5}}(?:-\d{{4}})?\b",
    # UK: 10 Downing Street, London SW1A 2AA
    rf"\b\d{{1,4}}[A-Z]?\s+(?:{_CAP}\s+){{1,3}}(?:Road|Street|Lane|Avenue|Close|Drive|Way|Place|"
    rf"Square|Gardens|Crescent|Terrace|Court|Hill|Grove|Row|Mews|Park|Walk|Rise|Parade)\b"
    rf"(?:,?\s+(?:Flat|Apt\.?|Apartment)\s*\w+)?,?\s+(?:{_CAP}\s?){{1,3}},?\s*{_UK_POSTCODE}\b",
    # Germany: Hauptstraße 12, 10115 Berlin / Am Waldweg 3a, 70173 Stuttgart
    r"(?:(?:Am|An der|Im|In der|Auf der|Zum|Zur)\s+)?[A-ZÄÖÜ][\wäöüß-]*(?:straße|strasse|str\.|"
    r"weg|allee|platz|gasse|ring|damm|ufer|chaussee|steig|pfad)\s+\d{1,4}\s?[a-zA-Z]?"
    r"(?:,\s*|\s+)\d{5}\s+[A-ZÄÖÜ][\wäöüß-]+(?:\s[A-ZÄÖÜ][\wäöüß-]+)?",
    # France: 12 rue de la Paix, 75002 Paris
    r"\b\d{1,4}(?:\s?(?:bis|ter))?,?\s+(?:rue|avenue|av\.|boulevard|bd|place|chemin|allée|"
    r"impasse|quai|route|cours)\s+[^\n,\d]{2,40}?,?\s+\d{5}\s+[A-ZÉÈ][\w'-]+(?:[ -][A-ZÉ][\w'-]+)?",
    # Spain: Calle Mayor 5, 28013 Madrid
    r"(?:Calle|C/|Avenida|Avda\.?|Av\.|Paseo|Plaza|Pl\.|Camino|Carretera|Ronda|Travesía)\s+"
    r"[^\n,\d]{2,40}?\s+\d{1,4}(?:,\s*\d+º?\s*\w?)?,?\s+\d{5}\s+[A-ZÁÉÍÓÚ][\wáéíóúñ]+"
    r"(?:\s[A-ZÁÉÍÓÚ][\wáéíóúñ]+)?",
    # Russia: ул. Тверская, д. 7, кв. 3, Москва, 125009
    r"(?:ул\.|улица|пр\.|просп\.|проспект|пер\.|переулок|наб\.|бульвар|б-р|ш\.|шоссе)\s*"
    r"[А-ЯЁ][^\n,]{1,40}?,\s*(?:д\.|дом)\s*\d+[а-я]?(?:,\s*(?:корп\.|к\.)\s*\d+)?"
    r"(?:,\s*(?:кв\.|квартира)\s*\d+)?(?:,\s*(?:г\.\s*)?[А-ЯЁ][а-яё]+(?:-[А-ЯЁ][а-яё]+)*)?"
    r"(?:,\s*\d{6})?",
    # China: 北京市朝阳区建国路88号
    r"(?:[\u4e00-\u9fff]{2,6}(?:省|自治区))?(?:[\u4e00-\u9fff]{1,6}?(?:市|区|县|镇)){1,3}"
    r"[\u4e00-\u9fff]{1,10}?(?:路|街|道|巷|大道|胡同)\d{1,5}号(?:[\u4e00-\u9fff\d]{0,10}?(?:室|楼|层|单元))?",
    # Japan: 東京都千代田区丸の内1丁目9番1号 / 1-9-1
    r"(?:東京都|北海道|(?:京都|大阪)府|[\u4e00-\u9fff]{2,3}県)[\u4e00-\u9fff\u3040-\u30ff]{1,12}?"
    r"(?:市|区|町|村|郡)[\u4e00-\u9fff\u3040-\u30ff]{0,10}?"
    r"\d{1,4}(?:丁目|-)\d{1,4}(?:番地?|-)\d{1,4}号?",
    # India: 221B, MG Road, Bengaluru 560001 / 106, स्टेशन मार्ग, बेंगलुरु 629238
    r"\b\d{1,4}[A-Z]?,\s*(?:[^\s,]+\s+){0,3}(?:Road|Rd\.?|Marg|Street|Nagar|Colony|Layout|Main|"
    r"Cross|Lane|मार्ग|रोड|नगर|गली)\s*,\s*(?:[^\s,\d]+\s?){1,3}\s?\d{6}\b",
    # Arabic: شارع الملك فهد 205، دبي
    r"شارع\s+[^\n،,\d]{2,30}?\s+\d{1,4}\s*[،,]\s*[^\s،,.]{2,20}(?:\s[^\s،,.]{2,20})?",
]
_COMPILED = [re.compile(p) for p in _PATTERNS]
_NORTH_AMERICA_HINT = re.compile(
    r"\b\d{1,6}\s+\w[^\n]{2,60}?\b(?:[A-Z]{2}|Ontario|Quebec)\s+(?:\d{5}|[A-Z]\d[A-Z]\s?\d[A-Z]\d)"
)


def find(text: str) -> list[Finding]:
    found = []
    for pattern in _COMPILED:
        for match in pattern.finditer(text):
            found.append(Finding("STREET_ADDRESS", match.start(), match.end(), 0.9))
    # pyap costs ~25 ms per KB of text: it reads only windows where a US/CA shape is
    for hint in _NORTH_AMERICA_HINT.finditer(text):
        offset = max(0, hint.start() - 40)
        found.extend(_pyap(text[offset : hint.end() + 12], offset))
    return found


def _pyap(text: str, offset: int) -> list[Finding]:
    import pyap

    found = []
    for country in ("US", "CA"):
        for address in pyap.parse(text, country=country):
            start, end = int(address.match_start), int(address.match_end)
            found.append(Finding("STREET_ADDRESS", offset + start, offset + end, 0.9))
    return found
