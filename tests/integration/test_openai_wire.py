"""The official openai SDK against the gateway, with an OpenAI-wire stand-in provider behind it."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import pytest

from tests.gateway_harness import ADMIN_KEY, LIMITED_KEY, OPENAI_SECRET, base_config
from tests.standin import StandIn

USER = [{"role": "user", "content": "What is the capital of France?"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture(scope="module")
def gateway(standin_server: StandIn, module_gateway_factory: Any) -> Any:
    return module_gateway_factory(base_config(standin_server))


def test_chat_non_streaming_returns_the_providers_answer_and_gateway_headers(gateway: Any, standin: StandIn) -> None:
    raw = gateway.client().chat.completions.with_raw_response.create(model="oa-gpt-x", messages=USER)
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello from stand-in gpt-x: What is the capital of France?"
    assert completion.choices[0].finish_reason == "stop"
    [seen] = standin.find("/v1/chat/completions")
    assert completion.usage.prompt_tokens == seen.usage["prompt_tokens"]
    assert raw.headers["x-agentgw-model"] == "oa-gpt-x"
    assert raw.headers["x-agentgw-provider"] == "standin-openai"
    assert raw.headers["x-request-id"].startswith("req_")
    assert seen.body["model"] == "gpt-x"  # the provider's own name for the model


def test_the_gateway_mints_its_own_request_ids(gateway: Any, standin: StandIn) -> None:
    """A caller's x-request-id is echoed beside the gateway's own: callers' ids need not be unique,
    and the gateway's key the ledger, replay and feedback."""
    client = gateway.client()
    first, second = (
        client.chat.completions.with_raw_response.create(
            model="oa-gpt-x", messages=USER, extra_headers={"x-request-id": "trace-me-42"}
        )
        for _ in range(2)
    )
    assert first.headers["x-client-request-id"] == "trace-me-42"
    assert first.headers["x-request-id"].startswith("req_")
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    assert standin.requests[0].headers["x-request-id"] == first.headers["x-request-id"]


def test_answers_name_the_requested_model_by_default(gateway: Any, standin: StandIn) -> None:
    """Clients look the answer's `model` up (autogen compares it, litellm prices by it): by default
    it is the name they asked for; x-agentgw-model says which model answered."""
    with gateway.http() as http:
        response = http.post("/v1/chat/completions", json={"model": "oa-gpt-x", "messages": USER})
        stream = http.post("/v1/chat/completions", json={"model": "oa-gpt-x", "messages": USER, "stream": True})
    body = response.json()
    assert body["id"].startswith("chatcmpl-standin-")
    assert body["system_fingerprint"] is not None
    assert body["model"] == "oa-gpt-x" and response.headers["x-agentgw-model"] == "oa-gpt-x"
    chunks = [json.loads(line[6:]) for line in stream.text.splitlines() if line.startswith("data: {")]
    assert chunks and {chunk["model"] for chunk in chunks} == {"oa-gpt-x"}


def test_answers_can_name_the_providers_model(standin_server: StandIn, gateway_factory: Any) -> None:
    config = base_config(standin_server)
    config["routing"] = {"response_model": "upstream"}
    config["models"]["oa-named"] = {"provider": "standin-openai", "upstream": "gpt-x", "response_model": "requested"}
    gateway = gateway_factory(config)
    with gateway.http() as http:
        response = http.post("/v1/chat/completions", json={"model": "oa-gpt-x", "messages": USER})
        named = http.post("/v1/chat/completions", json={"model": "oa-named", "messages": USER})
    assert response.json()["model"] == "gpt-x"  # the provider's answer as it sent it
    assert named.json()["model"] == "oa-named"  # a model's own setting wins over the global one


