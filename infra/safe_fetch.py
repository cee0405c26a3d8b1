"""Fetch a public web page as text on a user's behalf, with a strict SSRF defence.

Why this is hand-written: httpx (like most HTTP clients) has no SSRF guard. Checking the URL's
host before calling `client.get(url)` is not enough, because the client resolves the name again
when it connects: a DNS answer can change between the check and the connect (DNS rebinding),
a redirect can point anywhere, and a name can resolve to several addresses. The check has to sit
between resolution and connect, so this module resolves each host itself, checks *every*
address, and then connects to the vetted IP literally (no second lookup), while still sending
the original `Host` header and, for https, the original name as TLS SNI and for certificate
verification (httpcore's `sni_hostname` request extension). Redirects are followed by hand and
every hop is validated from scratch.

Everything that is refused raises `FetchRejected(reason)`; the reason is short, safe to show the
user, and never contains a resolved or internal address.
"""

from __future__ import annotations

import asyncio
import codecs
import ipaddress
import re
import socket
import ssl
import zlib
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import httpx

from domain.errors import PryvError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# async (host, port) -> the addresses the host resolves to (IP literals as strings).
Resolver = Callable[[str, int], Awaitable[Iterable[str]]]

ALLOWED_CONTENT_TYPES = frozenset(
    {"text/html", "text/plain", "application/json", "application/xml", "text/markdown"}
)
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_USER_AGENT = "Pryv-Fetch/1.0"
_ACCEPT = "text/html, text/plain;q=0.9, text/markdown;q=0.9, application/json;q=0.8, "
_ACCEPT += "application/xml;q=0.8"
# A hostname whose last label is all digits or hex-prefixed is some non-standard IPv4 notation
# (2130706433, 0177.0.0.1, 127.1, 0x7f.0.0.1) that resolvers interpret inconsistently: refused.
_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)")
_HOST_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
# NAT64 well-known prefix: the low 32 bits are an IPv4 address reached through a translator.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class FetchRejected(PryvError):
    """The URL was not fetched (or its content not returned). `reason` is user-facing."""

    code = "url_fetch_failed"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class FetchedPage:
    url: str  # as requested
    final_url: str  # after redirects
    content_type: str  # media type without parameters, e.g. "text/html"
    text: str  # HTML converted to readable text; other types decoded as they are


# --- address policy --------------------------------------------------------------------------


