"""OpenAI and every server that speaks its API: the request passes through, unknown fields included."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from gateway.errors import UpstreamBadResponse, UpstreamStreamError
from gateway.metering.usage import Usage
from gateway.providers.base import Chunk, ChunkStream, Completion, ProviderCall
from gateway.providers.config import OpenAIProviderConfig
from gateway.providers.http import HttpProvider, parse_json_event
from gateway.upstream import UpstreamClient, UpstreamResponse


class OpenAIProvider(HttpProvider):
    def __init__(self, name: str, config: OpenAIProviderConfig, client: UpstreamClient) -> None:
        super().__init__(name, config, client)
        if config.api_key is not None:
            self._headers["authorization"] = f"Bearer {config.api_key.get_secret_value()}"
        if config.organization:
            self._headers["openai-organization"] = config.organization
        self._stream_usage = config.stream_usage

    @property
    def kind(self) -> str:
        return "openai"

    async def complete(self, call: ProviderCall) -> Completion:
        response = await self._post("/chat/completions", call.upstream_body(), headers=call.headers, stream=False)
        data, raw = await self._read_json(response)
        if not isinstance(data.get("choices"), list):
            raise UpstreamBadResponse("the provider's chat completion has no `choices` list")
        return Completion(data, raw, Usage.from_openai(data.get("usage")))

    async def embed(self, call: ProviderCall) -> Completion:
        response = await self._post("/embeddings", call.upstream_body(), headers=call.headers, stream=False)
        data, raw = await self._read_json(response)
        if not isinstance(data.get("data"), list):
            raise UpstreamBadResponse("the provider's embeddings response has no `data` list")
        return Completion(data, raw, Usage.from_openai(data.get("usage")))

    async def open_stream(self, call: ProviderCall) -> ChunkStream:
        hide_usage = self._stream_usage and not call.client_wants_usage
        body = call.upstream_body()
        if hide_usage:
            options = body.get("stream_options")
            body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
        response = await self._post("/chat/completions", body, headers=call.headers, stream=True)
        return ChunkStream(self._chunks(response, hide_usage), response.aclose)

    async def _chunks(self, response: UpstreamResponse, hide_usage: bool) -> AsyncIterator[Chunk]:
        finished = False
        async for event in self._events(response):
            if event.data == b"[DONE]":
                await response.finish()  # the connection goes back to the pool before the client hears the end
                return
            data = parse_json_event(event.data)
            if "error" in data and "choices" not in data:
                raise UpstreamStreamError(_stream_error_message(data, self.scrub))
            choices = data.get("choices")
            if isinstance(choices, list) and any(isinstance(c, dict) and c.get("finish_reason") for c in choices):
                finished = True
            usage = Usage.from_openai(data.get("usage"))
            if hide_usage and "usage" in data:
                # The client did not ask for usage: show it the chunks it would have had without us.
                del data["usage"]
                yield Chunk(data, None, usage, visible=bool(choices))
            else:
                yield Chunk(data, event.data, usage)
        if not finished:
            raise UpstreamStreamError("the provider's stream ended before it finished")


def _stream_error_message(data: dict[str, object], scrub: Callable[[str], str]) -> str:
    error = data.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return scrub(str(error["message"]))[:500]
    return "the provider sent an error event"
