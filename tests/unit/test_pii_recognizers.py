"""Each of Pryv's PII recognizers on its own: values it must find (with exact spans) and
look-alikes it must leave alone."""

from __future__ import annotations

import pytest

from domain.pii import Finding
from infra.pii_recognizers import (
    addresses,
    dates,
    detect,
    identifiers,
    names,
    network,
    payment,
    phones,
    records,
    secrets,
)


def found(findings: list[Finding], text: str) -> set[tuple[str, str]]:
    return {(f.entity_type, text[f.start : f.end]) for f in findings}


def values(findings: list[Finding], text: str) -> set[str]:
    return {text[f.start : f.end] for f in findings}


# -- secrets --------------------------------------------------------------------------------------

SECRET_CASES = [
    ("OPENAI_API_KEY=sk-proj-abcDEF123ghiJKL456mnoPQR789stuVWX0yz", "sk-proj-abcDEF123ghiJKL456mnoPQR789stuVWX0yz"),
    ("token ghp_R4nd0mT0k3nV4lu3F0rT3st1ngPurp0s3s12 expired", "ghp_R4nd0mT0k3nV4lu3F0rT3st1ngPurp0s3s12"),
    ("aws_access_key_id = AKIAI44QH8DHBEXAMPLE", "AKIAI44QH8DHBEXAMPLE"),
    ("stripe.api_key = 'sk_live_4eC39HqLyjWDarjtT1zdp7dc'", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("postgres://admin:Summer2024!@db.internal:5432/app", "Summer2024!"),
    ("DB_PASS=Tr0ub4dor&3", "Tr0ub4dor&3"),
    ("https://app.example.io/reset?token=Zk3jQ9vL2mN8pR4tW6yB1cD5&lang=en", "Zk3jQ9vL2mN8pR4tW6yB1cD5"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlX2hlcmVfMTIz", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlX2hlcmVfMTIz"),
    ("hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789 is my token", "hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "secret"), SECRET_CASES)
def test_secrets_are_found_with_their_exact_span(text: str, secret: str) -> None:
    assert secret in values(secrets.find(text), text)


def test_private_key_blocks_are_found_whole() -> None:
    key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAtest\nabc123==\n-----END RSA PRIVATE KEY-----"
    text = f"why does ssh reject this?\n{key}\n"
    assert key in values(secrets.find(text), text)


@pytest.mark.parametrize(
    "text",
    [
        "api_key = os.environ['API_KEY']",
        "password: see the vault",
        "Set LOG_LEVEL=debug and PORT=8080",
        "The token bucket algorithm limits requests per second.",
        "commit 9fceb02d0ae598e95dc970b74767f19372d61af8 fixed it",
        "secret_name = ${DB_SECRET}",
    ],
)
def test_no_secret_in_ordinary_code_and_prose(text: str) -> None:
    assert secrets.find(text) == []


# -- payment --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "card",
    [
        "2223 0031 2200 3222",
        "5425-2334-3010-9903",
        "378282246310005",
        "3056 9309 0259 04",
        "4111111111111111",
    ],
)
def test_cards_in_every_issuer_range(card: str) -> None:
    text = f"my card {card} was charged"
    assert values(payment.cards(text), text) == {card}


@pytest.mark.parametrize(
    "text",
    ["order 4111111111111112", "ORD-2024-000123", "tracking 1234 5678 9012 3456", "v1.2.3.4"],
)
def test_no_card_without_luhn_and_an_issuer(text: str) -> None:
    assert payment.cards(text) == []


def test_crypto_addresses_checked_by_their_checksums() -> None:
    eth, btc = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"
    text = f"send to {eth} or {btc}"
    assert values(payment.crypto(text), text) == {eth, btc}
    broken = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"  # checksum case flipped
    assert payment.crypto(f"hash {broken}") == []
    assert payment.crypto("commit 0x" + "ab" * 20) == []  # lower-case hex with no wallet word


# -- network -------------------------------------------------------------------------------------


def test_emails_next_to_cjk_and_with_real_suffixes_only() -> None:
    text = "联系人邮箱li.wei@163.com，或者 jane@example.co.uk"
    assert values(network.emails(text), text) == {"li.wei@163.com", "jane@example.co.uk"}
    assert network.emails("user@localhost and a@b.invalidtld") == []


def test_ip_addresses_but_not_version_numbers() -> None:
    text = (
        "login from 203.0.113.45 and 2001:db8::8a2e:370:7334; upgraded to 4.2.1.0, build=3.14.7.120"
    )
    assert values(network.ips(text), text) == {"203.0.113.45", "2001:db8::8a2e:370:7334"}
    assert network.ips("10.0.19045.3930 and 999.1.1.1 and 12:30:45") == []
    assert network.ips("upgrade nginx to 1.25.3.4 tonight") == []  # a version word before
    text = "after the upgrade, login from 10.2.3.4 failed"  # an address word is nearer
    assert values(network.ips(text), text) == {"10.2.3.4"}


# -- phones ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,number",
    [
        ("call me at (415) 555-0132", "(415) 555-0132"),
        ("Telefon: 030 901820", "030 901820"),
        ("mera number 98765 43210 hai", "98765 43210"),
        ("他的电话是+86 131 2359 7460", "+86 131 2359 7460"),
        ("電話番号は03-1216-6195です", "03-1216-6195"),
        ("мой телефон +7 916 123-45-67.", "+7 916 123-45-67"),
        ("اتصل بي على +971 50 123 4567 من فضلك", "+971 50 123 4567"),
    ],
)
def test_phones_of_any_region(text: str, number: str) -> None:
    assert values(phones.find(text), text) == {number}


@pytest.mark.parametrize(
    "text",
    [
        "order ORD-2024-498547",
        "released 2024-05-02 08:00",
        "from 192.168.1.20",
        "version 10.0.22108.3972",
        "total 12345678",
    ],
)
def test_no_phone_in_ids_dates_ips_and_versions(text: str) -> None:
    assert phones.find(text) == []


# -- identifiers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value", "entity"),
    [
        ("SSN 536-22-1234", "536-22-1234", "US_SSN"),
        ("NI number JG 10 37 72 A", "JG 10 37 72 A", "NATIONAL_ID"),
        ("Steuer-ID: 65 929 970 489", "65 929 970 489", "NATIONAL_ID"),
        ("mon NIR 2 55 08 14 168 025 38", "2 55 08 14 168 025 38", "NATIONAL_ID"),
        ("DNI 12345678Z", "12345678Z", "NATIONAL_ID"),
        ("aadhaar 2341 2341 2346", "2341 2341 2346", "NATIONAL_ID"),
        ("PAN AAAPZ1234C", "AAAPZ1234C", "NATIONAL_ID"),
        ("身份证号11010519491231002X", "11010519491231002X", "NATIONAL_ID"),
        ("IBAN GB82 WEST 1234 5698 7654 32", "GB82 WEST 1234 5698 7654 32", "IBAN_CODE"),
    ],
)
def test_national_ids_pass_their_country_checks(text: str, value: str, entity: str) -> None:
    assert (entity, value) in found(identifiers.national_ids(text), text)


