"""PII that its structure names: form fields ("Name: …", "Anschrift: …", "姓名：…"), JSON keys,
CSV columns under a header, and HL7 v2 PID segments.

A field's label says what its value is, in any language, where free-text detection would have
to guess: a value under `"name"` or `Nachname:` is a person however rare the name, and the whole
line after `Address:` is the address (every part of it, house number and postcode included).
HL7 fields are positional (PID-3 identifiers, PID-5 name, PID-7 birth date, PID-11 address,
PID-13 phone, PID-19 SSN), per the HL7 v2.5 PID segment definition.
"""

from __future__ import annotations

import csv
import io
import re

from domain.pii import Finding

# label (case-folded, as written in forms and headers) -> entity type of its value
_LABELS: dict[str, str] = {}
for _entity, _labels in {
    "PERSON": [
        "name", "full name", "fullname", "full_name", "first name", "first_name", "firstname",
        "last name", "last_name", "lastname", "surname", "given name", "family name",
        "customer", "customer name", "client", "patient", "patient name", "contact", "contact name",
        "recipient", "account holder", "cardholder", "holder", "beneficiary", "employee",
        "vorname", "nachname", "familienname", "empfänger", "kontoinhaber", "ansprechpartner",
        "nom", "prénom", "nom complet", "titulaire", "destinataire", "nombre", "apellido",
        "apellidos", "nombre completo", "titular", "destinatario", "cliente", "姓名", "名字",
        "联系人", "收件人", "客户", "氏名", "名前", "担当者", "お名前", "الاسم", "الاسم الكامل",
        "اسم", "नाम", "पूरा नाम", "фио", "имя", "фамилия", "получатель", "клиент", "контакт",
    ],
    "STREET_ADDRESS": [
        "address", "street address", "home address", "street", "mailing address",
        "billing address", "shipping address", "anschrift", "adresse", "wohnadresse",
        "straße", "strasse", "lieferadresse", "domicile", "adresse postale", "domicilio",
        "dirección", "direccion", "地址", "住址", "住所", "العنوان", "पता", "адрес",
        "адрес проживания",
    ],
    "DATE_OF_BIRTH": [
        "dob", "date of birth", "birth date", "birthdate", "birthday", "date_of_birth",
        "geburtsdatum", "date de naissance", "fecha de nacimiento", "出生日期", "生年月日",
        "تاريخ الميلاد", "जन्म तिथि", "дата рождения",
    ],
    "PASSPORT": ["passport", "passport no", "passport number", "reisepassnummer", "numéro de passeport", "pasaporte", "护照号码", "旅券番号"],  # noqa: E501
    "US_SSN": ["ssn", "social security number"],
    "MEDICAL_RECORD_NUMBER": ["mrn", "medical record number", "patient id", "patientennummer"],
}.items():  # fmt: skip
    for _label in _labels:
        _LABELS[_label] = _entity

_FIELD = re.compile(r"(?m)^[ \t]*([^\W\d_][^:：\n=|]{0,40}?)[ \t]*[:：][ \t]*(\S[^\n]*?)[ \t]*$")
_JSON_PAIR = re.compile(r'"([^"\\]{1,40})"\s*:\s*"((?:[^"\\]|\\.){1,200})"')
_PID = re.compile(r"(?m)^PID\|[^\n]*$")


def find(text: str) -> list[Finding]:
    found: list[Finding] = []
    found.extend(_fields(text))
    found.extend(_json(text))
    found.extend(_csv(text))
    found.extend(_hl7(text))
    return found


def _entity_for(label: str) -> str | None:
    key = _key(label)
    key = re.sub(r"\s*(?:no|nr|number|n°|#)$", "", key) or key
    return _LABELS.get(key) or _LABELS.get(label.strip().casefold())


# Labels that are about a person whatever the value looks like; a bare "name" may also be a
# service's, a file's or a product's ({"name": "api-gateway"}).
_AMBIGUOUS_LABELS = frozenset({"name", "nom", "nombre", "名字", "名前", "имя", "नाम", "اسم"})


