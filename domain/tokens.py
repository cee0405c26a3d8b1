"""Token estimates for holds and rate limits, before the upstream reports real usage.

Deliberately a byte-length heuristic rather than a tokenizer: tiktoken downloads its encodings
at run time (DESIGN.md pitfalls) and upstreams use many different tokenizers anyway. ~4 bytes
per token is OpenAI's published rule of thumb for English; estimates only size holds and TPM
reservations, and every settlement uses the upstream's own `usage` whenever it reports one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

BYTES_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4  # role and separators, as in OpenAI's cookbook count
IMAGE_TOKENS = 765  # a high-detail 512x512 tile budget; images are priced as a flat estimate


def estimate_text_tokens(text: str) -> int:
    return math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN)


def _content_tokens(content: Any) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return estimate_text_tokens(content)
    total = 0
    for part in content if isinstance(content, list) else [content]:
        if not isinstance(part, Mapping):
            continue
        if part.get("type") == "text":
            total += estimate_text_tokens(str(part.get("text", "")))
        elif part.get("type") == "image_url":
            total += IMAGE_TOKENS
        else:
            total += estimate_text_tokens(str(part))
    return total


def estimate_prompt_tokens(messages: Iterable[Mapping[str, Any]], extra_text: str = "") -> int:
    """Prompt tokens for a chat request (messages plus any tool/context text sent along)."""
    total = 3  # every reply is primed with <|start|>assistant<|message|>
    for message in messages:
        total += MESSAGE_OVERHEAD_TOKENS + _content_tokens(message.get("content"))
        for call in message.get("tool_calls") or []:
            total += estimate_text_tokens(str(call))
    return total + (estimate_text_tokens(extra_text) if extra_text else 0)
