"""Settling a call's usage: the provider's count when it gave one, the gateway's estimate when
not, the cost from the model's price, and one event for the ledger."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

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

    def estimate_chat(self, target: Target, body: Mapping[str, Any], output_text: str) -> Usage:
        """Usage the gateway counts itself, for a chat call whose provider reported none."""
        encoding = self._counter.encoding_for(target.upstream_model, target.spec.tokenizer)
        prompt = self._counter.count_messages(body.get("messages") or (), encoding)
        return Usage(prompt, self._counter.count_text(output_text, encoding), estimated=True)

    def complete_stream_usage(
        self, target: Target, body: Mapping[str, Any], output_text: str, reported: Usage | None
    ) -> Usage:
        """Usage for a stream that ended without its final count. What the provider did report is
        kept (Anthropic's input, cache read and cache write counts arrive with the first event); the
        output is counted from what was streamed; the whole is marked estimated."""
        estimate = self.estimate_chat(target, body, output_text)
        if reported is None or not reported.input_tokens:
            return estimate
        return Usage(
            input_tokens=reported.input_tokens,
            output_tokens=max(reported.output_tokens, estimate.output_tokens),
            cached_tokens=reported.cached_tokens,
            cache_write_tokens=reported.cache_write_tokens,
            reasoning_tokens=reported.reasoning_tokens,
            estimated=True,
        )

    def estimate_embeddings(self, target: Target, body: Mapping[str, Any]) -> Usage:
        encoding = self._counter.encoding_for(target.upstream_model, target.spec.tokenizer)
        return Usage(self._counter.count_inputs(body.get("input"), encoding), 0, estimated=True)


def output_text(data: Mapping[str, Any]) -> str:
    """The generated text of a chat completion (content and tool-call arguments), for estimates."""
    parts: list[str] = []
    for choice in data.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            continue
        if isinstance(message.get("content"), str):
            parts.append(message["content"])
        for call in message.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                parts.append(f"{function.get('name', '')}{function.get('arguments', '')}")
    return "".join(parts)


def format_usd(nanos: int) -> str:
    """Nano-dollars as a plain decimal string: 185100 -> '0.0001851'."""
    sign = "-" if nanos < 0 else ""
    dollars, fraction = divmod(abs(nanos), NANOS_PER_USD)
    return f"{sign}{dollars}.{fraction:09d}".rstrip("0").rstrip(".")
