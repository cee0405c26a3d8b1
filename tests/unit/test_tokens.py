"""Token estimates: the hold's prompt ceiling is never below the central estimate, and counts
at least one token per two UTF-8 bytes (denser tokenizers than English still fit the hold)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from domain.tokens import estimate_prompt_tokens, prompt_tokens_ceiling

texts = st.text(max_size=400)


@given(st.lists(texts, max_size=5))
def test_ceiling_covers_the_estimate_and_two_bytes_per_token(contents: list[str]) -> None:
    messages = [{"role": "user", "content": text} for text in contents]
    ceiling = prompt_tokens_ceiling(messages)
    assert ceiling >= estimate_prompt_tokens(messages)
    assert ceiling >= sum(len(text.encode()) for text in contents) / 2


def test_ceiling_for_dense_text() -> None:
    cjk = [{"role": "user", "content": "数据隐私" * 100}]  # 1,200 bytes, ~400+ real tokens
    assert estimate_prompt_tokens(cjk) == 3 + 4 + 300  # the English rule of thumb: too few
    assert prompt_tokens_ceiling(cjk) == 3 + 4 + 600  # at least one token per character
