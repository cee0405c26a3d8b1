"""Pseudonymize mode's way back: the originals put into the answer, JSON or streamed."""

from __future__ import annotations

from typing import Any

from infra.pii_text import PseudonymVault, StreamingRestorer


def restore_answer(answer: dict[str, Any], vault: PseudonymVault) -> None:
    """Put the originals back into a JSON chat completion (content and tool-call arguments)."""
    for choice in answer.get("choices") or []:
        message = choice.get("message") or {}
        if isinstance(message.get("content"), str):
            message["content"] = vault.restore(message["content"])
        calls = [c.get("function") or {} for c in message.get("tool_calls") or []]
        for function in [*calls, message.get("function_call") or {}]:
            if isinstance(function.get("arguments"), str):
                function["arguments"] = vault.restore(function["arguments"])


class StreamRestorers:
    """One StreamingRestorer per choice of an SSE answer (placeholders may straddle chunks)."""

    def __init__(self, vault: PseudonymVault) -> None:
        self._vault = vault
        self._by_index: dict[int, StreamingRestorer] = {}

    def chunk(self, chunk: dict[str, Any]) -> None:
        for choice in chunk.get("choices") or []:
            restorer = self._by_index.setdefault(
                int(choice.get("index", 0)), StreamingRestorer(self._vault)
            )
            delta = choice.get("delta") or {}
            text = restorer.feed(str(delta.get("content") or ""))
            if choice.get("finish_reason") is not None:
                text += restorer.flush()
            if "content" in delta or text:
                delta["content"] = text
                choice["delta"] = delta

    def leftovers(self) -> dict[int, str]:
        """Held-back text per choice at the end of the stream (normally empty)."""
        return {i: r.flush() for i, r in self._by_index.items() if r.pending}
