"""Token estimates for holds and rate limits, before the upstream reports real usage.

Deliberately a byte-length heuristic rather than a tokenizer: tiktoken downloads its encodings
at run time (DESIGN.md pitfalls) and upstreams use many different tokenizers anyway. ~4 bytes
per token is OpenAI's published rule of thumb for English and sizes TPM reservations (corrected
after the answer) and the usage of an upstream that reports none.

Holds use a ceiling instead, ~2 bytes per token: a settlement never charges more than was held,
so a prompt that tokenizes denser than English — code, JSON, numbers, Cyrillic, CJK (about 3
bytes per token) — would otherwise be partly served for free. The ceiling only sizes the
reservation; settlement charges the upstream's reported usage.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

BYTES_PER_TOKEN = 4
HOLD_BYTES_PER_TOKEN = 2
MESSAGE_OVERHEAD_TOKENS = 4  # role and separators, as in OpenAI's cookbook count
IMAGE_TOKENS = 765  # a high-detail 512x512 tile budget; images are priced as a flat estimate


def estimate_text_tokens(text: str, bytes_per_token: int = BYTES_PER_TOKEN) -> int:
    return math.ceil(len(text.encode("utf-8")) / bytes_per_token)


def _content_tokens(content: Any, bytes_per_token: int) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return estimate_text_tokens(content, bytes_per_token)
    total = 0
    for part in content if isinstance(content, list) else [content]:
        if not isinstance(part, Mapping):
            continue
        if part.get("type") == "text":
            total += estimate_text_tokens(str(part.get("text", "")), bytes_per_token)
        elif part.get("type") == "image_url":
            total += IMAGE_TOKENS
        else:
            total += estimate_text_tokens(str(part), bytes_per_token)
    return total


def estimate_prompt_tokens(
    messages: Iterable[Mapping[str, Any]],
    extra_text: str = "",
    *,
    bytes_per_token: int = BYTES_PER_TOKEN,
) -> int:
    """Prompt tokens for a chat request (messages plus any tool/context text sent along)."""
    total = 3  # every reply is primed with <|start|>assistant<|message|>
    for message in messages:
        total += MESSAGE_OVERHEAD_TOKENS + _content_tokens(message.get("content"), bytes_per_token)
        for call in message.get("tool_calls") or []:
            total += estimate_text_tokens(str(call), bytes_per_token)
    if extra_text:
        total += estimate_text_tokens(extra_text, bytes_per_token)
    return total


def prompt_tokens_ceiling(messages: Iterable[Mapping[str, Any]]) -> int:
    """Prompt tokens to hold credit for (see the module docstring)."""
    return estimate_prompt_tokens(messages, bytes_per_token=HOLD_BYTES_PER_TOKEN)
