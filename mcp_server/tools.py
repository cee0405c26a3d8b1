"""The MCP tools: each one a call into gateway/ as the connection's key, so a tool call is
authenticated, limited, redacted, metered and ledgered exactly like the API call it mirrors.
Pryv errors become tool errors that carry Pryv's code (`insufficient_credits: …`), which the
model can read and act on."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from bootstrap.platform import Platform
from commands.metering import KeyIdentity
from domain import ids
from domain.errors import PryvError
from domain.money import micros_to_usd
from gateway import accounts
from gateway.billing import open_checkout
from gateway.chat import ChatStream
from gateway.chat_request import ChatCompletionRequest
from gateway.models import model_object, visible_models
from gateway.preview import PREVIEW_PRICE_MICROS, PiiPreviewRequest
from infra.failures import as_unavailable, backend_failures
from mcp_server.runtime import McpRuntime
from projections import keys

DOCS = Path(__file__).resolve().parents[1] / "docs"
T = TypeVar("T")


@dataclass(frozen=True)
class Caller:
    identity: KeyIdentity
    wallet: str
    scopes: frozenset[str]


class ChatMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: str = Field(max_length=400_000)


class ChatUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int


class ChatResult(BaseModel):
    text: str
    model: str
    finish_reason: str | None
    usage: ChatUsage
    cost_usd: str = Field(description="what this call debited, in USD")


class DocHit(BaseModel):
    id: str
    title: str
    url: str


class SearchResults(BaseModel):
    results: list[DocHit]


class DocPage(BaseModel):
    id: str
    title: str
    text: str
    url: str


def _sections() -> dict[str, tuple[str, str]]:
    """docs/*.md split at `## ` headings: id → (title, text)."""
    out: dict[str, tuple[str, str]] = {}
    for path in sorted(DOCS.glob("*.md")):
        for block in re.split(r"(?m)^(?=## )", path.read_text(encoding="utf-8")):
            first, _, _rest = block.partition("\n")
            title = first.lstrip("# ").strip() or path.stem
            slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "top"
            out[f"{path.stem}#{slug}"] = (f"{path.stem}: {title}", block.strip())
    return out


class PryvTools:
    """The tools over one platform; `caller()` is the connection behind the current token."""

    def __init__(self, runtime: McpRuntime, docs_url: str) -> None:
        self.runtime = runtime
        self.docs_url = docs_url

    @property
    def platform(self) -> Platform:
        return self.runtime.platform()

    async def caller(self, scope: str) -> Caller:
        token = get_access_token()
        if token is None or token.subject is None:
            raise ToolError("unauthorized: no access token")
        if scope not in token.scopes:
            raise ToolError(f"insufficient_scope: this tool needs the {scope} scope")
        record = await self.run(keys.read_key(self.platform.read_store, token.subject))
        if record is None:
            raise ToolError("read_models_rebuilding: the connection is not indexed yet; retry")
        identity = KeyIdentity(
            key_id=record.key_id,
            aggregate_id=str(ids.api_key_id(record.key_id)),
            account_id=record.account_id,
            env=record.env,
        )
        return Caller(identity, record.wallet, frozenset(token.scopes))

    async def run(self, call: Awaitable[T]) -> T:
        """`call`'s result; a Pryv error as a tool error with its code, a backend outage as
        `service_unavailable` (never its internal message)."""
        try:
            return await call
        except PryvError as exc:
            raise ToolError(f"{exc.code}: {exc.message}") from exc
        except backend_failures() as exc:
            unavailable = as_unavailable(exc)
            raise ToolError(f"{unavailable.code}: {unavailable.message}") from exc

    def register(self, server: MCPServer) -> None:
        read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)

        @server.tool(
            name="chat",
            title="Private chat completion",
            description=(
                "Ask a model, with PII removed before anything reaches it (privacyMode redact "
                "by default; pseudonymize puts the originals back into the answer). Costs the "
                "model's per-token price (see list_models), debited from the connection's "
                "credit and budget."
            ),
            annotations=ToolAnnotations(
                read_only_hint=False, destructive_hint=False, open_world_hint=True
            ),
        )
        async def chat(
            model: str,
            messages: list[ChatMessage],
            privacy_mode: Literal["redact", "pseudonymize"] | None = None,
            pii_entities: list[str] | None = None,
            max_tokens: Annotated[int | None, Field(ge=1)] = None,
        ) -> ChatResult:
            caller = await self.caller("pryv:chat")
            body: dict[str, Any] = {
                "model": model,
                "messages": [m.model_dump() for m in messages],
            }
            if privacy_mode is not None:
                body["privacyMode"] = privacy_mode
            if pii_entities is not None:
                body["piiEntities"] = pii_entities
            if max_tokens is not None:
                body["max_tokens"] = max_tokens
            body["stream"] = True  # streamed inside: a cancelled call bills what it used
            body["stream_options"] = {"include_usage": True}
            try:
                request = ChatCompletionRequest.model_validate(body)
            except ValueError as exc:
                raise ToolError(f"validation_error: {exc}") from exc
            stream = await self.run(
                self.runtime.chat().complete(caller.identity, request, _request_id())
            )
            assert isinstance(stream, ChatStream)
            return await self.run(_collect(stream))

        @server.tool(
            name="pii_preview",
            title="Preview PII redaction",
            description=(
                f"What Pryv would remove from a text, and the redacted result. Costs "
                f"${micros_to_usd(PREVIEW_PRICE_MICROS)[:-4]} per call."
            ),
            annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False),
        )
        async def pii_preview(
            text: Annotated[str, Field(max_length=200_000)],
            privacy_mode: Literal["redact", "pseudonymize"] = "redact",
            pii_entities: list[str] | None = None,
        ) -> dict[str, Any]:
            caller = await self.caller("pryv:chat")
            body = PiiPreviewRequest.model_validate(
                {"text": text, "privacyMode": privacy_mode, "piiEntities": pii_entities}
            )
            preview = await self.run(
                self.runtime.preview().preview(caller.identity, body, _request_id())
            )
            return preview.body

        @server.tool(
            name="list_models",
            description="Models this connection may call, with prices. Free.",
            annotations=read_only,
        )
        async def list_models() -> dict[str, Any]:
            caller = await self.caller("pryv:read")
            models = await self.run(visible_models(self.platform, caller.identity))
            return {"object": "list", "data": [model_object(m) for m in models]}

        @server.tool(
            name="get_balance",
            description="The wallet's live and test credit (available = balance - held). Free.",
            annotations=read_only,
        )
        async def get_balance() -> dict[str, Any]:
            caller = await self.caller("pryv:read")
            return await self.run(
                accounts.balance_document(self.platform.read_store, caller.wallet)
            )

        @server.tool(
            name="get_usage",
            description="The wallet's ledger (usage, purchases, refunds), newest first. Free.",
            annotations=read_only,
        )
        async def get_usage(
            limit: Annotated[int, Field(ge=1, le=100)] = 20, cursor: str | None = None
        ) -> dict[str, Any]:
            caller = await self.caller("pryv:read")
            return await self.run(
                accounts.ledger_page(
                    self.platform.read_store, caller.wallet, cursor=cursor, limit=limit
                )
            )

        @server.tool(
            name="list_keys",
            description="The wallet's API keys and connections (prefix and last4, never a "
            "secret). Free.",
            annotations=read_only,
        )
        async def list_keys(
            limit: Annotated[int, Field(ge=1, le=100)] = 20, cursor: str | None = None
        ) -> dict[str, Any]:
            caller = await self.caller("pryv:read")
            return await self.run(
                accounts.keys_page(
                    self.platform.read_store, caller.wallet, cursor=cursor, limit=limit
                )
            )

        @server.tool(
            name="create_checkout",
            description=(
                "A Stripe Checkout link to buy credit (a pack, or a custom USD amount). It "
                "never pays by itself: the user opens the link and pays there. Free."
            ),
            annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False),
        )
        async def create_checkout(
            usd_amount: Annotated[Decimal | None, Field(gt=0, max_digits=12)] = None,
            pack_id: Annotated[str | None, Field(max_length=64)] = None,
        ) -> dict[str, Any]:
            caller = await self.caller("pryv:billing")
            return await self.run(
                open_checkout(
                    self.platform,
                    wallet=caller.wallet,
                    idempotency_key=f"pryv-mcp-checkout-{uuid.uuid4().hex}",
                    usd_amount=usd_amount,
                    pack_id=pack_id,
                )
            )

        @server.tool(
            name="search",
            description="Search Pryv's product documentation. Free.",
            annotations=read_only,
        )
        async def search(query: Annotated[str, Field(max_length=500)]) -> SearchResults:
            await self.caller("pryv:read")
            words = [w for w in re.findall(r"\w+", query.lower()) if len(w) > 1]
            scored = []
            for doc_id, (title, text) in _sections().items():
                lowered = text.lower()
                score = sum(lowered.count(word) for word in words)
                if score:
                    scored.append((score, doc_id, title))
            scored.sort(key=lambda hit: (-hit[0], hit[1]))
            return SearchResults(
                results=[DocHit(id=i, title=t, url=self._url(i)) for _s, i, t in scored[:10]]
            )

        @server.tool(
            name="fetch",
            description="One documentation page found by search, in full. Free.",
            annotations=read_only,
        )
        async def fetch(id: Annotated[str, Field(max_length=200)]) -> DocPage:
            await self.caller("pryv:read")
            found = _sections().get(id)
            if found is None:
                raise ToolError(f"not_found: no document {id!r}")
            return DocPage(id=id, title=found[0], text=found[1], url=self._url(id))

    def _url(self, doc_id: str) -> str:
        page, _, anchor = doc_id.partition("#")
        return f"{self.docs_url}/{page}.md#{anchor}"


async def _collect(stream: ChatStream) -> ChatResult:
    """The whole answer of a stream. If the call is cancelled (the client closed it) the
    stream is closed here, which settles what was streamed so far."""
    parts: list[str] = []
    usage: dict[str, Any] = {}
    finish: str | None = None
    model = ""
    try:
        async for chunk in stream:
            model = str(chunk.get("model") or model)
            usage = chunk.get("usage") or usage
            for choice in chunk.get("choices") or []:
                parts.append(str((choice.get("delta") or {}).get("content") or ""))
                finish = choice.get("finish_reason") or finish
    finally:
        await stream.aclose()
    return ChatResult(
        text="".join(parts),
        model=model,
        finish_reason=finish,
        usage=ChatUsage(
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
        ),
        cost_usd=micros_to_usd(stream.charged_micros),
    )


def _request_id() -> str:
    return f"mcp_{uuid.uuid4().hex}"
