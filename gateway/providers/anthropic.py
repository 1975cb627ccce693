"""Anthropic's Messages API. Messages calls pass through; calls in other APIs arrive translated."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.providers.config import AnthropicProviderConfig
from gateway.providers.http import HttpProvider
from gateway.upstream import UpstreamClient

PATHS = {"messages": "/v1/messages"}
COUNT_TOKENS = "/v1/messages/count_tokens"


class AnthropicProvider(HttpProvider):
    paths = PATHS

    def __init__(self, name: str, config: AnthropicProviderConfig, client: UpstreamClient) -> None:
        super().__init__(name, config, client)
        self._default_max_tokens = config.default_max_tokens
        self._headers["anthropic-version"] = config.anthropic_version  # a client's own version wins
        if config.api_key is not None:
            self._headers["x-api-key"] = config.api_key.get_secret_value()

    @property
    def kind(self) -> str:
        return "anthropic"

    @property
    def apis(self) -> frozenset[str]:
        return frozenset(PATHS)

    @property
    def max_tokens_default(self) -> int:
        return self._default_max_tokens

    async def count_tokens(self, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        """Anthropic's own count of a Messages request's input tokens."""
        response = await self._post(COUNT_TOKENS, body, headers=headers, stream=False)
        data, _ = await self._read_json(response)
        return data
