"""Provider adapters: one contract (gateway.providers.base), a registry from config `type` to adapter."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.providers.base import Completion, EventStream, Provider, ProviderCall
from gateway.providers.config import (
    AnthropicProviderConfig,
    MockProviderConfig,
    OpenAIProviderConfig,
    ProviderConfig,
)
from gateway.upstream import UpstreamClient

__all__ = ["Completion", "EventStream", "Provider", "ProviderCall", "build_providers"]


def build_providers(configs: Mapping[str, ProviderConfig], client: UpstreamClient) -> dict[str, Provider]:
    """One adapter per configured provider, all sharing the one upstream HTTP client."""
    return {name: _build(name, config, client) for name, config in configs.items()}


def _build(name: str, config: ProviderConfig, client: UpstreamClient) -> Provider:
    if isinstance(config, OpenAIProviderConfig):
        from gateway.providers.openai import OpenAIProvider

        return OpenAIProvider(name, config, client)
    if isinstance(config, AnthropicProviderConfig):
        from gateway.providers.anthropic import AnthropicProvider

        return AnthropicProvider(name, config, client)
    if isinstance(config, MockProviderConfig):
        from gateway.providers.mock import MockProvider

        return MockProvider(name, config)
    raise TypeError(f"no adapter for provider type {type(config).__name__}")
