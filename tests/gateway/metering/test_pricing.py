"""Cost is exact: integer nano-dollars from Decimal prices, never running floats."""

from __future__ import annotations

from decimal import Decimal

from gateway.metering.meter import format_usd
from gateway.metering.pricing import Price, usd
from gateway.metering.usage import Usage
from routing import ModelConfig


def price(**prices: float) -> Price:
    found = Price.of(ModelConfig.model_validate({"provider": "p", **prices}))
    assert found is not None
    return found


def test_no_price_means_none() -> None:
    assert Price.of(ModelConfig(provider="p")) is None


def test_input_and_output() -> None:
    p = price(input_per_mtok=0.15, output_per_mtok=0.60)
    assert p.cost_nanos(Usage(1000, 500)) == 1000 * 150 + 500 * 600


def test_cached_tokens_have_their_own_price_and_default_to_input() -> None:
    assert (
        price(input_per_mtok=3, output_per_mtok=15, cached_input_per_mtok=0.3).cost_nanos(
            Usage(1100, 10, cached_tokens=1000)
        )
        == 100 * 3000 + 1000 * 300 + 10 * 15000
    )
    assert price(input_per_mtok=3).cost_nanos(Usage(1100, 0, cached_tokens=1000)) == 1100 * 3000


def test_cache_writes_are_billed_apart() -> None:
    p = price(input_per_mtok=3, output_per_mtok=15, cached_input_per_mtok=0.3, cache_write_per_mtok=3.75)
    usage = Usage(input_tokens=10 + 100 + 7, output_tokens=5, cached_tokens=100, cache_write_tokens=7)
    assert p.cost_nanos(usage) == 10 * 3000 + 100 * 300 + 7 * 3750 + 5 * 15000


def test_prices_are_decimal_not_binary_floats() -> None:
    p = price(input_per_mtok=0.1, output_per_mtok=0.2)
    assert p.input == Decimal("0.1")
    # a million calls of 3 tokens at $0.1/Mtok is exactly $0.30, summed as integers
    assert sum(p.cost_nanos(Usage(3, 0)) for _ in range(1_000_000)) == 300_000_000


def test_sub_nano_amounts_round_half_even() -> None:
    p = price(input_per_mtok=0.0005)
    assert p.cost_nanos(Usage(1, 0)) == 0  # 0.5 nano rounds to even
    assert p.cost_nanos(Usage(3, 0)) == 2  # 1.5 nano rounds to even


def test_formatting() -> None:
    assert format_usd(0) == "0"
    assert format_usd(185_100) == "0.0001851"
    assert format_usd(2_500_000_000) == "2.5"
    assert format_usd(3_000_000_000) == "3"
    assert format_usd(1) == "0.000000001"
    assert format_usd(1_234_567_891_234) == "1234.567891234"
    assert format_usd(-5) == "-0.000000005"
    assert usd(4_125_000) == 0.004125
