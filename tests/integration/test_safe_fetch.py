"""SSRF defence of infra.safe_fetch against real local HTTP(S) servers.

Every local address is loopback, which fetch_text refuses by design. So the page server listens
on 127.0.0.2 and tests reach it through names resolved by an injected resolver, with
`allow_addresses={"127.0.0.2"}`. A "canary" server listens on 127.0.0.1 *on the same port*: any
request that slipped through the defence (a refused address, a second DNS lookup) would reach it,
so every refusal test also asserts that the canary saw nothing.
"""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from infra.safe_fetch import (
    FetchRejected,
    fetch_text,
    html_to_text,
    is_forbidden_address,
)
from tests.tls import self_signed

PAGE_IP = "127.0.0.2"
CANARY_IP = "127.0.0.1"

HTML = """<!doctype html>
<html><head><title>Test page</title>
<style>body { color: red }</style>
<script>var secret = "do not show";</script>
</head><body>
<h1>Hello &amp; welcome</h1>
<p>First   paragraph
   spans lines.</p><p>Second paragraph<br>with a break.</p>
<ul><li>one</li><li>two</li></ul>
<noscript>enable javascript</noscript>
<pre>  keep
    this</pre>
</body></html>"""

GZIP_BOMB = gzip.compress(b"\0" * 20_000_000, compresslevel=9)  # ~20 KB on the wire
GZIP_OK = gzip.compress(b"compressed hello")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that time out or refuse a body hang up on us: expected here


def _serve(server: ThreadingHTTPServer) -> None:
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()


@dataclass
class Servers:
    port: int
    canary_hits: list[str] = field(default_factory=list)
    sni_names: list[str | None] = field(default_factory=list)

    def url(self, path: str = "/page", host: str = "public.test", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"


class PageHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def reply(
        self, body: bytes, content_type: str | None, status: int = 200, **headers: str
    ) -> None:
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        if "Content-Length" not in headers and "no_length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            if name != "no_length":
                self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        route = parts.path
        if route == "/page":
            self.reply(HTML.encode(), "text/html; charset=utf-8")
        elif route == "/latin1":
            self.reply("<p>café</p>".encode("latin-1"), "text/html; charset=ISO-8859-1")
        elif route == "/plain":
            self.reply(b"plain text", "text/plain")
        elif route == "/json":
            self.reply(json.dumps({"a": 1}).encode(), "application/json")
        elif route == "/xml":
            self.reply(b"<a>x</a>", "application/xml")
        elif route == "/md":
            self.reply(b"# Title", "text/markdown; charset=utf-8")
        elif route == "/type":
            self.reply(b"\x89PNG....", query.get("t") or None)
        elif route == "/host":
            self.reply(str(self.headers.get("Host")).encode(), "text/plain")
        elif route == "/big":
            self.reply(b"a" * int(query["n"]), "text/plain")
        elif route == "/unsized":  # HTTP/1.0, no Content-Length: the body ends when we close
            self.reply(b"a" * int(query["n"]), "text/plain", no_length="1")
        elif route == "/gzip-bomb":
            self.reply(GZIP_BOMB, "text/plain", Content_Encoding="gzip")
        elif route == "/gzip":
            self.reply(GZIP_OK, "text/plain", Content_Encoding="gzip")
        elif route == "/slow":
            time.sleep(3)
            self.reply(b"late", "text/plain")
        elif route == "/drip":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "100")
            self.end_headers()
            try:
                for _ in range(100):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                pass
        elif route == "/redirect":
            self.reply(b"", "text/plain", status=int(query.get("s", 302)), Location=query["to"])
        elif route == "/chain":
            n = int(query["n"])
            if n:
                self.reply(b"", "text/plain", status=301, Location=f"/chain?n={n - 1}")
            else:
                self.reply(b"end of chain", "text/plain")
        elif route == "/status":
            self.reply(b"nope", "text/plain", status=int(query["s"]))
        else:
            self.reply(b"not found", "text/plain", status=404)


