"""Valid PII values for the labelled corpus (bench/pii_corpus.py): every number passes its real
checksum (Luhn, mod-97, Verhoeff, ISO 7064, the national algorithms of python-stdnum), every
phone number is valid for its region by libphonenumber, every Ethereum address is EIP-55.

Deterministic: each generator takes the corpus's `random.Random`.
"""

from __future__ import annotations

import base64
import hashlib
import random
import string
from collections.abc import Callable
from datetime import date, timedelta

import phonenumbers
from eth_utils.address import to_checksum_address
from stdnum import iban as iban_std
from stdnum import luhn, verhoeff
from stdnum.br import cpf
from stdnum.cn import ric
from stdnum.de import idnr
from stdnum.es import dni
from stdnum.fr import nir
from stdnum.in_ import aadhaar, pan
from stdnum.iso7064 import mod_11_10
from stdnum.it import codicefiscale
from stdnum.jp import in_ as my_number

Rng = random.Random

# --- names, by language (native scripts) -----------------------------------------------------

FIRST = {
    "en": ["James", "Emily", "Olivia", "Michael", "Sarah", "Daniel", "Grace", "Will", "Kwame",
           "Aisha", "Chloe", "Ethan", "Hannah", "Jacob", "Megan", "Tyler", "Priya", "Oluwaseun",
           "Nguyen", "Siobhan", "Rohan", "Amara", "Declan", "Fatima", "Isabella", "Mateo"],
    "de": ["Lukas", "Anna", "Jonas", "Lea", "Felix", "Marie", "Maximilian", "Sophie", "Paul",
           "Emma", "Leon", "Mia", "Tobias", "Katharina", "Jürgen", "Ursula", "Özlem", "Mehmet"],
    "fr": ["Camille", "Louis", "Chloé", "Hugo", "Manon", "Jules", "Léa", "Gabriel", "Inès",
           "Arthur", "Zoé", "Théo", "Margaux", "Étienne", "Amélie", "Youssef", "Nadia"],
    "es": ["Lucía", "Hugo", "Martina", "Pablo", "Sofía", "Alejandro", "Valeria", "Diego",
           "Carmen", "Javier", "Paula", "Sergio", "Elena", "Andrés", "Ximena", "Iñaki"],
    "zh": ["伟", "芳", "娜", "敏", "静", "强", "磊", "洋", "艳", "勇", "杰", "娟", "涛", "明", "超"],
    "ja": ["太郎", "花子", "健", "陽菜", "翔太", "美咲", "大輔", "結衣", "拓海", "さくら", "蓮"],
    "ar": ["محمد", "أحمد", "فاطمة", "علي", "مريم", "يوسف", "خالد", "نور", "عمر", "ليلى", "حسن"],
    "hi": ["राहुल", "प्रिया", "अमित", "सुनीता", "विजय", "अंजलि", "रवि", "पूजा", "संजय", "नेहा"],
    "ru": ["Иван", "Мария", "Алексей", "Анна", "Дмитрий", "Елена", "Сергей", "Ольга", "Никита",
           "Татьяна", "Михаил", "Наталья"],
}  # fmt: skip
LAST = {
    "en": ["Smith", "Johnson", "Williams", "Brown", "Mensah", "Okafor", "Patel", "O'Brien",
           "Thompson", "Garcia", "Nakamura", "Kowalski", "Adeyemi", "Fitzgerald", "Chen",
           "Harris", "Baker", "Sharma", "Rodriguez", "Walsh", "Mbeki"],
    "de": ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
           "Hoffmann", "Schäfer", "Koch", "Yılmaz", "Krüger", "Zimmermann"],
    "fr": ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
           "Leroy", "Moreau", "Lefèvre", "Fontaine", "Benali", "Rousseau"],
    "es": ["García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez",
           "Pérez", "Gómez", "Ruiz", "Jiménez", "Etxeberria", "Navarro"],
    "zh": ["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱"],
    "ja": ["佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤"],
    "ar": ["الأحمد", "حسن", "إبراهيم", "العلي", "منصور", "الخطيب", "سليمان", "الزهراني"],
    "hi": ["शर्मा", "वर्मा", "पटेल", "सिंह", "गुप्ता", "कुमार", "यादव", "जोशी", "मेहता"],
    "ru": ["Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов",
           "Михайлов", "Новиков", "Фёдоров"],
}  # fmt: skip
_FEMININE_RU = {"Мария", "Анна", "Елена", "Ольга", "Татьяна", "Наталья"}


