"""The MCP door as an ASGI app: the SDK's Streamable HTTP transport at /mcp behind its bearer
middleware, the OAuth endpoints (/authorize, /token, /register, /revoke and their RFC 8414 /
RFC 9728 metadata), Origin and Host validation, and Pryv's tools."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import AnyHttpUrl
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra.settings import Settings
from mcp_server.authorization import READ_SCOPE, SCOPES, PryvAuthorizationProvider
from mcp_server.runtime import McpRuntime
from mcp_server.tools import PryvTools

INSTRUCTIONS = (
    "Pryv is a private AI gateway: `chat` asks a model with personal data removed first, "
    "metered against this connection's credit and budget; `pii_preview` shows what would be "
    "removed. `get_balance`, `get_usage`, `list_models` and `list_keys` are free reads; "
    "`create_checkout` returns a payment link the user must open. `search`/`fetch` read the "
    "product docs."
)


@dataclass
class McpDoor:
    runtime: McpRuntime
    provider: PryvAuthorizationProvider
    server: MCPServer
    asgi: ASGIApp
    resource: str
    issuer: str  # exactly as the RFC 8414 metadata says it (RFC 9207 `iss`)
    base: str  # the origin the MCP server and its consent page are served at


def _loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1", "[::1]")


def create_mcp_door(settings: Settings) -> McpDoor:
    """The door for the API at `settings.public_url` (its MCP resource is `<public_url>/mcp`)."""
    base = settings.mcp_public_url or settings.public_url
    resource = f"{base}/mcp"
    runtime = McpRuntime()
    provider = PryvAuthorizationProvider(
        runtime, resource=resource, consent_url=f"{base}/mcp/consent"
    )
    server = MCPServer(
        name="pryv",
        title="Pryv",
        instructions=INSTRUCTIONS,
        website_url=base,
        auth_server_provider=provider,
        auth=AuthSettings(
            issuer_url=AnyHttpUrl(base),
            resource_server_url=AnyHttpUrl(resource),
            validate_token_resource=True,
            client_registration_options=ClientRegistrationOptions(
                enabled=True, valid_scopes=list(SCOPES), default_scopes=list(SCOPES)
            ),
            revocation_options=RevocationOptions(enabled=True),
            required_scopes=[READ_SCOPE],  # without it: 403 insufficient_scope
        ),
    )
    PryvTools(runtime, docs_url=f"{base}/mcp/docs").register(server)
    parts = urlsplit(base)
    hosts, origins = [parts.netloc], [f"{parts.scheme}://{parts.netloc}"]
    if _loopback(parts.hostname or ""):  # local use: any loopback port
        hosts += ["127.0.0.1:*", "localhost:*"]
        origins += ["http://127.0.0.1:*", "http://localhost:*"]
    asgi = server.streamable_http_app(
        streamable_http_path="/mcp",
        transport_security=TransportSecuritySettings(
            enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
        ),
    )
    auth = server.settings.auth
    assert auth is not None
    challenged = ScopeChallenge(asgi, " ".join(SCOPES))
    issuer = str(auth.issuer_url)
    return McpDoor(runtime, provider, server, challenged, resource, issuer, base)


class ScopeChallenge:
    """Adds `scope="…"` to the 401 challenge at /mcp (the MCP authorization spec asks for it,
    RFC 6750 §3 defines it; the SDK's bearer middleware omits it), so a client knows which
    scopes to request before it starts the flow."""

    def __init__(self, app: ASGIApp, scopes: str) -> None:
        self.app = app
        self.scopes = scopes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != "/mcp":
            await self.app(scope, receive, send)
            return

        async def challenge(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in (401, 403):
                headers = [
                    (name, value + f', scope="{self.scopes}"'.encode())
                    if name.lower() == b"www-authenticate" and b"scope=" not in value
                    else (name, value)
                    for name, value in message.get("headers", [])
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, challenge)
