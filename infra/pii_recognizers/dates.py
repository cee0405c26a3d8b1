"""Dates of birth (DATE_OF_BIRTH): a date right after a birth word, in any of the nine corpus
languages ("born", "DOB", "geboren am", "née le", "fecha de nacimiento", "出生日期", "生年月日",
"تاريخ الميلاد", "जन्म तिथि", "дата рождения"). Any other date (a meeting, a release) is not
personal and stays.

Numeric and CJK dates are checked as calendar dates here; dates written with month names, in
any language, are parsed by `dateparser` (its language data knows "12. März 1985",
"3 de marzo de 1985", "12 марта 1985 г.").
"""

from __future__ import annotations

import datetime as dt
import functools
import re

from domain.pii import Finding

_CUE = re.compile(
    r"(?i)(?:\bborn\b(?:\s+on)?|date of birth|\bd\.?o\.?b\b|birth\s*date|birthday|"
    r"geboren(?:\s+am)?|geburtsdatum|geburtstag|\bgeb\.|"
    r"née?\s+le|date de naissance|naissance|"
    r"fecha de nacimiento|nací(?:\s+el)?|nacid[oa](?:\s+el)?|nacimiento|"
    r"出生日期|出生于|出生|生日|生年月日|誕生日|"
    r"تاريخ الميلاد|تاريخ الولادة|مواليد|ولدت في|"
    r"जन्म\s*तिथि|जन्मतिथि|जन्म की तारीख|जन्म|"
    r"дата рождения|родил(?:ся|ась)|д\.\s?р\.)"
    r"[\s:：,.=-]{0,4}(?:is|ist|est|es|am|le|el|on|в|—|は|が|是|为)?[\s:：]{0,3}$"
)
_MONTH_WORD = r"[^\W\d_]{3,12}\.?"
_DATE = re.compile(
    r"(?<![\d/.-])(?:"
    r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}"  # 1985-03-12
    r"|\d{1,2}[-/.]\d{1,2}[-/.]\d{4}"  # 12/03/1985, 03/12/1985, 12.03.1985
    r"|\d{8}"  # 19850312 (HL7, compact)
    r"|\d{4}\s?年\s?\d{1,2}\s?月\s?\d{1,2}\s?日"  # 1985年3月12日
    rf"|\d{{1,2}}\.?\s+(?:de\s+)?{_MONTH_WORD}\s+(?:de\s+)?\d{{4}}(?:\s?г\.)?"  # 12 March 1985
    rf"|{_MONTH_WORD}\s+\d{{1,2}},?\s+\d{{4}}"  # March 12, 1985
    r")(?![\d])"
)


def find(text: str) -> list[Finding]:
    found = []
    for match in _DATE.finditer(text):
        before = text[max(0, match.start() - 40) : match.start()]
        if _CUE.search(before) and _is_date(match.group()):
            found.append(Finding("DATE_OF_BIRTH", match.start(), match.end(), 0.9))
    return found


def _is_date(value: str) -> bool:
    numbers = [int(n) for n in re.findall(r"\d+", value)]
    if re.fullmatch(r"\d{8}", value):
        return _calendar(int(value[:4]), int(value[4:6]), int(value[6:]))
    if not re.search(r"[^\W\d_]", value.replace("年", "").replace("月", "").replace("日", "")):
        if len(numbers) != 3:
            return False
        first, second, third = numbers
        if first > 31:  # year first
            return _calendar(first, second, third)
        return _calendar(third, second, first) or _calendar(third, first, second)
    return _parsed(value) is not None


def _calendar(year: int, month: int, day: int) -> bool:
    try:
        born = dt.date(year, month, day)
    except ValueError:
        return False
    return dt.date(1900, 1, 1) <= born <= dt.date.today()


@functools.lru_cache(maxsize=4096)
def _parsed(value: str) -> dt.datetime | None:
    import dateparser

    parsed: dt.datetime | None = dateparser.parse(
        value, settings={"STRICT_PARSING": True, "REQUIRE_PARTS": ["day", "month", "year"]}
    )
    if parsed is None or not dt.datetime(1900, 1, 1) <= parsed <= dt.datetime.now():
        return None
    return parsed