def person(rng: Rng, lang: str, *, full: bool = True) -> str:
    first = rng.choice(FIRST[lang])
    if not full:
        return first
    last = rng.choice(LAST[lang])
    if lang == "ru" and first in _FEMININE_RU and last.endswith("ов"):
        last += "а"
    if lang in ("zh", "ja"):
        return f"{last}{first}" if lang == "zh" else f"{last} {first}"
    return f"{first} {last}"


# --- contact ---------------------------------------------------------------------------------

_ASCII = {
    "ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "é": "e", "è": "e", "ê": "e", "ë": "e",
    "à": "a", "á": "a", "í": "i", "ó": "o", "ú": "u", "ñ": "n", "ç": "c", "ı": "i", "ğ": "g",
    "ş": "s", "'": "", "Ö": "O", "Ü": "U", "Ä": "A", "É": "E", "Ł": "L", "ł": "l",
}  # fmt: skip
_MAIL_DOMAINS = ["gmail.com", "outlook.com", "yahoo.co.uk", "web.de", "orange.fr", "gmx.de",
                 "hotmail.es", "qq.com", "163.com", "yahoo.co.jp", "mail.ru", "yandex.ru",
                 "rediffmail.com", "acme-corp.io", "uni-heidelberg.de", "nhs.net", "company.co"]  # fmt: skip
_LATIN_FOR = ["li.wei", "wang.fang", "tanaka.k", "m.ahmed", "rahul.sharma", "ivan.petrov"]


def email(rng: Rng, name: str | None = None) -> str:
    local = ""
    if (name and name.isascii()) or (name and all(c.isascii() or c in _ASCII for c in name)):
        parts = ["".join(_ASCII.get(c, c) for c in p).lower() for p in (name or "").split()]
        local = rng.choice([".".join(parts), parts[0] + str(rng.randrange(10, 99)),
                            parts[0][0] + parts[-1], "_".join(parts)])  # fmt: skip
    if not local:
        local = rng.choice(_LATIN_FOR) + rng.choice(["", str(rng.randrange(1, 999))])
    return f"{local}@{rng.choice(_MAIL_DOMAINS)}"


PHONE_REGIONS = {
    "en": ["US", "GB", "IN", "NG", "AU", "CA", "GH", "IE", "ZA"],
    "de": ["DE", "AT", "CH"],
    "fr": ["FR", "BE", "CH", "CA"],
    "es": ["ES", "MX", "AR", "CO"],
    "zh": ["CN", "TW", "HK"],
    "ja": ["JP"],
    "ar": ["SA", "AE", "EG", "MA"],
    "hi": ["IN"],
    "ru": ["RU", "UA", "KZ"],
}


def phone(rng: Rng, lang: str) -> str:
    region = rng.choice(PHONE_REGIONS[lang])
    kind = rng.choice(
        [phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]
    )
    example = phonenumbers.example_number_for_type(region, kind) or phonenumbers.example_number(
        region
    )
    assert example is not None
    national = str(example.national_number)
    for _ in range(200):
        keep = max(2, len(national) - 6)
        digits = national[:keep] + "".join(str(rng.randrange(10)) for _ in national[keep:])
        number = phonenumbers.PhoneNumber(
            country_code=example.country_code, national_number=int(digits)
        )
        if phonenumbers.is_valid_number(number):
            break
    else:
        number = example
    style = rng.choice(
        [phonenumbers.PhoneNumberFormat.INTERNATIONAL, phonenumbers.PhoneNumberFormat.NATIONAL,
         phonenumbers.PhoneNumberFormat.E164]
    )  # fmt: skip
    return phonenumbers.format_number(number, style)


# --- money ------------------------------------------------------------------------------------

