"""Settling a call's usage: the provider's count when it gave one, the gateway's estimate when
not, the cost from the model's price, and one event for the ledger."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from gateway.apis.base import Api
from gateway.apis.sizes import request_texts
from gateway.metering.events import UsageEvent
from gateway.metering.ledger import Ledger
from gateway.metering.pricing import NANOS_PER_USD, Price
from gateway.metering.tokens import TokenCounter
from gateway.metering.usage import Usage
from routing import ModelConfig, Target

log = logging.getLogger("agentgw.meter")


class Meter:
    def __init__(self, models: Mapping[str, ModelConfig], counter: TokenCounter, ledger: Ledger | None) -> None:
        self.prices = {name: Price.of(spec) for name, spec in models.items()}
        self._counter = counter
        self._ledger = ledger
        for name, price in self.prices.items():
            if price is None:
                log.warning("model %s has no price in config: its calls are metered at cost 0", name)

    def cost_nanos(self, model: str | None, usage: Usage) -> int:
        price = self.prices.get(model) if model else None
        return 0 if price is None else price.cost_nanos(usage)

    @property
    def recording(self) -> bool:
        """Whether events go anywhere (the ledger can be turned off)."""
        return self._ledger is not None

    def record(self, event: UsageEvent) -> None:
        if self._ledger is not None:
            self._ledger.record(event)

    def estimate(self, api: Api, target: Target, body: Mapping[str, Any], output_text: str) -> Usage:
        """Usage the gateway counts itself, for a call whose provider reported none: the prompt in
        the call's own API (chat the way OpenAI's cookbook counts it; other APIs by their texts)."""
        encoding = self._counter.encoding_for(target.upstream_model, target.spec.tokenizer)
        if api.name == "embeddings":
            return Usage(self._counter.count_inputs(body.get("input"), encoding), 0, estimated=True)
        if api.name == "chat":
            prompt = self._counter.count_messages(body.get("messages") or (), encoding)
        else:
            prompt = self._counter.count_text("\n".join(request_texts(body)), encoding)
        return Usage(prompt, self._counter.count_text(output_text, encoding), estimated=True)


def format_usd(nanos: int) -> str:
    """Nano-dollars as a plain decimal string: 185100 -> '0.0001851'."""
    sign = "-" if nanos < 0 else ""
    dollars, fraction = divmod(abs(nanos), NANOS_PER_USD)
    return f"{sign}{dollars}.{fraction:09d}".rstrip("0").rstrip(".")
