"""Pryv as the MCP server's own OAuth 2.1 authorization server (the `mcp` SDK's provider
protocol): dynamic client registration (RFC 7591), authorization code + PKCE S256, tokens bound
to the one MCP resource (RFC 8707), refresh-token rotation, revocation.

A grant is a *connection*: an API key of the consenting wallet whose secret is never shown,
created when the wallet signs the consent, with the env and limits chosen there. Its id is the
tokens' subject, so admission (revocation, budget, RPM, credit) treats a tool call exactly like
an API call, and revoking the connection in the key list refuses the next call with 401.
Codes and tokens are random, stored only as SHA-256 digests (infra.oauth_state).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    IdentityAssertionParams,
    RefreshToken,
    RegistrationError,
    TokenError,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyUrl, ValidationError

from domain.api_keys import is_valid_key_id
from infra.oauth_state import OAuthState, digest
from infra.safe_fetch import FetchRejected, fetch_body
from mcp_server.runtime import McpRuntime
from projections import keys

SCOPES = ("pryv:chat", "pryv:read", "pryv:billing")
READ_SCOPE = "pryv:read"  # every connection has it: /mcp answers 403 insufficient_scope without
SCOPE_HELP = {
    "pryv:chat": "chat and PII preview, metered against the connection's budget",
    "pryv:read": "models, balance, usage, keys (no secrets) and the product docs",
    "pryv:billing": "create Stripe Checkout links (never pays by itself)",
}
CLIENT_TTL = 180 * 24 * 3600
PENDING_TTL = 15 * 60  # a consent page left open longer starts over
CODE_TTL = 5 * 60
ACCESS_TTL = 3600
REFRESH_TTL = 30 * 24 * 3600
CIMD_MAX_BYTES = 5_000  # the draft's recommended cap


@dataclass(frozen=True)
class PendingConsent:
    """An /authorize request waiting for the wallet's signature on the consent page."""

    id: str
    client_id: str
    client_name: str
    redirect_uri: str
    redirect_uri_provided_explicitly: bool
    code_challenge: str
    state: str | None
    scopes: list[str]
    resource: str


LOOPBACK_HOSTS = ("127.0.0.1", "[::1]", "::1", "localhost")


class PryvClient(OAuthClientInformationFull):
    """A registered client whose redirect URIs are matched exactly, except the port of a
    loopback one: native apps listen on whatever port is free (RFC 8252 §7.3)."""

    def validate_redirect_uri(self, redirect_uri: AnyUrl | None) -> AnyUrl:
        if redirect_uri is not None and redirect_uri.scheme == "http":
            for registered in self.redirect_uris or []:
                if (
                    registered.scheme == "http"
                    and registered.host in LOOPBACK_HOSTS
                    and (registered.host, registered.path, registered.query)
                    == (redirect_uri.host, redirect_uri.path, redirect_uri.query)
                ):
                    return redirect_uri
        return super().validate_redirect_uri(redirect_uri)


def _shown_name(client: OAuthClientInformationFull) -> str:
    """The client's name for the consent page; a metadata-document client with the host that
    serves its document (the one thing about it that cannot be made up)."""
    name = client.client_name or str(client.client_id)
    if str(client.client_id).startswith("https://"):
        return f"{name} ({urlsplit(str(client.client_id)).hostname})"
    return name


