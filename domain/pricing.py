"""What a request may cost (the hold) and what it did cost (the settlement)."""

from __future__ import annotations

from dataclasses import dataclass

from domain.catalog import ModelSpec
from domain.money import token_cost_micros


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    estimated: bool = False  # True when the upstream reported no usage and we counted ourselves

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def cost_micros(model: ModelSpec, usage: Usage) -> int:
    return token_cost_micros(usage.prompt_tokens, model.input_micros_per_million) + (
        token_cost_micros(usage.completion_tokens, model.output_micros_per_million)
    )


def output_budget(model: ModelSpec, prompt_tokens: int, max_tokens: int | None) -> int:
    """Tokens the answer may use: the caller's max_tokens, else all the model allows."""
    room = max(model.context_length - prompt_tokens, 0)
    cap = min(model.max_output_tokens, room)
    return cap if max_tokens is None else min(max_tokens, cap)


def hold_micros(model: ModelSpec, prompt_tokens: int, max_output_tokens: int) -> int:
    """The most this request can cost: the whole prompt plus every allowed output token."""
    return cost_micros(model, Usage(prompt_tokens, max_output_tokens))
