"""Self-test of the stand-in provider used by the integration tests."""

from __future__ import annotations

import base64
import contextlib
import struct
from collections.abc import AsyncIterator, Iterator

import httpx
import orjson
import pytest
from starlette.applications import Starlette

from tests.standin import ServerThread, StandIn
from tests.standin.openai_api import embedding_vector

ANTHROPIC_HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}


@pytest.fixture(scope="module")
def standin() -> Iterator[StandIn]:
    with StandIn() as server:
        yield server


@pytest.fixture
def client(standin: StandIn) -> Iterator[httpx.Client]:
    standin.clear()
    with httpx.Client(base_url=standin.url, timeout=10) as http:
        yield http


def sse_data(text: str) -> list[str]:
    return [line[len("data: ") :] for line in text.splitlines() if line.startswith("data: ")]


def sse_events(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], orjson.loads(lines["data"])))
    return events


def test_openai_chat_completion(standin: StandIn, client: httpx.Client) -> None:
    body = {"model": "gpt-x", "messages": [{"role": "user", "content": "say hi"}], "custom_field": 7}
    reply = client.post("/v1/chat/completions", json=body, headers={"authorization": "Bearer sk-up"})

    assert reply.status_code == 200
    data = reply.json()
    assert data["object"] == "chat.completion"
    assert data["choices"][0]["message"]["content"] == "Hello from stand-in gpt-x: say hi"
    assert data["choices"][0]["finish_reason"] == "stop"
    assert data["usage"]["prompt_tokens"] == 2 + 3
    assert data["usage"]["completion_tokens"] == 6
    [logged] = standin.requests
    assert (logged.method, logged.path, logged.status) == ("POST", "/v1/chat/completions", 200)
    assert logged.body == body
    assert logged.headers["authorization"] == "Bearer sk-up"
    assert logged.usage == data["usage"]


def test_openai_stream_with_usage(standin: StandIn, client: httpx.Client) -> None:
    body = {
        "model": "gpt-x",
        "messages": [{"role": "user", "content": "count to three"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    reply = client.post("/v1/chat/completions", json=body)

    assert reply.headers["content-type"].startswith("text/event-stream")
    frames = sse_data(reply.text)
    assert frames[-1] == "[DONE]"
    chunks = [orjson.loads(frame) for frame in frames[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Hello from stand-in gpt-x: count to three"
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == []
    assert standin.requests[0].usage == chunks[-1]["usage"]
    assert standin.requests[0].cancelled is False


def test_openai_stream_tool_call(client: httpx.Client) -> None:
    tool = {
        "type": "function",
        "function": {"name": "weather", "parameters": {"properties": {"city": {"type": "string"}}}},
    }
    body = {
        "model": "gpt-x",
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [tool],
        "stream": True,
    }
    chunks = [orjson.loads(f) for f in sse_data(client.post("/v1/chat/completions", json=body).text)[:-1]]

    calls = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks if c["choices"][0]["delta"].get("tool_calls")]
    assert calls[0]["function"] == {"name": "weather", "arguments": ""}
    assert "".join(c["function"]["arguments"] for c in calls) == '{"city":"x"}'
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_openai_embeddings_base64(standin: StandIn, client: httpx.Client) -> None:
    body = {"model": "embed-x", "input": ["one two", "three"], "encoding_format": "base64"}
    data = client.post("/v1/embeddings", json=body).json()

    decoded = struct.unpack("<8f", base64.b64decode(data["data"][1]["embedding"]))
    assert list(decoded) == embedding_vector("embed-x", "three")
    assert data["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    assert standin.requests[0].path == "/v1/embeddings"


def test_anthropic_message(standin: StandIn, client: httpx.Client) -> None:
    body = {
        "model": "claude-cache",
        "max_tokens": 100,
        "system": "be brief",
        "messages": [{"role": "user", "content": "hi"}],
    }
    data = client.post("/v1/messages", json=body, headers=ANTHROPIC_HEADERS).json()

    assert data["content"] == [{"type": "text", "text": "Hello from stand-in claude-cache: hi"}]
    assert data["stop_reason"] == "end_turn"
    assert data["usage"] == {
        "input_tokens": 2 + 3 + 1 + 3,
        "output_tokens": 5,
        "cache_creation_input_tokens": 7,
        "cache_read_input_tokens": 100,
    }
    assert standin.requests[0].usage == data["usage"]


def test_anthropic_stream(standin: StandIn, client: httpx.Client) -> None:
    body = {
        "model": "claude-x",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
    }
    events = sse_events(client.post("/v1/messages", json=body, headers=ANTHROPIC_HEADERS).text)

    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert all(data["type"] == name for name, data in events)
    text = "".join(d["delta"]["text"] for name, d in events if name == "content_block_delta")
    assert text == "Hello from stand-in claude-x: hi"
    assert events[-2][1]["usage"] == {"output_tokens": 5}
    assert standin.requests[0].usage is not None
    assert standin.requests[0].usage["output_tokens"] == 5


def test_anthropic_rejects_system_role_and_missing_key(client: httpx.Client) -> None:
    body = {"model": "claude-x", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}
    assert client.post("/v1/messages", json=body, headers=ANTHROPIC_HEADERS).status_code == 400
    missing_key = client.post("/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"})
    assert missing_key.status_code == 401
    assert missing_key.json()["error"]["type"] == "authentication_error"


@pytest.mark.parametrize("model", ["stream-cut", "stream-error"])
def test_scripted_stream_failures(client: httpx.Client, model: str) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    if model == "stream-cut":
        with pytest.raises(httpx.RemoteProtocolError):
            client.post("/v1/chat/completions", json=body)
    else:
        frames = sse_data(client.post("/v1/chat/completions", json=body).text)
        assert orjson.loads(frames[-1])["error"]["message"] == "stand-in mid-stream failure"


def test_fail_429_and_log_endpoint(standin: StandIn, client: httpx.Client) -> None:
    body = {"model": "fail-429", "messages": [{"role": "user", "content": "hi"}]}
    reply = client.post("/v1/chat/completions", json=body)
    assert reply.status_code == 429
    assert reply.headers["retry-after"] == "1"

    logged = client.get("/_log").json()
    assert [(e["path"], e["status"]) for e in logged] == [("/v1/chat/completions", 429)]
    assert client.post("/_log/clear").status_code == 204
    assert standin.requests == []


def test_client_leaving_mid_stream_is_logged_as_cancelled(standin: StandIn, client: httpx.Client) -> None:
    body = {"model": "stream-slow", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with client.stream("POST", "/v1/chat/completions", json=body) as reply:
        next(reply.iter_lines())

    logged = standin.wait_for(lambda entry: entry.cancelled)
    assert logged.body == body
    assert logged.usage is None


def test_server_thread_reports_a_failed_startup() -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        raise RuntimeError("boom")
        yield

    with pytest.raises(RuntimeError, match="failed to start"):
        ServerThread(Starlette(lifespan=lifespan)).start()
