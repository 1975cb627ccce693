"""What every HTTP provider shares: a provider's error text reaches the client scrubbed of its keys,
whole or disguised, and shortened only after it was scrubbed; an answer the gateway could not
serialise again is a bad response, not a crash."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from gateway.apis.chat import ChatApi, parse_event
from gateway.errors import UpstreamBadResponse, UpstreamStreamError
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


DEEP = "[" * 200 + "1" + "]" * 200  # parses (orjson reads 1,024 levels) but cannot be written back (255)


def test_an_answer_too_deep_to_serialise_again_is_a_bad_response_not_a_crash() -> None:
    """It parsed, then failed when the gateway wrote the answer back for the client (a 500); as a bad
    response it counts against the target and may fall back (a 502 when none is left)."""
    answer = b'{"id": "x", "choices": [], "extra": ' + DEEP.encode() + b"}"
    with pytest.raises(UpstreamBadResponse) as info:
        asyncio.run(provider()._read_json(Replay([answer])))
    assert "nested over 128 levels" in info.value.detail
    with pytest.raises(UpstreamBadResponse):
        parse_event(b'{"choices": [], "extra": ' + DEEP.encode() + b"}")
    assert parse_event(b'{"choices": [], "extra": [[1]]}')["extra"] == [[1]]