def test_checksum_failures_and_uncued_bare_digits_are_not_ids() -> None:
    assert identifiers.national_ids("DNI 12345678A") == []  # wrong control letter
    assert identifiers.national_ids("ref GB83 WEST 1234 5698 7654 32") == []  # mod 97
    # right after the word IBAN, the shape is enough (a typo or an OCR misread of a digit)
    cued = "IBAN GB83 WEST 1234 5698 7654 32"
    assert ("IBAN_CODE", cued[5:]) in found(identifiers.national_ids(cued), cued)
    assert identifiers.national_ids("invoice 65929970489") == []  # Steuer-IdNr shape, no cue


def test_passports_and_medical_records_need_their_name_before_them() -> None:
    text = "Reisepassnummer: C01X00T47, MRN: 00482913"
    assert ("PASSPORT", "C01X00T47") in found(identifiers.passports(text), text)
    assert ("MEDICAL_RECORD_NUMBER", "00482913") in found(
        identifiers.medical_record_numbers(text), text
    )
    assert identifiers.passports("build C01X00T47 failed") == []
    assert identifiers.medical_record_numbers("order 00482913 shipped") == []


# -- dates of birth ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "date"),
    [
        ("born 30 December 1986", "30 December 1986"),
        ("DOB: 07/22/1958", "07/22/1958"),
        ("geboren am 12. März 1985", "12. März 1985"),
        ("née le 2 juin 1983", "2 juin 1983"),
        ("fecha de nacimiento: 3 de marzo de 1985", "3 de marzo de 1985"),
        ("出生日期1985年3月12日", "1985年3月12日"),
        ("生年月日は1962年6月1日です", "1962年6月1日"),
        ("дата рождения 12.03.1985", "12.03.1985"),
    ],
)
def test_dates_of_birth_in_nine_languages(text: str, date: str) -> None:
    assert values(dates.find(text), text) == {date}


