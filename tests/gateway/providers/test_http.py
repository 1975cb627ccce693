"""What every HTTP provider shares: a provider's error text reaches the client scrubbed of its keys,
whole or disguised, and shortened only after it was scrubbed; an answer the gateway could not
serialise again is a bad response, not a crash."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from gateway.apis import API
from gateway.apis.base import encode, renamed
from gateway.apis.chat import ChatApi, parse_event
from gateway.errors import UpstreamFailed, UpstreamStreamError
from gateway.providers.config import OpenAIProviderConfig
from gateway.providers.http import error_message
from gateway.providers.openai import OpenAIProvider
from gateway.upstream import UpstreamResponse

KEY = "sk-proj-provider-key-0123456789"


class Replay(UpstreamResponse):
    """An upstream response that replays fixed body chunks."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.status = 200
        self.headers: dict[str, str] = {"content-type": "text/event-stream"}
        self._chunks = chunks

    async def read(self, limit: int | None = None) -> bytes:
        return b"".join(self._chunks)

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk

    async def finish(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


def provider() -> OpenAIProvider:
    config = OpenAIProviderConfig(type="openai", api_key=KEY)
    return OpenAIProvider("openai", config, client=None)  # type: ignore[arg-type]  # never sends here


def stream_error(message: str) -> str:
    chunks = [b'data: {"choices": [{"index": 0, "delta": {"content": "hi"}}]}\n\n']
    chunks.append(b"data: " + orjson.dumps({"error": {"message": message}}) + b"\n\n")

    async def drain() -> None:
        async for _ in provider()._stream(Replay(chunks), ChatApi().stream_reader()):
            pass

    with pytest.raises(UpstreamStreamError) as info:
        asyncio.run(drain())
    return info.value.detail


@pytest.mark.parametrize("padding", [0, 470, 480, 495])
def test_a_mid_stream_error_is_scrubbed_before_it_is_shortened(padding: int) -> None:
    """The key straddling the 500-character cut used to reach the client half masked: the chat
    reader cut the message before the provider scrubbed it."""
    detail = stream_error("x" * padding + f"bad key {KEY[:8]}\u200b{KEY[8:]} rejected")
    assert KEY[:6] not in detail.replace("\u200b", "")
    assert len(detail) <= 500


def test_an_error_body_is_scrubbed_before_it_is_shortened() -> None:
    body: dict[str, Any] = {"error": {"message": "y" * 495 + KEY}}
    shown = error_message(orjson.dumps(body), provider().scrub)
    assert KEY[:6] not in shown and len(shown) <= 500


DEEP = "[" * 300 + "1" + "]" * 300  # parses (orjson reads 1,024 levels) but cannot be written again (255)


def test_an_answer_too_deep_to_encode_again_is_an_upstream_error_not_a_crash() -> None:
    """A provider's answer is parsed (1,024 levels) and passed on as its own bytes; only when the
    gateway must encode it again (a translation, a redaction) can it be too deep: a 502, never a 500."""
    answer = b'{"id": "x", "choices": [], "extra": ' + DEEP.encode() + b"}"
    data, raw = asyncio.run(provider()._read_json(Replay([answer])))
    assert raw == answer and renamed(raw, "x", "y") is None  # untouched: no "model" to rename
    with pytest.raises(UpstreamFailed):
        encode(data)
    with pytest.raises(UpstreamFailed):
        API["chat"].frame(parse_event(b'{"choices": [], "extra": ' + DEEP.encode() + b"}"))
    assert API["chat"].frame(None, raw) == b"data: " + answer + b"\n\n"