_CARD_PREFIXES = [("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("2720", 16), ("2405", 16),
                  ("34", 15), ("37", 15), ("6011", 16), ("65", 16), ("3530", 16), ("3589", 16),
                  ("62", 16), ("36", 14), ("4", 19)]  # fmt: skip


def card(rng: Rng) -> str:
    prefix, length = rng.choice(_CARD_PREFIXES)
    body = prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix) - 1))
    number = body + luhn.calc_check_digit(body)
    style = rng.randrange(3)
    if style == 0:
        return number
    sep = " " if style == 1 else "-"
    if length == 15:
        return sep.join([number[:4], number[4:10], number[10:]])
    return sep.join(number[i : i + 4] for i in range(0, length, 4))


_IBAN_FORMATS = {"DE": "18n", "FR": "10n11c2n", "ES": "20n", "GB": "4a14n", "IT": "1a10n12c",
                 "NL": "4a10n", "BE": "12n", "AT": "16n", "CH": "5n12c", "SA": "2n18c",
                 "AE": "19n", "PL": "24n", "PT": "21n", "IE": "4a14n"}  # fmt: skip


def _chars(rng: Rng, spec: str) -> str:
    out, count = [], ""
    for ch in spec:
        if ch.isdigit():
            count += ch
            continue
        alphabet = {"n": string.digits, "a": string.ascii_uppercase,
                    "c": string.ascii_uppercase + string.digits}[ch]  # fmt: skip
        out.extend(rng.choice(alphabet) for _ in range(int(count)))
        count = ""
    return "".join(out)


def iban(rng: Rng, country: str | None = None) -> str:
    country = country or rng.choice(sorted(_IBAN_FORMATS))
    for _ in range(500):
        bban = _chars(rng, _IBAN_FORMATS[country])
        candidate = country + "00" + bban
        number = country + iban_std.calc_check_digits(candidate) + bban
        if iban_std.is_valid(number):
            break
    else:
        raise RuntimeError(f"no valid IBAN for {country}")
    if rng.random() < 0.6:
        return " ".join(number[i : i + 4] for i in range(0, len(number), 4))
    return number


# --- identity documents -----------------------------------------------------------------------


def us_ssn(rng: Rng) -> str:
    area = rng.choice([n for n in range(1, 900) if n != 666])
    return f"{area:03d}-{rng.randrange(1, 100):02d}-{rng.randrange(1, 10000):04d}"


def uk_nino(rng: Rng) -> str:
    first = rng.choice("ABCEGHJKLMNPRSTWXYZ")
    second = rng.choice("ABCEGHJKLMNPRSTWXYZ".replace("O", ""))
    while first + second in {"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"}:
        second = rng.choice("ABCEGHJKLMNPRSTWXYZ")
    digits = "".join(str(rng.randrange(10)) for _ in range(6))
    return f"{first}{second} {digits[:2]} {digits[2:4]} {digits[4:]} {rng.choice('ABCD')}"


def _until_valid(make: Callable[[], str], valid: Callable[[str], bool]) -> str:
    for _ in range(10_000):
        value = make()
        if valid(value):
            return value
    raise RuntimeError("no valid value")


def de_idnr(rng: Rng) -> str:
    def make() -> str:
        # ten digits, exactly one of them repeated (the Steuer-IdNr's rule), then ISO 7064
        digits = rng.sample("123456789", 1) + rng.sample("0123456789", 8)
        digits.insert(rng.randrange(1, 10), digits[rng.randrange(9)])
        body = "".join(digits)
        return body + mod_11_10.calc_check_digit(body)

    value = _until_valid(make, idnr.is_valid)
    return rng.choice([value, f"{value[:2]} {value[2:5]} {value[5:8]} {value[8:]}"])


def fr_nir(rng: Rng) -> str:
    def make() -> str:
        body = (f"{rng.choice('12')}{rng.randrange(40, 99):02d}{rng.randrange(1, 13):02d}"
                f"{rng.randrange(1, 96):02d}{rng.randrange(1, 990):03d}{rng.randrange(1, 999):03d}")  # fmt: skip
        return body + nir.calc_check_digits(body)

    value = _until_valid(make, nir.is_valid)
    return f"{value[0]} {value[1:3]} {value[3:5]} {value[5:7]} {value[7:10]} {value[10:13]} {value[13:]}"


