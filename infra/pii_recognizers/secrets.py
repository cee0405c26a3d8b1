"""Credentials: API keys and tokens, private keys, passwords in DSNs and key/value settings,
tokens in URL query strings. Entity type SECRET.

The rule set is detect-secrets' (its regex-based plugins: AWS, GitHub, GitLab, Stripe, Slack,
Twilio, SendGrid, JWT, npm, PyPI, Discord, Telegram, Azure, …, basic-auth passwords in URLs,
and its keyword rules for `password = …` in code and config), run here with `finditer` so the
value's offsets are known — its own `analyze_line` yields values without positions and, with
the verification filter on, would send the secret over the network to check it. Never that.

detect-secrets 1.5 has no rule for the key formats below, so they are added by hand:
OpenAI's current keys (`sk-proj-…`, `sk-svcacct-…`; its OpenAI rule only knows the legacy
`T3BlbkFJ` marker), Anthropic (`sk-ant-…`), GitHub fine-grained tokens (`github_pat_…`),
Google API keys (`AIza…`), Hugging Face (`hf_…`), Stripe test keys (`sk_test_…`), bare PEM
private-key blocks (its rule matches only the header line), `Authorization: Bearer …`, and a
settings line whose key names a credential (`*_TOKEN=…`, `*_SECRET=…`) with a token-like value.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Iterator

from domain.pii import Finding

ENTITY = "SECRET"
SCORE = 0.9

_EXTRA_PATTERNS = [
    r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",  # a whole JWT
    r"sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}",
    r"sk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_-]{20,}",
    r"sk-[A-Za-z0-9]{32,}",
    r"github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}",
    r"gh[opusr]_[A-Za-z0-9]{36}",
    r"AIza[0-9A-Za-z_-]{35}",
    r"hf_[A-Za-z0-9]{30,}",
    r"(?:sk|rk|pk)_(?:test|live)_[0-9A-Za-z]{16,}",
    r"xox[abposr]-[A-Za-z0-9-]{10,}",
    r"npm_[A-Za-z0-9]{36}",
    r"SK[0-9a-f]{32}",
    r"glpat-[A-Za-z0-9_-]{20,}",
    r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z]+ )?PRIVATE KEY-----",
]
_EXTRA = [re.compile(p) for p in _EXTRA_PATTERNS]
# "Authorization: Bearer <token>" and "Bearer <token>" in code.
_BEARER = re.compile(r"(?i)\b(?:bearer|token)\s+([A-Za-z0-9._~+/=-]{16,})")
# KEY=VALUE / KEY: VALUE where the key names a credential.
_SETTING = re.compile(
    r"(?im)\b[\w.-]*(?:token|secret|pass(?:w(?:or)?d)?(?![a-z])|pwd|api[_-]?key|access[_-]?key|"
    r"private[_-]?key|auth|credential|client[_-]?secret|contraseña|mot[_ ]de[_ ]passe|kennwort|"
    r"пароль|密码|パスワード)[\w.-]*[\"']?\s*[:=]\s*[\"']?([^\s\"',;`]{4,})"
)
# A credential in a URL query string: ?token=…, &api_key=…, &sig=…
_URL_PARAM = re.compile(
    r"(?i)[?&#](?:token|access_token|refresh_token|id_token|api[_-]?key|apikey|key|sig|"
    r"signature|auth|session|sessionid|sid|code|secret|password|pwd|x-amz-signature|"
    r"x-goog-signature)=([^&#\s\"'<>]{8,})"
)
# user:password@host in a DSN or URL (detect-secrets' basic-auth rule, repeated for its span).
_BASIC_AUTH = re.compile(r"://[^:/?#\[\]@!$&'()*+,;=\s]+:([^:/?#\[\]@\s]+)@")
_WORDY = re.compile(r"^[A-Za-z]+$")
_CODE_REFERENCE = re.compile(r"^[A-Za-z_]{1,20}(?:\.[A-Za-z_]\w{0,30})+$")


@functools.cache
def _library_patterns() -> tuple[list[re.Pattern[str]], list[tuple[re.Pattern[str], int]]]:
    """detect-secrets' token rules, and its keyword rules with the group holding the value."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.plugins import keyword
    from detect_secrets.plugins.base import RegexBasedDetector
    from detect_secrets.settings import default_settings
    from detect_secrets.util.filetype import FileType

    tokens: list[re.Pattern[str]] = []
    with default_settings():
        classes: list[type] = list(get_mapping_from_secret_type_to_class().values())
        for cls in classes:
            if cls.__name__ == "IPPublicDetector":  # an IP is not a secret (IP_ADDRESS is)
                continue
            plugin = cls()
            if isinstance(plugin, RegexBasedDetector):
                tokens.extend(plugin.denylist)
    keywords: list[tuple[re.Pattern[str], int]] = []
    for filetype in (FileType.YAML, FileType.PYTHON):
        keywords.extend(keyword.REGEX_BY_FILETYPE[filetype].items())
    return tokens, keywords


