"""What the MCP door reaches at call time: the platform and the services on it, attached when
the API process has opened them (the door is mounted before, at app creation)."""

from __future__ import annotations

from dataclasses import dataclass

from bootstrap.platform import Platform
from domain.errors import ServiceUnavailable
from gateway.chat import ChatService
from gateway.preview import PreviewService
from infra.oauth_state import MemoryOAuthState, OAuthState, RedisOAuthState


@dataclass(frozen=True)
class Attached:
    platform: Platform
    chat: ChatService
    preview: PreviewService
    oauth_state: OAuthState


class McpRuntime:
    def __init__(self) -> None:
        self.attached: Attached | None = None

    def attach(self, platform: Platform, chat: ChatService, preview: PreviewService) -> None:
        """OAuth state beside the read models: in Redis (shared by every API process) when
        there is one, else in memory."""
        from infra.read_store_redis import RedisReadStore

        store = platform.read_store
        state: OAuthState = (
            RedisOAuthState(store.client, store.prefix)
            if isinstance(store, RedisReadStore)
            else MemoryOAuthState()
        )
        self.attached = Attached(platform, chat, preview, state)

    def _now(self) -> Attached:
        if self.attached is None:
            raise ServiceUnavailable("the MCP server is starting; retry")
        return self.attached

    def platform(self) -> Platform:
        return self._now().platform

    def chat(self) -> ChatService:
        return self._now().chat

    def preview(self) -> PreviewService:
        return self._now().preview

    def oauth_state(self) -> OAuthState:
        return self._now().oauth_state