def es_dni(rng: Rng) -> str:
    number = f"{rng.randrange(10_000_000, 99_999_999)}"
    return number + dni.calc_check_digit(number)


def it_codice_fiscale(rng: Rng) -> str:
    def make() -> str:
        letters = "".join(rng.choice(string.ascii_uppercase) for _ in range(6))
        body = (f"{letters}{rng.randrange(40, 99):02d}{rng.choice('ABCDEHLMPRST')}"
                f"{rng.randrange(1, 29):02d}{rng.choice('ABCDEFGHILM')}{rng.randrange(100, 999)}")  # fmt: skip
        return body + codicefiscale.calc_check_digit(body)

    return _until_valid(make, codicefiscale.is_valid)


def in_aadhaar(rng: Rng) -> str:
    def make() -> str:
        body = str(rng.randrange(2, 10)) + "".join(str(rng.randrange(10)) for _ in range(10))
        return body + verhoeff.calc_check_digit(body)

    value = _until_valid(make, aadhaar.is_valid)
    return f"{value[:4]} {value[4:8]} {value[8:]}"


def in_pan(rng: Rng) -> str:
    def make() -> str:
        return ("".join(rng.choice(string.ascii_uppercase) for _ in range(3)) + rng.choice("PCHFAT")
                + rng.choice(string.ascii_uppercase) + f"{rng.randrange(1000, 9999)}"
                + rng.choice(string.ascii_uppercase))  # fmt: skip

    return _until_valid(make, pan.is_valid)


def cn_ric(rng: Rng) -> str:
    def make() -> str:
        born = date(1950, 1, 1) + timedelta(days=rng.randrange(0, 20_000))
        body = (f"{rng.choice(['110105', '310104', '440305', '510107', '330106'])}"
                f"{born:%Y%m%d}{rng.randrange(100, 999)}")  # fmt: skip
        return body + ric.calc_check_digit(body)

    return _until_valid(make, ric.is_valid)


def br_cpf(rng: Rng) -> str:
    def make() -> str:
        body = "".join(str(rng.randrange(10)) for _ in range(9))
        return body + cpf._calc_check_digits(body)

    value = _until_valid(make, cpf.is_valid)
    return f"{value[:3]}.{value[3:6]}.{value[6:9]}-{value[9:]}"


def jp_my_number(rng: Rng) -> str:
    def make() -> str:
        body = "".join(str(rng.randrange(10)) for _ in range(11))
        return body + my_number.calc_check_digit(body)

    value = _until_valid(make, my_number.is_valid)
    return f"{value[:4]} {value[4:8]} {value[8:]}"


def ru_passport(rng: Rng) -> str:
    return f"{rng.randrange(10, 99)} {rng.randrange(10, 99)} {rng.randrange(100000, 999999)}"


PASSPORTS = {
    "en": lambda r: (
        rng_digits(r, 9)
        if r.random() < 0.5
        else "".join(r.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(1)) + rng_digits(r, 8)
    ),
    "de": lambda r: (
        r.choice("CFGHJK") + "".join(r.choice("CFGHJKLMNPRTVWXYZ0123456789") for _ in range(8))
    ),
    "fr": lambda r: (
        f"{r.randrange(10, 99)}{''.join(r.choice(string.ascii_uppercase) for _ in range(2))}{r.randrange(10000, 99999)}"
    ),
    "es": lambda r: "".join(r.choice(string.ascii_uppercase) for _ in range(3)) + rng_digits(r, 6),
    "zh": lambda r: "E" + rng_digits(r, 8),
    "ja": lambda r: (
        "".join(r.choice("MTR") for _ in range(1)) + r.choice("ZKSH") + rng_digits(r, 7)
    ),
    "ar": lambda r: r.choice("ABKN") + rng_digits(r, 7),
    "hi": lambda r: r.choice("JKLMNPRSTVZ") + rng_digits(r, 7),
    "ru": ru_passport,
}