def _token_span(match: re.Match[str]) -> tuple[int, int]:
    """A rule's groups either capture the secret inside its context (`aws…key='(…)'`,
    `://user:(…)@`) or only name the token's kind (`(ghp|gho)_…`): the longest group when it
    is long enough to be a credential, else the whole match."""
    spans = [match.span(g) for g in range(1, (match.re.groups or 0) + 1) if match.start(g) >= 0]
    longest = max(spans, key=lambda s: s[1] - s[0], default=None)
    if longest is not None and longest[1] - longest[0] >= 8:
        return longest
    return match.span()


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def _token_like(value: str) -> bool:
    """A value that reads as a credential, not a word or a sentence."""
    if len(value) < 6 or value.lower() in {"true", "false", "null", "none", "changeme", "xxxx"}:
        return False
    if value.startswith(("$", "{", "<", "%")):  # ${VAR}, {{template}}, <placeholder>
        return False
    if any(c in value for c in "()[]{}") or _CODE_REFERENCE.match(value):
        return False  # os.environ['API_KEY'], settings.DB_PASSWORD, getenv("X"): code, not a value
    if _WORDY.match(value) and len(value) < 12:
        return False
    return (
        any(c.isdigit() for c in value) or any(not c.isalnum() for c in value) or len(value) >= 16
    )


def find(text: str) -> list[Finding]:
    found: list[Finding] = []
    for start, end in _spans(text):
        while start < end and text[start] in " \t\"'`=:":
            start += 1
        while end > start and text[end - 1] in " \t\"'`,;":
            end -= 1
        if end > start:
            found.append(Finding(ENTITY, start, end, SCORE))
    return found


# Lines worth the keyword rules (~5 ms/KB over a whole text): they name a credential.
_KEYWORD_LINE = re.compile(
    r"(?i)key|pass|pwd|secret|token|auth|credential|contrase|mot de passe|kennwort|пароль|密码|"
    r"パスワード"
)


def _keyword_lines(text: str) -> Iterator[tuple[int, str]]:
    position = 0
    for line in text.split("\n"):
        if _KEYWORD_LINE.search(line):
            yield position, line
        position += len(line) + 1


def _spans(text: str) -> Iterator[tuple[int, int]]:
    tokens, keywords = _library_patterns()
    for pattern in tokens:
        for match in pattern.finditer(text):
            yield _token_span(match)
    lines = list(_keyword_lines(text))
    for offset, line in lines:
        for pattern, group in keywords:
            for match in pattern.finditer(line):
                value = match.group(group)
                first = value.split()[0] if value.split() else ""
                if _token_like(first):  # prose after "password:" is not a password
                    start = offset + match.start(group) + value.index(first)
                    yield start, start + len(first)
        for match in _SETTING.finditer(line):
            if _token_like(match.group(1)):
                yield offset + match.start(1), offset + match.end(1)
    for pattern in _EXTRA:
        for match in pattern.finditer(text):
            yield match.span()
    for pattern in (_BEARER, _URL_PARAM, _BASIC_AUTH):
        for match in pattern.finditer(text):
            value = match.group(1)
            if pattern is _BEARER and entropy(value) < 3.0:
                continue
            if pattern is not _BEARER or _token_like(value):
                yield match.span(1)
