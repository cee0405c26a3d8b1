"""National identity numbers, passports and medical record numbers.

National ids (NATIONAL_ID; US_SSN for US Social Security numbers): a shape per country, then
the country's own check by python-stdnum — checksums (Verhoeff for Aadhaar, ISO 7064 for the
German Steuer-IdNr and the Chinese resident id, mod 97 for the French NIR, the DNI letter, the
codice fiscale's check character, CPF digits, My Number) and embedded dates. Shapes with a
one-in-ten chance of passing by accident (11 or 12 bare digits) also need their name nearby.
The UK National Insurance number has no checksum and no stdnum module: its published prefix
rules are checked here.

Passports (PASSPORT) and medical record numbers (MEDICAL_RECORD_NUMBER) have no checksum
anywhere: a document number counts when the document's name is right before it, in any of
the nine languages Pryv's corpus covers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from stdnum import iban
from stdnum.br import cpf
from stdnum.cn import ric
from stdnum.de import idnr
from stdnum.es import dni, nie
from stdnum.fr import nir
from stdnum.gb import nhs
from stdnum.in_ import aadhaar, pan
from stdnum.it import codicefiscale
from stdnum.jp import in_ as my_number
from stdnum.us import itin, ssn

from domain.pii import Finding


@dataclass(frozen=True)
class _IdRule:
    entity: str
    pattern: re.Pattern[str]
    valid: Callable[[str], bool]
    cue: re.Pattern[str] | None = None  # required within 40 characters before, when given


def _compact(value: str) -> str:
    return re.sub(r"[\s.-]", "", value)


def _nino(value: str) -> bool:
    value = _compact(value).upper()
    prefix = value[:2]
    return (
        prefix[0] not in "DFIQUV"
        and prefix[1] not in "DFIOQUV"
        and prefix not in {"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"}
        and value[-1] in "ABCD"
    )


def _validator(module: object) -> Callable[[str], bool]:
    check: Callable[[str], bool] = getattr(module, "is_valid")  # noqa: B009

    def valid(value: str) -> bool:
        return bool(check(_compact(value)))

    return valid


_B = r"(?<![A-Za-z0-9])"  # ASCII boundaries: the id may touch CJK text
_E = r"(?![A-Za-z0-9])"


def _ssn_shape(value: str) -> bool:
    """The SSA's structural rules only (stdnum also refuses numbers once published, such as
    the Woolworth wallet card's; a user who says "my SSN is" means theirs)."""
    area, group, serial = value[:3], value[4:6], value[7:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


_RULES = (
    _IdRule("US_SSN", re.compile(_B + r"\d{3}-\d{2}-\d{4}" + _E), _validator(ssn)),
    _IdRule(
        "US_SSN",
        re.compile(_B + r"\d{3}-\d{2}-\d{4}" + _E),
        _ssn_shape,
        re.compile(r"(?i)\bssn\b|social security"),
    ),
    _IdRule(
        "US_SSN",
        re.compile(_B + r"\d{3} ?\d{2} ?\d{4}" + _E),
        _validator(ssn),
        re.compile(r"(?i)ssn|social security|sozialversicherung"),
    ),
    _IdRule(
        "NATIONAL_ID",
        re.compile(_B + r"[A-CEGHJ-PR-TW-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]" + _E),
        _nino,
    ),
    _IdRule(
        "NATIONAL_ID",
        re.compile(_B + r"\d{2} ?\d{3} ?\d{3} ?\d{3}" + _E),
        _validator(idnr),
        re.compile(r"(?i)steuer|id-?nr|identifikationsnummer|tax\s*id|tin\b"),
    ),
    _IdRule(
        "NATIONAL_ID",
        re.compile(_B + r"[12] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}" + _E),
        _validator(nir),
    ),
    _IdRule("NATIONAL_ID", re.compile(_B + r"\d{8}-?[A-Z]" + _E), _validator(dni)),
    _IdRule("NATIONAL_ID", re.compile(_B + r"[XYZ]-?\d{7}-?[A-Z]" + _E), _validator(nie)),
    _IdRule(
        "NATIONAL_ID",
        re.compile(_B + r"[A-Z]{6}\d{2}[A-Z]\d{2}[A-Z]\d{3}[A-Z]" + _E),
        _validator(codicefiscale),
    ),
    _IdRule("NATIONAL_ID", re.compile(_B + r"[A-Z]{5}\d{4}[A-Z]" + _E), _validator(pan)),
    _IdRule("NATIONAL_ID", re.compile(_B + r"[2-9]\d{3} \d{4} \d{4}" + _E), _validator(aadhaar)),
    _IdRule(
        "NATIONAL_ID",
        re.compile(_B + r"[2-9]\d{11}" + _E),
        _validator(aadhaar),
        re.compile(r"(?i)aadhaar|aadhar|uid|आधार"),
    ),
    _IdRule(
        "NATIONAL_ID",
        re.compile(_B + r"\d{4} ?\d{4} ?\d{4}" + _E),
        _validator(my_number),
        re.compile(r"(?i)マイナンバー|個人番号|my\s*number"),
    ),
    _IdRule("NATIONAL_ID", re.compile(_B + r"\d{17}[\dXx]" + _E), _validator(ric)),
    _IdRule("NATIONAL_ID", re.compile(_B + r"\d{3}\.\d{3}\.\d{3}-\d{2}" + _E), _validator(cpf)),
    _IdRule("US_ITIN", re.compile(_B + r"9\d{2}-?[5-9]\d-?\d{4}" + _E), _validator(itin)),
    _IdRule(
        "UK_NHS",
        re.compile(_B + r"\d{3} ?\d{3} ?\d{4}" + _E),
        _validator(nhs),
        re.compile(r"(?i)\bnhs\b|health (?:service|care) (?:number|no)"),
    ),
    # IBAN: ISO 13616 (country format, length and mod-97 check digits), grouped or not.
    _IdRule(
        "IBAN_CODE",
        re.compile(_B + r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?" + _E),
        _validator(iban),
    ),
    # Right after the word IBAN the shape is enough: a mistyped or misread (OCR) digit breaks
    # the checksum, not the fact that it is someone's account number.
    _IdRule(
        "IBAN_CODE",
        re.compile(_B + r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,4})?" + _E),
        lambda value: True,
        re.compile(r"(?i)\b(?:iban|konto|compte|cuenta|счёт|счет|الآيبان|आईबैन)\W{0,12}$"),
    ),
)
_BANK_CUE = re.compile(
    r"(?i)(?:account|acct|a/c|konto(?:nummer)?|numéro de compte|n° de compte|número de cuenta|"
    r"cuenta|routing|счёт|счет|账号|账户|口座番号)\s*(?:number|no\.?|nr\.?|#)?[\s:：#]{0,3}$"
)
_BANK = re.compile(r"(?<![A-Za-z0-9])\d{8,17}(?![A-Za-z0-9])")
_LICENSE_CUE = re.compile(
    r"(?i)(?:driver'?s?\s*licen[cs]e|driving licen[cs]e|\bdl\b|führerschein|permis de conduire|"
    r"licencia de conducir|carné de conducir|водительское удостоверение|驾驶证|運転免許)"
    r"\s*(?:number|no\.?|nr\.?|#)?[\s:：#]{0,3}$"
)
_LICENSE = re.compile(r"(?<![A-Za-z0-9])[A-Z0-9][A-Z0-9-]{4,15}[0-9](?![A-Za-z0-9])")

_PASSPORT_CUE = re.compile(
    r"(?i)(?:passport|pass(?:port)?\s*(?:no|nr|number|#)|reisepass|pass-?nr|passeport|pasaporte|"
    r"passaporto|паспорт|护照|護照|旅券|パスポート|جواز\s*(?:السفر)?|पासपोर्ट)"
    r"[^\n\d]{0,24}$"
)
# A document number: 6-10 capitals and digits (at least four digits), or Russia's "45 06 123456".
_PASSPORT = re.compile(r"(?<![A-Za-z0-9])(?:[A-Z0-9]{6,10}|\d{2} ?\d{2} ?\d{6})(?![A-Za-z0-9])")
_MRN_CUE = re.compile(
    r"(?i)(?:\bmrn\b|medical record|patient(?:en)?[- ]?(?:id|nr|nummer|number|no)|"
    r"numéro de dossier|n° de dossier|historia clínica|病历号|病案号|カルテ番号|患者番号|"
    r"номер (?:медицинской )?карты|रोगी संख्या)[^\n\d]{0,12}$"
)
_MRN = re.compile(r"(?<![A-Za-z0-9])(?:MRN-?)?[A-Z]{0,3}-?\d{6,12}(?![A-Za-z0-9])")


def national_ids(text: str) -> list[Finding]:
    found = []
    for rule in _RULES:
        for match in rule.pattern.finditer(text):
            if rule.cue is not None and not rule.cue.search(
                text[max(0, match.start() - 40) : match.start()]
            ):
                continue
            if rule.valid(match.group()):
                found.append(Finding(rule.entity, match.start(), match.end(), 0.9))
    return found


def _cued(text: str, cue: re.Pattern[str], value: re.Pattern[str], entity: str) -> list[Finding]:
    found = []
    for match in value.finditer(text):
        before = text[max(0, match.start() - 40) : match.start()]
        digits = sum(c.isdigit() for c in match.group())
        if cue.search(before) and (digits >= 4 or (digits >= 1 and len(match.group()) >= 8)):
            found.append(Finding(entity, match.start(), match.end(), 0.85))
    return found


def bank_accounts(text: str) -> list[Finding]:
    """US_BANK_NUMBER: a bare account number is digits like any other; it counts after a word
    that says "account"."""
    return _cued(text, _BANK_CUE, _BANK, "US_BANK_NUMBER")


def driver_licenses(text: str) -> list[Finding]:
    return _cued(text, _LICENSE_CUE, _LICENSE, "US_DRIVER_LICENSE")


def passports(text: str) -> list[Finding]:
    return _cued(text, _PASSPORT_CUE, _PASSPORT, "PASSPORT")


def medical_record_numbers(text: str) -> list[Finding]:
    return _cued(text, _MRN_CUE, _MRN, "MEDICAL_RECORD_NUMBER")