NATIONAL_IDS: dict[str, Callable[[Rng], str]] = {
    "us_ssn": lambda r: us_ssn(r),
    "uk_nino": lambda r: uk_nino(r),
    "de_idnr": lambda r: de_idnr(r),
    "fr_nir": lambda r: fr_nir(r),
    "es_dni": lambda r: es_dni(r),
    "it_cf": lambda r: it_codice_fiscale(r),
    "in_aadhaar": lambda r: in_aadhaar(r),
    "in_pan": lambda r: in_pan(r),
    "cn_ric": lambda r: cn_ric(r),
    "br_cpf": lambda r: br_cpf(r),
    "jp_my_number": lambda r: jp_my_number(r),
}


def rng_digits(rng: Rng, n: int) -> str:
    return str(rng.randrange(1, 10)) + "".join(str(rng.randrange(10)) for _ in range(n - 1))


def medical_record_number(rng: Rng) -> str:
    return rng.choice([rng_digits(rng, 8), f"MRN-{rng_digits(rng, 7)}", rng_digits(rng, 10),
                       f"{rng.choice(['H', 'P', 'M'])}{rng_digits(rng, 7)}"])  # fmt: skip


# --- network and crypto ------------------------------------------------------------------------


def ipv4(rng: Rng) -> str:
    first = rng.choice([10, 172, 192, 81, 203, 45, 88, 134, 185, 62, 91, 100, 151])
    if first == 192:
        return f"192.168.{rng.randrange(0, 255)}.{rng.randrange(1, 255)}"
    if first == 172:
        return f"172.{rng.randrange(16, 32)}.{rng.randrange(0, 255)}.{rng.randrange(1, 255)}"
    return f"{first}.{rng.randrange(0, 255)}.{rng.randrange(0, 255)}.{rng.randrange(1, 255)}"


def ipv6(rng: Rng) -> str:
    groups = [f"{rng.randrange(0, 65536):x}" for _ in range(8)]
    groups[0] = rng.choice(["2001", "2a02", "2600", "fd12"])
    if rng.random() < 0.5:
        return ":".join(groups[:4]) + "::" + groups[7]
    return ":".join(groups)


def eth_address(rng: Rng) -> str:
    return str(to_checksum_address("0x" + rng.randbytes(20).hex()))


_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def btc_address(rng: Rng) -> str:
    payload = bytes([rng.choice([0, 5])]) + rng.randbytes(20)
    check = hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    number = int.from_bytes(payload + check, "big")
    out = ""
    while number:
        number, rem = divmod(number, 58)
        out = _B58[rem] + out
    return "1" * (len(payload + check) - len((payload + check).lstrip(b"\0"))) + out


# --- secrets ------------------------------------------------------------------------------------

_B62 = string.ascii_letters + string.digits


def _rand(rng: Rng, n: int, alphabet: str = _B62) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


SECRET_KINDS = ("openai", "anthropic", "github", "github_pat", "aws_key", "stripe", "slack",
                "google", "jwt", "sendgrid", "hex_token", "npm", "twilio", "huggingface")  # fmt: skip


def secret(rng: Rng) -> tuple[str, str]:
    """(kind, value) of an API credential as it appears in prompts, configs and logs."""
    kind = rng.choice(SECRET_KINDS)
    return kind, secret_of(rng, kind)


def secret_password(rng: Rng) -> str:
    return rng.choice(["Summer2024!", "Tr0ub4dor&3", "hunter2hunter2", "P@ssw0rd!x9",
                       "correct-horse-battery", "Qwerty!2345", "s3cr3t_Adm1n", "Zx9#mQ2!pL"])  # fmt: skip


def secret_of(rng: Rng, kind: str) -> str:
    return {
        "openai": lambda: "sk-proj-" + _rand(rng, 48, _B62 + "-_"),
        "anthropic": lambda: "sk-ant-api03-" + _rand(rng, 93, _B62 + "-_") + "AA",
        "github": lambda: "ghp_" + _rand(rng, 36),
        "github_pat": lambda: "github_pat_" + _rand(rng, 22) + "_" + _rand(rng, 59),
        "aws_key": lambda: "AKIA" + _rand(rng, 16, string.ascii_uppercase + "234567"),
        "aws_secret": lambda: _rand(rng, 40, _B62 + "/+"),
        "stripe": lambda: rng.choice(["sk_live_", "rk_live_", "sk_test_"]) + _rand(rng, 24),
        "slack": lambda: (
            "xoxb-" + rng_digits(rng, 12) + "-" + rng_digits(rng, 13) + "-" + _rand(rng, 24)
        ),
        "google": lambda: "AIza" + _rand(rng, 35, _B62 + "-_"),
        "jwt": lambda: _jwt(rng),
        "sendgrid": lambda: "SG." + _rand(rng, 22, _B62 + "-_") + "." + _rand(rng, 43, _B62 + "-_"),
        "hex_token": lambda: rng.randbytes(20).hex(),
        "npm": lambda: "npm_" + _rand(rng, 36),
        "twilio": lambda: "SK" + rng.randbytes(16).hex(),
        "huggingface": lambda: "hf_" + _rand(rng, 34),
    }[kind]()


