"""The hot path's JSON (domain/json_codec.py) accepts and produces what `json` did, only faster."""

from __future__ import annotations

import json
import math

import pytest

from domain.json_codec import json_bytes, parse_json


def test_encodes_compact_utf8_like_json_with_those_options() -> None:
    value = {"content": "Grüße \u2028 naïve", "n": [1, 2.5, None, True], "nested": {"k": "v"}}
    expected = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    assert json_bytes(value) == expected


def test_an_integer_past_64_bits_is_encoded_exactly() -> None:
    # orjson refuses it; a caller's pass-through field may hold one, and it must reach the
    # upstream as written, not as a 500
    assert json_bytes({"seed": 2**70}) == b'{"seed":1180591620717411303424}'


def test_nan_is_encoded_as_null_not_refused() -> None:
    assert json_bytes({"logprob": math.nan}) == b'{"logprob":null}'


@pytest.mark.parametrize(
    "raw",
    [
        b'{"text": "\\ud83d"}',  # a lone surrogate escape: orjson refuses it, json accepts it
        b'{"score": NaN}',
        b'{"a": 1, "a": 2}',
        '{"é": "ü"}',
    ],
)
def test_parses_whatever_json_parses(raw: bytes | str) -> None:
    expected = json.loads(raw)
    got = parse_json(raw)
    assert repr(got) == repr(expected)  # repr: NaN != NaN


def test_invalid_json_still_raises_value_error() -> None:
    with pytest.raises(ValueError):
        parse_json(b'{"unterminated": ')


def test_a_completion_holding_an_upstream_nan_renders_instead_of_failing() -> None:
    from fastapi.responses import JSONResponse

    from api.gateway import CompletionResponse

    answer = {"choices": [{"index": 0, "logprobs": {"content": [{"logprob": math.nan}]}}]}
    with pytest.raises(ValueError):
        JSONResponse(answer)  # starlette's renderer: a 500 for the caller
    assert CompletionResponse(answer).body == (
        b'{"choices":[{"index":0,"logprobs":{"content":[{"logprob":null}]}}]}'
    )


def test_a_lone_surrogate_from_an_upstream_goes_back_out_escaped() -> None:
    # json accepts the escape, orjson refuses it both ways, and UTF-8 cannot encode it: a
    # completion holding one is still parsed and rendered (it was a 500 before)
    from api.gateway import CompletionResponse

    answer = parse_json(b'{"content": "ok \\udc80"}')
    assert answer == {"content": "ok \udc80"}
    assert CompletionResponse(answer).body == b'{"content":"ok \\udc80"}'


def test_sorted_keys_match_json_on_both_paths() -> None:
    # envelopes and ledger lines are written with sorted keys, by orjson or, past 64 bits, json
    value = {"b": 1, "a": {"d": 2, "c": 3}}
    assert json_bytes(value, sort_keys=True) == b'{"a":{"c":3,"d":2},"b":1}'
    assert json_bytes({"b": 2**70, "a": 1}, sort_keys=True) == (
        b'{"a":1,"b":1180591620717411303424}'
    )
