"""OpenAI and every server that speaks its API: bodies pass through, unknown fields included."""

from __future__ import annotations

from typing import Any

from gateway.apis.base import StreamReader
from gateway.providers.base import ProviderCall
from gateway.providers.config import OpenAIProviderConfig
from gateway.providers.http import HttpProvider
from gateway.upstream import UpstreamClient

PATHS = {"chat": "/chat/completions", "responses": "/responses", "embeddings": "/embeddings"}


class OpenAIProvider(HttpProvider):
    paths = PATHS

    def __init__(self, name: str, config: OpenAIProviderConfig, client: UpstreamClient) -> None:
        super().__init__(name, config, client)
        if config.api_key is not None:
            self._headers["authorization"] = f"Bearer {config.api_key.get_secret_value()}"
        if config.organization:
            self._headers["openai-organization"] = config.organization
        self._stream_usage = config.stream_usage
        self._apis = frozenset(config.apis)

    @property
    def kind(self) -> str:
        return "openai"

    @property
    def apis(self) -> frozenset[str]:
        return self._apis

    def _stream_request(self, call: ProviderCall) -> tuple[dict[str, Any], StreamReader]:
        """Chat streams carry usage only when asked: the gateway asks, and hides the answer from a
        client that did not ask itself."""
        body = call.body
        if call.api.name != "chat" or not self._stream_usage:
            return body, call.api.stream_reader()
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage") is True:
            return body, call.api.stream_reader()
        body = {**body, "stream_options": {**(options if isinstance(options, dict) else {}), "include_usage": True}}
        return body, call.api.stream_reader(hide_usage=True)