def _jwt(rng: Rng) -> str:
    def part(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    header = part(b'{"alg":"HS256","typ":"JWT"}')
    body = part(
        f'{{"sub":"{rng.randrange(10**6, 10**7)}","iat":{rng.randrange(1_600_000_000, 1_800_000_000)}}}'.encode()
    )
    return f"{header}.{body}.{part(rng.randbytes(32))}"


def private_key(rng: Rng) -> str:
    body = base64.b64encode(rng.randbytes(180)).decode()
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    kind = rng.choice(["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"])
    return f"-----BEGIN {kind}-----\n{lines}\n-----END {kind}-----"


# --- dates and places ---------------------------------------------------------------------------

_MONTHS = {
    "en": ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"],
    "de": ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
           "Oktober", "November", "Dezember"],
    "fr": ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
           "octobre", "novembre", "décembre"],
    "es": ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
           "septiembre", "octubre", "noviembre", "diciembre"],
    "ru": ["января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа",
           "сентября", "октября", "ноября", "декабря"],
}  # fmt: skip


def birth_date_iso(rng: Rng) -> str:
    born = date(1940, 1, 1) + timedelta(days=rng.randrange(0, 23_000))
    return f"{born:%Y-%m-%d}"


def birth_date(rng: Rng, lang: str) -> str:
    born = date(1940, 1, 1) + timedelta(days=rng.randrange(0, 23_000))
    month = _MONTHS.get(lang)
    styles: list[str] = [f"{born:%d/%m/%Y}", f"{born:%Y-%m-%d}"]
    if lang == "en":
        styles += [f"{born:%m/%d/%Y}", f"{month[born.month - 1]} {born.day}, {born.year}",  # type: ignore[index]
                   f"{born.day} {month[born.month - 1]} {born.year}"]  # type: ignore[index]  # fmt: skip
    elif lang in ("de", "ru"):
        styles += [f"{born:%d.%m.%Y}", f"{born.day}. {month[born.month - 1]} {born.year}"  # type: ignore[index]
                   if lang == "de" else f"{born.day} {month[born.month - 1]} {born.year} г."]  # type: ignore[index]  # fmt: skip
    elif lang in ("fr", "es"):
        joiner = " de " if lang == "es" else " "
        styles += [f"{born.day}{joiner}{month[born.month - 1]}{joiner}{born.year}"]  # type: ignore[index]
    elif lang in ("zh", "ja"):
        styles = [f"{born.year}年{born.month}月{born.day}日", f"{born:%Y/%m/%d}"]
    return rng.choice(styles)