def _canary_handler(hits: list[str]) -> type[BaseHTTPRequestHandler]:
    class Canary(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            hits.append(self.path)
            body = b"CANARY: internal secret"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Canary


@pytest.fixture
def servers() -> Iterator[Servers]:
    started: list[ThreadingHTTPServer] = []
    hits: list[str] = []
    for _ in range(50):  # the canary needs the page server's port number on 127.0.0.1
        page = _Server((PAGE_IP, 0), PageHandler)
        port = page.server_address[1]
        try:
            canary = _Server((CANARY_IP, port), _canary_handler(hits))
        except OSError:
            page.server_close()
            continue
        started = [page, canary]
        break
    assert started, "no port free on both 127.0.0.1 and 127.0.0.2"
    for server in started:
        _serve(server)
    yield Servers(port=port, canary_hits=hits)
    for server in started:
        server.shutdown()
        server.server_close()


def resolver_for(table: Mapping[str, Sequence[str]], calls: list[str] | None = None) -> Any:
    async def resolve(host: str, port: int) -> Iterable[str]:
        if calls is not None:
            calls.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(table[host])

    return resolve


NAMES: dict[str, list[str]] = {
    "public.test": [PAGE_IP],
    "other.test": [PAGE_IP],
    "internal.test": ["10.0.0.1"],
    "metadata.test": ["169.254.169.254"],
    "loopback.test": [CANARY_IP],
    "loopback6.test": ["::1"],
    "mapped.test": ["::ffff:127.0.0.1"],
    "cgnat.test": ["100.64.1.1"],
    "mixed.test": [PAGE_IP, "10.0.0.1"],  # one allowed address is not enough: all are checked
}


async def fetch(url: str, **kw: Any) -> Any:
    args: dict[str, Any] = {
        "resolver": resolver_for(NAMES),
        "allow_addresses": {PAGE_IP},
        "timeout": 5.0,
        **kw,
    }
    return await fetch_text(url, **args)


# --- what works ------------------------------------------------------------------------------


async def test_a_normal_page_returns_its_readable_text(servers: Servers) -> None:
    page = await fetch(servers.url("/page"))
    assert page.url == page.final_url == servers.url("/page")
    assert page.content_type == "text/html"
    assert page.text == (
        "Test page\n\nHello & welcome\n\nFirst paragraph spans lines.\n\n"
        "Second paragraph\nwith a break.\n\n- one\n\n- two\n\n  keep\n    this"
    )
    assert "secret" not in page.text and "color" not in page.text and "javascript" not in page.text


async def test_the_original_host_header_is_sent_to_the_vetted_ip(servers: Servers) -> None:
    page = await fetch(servers.url("/host"))
    assert page.text == f"public.test:{servers.port}"


@pytest.mark.parametrize(
    ("path", "content_type", "text"),
    [
        ("/plain", "text/plain", "plain text"),
        ("/json", "application/json", '{"a": 1}'),
        ("/xml", "application/xml", "<a>x</a>"),
        ("/md", "text/markdown", "# Title"),
        ("/latin1", "text/html", "café"),
        ("/gzip", "text/plain", "compressed hello"),
    ],
)
async def test_text_content_types(
    servers: Servers, path: str, content_type: str, text: str
) -> None:
    page = await fetch(servers.url(path))
    assert (page.content_type, page.text) == (content_type, text)


async def test_redirects_are_followed_up_to_the_limit(servers: Servers) -> None:
    page = await fetch(servers.url("/chain?n=2"), max_redirects=2)
    assert page.text == "end of chain"
    assert page.final_url == servers.url("/chain?n=0")
    with pytest.raises(FetchRejected, match="too many redirects"):
        await fetch(servers.url("/chain?n=3"), max_redirects=2)
    with pytest.raises(FetchRejected, match="too many redirects"):
        await fetch(servers.url("/chain?n=1"), max_redirects=0)


async def test_the_resolver_is_asked_once_per_hop_and_its_answer_is_used(
    servers: Servers,
) -> None:
    """DNS rebinding: the first answer is the one connected to. Even with the canary's address
    allowed, a second lookup (by us or by httpx) would have reached the canary."""
    calls: list[str] = []
    answers = iter([[PAGE_IP]])

    async def rebinding(host: str, port: int) -> Iterable[str]:
        calls.append(host)
        return next(answers, [CANARY_IP])

    page = await fetch_text(
        servers.url("/plain"), resolver=rebinding, allow_addresses={PAGE_IP, CANARY_IP}
    )
    assert page.text == "plain text"
    assert calls == ["public.test"]
    assert servers.canary_hits == []


# --- limits ----------------------------------------------------------------------------------


async def test_size_cap(servers: Servers) -> None:
    assert len((await fetch(servers.url("/big?n=1000"), max_bytes=1000)).text) == 1000
    for path in ("/big?n=1001", "/unsized?n=5000", "/gzip-bomb"):
        with pytest.raises(FetchRejected, match="too large"):
            await fetch(servers.url(path), max_bytes=1000)
    with pytest.raises(FetchRejected, match="too large"):
        await fetch(servers.url("/unsized?n=3000000"))  # default cap 2 MB


async def test_overall_timeout(servers: Servers) -> None:
    for path in ("/slow", "/drip"):  # no response at all; a body trickling in (5 s in total)
        started = time.monotonic()
        with pytest.raises(FetchRejected, match="timed out"):
            await fetch(servers.url(path), timeout=0.5)
        assert time.monotonic() - started < 1.5


@pytest.mark.parametrize(
    "content_type",
    ["image/png", "application/octet-stream", "application/pdf", "text/javascript", None],
)
async def test_non_text_content_types_are_refused(
    servers: Servers, content_type: str | None
) -> None:
    path = f"/type?t={content_type}" if content_type else "/type"
    with pytest.raises(FetchRejected, match="content type not allowed"):
        await fetch(servers.url(path))


async def test_http_errors_are_reported_by_status(servers: Servers) -> None:
    with pytest.raises(FetchRejected, match="HTTP 404"):
        await fetch(servers.url("/status?s=404"))
    with pytest.raises(FetchRejected, match="redirect without a location"):
        await fetch(servers.url("/status?s=302"))


# --- refusals --------------------------------------------------------------------------------

FORBIDDEN_TARGETS = [
    # literal addresses, in every notation
    "http://127.0.0.1:{port}/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/",
    "http://0.0.0.0:{port}/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    "http://[::1]:{port}/",
    "http://[::]:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/",
    "http://[::ffff:a9fe:a9fe]/",  # ::ffff:169.254.169.254
    "http://[::127.0.0.1]:{port}/",  # IPv4-compatible
    "http://[2002:7f00:1::]:{port}/",  # 6to4 wrapping 127.0.0.1
    "http://[64:ff9b::7f00:1]:{port}/",  # NAT64 of 127.0.0.1
    "http://[fe80::1]/",
    "http://[fe80::1%25lo]/",
    "http://[fc00::1]/",
    "http://[fd12:3456::1]/",
    "http://[fec0::1]/",
    "http://[ff02::1]/",
    "http://2130706433:{port}/",  # decimal 127.0.0.1
    "http://0x7f000001:{port}/",
    "http://0177.0.0.1:{port}/",  # octal
    "http://0x7f.0.0.1:{port}/",
    "http://127.1:{port}/",
    "http://127.0.0.1.:{port}/",  # trailing dot
    # names resolving to forbidden addresses
    "http://internal.test/",
    "http://metadata.test/",
    "http://loopback.test:{port}/",
    "http://loopback6.test:{port}/",
    "http://mapped.test:{port}/",
    "http://cgnat.test/",
    "http://mixed.test:{port}/",
    "http://localhost:{port}/",  # the test resolver does not know it
    # schemes and forms that are never fetched
    "ftp://public.test/file.txt",
    "file:///etc/passwd",
    "gopher://public.test/",
    "data:text/plain,hello",
    "javascript:alert(1)",
    "http://user:pass@public.test:{port}/page",
    "http://public.test:99999/",
    "http://unknown.test/",
    "http:///nohost",
    "not a url at all",
]


@pytest.mark.parametrize("target", FORBIDDEN_TARGETS)
async def test_forbidden_targets_are_refused(servers: Servers, target: str) -> None:
    url = target.format(port=servers.port)
    with pytest.raises(FetchRejected) as refused:
        await fetch(url)
    _assert_safe_reason(refused.value.reason)
    assert servers.canary_hits == []


# As a Location header these are relative (resolved against the redirecting page, like a browser
# does) or unparsable, so the refusal differs from a direct request.
REDIRECT_REASONS = {
    "http://0177.0.0.1:{port}/": "invalid redirect location",
    "http:///nohost": "the page returned HTTP 404",
    "not a url at all": "the page returned HTTP 404",
}


@pytest.mark.parametrize("target", FORBIDDEN_TARGETS)
async def test_redirects_to_forbidden_targets_are_refused(servers: Servers, target: str) -> None:
    location = target.format(port=servers.port)
    with pytest.raises(FetchRejected) as direct:
        await fetch(location)
    for status in (301, 302, 303, 307, 308):
        url = servers.url(f"/redirect?s={status}&to={_quote(location)}")
        with pytest.raises(FetchRejected) as refused:
            await fetch(url)
        # Refused for the same reason as the direct request: the redirect target was checked.
        assert refused.value.reason == REDIRECT_REASONS.get(target, direct.value.reason)
    assert servers.canary_hits == []


async def test_localhost_through_the_system_resolver_is_refused(servers: Servers) -> None:
    with pytest.raises(FetchRejected, match="address not allowed"):
        await fetch_text(f"http://localhost:{servers.port}/")
    assert servers.canary_hits == []


async def test_without_allow_addresses_even_the_test_server_is_refused(servers: Servers) -> None:
    with pytest.raises(FetchRejected, match="address not allowed"):
        await fetch_text(servers.url("/plain"), resolver=resolver_for(NAMES))


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def _assert_safe_reason(reason: str) -> None:
    for internal in ("127.0.0", "10.0.0.1", "169.254", "::1", "ffff", "100.64"):
        assert internal not in reason, reason
    assert len(reason) < 80


# --- https: SNI and certificate checks use the name, the connection uses the vetted IP --------


@pytest.fixture
def tls_servers(tmp_path: Path) -> Iterator[tuple[Servers, ssl.SSLContext]]:
    pytest.importorskip("cryptography.x509")
    server_context, client_context = self_signed("public.test", tmp_path)
    sni_names: list[str | None] = []
    server_context.sni_callback = lambda _sock, server_name, _ctx: sni_names.append(server_name)

    server = _Server((PAGE_IP, 0), PageHandler)
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    _serve(server)
    yield Servers(port=server.server_address[1], sni_names=sni_names), client_context
    server.shutdown()
    server.server_close()


async def test_https_uses_the_hostname_for_sni_and_certificate(
    tls_servers: tuple[Servers, ssl.SSLContext],
) -> None:
    servers, trust = tls_servers
    page = await fetch(servers.url("/host", scheme="https"), verify=trust)
    assert page.text == f"public.test:{servers.port}"
    assert servers.sni_names == ["public.test"]

    # Same IP, a name the certificate does not cover: verification is against the name.
    with pytest.raises(FetchRejected, match="TLS certificate verification failed"):
        await fetch(servers.url("/plain", host="other.test", scheme="https"), verify=trust)
    # An IP literal is checked against the certificate too (and here refused before that).
    with pytest.raises(FetchRejected, match="address not allowed"):
        await fetch_text(f"https://{PAGE_IP}:{servers.port}/plain", verify=trust)
    # The system trust store does not know the test certificate.
    with pytest.raises(FetchRejected, match="TLS certificate verification failed"):
        await fetch(servers.url("/plain", scheme="https"))


# --- units -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "forbidden"),
    [
        ("8.8.8.8", False),
        ("1.1.1.1", False),
        ("93.184.216.34", False),
        ("2606:4700:4700::1111", False),
        ("2a00:1450:4001:80b::200e", False),
        ("64:ff9b::808:808", False),  # NAT64 of 8.8.8.8
        ("2002:808:808::1", False),  # 6to4 of 8.8.8.8
        ("127.0.0.1", True),
        ("127.255.255.254", True),
        ("10.255.0.1", True),
        ("172.31.255.255", True),
        ("172.32.0.1", False),
        ("192.168.0.1", True),
        ("169.254.169.254", True),
        ("100.64.0.1", True),
        ("100.127.255.255", True),
        ("0.0.0.0", True),
        ("224.0.0.251", True),
        ("239.255.255.250", True),
        ("240.0.0.1", True),
        ("192.0.2.1", True),  # documentation
        ("198.18.0.1", True),  # benchmarking
        ("::", True),
        ("::1", True),
        ("::ffff:8.8.8.8", True),  # IPv4-mapped: never needed for a public fetch, always refused
        ("::ffff:10.0.0.1", True),
        ("::ffff:169.254.169.254", True),
        ("::10.0.0.1", True),
        ("2002:a00:1::", True),  # 6to4 of 10.0.0.1
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", True),  # Teredo
        ("64:ff9b::a00:1", True),  # NAT64 of 10.0.0.1
        ("fc00::1", True),
        ("fd00::1", True),
        ("fe80::1", True),
        ("fec0::1", True),
        ("ff02::1", True),
        ("ff0e::1", True),
        ("2001:db8::1", True),
    ],
)
def test_address_policy(address: str, forbidden: bool) -> None:
    assert is_forbidden_address(ipaddress.ip_address(address)) is forbidden


def test_html_to_text_edge_cases() -> None:
    assert html_to_text("") == ""
    assert html_to_text("<p>a<p>b") == "a\n\nb"
    assert html_to_text("<script>unclosed x") == ""
    assert html_to_text("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>") == (
        "a b\n\nc"
    )
    assert html_to_text("x &lt;y&gt; &#169; &nbsp;z") == "x <y> © z"
    assert html_to_text("<div><svg><text>icon</text></svg>visible</div>") == "visible"


async def test_concurrent_fetches(servers: Servers) -> None:
    pages = await asyncio.gather(*(fetch(servers.url("/plain")) for _ in range(20)))
    assert {page.text for page in pages} == {"plain text"}
