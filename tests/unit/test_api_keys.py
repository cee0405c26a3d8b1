import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.api_keys import (
    MalformedApiKey,
    hash_api_key,
    is_valid_key_id,
    issue_api_key,
    parse_api_key,
)


@pytest.mark.parametrize("env", ["live", "test"])
def test_issued_keys_parse_back(env: str) -> None:
    issued = issue_api_key(env)  # type: ignore[arg-type]
    assert issued.token.startswith(f"pryv_{env}_")
    parsed = parse_api_key(issued.token)
    assert (parsed.env, parsed.key_id) == (env, issued.key_id)
    assert is_valid_key_id(parsed.key_id)
    assert parsed.prefix == f"pryv_{env}_{issued.key_id}"


def test_keys_are_unique_and_long() -> None:
    tokens = {issue_api_key("live").token for _ in range(200)}
    assert len(tokens) == 200
    assert all(len(t) == len("pryv_live_") + 16 + 1 + 43 + 6 for t in tokens)


@given(st.integers(min_value=10, max_value=74), st.sampled_from("0aZ_x"))
def test_any_single_character_change_is_rejected(index: int, replacement: str) -> None:
    token = issue_api_key("live").token
    if token[index] == replacement:
        return
    tampered = token[:index] + replacement + token[index + 1 :]
    with pytest.raises(MalformedApiKey):
        parse_api_key(tampered)


@pytest.mark.parametrize(
    "bad", ["", "sk-abc", "pryv_prod_x_y", "pryv_live_short_abc", "pryv_live_" + "a" * 66]
)
def test_malformed_keys(bad: str) -> None:
    with pytest.raises(MalformedApiKey):
        parse_api_key(bad)


def test_hash_depends_on_pepper() -> None:
    token = issue_api_key("test").token
    assert hash_api_key(b"a", token) != hash_api_key(b"b", token)
    assert hash_api_key(b"a", token) == hash_api_key(b"a", token)