def test_other_dates_are_not_birth_dates() -> None:
    assert dates.find("the meeting is on 12 March 2024, release 2024-05-02") == []
    assert dates.find("born 31/02/1985") == []  # no such day


# -- addresses -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "742 Evergreen Terrace, Springfield, OR 97477",
        "12 Baker Street, London NW1 6XE",
        "Lindenallee 7, 50968 Köln",
        "45 boulevard Haussmann, 75009 Paris",
        "Calle de Serrano 41, 28001 Madrid",
        "ул. Арбат, д. 10, кв. 5, Москва, 119002",
        "上海市徐汇区漕溪北路88号",
        "東京都千代田区丸の内1丁目9番1号",
    ],
)
def test_whole_addresses_are_found(address: str) -> None:
    text = f"Send it to {address} please."
    assert values(addresses.find(text), text) == {address}


def test_places_on_their_own_are_not_addresses() -> None:
    assert addresses.find("Plan a trip to Paris and Madrid, then London.") == []


# -- names ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Hi, I'm Kwame Mensah and I need help", "Kwame Mensah"),
        ("can you reply to olivia about it", "olivia"),
        ("Invite Hannah Kowalski to the review", "Hannah Kowalski"),
        ("Меня зовут Ольга Смирнова", "Ольга Смирнова"),
        ("مرحبا، اسمي سارة الحربي", "سارة الحربي"),
        ("मेरा नाम अनिल कपूर है", "अनिल कपूर"),
        ("我叫刘德明，请帮忙", "刘德明"),
        ("山田 花子さんへのお礼", "山田 花子"),
    ],
)
def test_names_in_every_script(text: str, name: str) -> None:
    assert name in values(names.find(text), text)


@pytest.mark.parametrize(
    "text",
    [
        "Compare Redis and PostgreSQL for a session store.",
        "Explain how Kubernetes schedules pods.",
        "Convert this JSON to YAML.",
        "Email templates: Name five sorting algorithms.",
        "Bitte erkläre Docker.",
        "Explain Einstein's theory of relativity.",
        "Tell me about the history of Paris and Madrid.",
        "Напиши стихотворение о зиме.",
        "ما الفرق بين Python و JavaScript؟",
    ],
)
def test_words_technology_places_and_famous_people_are_not_names(text: str) -> None:
    assert names.find(text) == []


# -- records --------------------------------------------------------------------------------------


def test_labelled_fields_json_csv_and_hl7() -> None:
    text = (
        "Nachname: Oyelaran-Bauer\n"
        '{"name": "Zephyrine Quatremaine", "sku": "A-1"}\n'
        "name,email\nIolanthe Brightwater,io@example.com\n"
        "PID|1||00123^^^HOSP^MR||Doe^Jane||19800101|F|||1 Main St^^Springfield^IL^62704\n"
    )
    got = found(records.find(text), text)
    assert ("PERSON", "Oyelaran-Bauer") in got
    assert ("PERSON", "Zephyrine Quatremaine") in got
    assert ("PERSON", "Iolanthe Brightwater") in got
    assert {("MEDICAL_RECORD_NUMBER", "00123"), ("PERSON", "Doe^Jane"),
            ("DATE_OF_BIRTH", "19800101")} <= got  # fmt: skip
    assert ("STREET_ADDRESS", "1 Main St^^Springfield^IL^62704") in got
    assert records.find('{"status": "paid", "amount": "20.50"}') == []
    # a bare "name" may be a service's: only a name-like value is a person
    assert records.find('{"name": "api-gateway", "port": 8080}') == []
    assert records.find("name: service") == []


def test_detect_returns_only_the_wanted_types() -> None:
    text = "Mail jane@example.com or call +1 212 555 0147"
    assert {f.entity_type for f in detect(text, frozenset({"EMAIL_ADDRESS"}))} == {"EMAIL_ADDRESS"}
