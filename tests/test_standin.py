"""Self-test of the stand-in provider used by the integration tests."""

from __future__ import annotations

import base64
import contextlib
import struct
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter
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


# --- /v1/responses, driven by the openai SDK -----------------------------------------------------------

WEATHER_TOOL = {
    "type": "function",
    "name": "weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture
def sdk(standin: StandIn) -> Iterator[openai.OpenAI]:
    standin.clear()
    with openai.OpenAI(base_url=standin.openai_base, api_key="sk-up", max_retries=0) as client:
        yield client


def test_responses_create(standin: StandIn, sdk: openai.OpenAI) -> None:
    response = sdk.responses.create(model="gpt-x", instructions="be brief", input="say hi")

    assert response.output_text == "Hello from stand-in gpt-x: say hi"
    assert response.status == "completed"
    assert response.id.startswith("resp_standin_")
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (2 + 3 + 2 + 3, 6)
    [logged] = standin.requests
    assert (logged.path, logged.status) == ("/v1/responses", 200)
    assert logged.headers["authorization"] == "Bearer sk-up"
    assert logged.usage == response.usage.model_dump(exclude_none=True)


def test_responses_stream(standin: StandIn, sdk: openai.OpenAI) -> None:
    with sdk.responses.stream(model="gpt-x", input="count to three") as stream:
        events = list(stream)
        final = stream.get_final_response()

    assert final.output_text == "Hello from stand-in gpt-x: count to three"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    names = [e.type for e in events]
    assert names[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert names[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == final.output_text
    assert final.usage is not None
    assert standin.requests[0].usage == final.usage.model_dump(exclude_none=True)


@pytest.mark.parametrize("streamed", [False, True])
def test_responses_function_call(sdk: openai.OpenAI, streamed: bool) -> None:
    if streamed:
        with sdk.responses.stream(model="gpt-x", input="hi", tools=[WEATHER_TOOL], tool_choice="required") as stream:
            response = stream.get_final_response()
    else:
        response = sdk.responses.create(model="gpt-x", input="hi", tools=[WEATHER_TOOL])  # type: ignore[list-item]

    [call] = response.output
    assert call.type == "function_call"
    assert (call.name, call.arguments) == ("weather", '{"city":"x"}')
    assert call.call_id.startswith("call_standin_")


def test_responses_answers_a_function_call_output_in_text(sdk: openai.OpenAI) -> None:
    history: list[Any] = [
        {"role": "user", "content": "weather?"},
        {"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": '{"city":"x"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
    ]
    response = sdk.responses.create(model="gpt-x", input=history, tools=[WEATHER_TOOL])  # type: ignore[list-item]
    assert response.output_text == "Hello from stand-in gpt-x: weather?"


def test_responses_cache_and_reasoning_tokens(sdk: openai.OpenAI) -> None:
    response = sdk.responses.create(model="gpt-cache", input="hi", reasoning={"effort": "low"})

    assert [item.type for item in response.output] == ["reasoning", "message"]
    assert response.usage is not None
    assert response.usage.input_tokens == 1 + 3 + 100
    assert response.usage.input_tokens_details.cached_tokens == 100
    assert response.usage.output_tokens_details.reasoning_tokens == 16
    assert response.usage.output_tokens == 5 + 16


@pytest.mark.parametrize("streamed", [False, True])
def test_responses_hosted_web_search(sdk: openai.OpenAI, streamed: bool) -> None:
    tools: Any = [{"type": "web_search"}]
    if streamed:
        with sdk.responses.stream(model="gpt-x", input="news", tools=tools) as stream:
            names = [event.type for event in stream]
            response = stream.get_final_response()
        assert "response.web_search_call.searching" in names
    else:
        response = sdk.responses.create(model="gpt-x", input="news", tools=tools)

    assert [item.type for item in response.output] == ["web_search_call", "message"]
    assert response.output_text == "Hello from stand-in gpt-x: news"


def test_responses_max_output_tokens_is_incomplete(sdk: openai.OpenAI) -> None:
    response = sdk.responses.create(model="gpt-x", input="hi", max_output_tokens=2)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text == "Hello from"


def test_responses_no_usage(standin: StandIn, sdk: openai.OpenAI) -> None:
    assert sdk.responses.create(model="no-usage", input="hi").usage is None
    with sdk.responses.stream(model="no-usage", input="hi") as stream:
        assert stream.get_final_response().usage is None
    assert [entry.usage for entry in standin.requests] == [None, None]
    assert standin.requests[1].full_usage is not None


def test_responses_errors_are_openai_shaped(standin: StandIn, sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as limited:
        sdk.responses.create(model="fail-429", input="hi")
    assert limited.value.response.headers["retry-after"] == "1"
    chat_shaped = {"type": "function", "function": {"name": "weather", "parameters": {}}}
    with pytest.raises(openai.BadRequestError) as bad:
        sdk.responses.create(model="gpt-x", input="hi", tools=[chat_shaped])  # type: ignore[list-item]
    assert bad.value.param == "tools[0].name"
    assert [entry.status for entry in standin.requests] == [429, 400]


def test_responses_stream_error_and_cut(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.APIError, match="stand-in mid-stream failure"):
        list(sdk.responses.create(model="stream-error", input="hi", stream=True))
    with pytest.raises(openai.APIConnectionError):
        list(sdk.responses.create(model="stream-cut", input="hi", stream=True))


def test_responses_echo_request(sdk: openai.OpenAI) -> None:
    response = sdk.responses.create(model="echo-request", input="hi", metadata={"k": "v"})
    assert orjson.loads(response.output_text) == {"model": "echo-request", "input": "hi", "metadata": {"k": "v"}}
    assert response.metadata == {"k": "v"}


@pytest.mark.parametrize(
    ("model", "tools"),
    [("gpt-x", [{"type": "web_search"}]), ("gpt-x", [WEATHER_TOOL]), ("stream-error", [])],
)
def test_responses_stream_events_match_the_sdk_types(client: httpx.Client, model: str, tools: list[Any]) -> None:
    body = {"model": model, "input": "hi", "stream": True, "reasoning": {"effort": "low"}, "tools": tools}
    events = sse_events(client.post("/v1/responses", json=body).text)

    adapter: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
    for name, data in events:
        assert data["type"] == name
        if name != "error":  # OpenAI's API nests the error event's fields, unlike its own reference
            adapter.validate_python(data)
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    if model == "stream-error":
        assert events[-1][1]["error"]["message"] == "stand-in mid-stream failure"
    else:
        Response.model_validate(events[-1][1]["response"])


def test_responses_object_matches_the_sdk_type(client: httpx.Client) -> None:
    body = {"model": "gpt-cache", "input": "hi", "reasoning": {"effort": "low"}, "tools": [{"type": "web_search"}]}
    Response.model_validate(client.post("/v1/responses", json=body).json())