STREETS = {
    "en": [("{n} {s} Street, {c}, {st} {z}", ["Maple", "Oak", "Elm", "Cedar", "Pine", "Washington"],
            ["Springfield", "Austin", "Portland", "Denver"], "US"),
           ("{n} {s} Road, {c} {z}", ["Kings", "Queens", "Station", "Church", "Mill"],
            ["London", "Leeds", "Bristol", "Manchester"], "GB"),
           ("{n} {s} Avenue, Apt {a}, {c}, {st} {z}", ["Park", "Lincoln", "Sunset", "Lake"],
            ["Chicago", "Seattle", "Boston", "Miami"], "US")],
    "de": [("{s}straße {n}, {z} {c}", ["Haupt", "Bahnhof", "Schiller", "Goethe", "Linden"],
            ["Berlin", "München", "Hamburg", "Köln"], "DE"),
           ("{s}weg {n}, {z} {c}", ["Birken", "Am Wald", "Rosen", "Eichen"],
            ["Stuttgart", "Leipzig", "Bremen"], "DE")],
    "fr": [("{n} rue {s}, {z} {c}", ["de la Paix", "Victor Hugo", "des Lilas", "Pasteur"],
            ["Paris", "Lyon", "Marseille", "Toulouse"], "FR"),
           ("{n} avenue {s}, {z} {c}", ["Jean Jaurès", "de la République", "Foch"],
            ["Nantes", "Lille", "Bordeaux"], "FR")],
    "es": [("Calle {s} {n}, {z} {c}", ["Mayor", "de Alcalá", "Gran Vía", "del Sol"],
            ["Madrid", "Sevilla", "Valencia", "Bilbao"], "ES"),
           ("Avenida {s} {n}, {z} {c}", ["de la Constitución", "Diagonal", "de América"],
            ["Barcelona", "Málaga", "Zaragoza"], "ES")],
    "zh": [("{c}{s}路{n}号", ["建国", "人民", "中山", "解放", "南京"],
            ["北京市朝阳区", "上海市浦东新区", "广州市天河区", "深圳市南山区"], "CN")],
    "ja": [("{c}{s}{n}丁目{a}番{b}号", ["丸の内", "西新宿", "道玄坂", "梅田"],
            ["東京都千代田区", "東京都新宿区", "東京都渋谷区", "大阪府大阪市北区"], "JP")],
    "ar": [("شارع {s} {n}، {c}", ["التحرير", "الملك فهد", "الجمهورية", "النيل"],
            ["القاهرة", "الرياض", "دبي", "عمّان"], "EG")],
    "hi": [("{n}, {s} मार्ग, {c} {z}", ["गांधी", "नेहरू", "एम जी", "स्टेशन"],
            ["नई दिल्ली", "मुंबई", "बेंगलुरु", "जयपुर"], "IN"),
           ("{n}, {s} Road, {c} {z}", ["MG", "Station", "Link", "Brigade"],
            ["Bengaluru", "Mumbai", "Pune", "Chennai"], "IN")],
    "ru": [("ул. {s}, д. {n}, кв. {a}, {c}, {z}", ["Тверская", "Ленина", "Пушкина", "Садовая"],
            ["Москва", "Санкт-Петербург", "Казань", "Новосибирск"], "RU")],
}  # fmt: skip
_ZIP = {"US": "{5}", "GB": "SW1A 2AA|M1 1AE|LS1 4DY|BS1 5TR", "DE": "{5}", "FR": "{5}",
        "ES": "{5}", "IN": "{6}", "RU": "{6}", "CN": "", "JP": "", "EG": ""}  # fmt: skip
_STATES = ["IL", "TX", "OR", "CO", "WA", "MA", "FL", "CA", "NY"]


def street_address(rng: Rng, lang: str) -> str:
    template, streets, cities, country = rng.choice(STREETS[lang])
    zip_spec = _ZIP[country]
    if zip_spec.startswith("{"):
        postcode = str(rng.randrange(10 ** (int(zip_spec[1]) - 1) + 1, 10 ** int(zip_spec[1])))
    else:
        postcode = rng.choice(zip_spec.split("|")) if zip_spec else ""
    return template.format(
        n=rng.randrange(1, 250), s=rng.choice(streets), c=rng.choice(cities),
        st=rng.choice(_STATES), z=postcode, a=rng.randrange(1, 40), b=rng.randrange(1, 20),
    ).strip().rstrip(",")  # fmt: skip


def url_with_token(rng: Rng) -> tuple[str, str, str]:
    """(url prefix, token, url suffix): the token is the secret, the rest is not."""
    host = rng.choice(["app.acme-corp.io", "portal.example-bank.com", "files.dropbox-like.net",
                       "api.internal.tools", "reset.myservice.app"])  # fmt: skip
    param = rng.choice(["token", "access_token", "api_key", "key", "sig", "auth", "session"])
    token = _rand(rng, rng.choice([24, 32, 40]), _B62 + "-_")
    path = rng.choice(["/reset", "/download", "/v1/export", "/invite", "/share/doc"])
    return f"https://{host}{path}?{param}=", token, rng.choice(["", "&lang=en", "&page=2"])
