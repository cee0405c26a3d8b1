from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.money import MoneyError, micros_to_usd, token_cost_micros, usd_to_micros


def test_parses_exact_amounts() -> None:
    assert usd_to_micros("12.34") == 12_340_000
    assert usd_to_micros(5) == 5_000_000
    assert usd_to_micros(Decimal("0.000001")) == 1
    assert usd_to_micros("-0.05") == -50_000


@pytest.mark.parametrize("bad", ["0.0000001", "abc", "NaN", "Infinity", "", True])
def test_refuses_what_is_not_exact_money(bad: object) -> None:
    with pytest.raises(MoneyError):
        usd_to_micros(bad)  # type: ignore[arg-type]


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_render_and_parse_roundtrip(micros: int) -> None:
    assert usd_to_micros(micros_to_usd(micros)) == micros


def test_token_cost_rounds_up_never_down() -> None:
    assert token_cost_micros(1, 150_000) == 1  # 0.15 micro -> 1 micro
    assert token_cost_micros(1_000_000, 2_500_000) == 2_500_000
    assert token_cost_micros(0, 2_500_000) == 0
    with pytest.raises(MoneyError):
        token_cost_micros(-1, 1)