def is_forbidden_address(address: IPAddress) -> bool:
    """True for anything but a globally routable unicast address: loopback, private (RFC 1918,
    fc00::/7), link-local (169.254/16 incl. cloud metadata, fe80::/10), CGNAT 100.64/10,
    multicast, reserved, unspecified, documentation/benchmark ranges, site-local fec0::/10, and
    IPv6 addresses that embed a forbidden IPv4 address (IPv4-compatible ::a.b.c.d, 6to4
    2002::/16, Teredo 2001::/32, NAT64 64:ff9b::/96). IPv4-mapped ::ffff:a.b.c.d is refused
    whatever it maps to (Python counts ::ffff:0:0/96 as non-global; no public site needs it)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return True
        embedded = _embedded_ipv4(address)
        if address in _NAT64:
            # Python counts all of ::/8 as reserved; NAT64 is as safe as the address it embeds.
            return embedded is None or is_forbidden_address(embedded)
        if embedded is not None and is_forbidden_address(embedded):
            return True
        if address.is_site_local:
            return True
    return (
        not address.is_global
        or address.is_multicast
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    )


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client address (de-obfuscated by ipaddress)
    value = int(address)
    if value >> 32 == 0 or address in _NAT64:  # IPv4-compatible ::a.b.c.d, or NAT64
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    return None


# --- fetching --------------------------------------------------------------------------------


async def fetch_text(
    url: str,
    *,
    max_bytes: int = 2_000_000,
    timeout: float = 10.0,
    max_redirects: int = 5,
    resolver: Resolver | None = None,
    allow_addresses: Collection[str] = (),
    verify: ssl.SSLContext | None = None,
) -> FetchedPage:
    """GET `url` and return its text, following at most `max_redirects` redirects, reading at most
    `max_bytes` of (decoded) body, all within `timeout` seconds overall.

    `resolver` replaces the system resolver (`loop.getaddrinfo`); `allow_addresses` exempts the
    listed IPs from the address policy and `verify` replaces the system trust store. The last
    two exist for tests (a local server is on loopback, which production always refuses)."""
    fetched = await fetch_body(
        url,
        content_types=ALLOWED_CONTENT_TYPES,
        max_bytes=max_bytes,
        timeout=timeout,
        max_redirects=max_redirects,
        resolver=resolver,
        allow_addresses=allow_addresses,
        verify=verify,
    )
    text = _decode(fetched.body, fetched.charset, fetched.content_type)
    if fetched.content_type == "text/html":
        text = html_to_text(text)
    return FetchedPage(
        url=url, final_url=fetched.final_url, content_type=fetched.content_type, text=text
    )


@dataclass(frozen=True)
class FetchedBody:
    url: str
    final_url: str
    content_type: str
    charset: str | None
    body: bytes


async def fetch_body(
    url: str,
    *,
    content_types: Collection[str],
    max_bytes: int = 2_000_000,
    timeout: float = 10.0,
    max_redirects: int = 5,
    resolver: Resolver | None = None,
    allow_addresses: Collection[str] = (),
    verify: ssl.SSLContext | None = None,
) -> FetchedBody:
    """Like `fetch_text`, for raw bytes of the given media types (e.g. application/pdf), under
    the same address policy, redirect re-validation, size and time caps."""
    allowed = frozenset(ipaddress.ip_address(a) for a in allow_addresses)
    resolve = resolver or _system_resolver
    try:
        async with asyncio.timeout(timeout):
            return await _fetch(
                url,
                max_bytes,
                timeout,
                max_redirects,
                resolve,
                allowed,
                verify,
                frozenset(content_types),
            )
    except (TimeoutError, httpx.TimeoutException):
        raise FetchRejected("timed out") from None
    except httpx.HTTPError:  # the connection broke, or the server spoke broken HTTP
        raise FetchRejected("connection failed") from None


async def post_json(
    url: str,
    body: bytes,
    *,
    headers: dict[str, str],
    timeout: float = 10.0,
    resolver: Resolver | None = None,
    allow_addresses: Collection[str] = (),
    verify: ssl.SSLContext | None = None,
) -> int:
    """POST `body` (JSON) to a user's webhook URL under the same address policy as a fetch;
    the answer's status. Redirects are not followed (a webhook that moved is a failure to
    deliver, as with Stripe's), and the answer's body is not read."""
    allowed = frozenset(ipaddress.ip_address(a) for a in allow_addresses)
    current = _validate_url(url)
    sent = {"Content-Type": "application/json", **headers}
    try:
        async with asyncio.timeout(timeout):
            addresses = await _vetted_addresses(current, resolver or _system_resolver, allowed)
            async with _guarded_transport(verify) as transport:
                response = await _send(
                    transport,
                    current,
                    addresses,
                    timeout,
                    method="POST",
                    content=body,
                    extra_headers=sent,
                )
                await response.aclose()
                return response.status_code
    except (TimeoutError, httpx.TimeoutException):
        raise FetchRejected("timed out") from None
    except httpx.HTTPError:
        raise FetchRejected("connection failed") from None


async def _fetch(
    url: str,
    max_bytes: int,
    timeout: float,
    max_redirects: int,
    resolve: Resolver,
    allowed: frozenset[IPAddress],
    verify: ssl.SSLContext | None,
    content_types: frozenset[str],
) -> FetchedBody:
    current = _validate_url(url)
    for _hop in range(max_redirects + 1):
        addresses = await _vetted_addresses(current, resolve, allowed)
        # A fresh transport per hop, so no pooled (TLS) connection is reused for another host.
        async with _guarded_transport(verify) as transport:
            response = await _send(transport, current, addresses, timeout)
            try:
                if response.status_code in _REDIRECT_STATUSES:
                    current = _redirect_target(current, response)
                    continue
                if not 200 <= response.status_code < 300:
                    raise FetchRejected(f"the page returned HTTP {response.status_code}")
                content_type, charset = _content_type(response, content_types)
                body = await _read_body(response, max_bytes)
            finally:
                await response.aclose()
        return FetchedBody(url, str(current), content_type, charset, body)
    raise FetchRejected("too many redirects")


def _guarded_transport(verify: ssl.SSLContext | None) -> httpx.AsyncHTTPTransport:
    """The transport, not an httpx.Client: no cookie jar, no redirect handling, no environment
    proxies (proxy=None, trust_env=False: nothing may take over the connection)."""
    return httpx.AsyncHTTPTransport(
        verify=verify if verify is not None else _system_trust(),
        trust_env=False,
        proxy=None,
        retries=0,
    )


def _redirect_target(current: httpx.URL, response: httpx.Response) -> httpx.URL:
    """The next hop, relative locations resolved against the *named* URL, validated afresh."""
    location = response.headers.get("location", "").strip()
    if not location:
        raise FetchRejected("redirect without a location")
    try:
        target = current.join(location)
    except (httpx.InvalidURL, ValueError):
        raise FetchRejected("invalid redirect location") from None
    return _validate_url(str(target))


_trust: ssl.SSLContext | None = None


def _system_trust() -> ssl.SSLContext:
    """httpx's default verifying context (certifi, or SSL_CERT_FILE/SSL_CERT_DIR), built once:
    loading the CA bundle costs ~20-40 ms, and every hop uses a fresh transport."""
    global _trust
    if _trust is None:
        _trust = httpx.create_ssl_context()
    return _trust


def _validate_url(raw: str) -> httpx.URL:
    """Parse and check scheme, credentials, port and host syntax (not yet the addresses)."""
    try:
        url = httpx.URL(raw.strip())
    except (httpx.InvalidURL, TypeError, ValueError):
        raise FetchRejected("invalid URL") from None
    if url.scheme not in ("http", "https"):
        raise FetchRejected("only http and https URLs are allowed")
    if url.userinfo:
        raise FetchRejected("URLs with credentials are not allowed")
    if url.port is not None and not 0 < url.port < 65536:
        raise FetchRejected("invalid port")
    try:
        host = url.raw_host.decode("ascii").lower()
    except UnicodeDecodeError:
        raise FetchRejected("invalid host") from None
    host = host.removesuffix(".")
    if not host:
        raise FetchRejected("invalid host")
    if _literal_ip(host) is None:
        labels = host.split(".")
        if _NUMERIC_LABEL.fullmatch(labels[-1]):
            raise FetchRejected("numeric hosts must be written as standard IP addresses")
        if len(host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
            raise FetchRejected("invalid host")
    return url.copy_with(host=host)


def _literal_ip(host: str) -> IPAddress | None:
    """The address of a host written as a standard IPv4 dotted quad or an IPv6 literal."""
    if "%" in host:  # IPv6 zone ids (fe80::1%eth0) are never public
        raise FetchRejected("address not allowed")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def _vetted_addresses(
    url: httpx.URL, resolve: Resolver, allowed: frozenset[IPAddress]
) -> list[IPAddress]:
    host = url.raw_host.decode("ascii")
    literal = _literal_ip(host)
    if literal is not None:
        candidates = [literal]
    else:
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            resolved = list(await resolve(host, port))
        except (OSError, UnicodeError):  # socket.gaierror is an OSError
            raise FetchRejected("host could not be resolved") from None
        try:
            candidates = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolved]
        except ValueError:
            raise FetchRejected("host could not be resolved") from None
        if any("%" in a for a in resolved):
            raise FetchRejected("address not allowed")
        if not candidates:
            raise FetchRejected("host could not be resolved")
    # Every address must pass, not just the one we would use: a name mixing a public and a private
    # address is refused outright.
    for address in candidates:
        if address not in allowed and is_forbidden_address(address):
            raise FetchRejected("address not allowed")
    return list(dict.fromkeys(candidates))


async def _system_resolver(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def _send(
    transport: httpx.AsyncHTTPTransport,
    url: httpx.URL,
    addresses: list[IPAddress],
    timeout: float,
    *,
    method: str = "GET",
    content: bytes = b"",
    extra_headers: dict[str, str] | None = None,
) -> httpx.Response:
    """Send the request to the first vetted address that accepts a connection. The URL's host
    is replaced by the IP literal (so nothing below resolves a name again); the name travels as
    the Host header and, for https, as SNI and the name the certificate is checked against."""
    host = url.raw_host.decode("ascii")
    extensions: dict[str, Any] = {"timeout": httpx.Timeout(timeout).as_dict()}
    if url.scheme == "https" and _literal_ip(host) is None:
        extensions["sni_hostname"] = host  # httpcore: server_hostname for SNI + hostname check
    headers = {
        "Host": url.netloc.decode("ascii"),
        "User-Agent": _USER_AGENT,
        "Accept": _ACCEPT,
        "Accept-Encoding": "identity",
        **(extra_headers or {}),
    }
    tls_failure = False
    for address in addresses:
        request = httpx.Request(
            method,
            url.copy_with(host=str(address)),
            headers=headers,
            content=content or None,
            extensions=extensions,
        )
        try:
            return await transport.handle_async_request(request)
        except httpx.ConnectError as exc:  # refused, unreachable, TLS handshake/verification
            tls_failure = tls_failure or _caused_by_tls(exc)
    raise FetchRejected(
        "TLS certificate verification failed" if tls_failure else "could not connect"
    )


def _caused_by_tls(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _content_type(response: httpx.Response, allowed: frozenset[str]) -> tuple[str, str | None]:
    header = response.headers.get("content-type", "")
    media_type, *params = (part.strip() for part in header.split(";"))
    media_type = media_type.lower()
    if media_type not in allowed:
        if allowed == ALLOWED_CONTENT_TYPES:
            raise FetchRejected("content type not allowed (HTML, text, Markdown, JSON or XML only)")
        raise FetchRejected(f"content type not allowed ({', '.join(sorted(allowed))} only)")
    charset = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip("\"'") or None
    return media_type, charset


async def _read_body(response: httpx.Response, max_bytes: int) -> bytes:
    """The body, decompressed if the server compressed it anyway; more than max_bytes (raw or
    decompressed) is an error. Decompression is bounded per step, so a gzip bomb never expands
    beyond max_bytes + 1 in memory."""
    length = response.headers.get("content-length")
    declared = (length or "").strip()
    if (
        declared.isascii()
        and declared.isdigit()
        and (len(declared) > 18 or int(declared) > max_bytes)
    ):
        raise FetchRejected("too large")
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    decompressor: zlib._Decompress | None
    if encoding in ("", "identity"):
        decompressor = None
    elif encoding in ("gzip", "x-gzip"):
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        decompressor = zlib.decompressobj()
    else:
        raise FetchRejected("unsupported content encoding")
    body = bytearray()
    received = 0
    async for chunk in response.aiter_raw():
        received += len(chunk)
        if received > max_bytes:
            raise FetchRejected("too large")
        if decompressor is None:
            body += chunk
            continue
        pending = chunk
        while pending:
            try:
                body += decompressor.decompress(pending, max_bytes - len(body) + 1)
            except zlib.error:
                raise FetchRejected("corrupt compressed body") from None
            if len(body) > max_bytes:
                raise FetchRejected("too large")
            pending = decompressor.unconsumed_tail
    if len(body) > max_bytes:
        raise FetchRejected("too large")
    return bytes(body)


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]+)""", re.I)