class PryvAuthorizationProvider:
    """The SDK's OAuthAuthorizationServerProvider over Pryv's platform and OAuth state."""

    def __init__(self, runtime: McpRuntime, *, resource: str, consent_url: str) -> None:
        self.runtime = runtime
        self.resource = resource  # the MCP URL every token is bound to
        self.consent_url = consent_url
        self.fetch_options: dict[str, Any] = {}  # tests: resolver / allow_addresses / verify

    @property
    def state(self) -> OAuthState:
        return self.runtime.oauth_state()

    # --- clients ---------------------------------------------------------------------------

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        if client_id.startswith("https://"):
            return await self._metadata_document(client_id)
        doc = await self.state.get("client", client_id)
        return None if doc is None else PryvClient.model_validate(doc)

    async def _metadata_document(self, url: str) -> OAuthClientInformationFull | None:
        """A Client ID Metadata Document (draft-ietf-oauth-client-id-metadata-document): the
        client is the JSON document at its client_id URL, fetched without redirects under the
        SSRF policy of infra.safe_fetch (no special-use addresses), at most 5 KB; only public
        clients (`none`), and the document must name itself. Valid documents are cached for an
        hour; failures never are."""
        cached = await self.state.get("cimd", digest(url))
        if cached is not None:
            return PryvClient.model_validate(cached)
        parts = urlsplit(url)
        segments = parts.path.split("/")
        if (
            not parts.path.strip("/")
            or "." in segments
            or ".." in segments
            or parts.fragment
            or parts.username
            or parts.password
        ):
            return None
        try:
            fetched = await fetch_body(
                url,
                content_types={"application/json"},
                max_bytes=CIMD_MAX_BYTES,
                timeout=5.0,
                max_redirects=0,
                **self.fetch_options,
            )
            doc = json.loads(fetched.body)
        except (FetchRejected, ValueError):
            return None
        if not isinstance(doc, dict) or doc.get("client_id") != url or "client_secret" in doc:
            return None
        if doc.get("token_endpoint_auth_method", "none") != "none":
            return None
        try:
            info = PryvClient.model_validate({**doc, "token_endpoint_auth_method": "none"})
        except ValidationError:
            return None
        if not info.redirect_uris:
            return None
        await self.state.put(
            "cimd", digest(url), info.model_dump(mode="json", exclude_none=True), 3600
        )
        return info

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        if not client_info.redirect_uris:
            raise RegistrationError("invalid_redirect_uri", "redirect_uris is required")
        for uri in client_info.redirect_uris:
            if uri.scheme not in ("https", "http") or (
                uri.scheme == "http" and uri.host not in LOOPBACK_HOSTS
            ):
                raise RegistrationError(
                    "invalid_redirect_uri",
                    "redirect URIs must be https, or http on a loopback address (RFC 8252)",
                )
        doc = client_info.model_dump(mode="json", exclude_none=True)
        await self.state.put("client", str(client_info.client_id), doc, CLIENT_TTL)

    # --- authorization ---------------------------------------------------------------------

    async def authorize(
        self, client: OAuthClientInformationFull, params: AuthorizationParams
    ) -> str:
        """Park the request and send the user to the consent page (the wallet signs there)."""
        resource = params.resource or self.resource  # Codex sends none: the one MCP resource
        if resource.rstrip("/") != self.resource.rstrip("/"):
            raise AuthorizeError("invalid_request", f"resource must be {self.resource}")
        asked = params.scopes or list(SCOPES)
        unknown = sorted(set(asked) - set(SCOPES))
        if unknown:
            raise AuthorizeError("invalid_scope", f"unknown scopes: {' '.join(unknown)}")
        scopes = [s for s in SCOPES if s in asked or s == READ_SCOPE]
        pending = PendingConsent(
            id=secrets.token_urlsafe(24),
            client_id=str(client.client_id),
            client_name=_shown_name(client),
            redirect_uri=str(params.redirect_uri),
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            code_challenge=params.code_challenge,
            state=params.state,
            scopes=scopes,
            resource=self.resource,
        )
        await self.state.put("consent", pending.id, vars(pending), PENDING_TTL)
        return f"{self.consent_url}?request={pending.id}"

    async def pending(self, request_id: str) -> PendingConsent | None:
        doc = await self.state.get("consent", request_id)
        return None if doc is None else PendingConsent(**doc)

    async def claim(self, request_id: str) -> PendingConsent | None:
        """The pending consent, taken: it is answered once, even by two racing posts."""
        doc = await self.state.take("consent", request_id)
        return None if doc is None else PendingConsent(**doc)

    async def grant(
        self, pending: PendingConsent, connection_key_id: str, scopes: list[str]
    ) -> str:
        """The claimed consent was signed and the connection created: a code for the client."""
        code = secrets.token_urlsafe(32)
        doc = {
            "code": "",
            "scopes": scopes,
            "expires_at": time.time() + CODE_TTL,
            "client_id": pending.client_id,
            "code_challenge": pending.code_challenge,
            "redirect_uri": pending.redirect_uri,
            "redirect_uri_provided_explicitly": pending.redirect_uri_provided_explicitly,
            "resource": pending.resource,
            "subject": connection_key_id,
        }
        await self.state.put("code", digest(code), doc, CODE_TTL)
        return code

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        doc = await self.state.get("code", digest(authorization_code))
        if doc is None or doc["client_id"] != client.client_id:
            return None
        return AuthorizationCode.model_validate({**doc, "code": authorization_code})

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        # Taken, not read: a code is redeemed once, even by two racing requests.
        if await self.state.take("code", digest(authorization_code.code)) is None:
            raise TokenError("invalid_grant", "authorization code was already used")
        assert authorization_code.subject is not None
        return await self._issue(
            str(client.client_id), authorization_code.scopes, authorization_code.subject
        )

    # --- tokens ----------------------------------------------------------------------------

    async def _issue(self, client_id: str, scopes: list[str], subject: str) -> OAuthToken:
        access, refresh = (
            f"pryv_mcp_at_{secrets.token_urlsafe(32)}",
            f"pryv_mcp_rt_{secrets.token_urlsafe(32)}",
        )
        now = int(time.time())
        common: dict[str, Any] = {
            "client_id": client_id,
            "scopes": scopes,
            "resource": self.resource,
            "subject": subject,
        }
        await self.state.put(
            "access", digest(access), {**common, "expires_at": now + ACCESS_TTL}, ACCESS_TTL
        )
        await self.state.put(
            "refresh", digest(refresh), {**common, "expires_at": now + REFRESH_TTL}, REFRESH_TTL
        )
        return OAuthToken(
            access_token=access,
            token_type="Bearer",
            expires_in=ACCESS_TTL,
            scope=" ".join(scopes),
            refresh_token=refresh,
        )

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> RefreshToken | None:
        doc = await self.state.get("refresh", digest(refresh_token))
        if doc is None or doc["client_id"] != client.client_id:
            return None
        return RefreshToken.model_validate({**doc, "token": refresh_token})

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        """Rotation: the old refresh token is spent by this exchange."""
        if await self.state.take("refresh", digest(refresh_token.token)) is None:
            raise TokenError("invalid_grant", "refresh token was already used")
        assert refresh_token.subject is not None
        if not await self._connection_usable(refresh_token.subject):
            raise TokenError("invalid_grant", "this connection was revoked")
        return await self._issue(str(client.client_id), scopes, refresh_token.subject)

    async def load_access_token(self, token: str) -> AccessToken | None:
        """The token's grant, while the token lives and its connection is not revoked."""
        doc = await self.state.get("access", digest(token))
        if doc is None or doc["expires_at"] <= time.time():
            return None
        if not await self._connection_usable(str(doc["subject"])):
            return None
        return AccessToken.model_validate({**doc, "token": token})

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        kind = "refresh" if isinstance(token, RefreshToken) else "access"
        await self.state.delete(kind, digest(token.token))

    async def exchange_identity_assertion(
        self, client: OAuthClientInformationFull, params: IdentityAssertionParams
    ) -> OAuthToken:
        """Enterprise identity assertions (SEP-990) are not offered: consent is the wallet's."""
        raise TokenError("unsupported_grant_type", "identity assertions are not supported")

    async def _connection_usable(self, key_id: str) -> bool:
        if not is_valid_key_id(key_id):
            return False
        platform = self.runtime.platform()
        if await platform.meter.is_revoked(key_id):
            return False
        record = await keys.read_key(platform.read_store, key_id)
        return record is None or record.usable_now()  # None: the key index is catching up
