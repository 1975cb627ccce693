"""Anthropic's Messages API behind the OpenAI Chat Completions contract."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from gateway.errors import InvalidRequest, UpstreamBadResponse, UpstreamStreamError
from gateway.providers.base import Chunk, ChunkStream, Completion, ProviderCall
from gateway.providers.config import AnthropicProviderConfig
from gateway.providers.http import HttpProvider, parse_json_event
from gateway.translate.chat_to_messages import (
    AnthropicStreamError,
    StreamTranslator,
    TranslationError,
    from_anthropic_response,
    to_anthropic_request,
)
from gateway.upstream import UpstreamClient, UpstreamResponse

JSON_TOOL_KEY = "_agentgw_json_tool"


class AnthropicProvider(HttpProvider):
    def __init__(self, name: str, config: AnthropicProviderConfig, client: UpstreamClient) -> None:
        super().__init__(name, config, client)
        self._default_max_tokens = config.default_max_tokens
        self._headers["anthropic-version"] = config.anthropic_version
        if config.api_key is not None:
            self._headers["x-api-key"] = config.api_key.get_secret_value()

    @property
    def kind(self) -> str:
        return "anthropic"

    def _translate(self, call: ProviderCall, stream: bool) -> tuple[dict[str, Any], str | None]:
        try:
            payload = to_anthropic_request(call.body, call.target.upstream_model, self._default_max_tokens)
        except TranslationError as exc:
            raise InvalidRequest(exc.message, param=exc.param) from None
        json_tool = payload.pop(JSON_TOOL_KEY, None)
        if stream:
            payload["stream"] = True
        else:
            payload.pop("stream", None)
        return payload, json_tool

    async def complete(self, call: ProviderCall) -> Completion:
        payload, json_tool = self._translate(call, stream=False)
        response = await self._post("/v1/messages", payload, headers=call.headers, stream=False)
        data, _ = await self._read_json(response)
        try:
            translated, usage = from_anthropic_response(data, created=int(time.time()), json_tool=json_tool)
        except (ValueError, KeyError, TypeError) as exc:
            raise UpstreamBadResponse(f"the provider's message could not be read ({exc})") from None
        return Completion(translated, None, usage)

    async def open_stream(self, call: ProviderCall) -> ChunkStream:
        payload, json_tool = self._translate(call, stream=True)
        response = await self._post("/v1/messages", payload, headers=call.headers, stream=True)
        include_usage = bool((call.body.get("stream_options") or {}).get("include_usage"))
        translator = StreamTranslator(created=int(time.time()), include_usage=include_usage, json_tool=json_tool)
        return ChunkStream(self._chunks(response, translator), response.aclose, lambda: translator.usage)

    async def _chunks(self, response: UpstreamResponse, translator: StreamTranslator) -> AsyncIterator[Chunk]:
        async for event in self._events(response):
            data = parse_json_event(event.data)
            name = event.event or str(data.get("type", ""))
            try:
                chunks = translator.feed(name, data)
            except AnthropicStreamError as exc:
                raise UpstreamStreamError(self.scrub(f"{exc.error_type}: {exc.message}")) from None
            except (ValueError, KeyError, TypeError) as exc:
                raise UpstreamBadResponse(f"the provider's stream could not be read ({exc})") from None
            # The usage is final once message_delta has arrived; report it with the last chunk of it.
            usage = translator.usage if name in ("message_delta", "message_stop") else None
            for i, data_out in enumerate(chunks):
                yield Chunk(data_out, None, usage if i == len(chunks) - 1 else None)
            if translator.done:
                await response.finish()  # the connection goes back to the pool before the client hears the end
                return
        raise UpstreamStreamError("the provider's stream ended before message_stop")
