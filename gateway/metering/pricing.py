"""Cost of a call from its usage and the model's prices, in exact integer nano-dollars."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from gateway.metering.usage import Usage
from routing import ModelConfig

NANOS_PER_USD = 10**9
_NANOS_PER_TOKEN_AT_ONE_USD_PER_MTOK = Decimal(NANOS_PER_USD) / Decimal(10**6)


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens of each kind."""

    input: Decimal
    output: Decimal
    cached_input: Decimal
    cache_write: Decimal

    @classmethod
    def of(cls, spec: ModelConfig) -> Price | None:
        """The model's price, or None when config gives neither an input nor an output price."""
        if spec.input_per_mtok is None and spec.output_per_mtok is None:
            return None
        input_price = spec.input_per_mtok or Decimal(0)
        return cls(
            input=input_price,
            output=spec.output_per_mtok or Decimal(0),
            cached_input=input_price if spec.cached_input_per_mtok is None else spec.cached_input_per_mtok,
            cache_write=input_price if spec.cache_write_per_mtok is None else spec.cache_write_per_mtok,
        )

    def cost_nanos(self, usage: Usage) -> int:
        """Exact cost in nano-dollars (rounded half-even only below a billionth of a dollar)."""
        fresh = max(0, usage.input_tokens - usage.cached_tokens - usage.cache_write_tokens)
        per_mtok = (
            fresh * self.input
            + usage.cached_tokens * self.cached_input
            + usage.cache_write_tokens * self.cache_write
            + usage.output_tokens * self.output
        )
        nanos = per_mtok * _NANOS_PER_TOKEN_AT_ONE_USD_PER_MTOK
        return int(nanos.to_integral_value(rounding=ROUND_HALF_EVEN))


def usd(nanos: int) -> float:
    """Nano-dollars as a USD number for JSON: exact for any realistic amount (< 2**53 nanos)."""
    return float(Decimal(nanos) / NANOS_PER_USD)
