"""What a request's handler reaches through the app: the platform and the services on it."""

from __future__ import annotations

from fastapi import Request

from bootstrap.platform import Platform
from gateway.chat import ChatService
from gateway.preview import PreviewService


def platform_of(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def chat_service_of(request: Request) -> ChatService:
    service: ChatService = request.app.state.chat
    return service


def preview_service_of(request: Request) -> PreviewService:
    service: PreviewService = request.app.state.preview
    return service