def _decode(body: bytes, charset: str | None, content_type: str) -> str:
    if charset is None and content_type == "text/html":
        match = _META_CHARSET.search(body[:2048])
        charset = match.group(1).decode("ascii") if match else None
    codec = "utf-8"
    if charset:
        try:
            codec = codecs.lookup(charset).name
        except LookupError:
            codec = "utf-8"
    if codec == "utf-8" and body.startswith(codecs.BOM_UTF8):
        codec = "utf-8-sig"
    return body.decode(codec, errors="replace")


# --- HTML to text ----------------------------------------------------------------------------

_SKIP = frozenset({"script", "style", "noscript", "template", "svg", "math", "iframe", "object"})
_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "caption", "dd", "details", "div", "dl",
        "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4",
        "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section",
        "summary", "table", "title", "tr", "ul",
    }
)  # fmt: skip
_CELL = frozenset({"td", "th"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0
        self.pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skipping += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCK:
            self.parts.append("\n\n")
            if tag == "li":
                self.parts.append("- ")
            elif tag == "pre":
                self.pre += 1
        elif tag in _CELL:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCK:
            self.parts.append("\n\n")
            if tag == "pre":
                self.pre = max(0, self.pre - 1)

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        if self.pre:
            self.parts.append(data.replace("\n", "\x00"))  # protected from whitespace folding
        else:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """Readable text of an HTML document: scripts, styles and other non-content dropped, block
    elements (paragraphs, headings, list items, rows) separated by blank lines, whitespace
    folded except inside <pre>."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    lines = [" ".join(line.split()) if "\x00" not in line else line for line in text.split("\n")]
    text = "\n".join(lines).replace("\x00", "\n")
    return re.sub(r"\n{3,}", "\n\n", text).strip()
