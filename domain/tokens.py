"""Token estimates for holds and rate limits, before the upstream reports real usage.

Deliberately a byte-length heuristic rather than a tokenizer: tiktoken downloads its encodings
at run time (docs/architecture.md, "Measured pitfalls") and upstreams use many different
tokenizers anyway. ~4 bytes per token is OpenAI's published rule of thumb for English and sizes
TPM reservations (corrected after the answer) and the usage of an upstream that reports none.

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


def _strings_bytes(value: Any) -> int:
    """UTF-8 bytes of every string in a JSON value, object keys included."""
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, list):
        return sum(_strings_bytes(item) for item in value)
    if isinstance(value, Mapping):
        return sum(len(str(k).encode("utf-8")) + _strings_bytes(v) for k, v in value.items())
    return len(str(value)) if value is not None else 0


def estimate_prompt_tokens(
    messages: Iterable[Mapping[str, Any]],
    extra_text: str = "",
    *,
    bytes_per_token: int = BYTES_PER_TOKEN,
) -> int:
    """Prompt tokens for a chat request's messages: content, names, tool calls and every other
    field a message carries (plus any context text sent along)."""
    total = 3  # every reply is primed with <|start|>assistant<|message|>
    for message in messages:
        total += MESSAGE_OVERHEAD_TOKENS + _content_tokens(message.get("content"), bytes_per_token)
        others = sum(
            _strings_bytes(value) for name, value in message.items() if name not in _UNCOUNTED
        )
        total += math.ceil(others / bytes_per_token)
    if extra_text:
        total += estimate_text_tokens(extra_text, bytes_per_token)
    return total


_UNCOUNTED = frozenset({"role", "content"})  # the role is in the message overhead
# Request parameters that are settings, not prompt: they never reach the model as tokens.
_SETTINGS = frozenset(
    {
        "model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens",
        "temperature", "top_p", "n", "seed", "frequency_penalty", "presence_penalty",
        "logit_bias", "logprobs", "top_logprobs", "parallel_tool_calls", "store",
        "service_tier", "reasoning_effort", "verbosity", "modalities", "user", "metadata",
        "safety_identifier", "prompt_cache_key",
    }
)  # fmt: skip


def estimate_request_tokens(
    body: Mapping[str, Any], *, bytes_per_token: int = BYTES_PER_TOKEN
) -> int:
    """Prompt tokens for everything an upstream body carries that a model reads: the messages,
    and tools, function definitions, response_format schemas, prediction, stop sequences and
    any parameter not known to be a setting (counted as text)."""
    total = estimate_prompt_tokens(body.get("messages") or [], bytes_per_token=bytes_per_token)
    rest = sum(_strings_bytes(value) for name, value in body.items() if name not in _SETTINGS)
    return total + math.ceil(rest / bytes_per_token)


def prompt_tokens_ceiling(messages: Iterable[Mapping[str, Any]]) -> int:
    """Prompt tokens to hold credit for (see the module docstring)."""
    return estimate_prompt_tokens(messages, bytes_per_token=HOLD_BYTES_PER_TOKEN)


def request_tokens_ceiling(body: Mapping[str, Any]) -> int:
    """Prompt tokens to hold credit for, over the whole upstream body."""
    return estimate_request_tokens(body, bytes_per_token=HOLD_BYTES_PER_TOKEN)
