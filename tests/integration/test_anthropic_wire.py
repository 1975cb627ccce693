"""An Anthropic provider behind the OpenAI API: the openai SDK on one side, Messages on the other."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.gateway_harness import ADMIN_KEY, ANTHROPIC_SECRET, base_config
from tests.standin import StandIn

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture(scope="module")
def gateway(standin_server: StandIn, module_gateway_factory: Any) -> Any:
    return module_gateway_factory(base_config(standin_server))


def test_system_prompt_and_parts_are_translated(gateway: Any, standin: StandIn) -> None:
    completion = gateway.client().chat.completions.create(
        model="an-gpt-x",
        messages=[
            {"role": "system", "content": "You are terse."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Describe"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                    {"type": "text", "text": "this picture"},
                ],
            },
        ],
        max_tokens=50,
        temperature=0.2,
        stop=["END"],
    )
    [seen] = standin.find("/v1/messages")
    assert seen.body["system"] == "You are terse."
    assert seen.body["model"] == "gpt-x" and seen.body["max_tokens"] == 50
    assert seen.body["stop_sequences"] == ["END"]
    assert [b["type"] for b in seen.body["messages"][0]["content"]] == ["text", "image", "text"]
    assert seen.body["messages"][0]["content"][1]["source"] == {
        "type": "base64",
        "media_type": "image/png",
        "data": "iVBORw0KGgo=",
    }
    assert completion.choices[0].message.content == "Hello from stand-in gpt-x: Describe this picture"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens == seen.usage["input_tokens"]
    assert completion.usage.completion_tokens == seen.usage["output_tokens"]


def test_credentials_and_version_headers(gateway: Any, standin: StandIn) -> None:
    gateway.client().chat.completions.create(model="an-gpt-x", messages=[{"role": "user", "content": "hi"}])
    [seen] = standin.find("/v1/messages")
    assert seen.headers["x-api-key"] == ANTHROPIC_SECRET
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in seen.headers
    assert ADMIN_KEY.encode() not in seen.raw


def test_default_max_tokens_is_supplied(gateway: Any, standin: StandIn) -> None:
    gateway.client().chat.completions.create(model="an-gpt-x", messages=[{"role": "user", "content": "hi"}])
    assert standin.find("/v1/messages")[0].body["max_tokens"] == 4096


def test_tool_round_trip(gateway: Any, standin: StandIn) -> None:
    client = gateway.client()
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.chat.completions.create(
        model="an-gpt-x",
        messages=messages,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    assert first.choices[0].finish_reason == "tool_calls"
    [call] = first.choices[0].message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "x"}
    sent = standin.find("/v1/messages")[0].body
    assert sent["tools"][0]["input_schema"] == WEATHER_TOOL["function"]["parameters"]
    assert sent["tool_choice"] == {"type": "tool", "name": "get_weather"}

    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"},
    ]
    second = client.chat.completions.create(model="an-gpt-x", messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].finish_reason == "stop"
    sent = standin.find("/v1/messages")[1].body
    assert sent["messages"][1]["content"][0]["type"] == "tool_use"
    assert sent["messages"][2]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": call.id,
        "content": "18C and sunny",
    }


def test_streaming_text_and_usage(gateway: Any, standin: StandIn) -> None:
    chunks = list(
        gateway.client().chat.completions.create(
            model="an-gpt-x",
            messages=[{"role": "user", "content": "tell me"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from stand-in gpt-x: tell me"
    )
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    [seen] = standin.find("/v1/messages")
    assert chunks[-1].usage.completion_tokens == seen.full_usage["output_tokens"]
    assert chunks[-1].usage.prompt_tokens == seen.full_usage["input_tokens"]


def test_streaming_tool_call_deltas(gateway: Any) -> None:
    stream = gateway.client().chat.completions.create(
        model="an-gpt-x",
        messages=[{"role": "user", "content": "weather?"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    arguments, names, ids = "", [], []
    finish = None
    for chunk in stream:
        choice = chunk.choices[0]
        finish = choice.finish_reason or finish
        for call in choice.delta.tool_calls or []:
            arguments += call.function.arguments or ""
            names += [call.function.name] if call.function.name else []
            ids += [call.id] if call.id else []
    assert names == ["get_weather"] and len(ids) == 1
    assert json.loads(arguments) == {"city": "x"}
    assert finish == "tool_calls"


def test_cache_tokens_count_as_prompt_tokens(gateway: Any, standin: StandIn) -> None:
    completion = gateway.client().chat.completions.create(
        model="an-cache-x", messages=[{"role": "user", "content": "hi"}]
    )
    [seen] = standin.find("/v1/messages")
    assert completion.usage.prompt_tokens == seen.usage["input_tokens"] + 100 + 7
    assert completion.usage.prompt_tokens_details.cached_tokens == 100


def test_what_anthropic_cannot_do_is_a_clear_400(gateway: Any, standin: StandIn) -> None:
    client = gateway.client()
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="an-gpt-x", messages=[{"role": "user", "content": "x"}], n=2)
    assert info.value.body["param"] == "n"
    audio = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="an-gpt-x", messages=[{"role": "user", "content": [audio]}])
    assert info.value.body["param"] == "messages[0].content[0]"
    assert standin.requests == []


def test_json_schema_response_format(gateway: Any, standin: StandIn) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    completion = gateway.client().chat.completions.create(
        model="an-gpt-x",
        messages=[{"role": "user", "content": "capital of France as JSON"}],
        response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}},
    )
    assert json.loads(completion.choices[0].message.content) == {"city": "x"}
    assert completion.choices[0].finish_reason == "stop"
    assert standin.find("/v1/messages")[0].body["tool_choice"] == {"type": "tool", "name": "answer"}
