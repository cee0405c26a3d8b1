"""What the MCP door reaches at call time: the platform and the services on it, attached when
the API process has opened them (the door is mounted before, at app creation)."""

from __future__ import annotations

from dataclasses import dataclass

from bootstrap.platform import Platform
from domain.errors import ServiceUnavailable
from gateway.chat import ChatService
from gateway.preview import PreviewService
from infra.oauth_state import MemoryOAuthState, OAuthState, RedisOAuthState


@dataclass
class McpRuntime:
    attached_platform: Platform | None = None
    attached_chat: ChatService | None = None
    attached_preview: PreviewService | None = None
    attached_state: OAuthState | None = None

    def attach(self, platform: Platform, chat: ChatService, preview: PreviewService) -> None:
        """OAuth state beside the read models: in Redis (shared by every API process) when
        there is one, else in memory."""
        from infra.read_store_redis import RedisReadStore

        store = platform.read_store
        self.attached_state = (
            RedisOAuthState(store.client, store.prefix)
            if isinstance(store, RedisReadStore)
            else MemoryOAuthState()
        )
        self.attached_platform, self.attached_chat, self.attached_preview = platform, chat, preview

    def platform(self) -> Platform:
        if self.attached_platform is None:
            raise ServiceUnavailable("the MCP server is starting; retry")
        return self.attached_platform

    def chat(self) -> ChatService:
        if self.attached_chat is None:
            raise ServiceUnavailable("the MCP server is starting; retry")
        return self.attached_chat

    def preview(self) -> PreviewService:
        if self.attached_preview is None:
            raise ServiceUnavailable("the MCP server is starting; retry")
        return self.attached_preview

    def oauth_state(self) -> OAuthState:
        if self.attached_state is None:
            raise ServiceUnavailable("the MCP server is starting; retry")
        return self.attached_state