def test_streaming_with_usage(gateway: Any, standin: StandIn) -> None:
    stream = gateway.client().chat.completions.create(
        model="oa-gpt-x", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from stand-in gpt-x: What is the capital of France?"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    [seen] = standin.find("/v1/chat/completions")
    assert chunks[-1].usage.completion_tokens == seen.usage["completion_tokens"]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_streaming_without_usage_shows_no_usage(gateway: Any) -> None:
    chunks = list(gateway.client().chat.completions.create(model="oa-gpt-x", messages=USER, stream=True))
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


@pytest.mark.parametrize("model", ["oa-gpt-x", "an-gpt-x", "oa-stream-late-end", "an-stream-late-end"])
def test_finished_streams_hand_their_upstream_connection_back(gateway: Any, standin: StandIn, model: str) -> None:
    client = gateway.client()
    for _ in range(3):
        assert list(client.chat.completions.create(model=model, messages=USER, stream=True))
        client.chat.completions.create(model=model, messages=USER)
    peers = {seen.peer for seen in standin.requests}
    assert len(standin.requests) == 6 and len(peers) == 1  # one keep-alive connection served them all


def test_streaming_raw_sse_ends_with_done(gateway: Any) -> None:
    with (
        gateway.http() as http,
        http.stream("POST", "/v1/chat/completions", json={"model": "oa-gpt-x", "messages": USER, "stream": True}) as r,
    ):
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-agentgw-model"] == "oa-gpt-x"
        events = [line for line in r.iter_lines() if line]
    assert events[-1] == "data: [DONE]"
    assert all(e.startswith("data: ") for e in events)


def test_tools_and_tool_calls(gateway: Any, standin: StandIn) -> None:
    client = gateway.client()
    completion = client.chat.completions.create(model="oa-gpt-x", messages=USER, tools=[WEATHER_TOOL])
    [call] = completion.choices[0].message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "x", "days": 1}
    assert completion.choices[0].finish_reason == "tool_calls"
    follow_up = [
        *USER,
        completion.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    answer = client.chat.completions.create(model="oa-gpt-x", messages=follow_up, tools=[WEATHER_TOOL])
    assert answer.choices[0].message.content.startswith("Hello from stand-in")
    assert standin.requests[0].body["tools"] == [WEATHER_TOOL]


def test_streamed_tool_call_deltas(gateway: Any) -> None:
    stream = gateway.client().chat.completions.create(
        model="oa-gpt-x", messages=USER, tools=[WEATHER_TOOL], tool_choice="required", stream=True
    )
    name, arguments, pieces = "", "", 0
    for chunk in stream:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            name += call.function.name or ""
            arguments += call.function.arguments or ""
            pieces += 1
    assert name == "get_weather"
    assert json.loads(arguments) == {"city": "x", "days": 1}
    assert pieces >= 3


def test_n_choices_and_response_format_pass_through(gateway: Any, standin: StandIn) -> None:
    completion = gateway.client().chat.completions.create(
        model="oa-gpt-x", messages=USER, n=2, response_format={"type": "json_object"}
    )
    assert [c.index for c in completion.choices] == [0, 1]
    assert standin.requests[0].body["response_format"] == {"type": "json_object"}
    assert standin.requests[0].body["n"] == 2


def test_unknown_fields_reach_the_provider_untouched(gateway: Any, standin: StandIn) -> None:
    extra = {"vendor_knob": {"nested": [1, 2.5, None, "x"]}, "seed": 7, "logit_bias": {"50256": -100}}
    completion = gateway.client().chat.completions.create(model="oa-echo-request", messages=USER, extra_body=extra)
    echoed = json.loads(completion.choices[0].message.content)
    for name, value in extra.items():
        assert echoed[name] == value
    assert echoed["model"] == "echo-request"


def test_gateway_key_never_goes_upstream(gateway: Any, standin: StandIn) -> None:
    client = gateway.client()
    client.chat.completions.create(model="oa-gpt-x", messages=USER)
    list(client.chat.completions.create(model="oa-gpt-x", messages=USER, stream=True))
    client.embeddings.create(model="oa-embed", input="hello")
    assert len(standin.requests) == 3
    for seen in standin.requests:
        assert seen.headers["authorization"] == f"Bearer {OPENAI_SECRET}"
        assert ADMIN_KEY not in json.dumps(seen.headers) and ADMIN_KEY.encode() not in seen.raw


def test_embeddings_base64_and_float(gateway: Any, standin: StandIn) -> None:
    client = gateway.client()
    result = client.embeddings.create(model="oa-embed", input=["one", "two"])  # the SDK asks for base64
    assert standin.requests[0].body["encoding_format"] == "base64"
    assert len(result.data) == 2 and len(result.data[0].embedding) == 8
    floats = client.embeddings.create(model="oa-embed", input="one", encoding_format="float")
    assert floats.data[0].embedding == pytest.approx(result.data[0].embedding)
    assert result.usage.prompt_tokens > 0


def test_models_list_shows_what_the_key_may_use(gateway: Any) -> None:
    everything = {m.id for m in gateway.client().models.list()}
    assert {"oa-gpt-x", "an-gpt-x", "mock-chat", "oa-embed"} <= everything
    assert {m.id for m in gateway.client(LIMITED_KEY).models.list()} == {"oa-gpt-x"}


def test_mock_provider_answers_like_a_model(gateway: Any) -> None:
    client = gateway.client()
    completion = client.chat.completions.create(model="mock-chat", messages=USER)
    assert completion.choices[0].message.content.startswith("[agentgw mock]")
    assert completion.system_fingerprint == "agentgw-mock"
    assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0
    again = client.chat.completions.create(model="mock-chat", messages=USER)
    assert again.choices[0].message.content == completion.choices[0].message.content
    chunks = list(
        client.chat.completions.create(
            model="mock-chat", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == completion.choices[0].message.content
    )
    assert chunks[-1].usage.completion_tokens == completion.usage.completion_tokens
    tool = client.chat.completions.create(model="mock-chat", messages=USER, tools=[WEATHER_TOOL])
    assert json.loads(tool.choices[0].message.tool_calls[0].function.arguments) == {"city": "mock", "days": 1}
    vectors = client.embeddings.create(model="mock-embed", input="hello")
    decoded = vectors.data[0].embedding
    assert len(decoded) == 256 and abs(sum(v * v for v in decoded) - 1) < 1e-3


def test_mock_base64_embedding_is_little_endian_float32(gateway: Any) -> None:
    with gateway.http() as http:
        body = http.post(
            "/v1/embeddings",
            json={"model": "mock-embed", "input": "x", "encoding_format": "base64", "dimensions": 4},
        ).json()
    raw = base64.b64decode(body["data"][0]["embedding"])
    assert len(struct.unpack("<4f", raw)) == 4