def _value_ok(entity: str, value: str, label: str = "") -> bool:
    if entity == "PERSON":
        words = value.split()
        if not (1 <= len(words) <= 5) or any(c.isdigit() for c in value) or "@" in value:
            return False
        if _key(label) in _AMBIGUOUS_LABELS:
            return _looks_like_a_name(words)
        return True
    return bool(value.strip())


def _looks_like_a_name(words: list[str]) -> bool:
    """Capitalised words none of which is an ordinary word, or a name the gazetteer knows."""
    from infra.pii_recognizers.gazetteers import names, ordinary_words

    known, ordinary = names(), ordinary_words()
    if any(not w[:1].isupper() and w[:1].isalpha() and w.isascii() for w in words):
        return False  # "api-gateway", "service"
    return all(w.casefold() not in ordinary or known.get(w.casefold(), 0.0) >= 3.0 for w in words)


def _key(label: str) -> str:
    return re.sub(r"[\s_.-]+", " ", label.strip().strip("\"'").casefold()).strip()


def _fields(text: str) -> list[Finding]:
    found = []
    for match in _FIELD.finditer(text):
        entity = _entity_for(match.group(1))
        value = match.group(2).rstrip(" ,;")
        if entity and _value_ok(entity, value, match.group(1)):
            start = match.start(2)
            found.append(Finding(entity, start, start + len(value), 0.9))
    return found


def _json(text: str) -> list[Finding]:
    found = []
    for match in _JSON_PAIR.finditer(text):
        entity = _entity_for(match.group(1))
        if entity and _value_ok(entity, match.group(2), match.group(1)):
            found.append(Finding(entity, match.start(2), match.end(2), 0.9))
    return found


def _csv(text: str) -> list[Finding]:
    """Rows under a header line whose column names say what they hold."""
    found = []
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    for index, header in enumerate(lines):
        delimiter = next((d for d in (",", ";", "\t", "|") if header.count(d) >= 1), None)
        if delimiter is None or index + 1 >= len(lines):
            continue
        columns = [_entity_for(c) for c in header.split(delimiter)]
        if not any(columns) or sum(c is not None for c in columns) < 1:
            continue
        if not all(
            re.fullmatch(r"[^\W\d][\w \-]{0,30}", c.strip()) for c in header.split(delimiter)
        ):
            continue  # a header is names of columns, not data
        for row_index in range(index + 1, len(lines)):
            row = lines[row_index]
            if row.count(delimiter) != header.count(delimiter):
                break
            cells = next(csv.reader(io.StringIO(row), delimiter=delimiter))
            position = offsets[row_index]
            for entity, cell in zip(columns, cells, strict=False):
                start = row.find(cell, position - offsets[row_index]) + offsets[row_index]
                position = start + len(cell)
                if entity and cell.strip() and _value_ok(entity, cell):
                    found.append(Finding(entity, start, start + len(cell), 0.9))
    return found


# PID field number -> entity of its value (HL7 v2.5, chapter 3.4.2)
_PID_FIELDS = {3: "MEDICAL_RECORD_NUMBER", 5: "PERSON", 7: "DATE_OF_BIRTH", 11: "STREET_ADDRESS",
               13: "PHONE_NUMBER", 19: "US_SSN"}  # fmt: skip


def _hl7(text: str) -> list[Finding]:
    found = []
    for segment in _PID.finditer(text):
        position = segment.start()
        for number, field in enumerate(segment.group().split("|")):
            entity = _PID_FIELDS.get(number)
            if entity and field.strip("^ "):
                value = field
                if entity == "MEDICAL_RECORD_NUMBER":  # CX: id^check^scheme^authority^type
                    value = field.split("^", 1)[0]
                elif entity == "DATE_OF_BIRTH":
                    value = field[:8]
                found.append(Finding(entity, position, position + len(value), 0.95))
            position += len(field) + 1
    return found
