"""POST /revoke (RFC 7009) for the clients MCP actually has: public ones.

Written here rather than left to the SDK because the SDK's revocation request model requires a
`client_secret` (a field typed optional but without a default), so a public client — Claude,
ChatGPT and Codex all register as `token_endpoint_auth_method: none` — could never revoke its
tokens. A confidential client must still present its secret.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from mcp_server.authorization import PryvAuthorizationProvider

router = APIRouter(include_in_schema=False)


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


@router.post("/revoke")
async def revoke(request: Request) -> Response:
    form = await request.form()
    token, client_id = form.get("token"), form.get("client_id")
    if not isinstance(token, str) or not token or not isinstance(client_id, str) or not client_id:
        return _oauth_error(400, "invalid_request", "token and client_id are required")
    provider: PryvAuthorizationProvider = request.app.state.mcp.provider
    client = await provider.get_client(client_id)
    if client is None:
        return _oauth_error(401, "invalid_client", "unknown client")
    if client.client_secret:
        secret = form.get("client_secret")
        if not isinstance(secret, str) or not hmac.compare_digest(secret, client.client_secret):
            return _oauth_error(401, "invalid_client", "client authentication failed")
    found = await provider.load_access_token(token) or await provider.load_refresh_token(
        client, token
    )
    if found is not None and found.client_id == client.client_id:
        await provider.revoke_token(found)
    return Response(status_code=200)  # the same answer whether or not the token existed
