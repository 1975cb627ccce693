"""Responses <-> Chat Completions translation (request, response, stream, error events), checked
against the openai SDK's own types and, over HTTP, the openai SDK and the OpenAI Agents SDK."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest
from agents import Agent, ModelBehaviorError, OpenAIResponsesModel, RunConfig, Runner, function_tool
from openai.types.responses import Response as SDKResponse
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from gateway.metering.usage import Usage
from gateway.translate.chat_to_messages import (
    JSON_TOOL_KEY,
    AnthropicStreamError,
    from_anthropic_response,
    to_anthropic_request,
)
from gateway.translate.chat_to_messages import StreamTranslator as MessagesToChunks
from gateway.translate.responses_to_chat import (
    DROPPED_RESPONSES_FIELDS,
    ChatStreamError,
    StreamTranslator,
    TranslationError,
    from_chat_response,
    new_response_id,
    stream_error_events,
    to_chat_request,
)
from tests.standin import ServerThread, StandIn, serve_in_thread

UPSTREAM = "claude-sonnet-4-5"
CREATED = 1_760_000_000
RESPONSE_ID = "resp_test1"
WEATHER: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True,
}
CHAT_WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": WEATHER["parameters"],
        "strict": True,
    },
}
STREAM_EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)


def translate(input: Any = "Hi", **fields: Any) -> dict[str, Any]:
    return to_chat_request({"model": "gpt-5", "input": input, **fields}, model=UPSTREAM)


def messages(input: Any, **fields: Any) -> list[dict[str, Any]]:
    return translate(input, **fields)["messages"]


def refused(input: Any = "Hi", **fields: Any) -> TranslationError:
    with pytest.raises(TranslationError) as caught:
        translate(input, **fields)
    return caught.value


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def data_url(media: str, text: str) -> str:
    return f"data:{media};base64,{base64.b64encode(text.encode()).decode()}"


# --- request: basics --------------------------------------------------------------------------------


def test_string_input_is_one_user_message_for_the_upstream_model() -> None:
    assert translate("Hi") == {"model": UPSTREAM, "messages": [user("Hi")]}


def test_instructions_come_first_as_a_system_message() -> None:
    assert messages("Hi", instructions="Be brief.") == [{"role": "system", "content": "Be brief."}, user("Hi")]


def test_sampling_fields() -> None:
    body = translate(max_output_tokens=300, temperature=0.2, top_p=0.9, user="agent-7")
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["user"]) == (300, 0.2, 0.9, "agent-7")


def test_reasoning_effort_and_verbosity() -> None:
    body = translate(reasoning={"effort": "high", "summary": "auto"}, text={"verbosity": "low"})
    assert body["reasoning_effort"] == "high"
    assert body["verbosity"] == "low"
    assert "reasoning" not in body


def test_stream_asks_for_usage() -> None:
    assert translate(stream=True)["stream_options"] == {"include_usage": True}
    assert "stream" not in translate(stream=False)


def test_dropped_fields_change_nothing() -> None:
    extras = {
        "metadata": {"team": "a"},
        "store": True,
        "include": ["reasoning.encrypted_content"],
        "truncation": "auto",
        "service_tier": "flex",
        "prompt_cache_key": "k",
        "prompt_cache_retention": "24h",
        "safety_identifier": "u1",
        "top_logprobs": 3,
        "background": False,
        "max_tool_calls": 3,
        "stream_options": {"include_obfuscation": False},
    }
    assert set(extras) <= DROPPED_RESPONSES_FIELDS
    assert translate(**extras) == translate()


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"previous_response_id": "resp_abc"}, "previous_response_id"),
        ({"conversation": "conv_abc"}, "conversation"),
        ({"conversation": {"id": "conv_abc"}}, "conversation"),
        ({"prompt": {"id": "pmpt_abc", "variables": {}}}, "prompt"),
        ({"background": True}, "background"),
    ],
)
def test_stateful_parameters_are_refused(fields: dict[str, Any], param: str) -> None:
    error = refused(**fields)
    assert error.param == param
    assert "Responses API" in error.message or "OpenAI" in error.message


def test_previous_response_id_message_says_what_to_do() -> None:
    assert "send the whole conversation in input" in refused(previous_response_id="resp_1").message


# --- request: input items ---------------------------------------------------------------------------


def test_message_items_with_parts_and_roles() -> None:
    items = [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Answer in French."}]},
        {"role": "system", "content": "No emoji."},
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What is this?"},
                {"type": "input_image", "image_url": "https://example.com/cat.jpg", "detail": "low"},
                {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "auto"},
            ],
        },
        {
            "type": "message",
            "role": "assistant",
            "id": "msg_1",
            "status": "completed",
            "content": [
                {"type": "output_text", "text": "Un chat", "annotations": []},
                {"type": "input_text", "text": "."},
            ],
        },
        {"role": "user", "content": "Merci"},
    ]
    assert messages(items) == [
        {"role": "system", "content": [{"type": "text", "text": "Answer in French."}]},
        {"role": "system", "content": "No emoji."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "auto"}},
            ],
        },
        {"role": "assistant", "content": "Un chat."},
        user("Merci"),
    ]


def test_assistant_refusal_keeps_its_parts() -> None:
    content = [{"type": "output_text", "text": "Well"}, {"type": "refusal", "refusal": "I can't help with that."}]
    assert messages([user("x"), {"role": "assistant", "content": content}])[1]["content"] == [
        {"type": "text", "text": "Well"},
        {"type": "refusal", "refusal": "I can't help with that."},
    ]


def test_multi_turn_function_calls_and_outputs() -> None:
    items = [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
        },
        {"type": "function_call", "call_id": "call_2", "name": "get_weather", "arguments": '{"city":"Rome"}'},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAA"},
        {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
        {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "21C"}]},
        {"type": "function_call", "call_id": "call_3", "name": "get_weather", "arguments": '{"city":"Oslo"}'},
        {"type": "function_call_output", "call_id": "call_3", "output": "2C"},
        {"role": "assistant", "content": "Paris 18C, Rome 21C, Oslo 2C."},
    ]

    def call(call_id: str, city: str) -> dict[str, Any]:
        arguments = f'{{"city":"{city}"}}'
        return {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": arguments}}

    assert messages(items) == [
        user("Weather in Paris and Rome?"),
        {"role": "assistant", "content": "Checking.", "tool_calls": [call("call_1", "Paris"), call("call_2", "Rome")]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "21C"}]},
        {"role": "assistant", "content": None, "tool_calls": [call("call_3", "Oslo")]},
        {"role": "tool", "tool_call_id": "call_3", "content": "2C"},
        {"role": "assistant", "content": "Paris 18C, Rome 21C, Oslo 2C."},
    ]


def test_assistant_text_after_its_calls_joins_them() -> None:
    items = [
        user("x"),
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"role": "assistant", "content": "Calling f."},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"},
    ]
    chat = messages(items)
    assert [m["role"] for m in chat] == ["user", "assistant", "tool"]
    assert chat[1]["content"] == "Calling f."


def test_input_file_inline_text_becomes_text() -> None:
    part = {"type": "input_file", "filename": "notes.md", "file_data": data_url("text/markdown", "# Notes\nhello")}
    assert messages([{"role": "user", "content": [part]}])[0]["content"] == [
        {"type": "text", "text": "[file: notes.md]\n# Notes\nhello"}
    ]


@pytest.mark.parametrize(
    ("part", "param"),
    [
        ({"type": "input_image", "file_id": "file-abc"}, "input.0.content.0.file_id"),
        ({"type": "input_image"}, "input.0.content.0.image_url"),
        ({"type": "input_file", "file_id": "file-abc"}, "input.0.content.0"),
        ({"type": "input_file", "file_url": "https://example.com/a.pdf"}, "input.0.content.0"),
        ({"type": "input_file", "file_data": data_url("application/pdf", "%PDF")}, "input.0.content.0.file_data"),
        ({"type": "input_file", "file_data": "data:text/plain;base64,@@@"}, "input.0.content.0.file_data"),
        ({"type": "input_audio", "input_audio": {}}, "input.0.content.0.type"),
        ({"type": "output_text", "text": "x"}, "input.0.content.0.type"),
    ],
)
def test_user_parts_chat_cannot_carry_are_refused(part: dict[str, Any], param: str) -> None:
    assert refused([{"role": "user", "content": [part]}]).param == param


def test_images_outside_user_messages_are_refused() -> None:
    image = {"type": "input_image", "image_url": "https://example.com/a.png"}
    assert refused([{"role": "system", "content": [image]}]).param == "input.0.content.0"
    output = {"type": "function_call_output", "call_id": "c", "output": [image]}
    assert refused([user("x"), output]).param == "input.1.output.0"


@pytest.mark.parametrize(
    "item",
    [
        {"type": "item_reference", "id": "msg_abc"},
        {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search"}},
        {"type": "file_search_call", "id": "fs_1", "queries": [], "status": "completed"},
        {"type": "computer_call_output", "call_id": "c", "output": {}},
        {"type": "mcp_approval_response", "approval_request_id": "a", "approve": True},
        {"type": "custom_tool_call_output", "call_id": "c", "output": "x"},
    ],
)
def test_stateful_and_hosted_tool_items_are_refused_with_their_path(item: dict[str, Any]) -> None:
    error = refused([user("x"), item])
    assert error.param == "input.1"
    assert "Responses API" in error.message


@pytest.mark.parametrize(
    ("input", "param"),
    [
        (None, "input"),
        (42, "input"),
        ([], "input"),
        (["Hi"], "input.0"),
        ([{"content": "no role or type"}], "input.0.type"),
        ([{"role": "tool", "content": "x"}], "input.0.role"),
        ([{"role": ["user"], "content": "x"}], "input.0.role"),
        ([{"role": "user", "content": 7}], "input.0.content"),
        ([{"role": "user", "content": [7]}], "input.0.content.0"),
        ([{"role": "user", "content": [{"type": "input_text"}]}], "input.0.content.0.text"),
        ([{"role": "assistant", "content": [{"type": "input_image", "image_url": "x"}]}], "input.0.content.0.type"),
        ([{"type": "function_call", "name": "f", "arguments": "{}"}], "input.0.call_id"),
        ([{"type": "function_call", "call_id": "c", "arguments": "{}"}], "input.0.name"),
        ([{"type": "function_call", "call_id": "c", "name": "f", "arguments": {}}], "input.0.arguments"),
        ([{"type": "function_call_output", "call_id": "c"}], "input.0.output"),
        ([{"type": "function_call_output", "output": "x"}], "input.0.call_id"),
    ],
)
def test_malformed_input_is_refused_with_its_path(input: Any, param: str) -> None:
    assert refused(input).param == param


# --- request: tools ---------------------------------------------------------------------------------


def test_function_tools_move_under_function() -> None:
    body = translate(tools=[WEATHER, {"type": "function", "name": "noop"}], parallel_tool_calls=False)
    assert body["tools"] == [CHAT_WEATHER, {"type": "function", "function": {"name": "noop"}}]
    assert body["parallel_tool_calls"] is False


@pytest.mark.parametrize(
    "tool",
    [
        {"type": "web_search"},
        {"type": "web_search_preview"},
        {"type": "file_search", "vector_store_ids": ["vs_1"]},
        {"type": "code_interpreter", "container": {"type": "auto"}},
        {"type": "computer_use_preview", "display_width": 1024, "display_height": 768, "environment": "browser"},
        {"type": "image_generation"},
        {"type": "mcp", "server_label": "x", "server_url": "https://example.com/mcp"},
        {"type": "local_shell"},
        {"type": "shell"},
        {"type": "apply_patch"},
        {"type": "custom", "name": "grammar_tool"},
    ],
)
def test_hosted_tools_are_refused(tool: dict[str, Any]) -> None:
    error = refused(tools=[WEATHER, tool])
    assert error.param == "tools.1"
    assert f"'{tool['type']}' tool runs only on OpenAI's Responses API" in error.message


def test_chat_shaped_function_tool_is_refused_at_its_name() -> None:
    error = refused(tools=[CHAT_WEATHER])
    assert error.param == "tools.0.name"
    assert "top level" in error.message


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ({"type": "function", "name": "get_weather"}, {"type": "function", "function": {"name": "get_weather"}}),
    ],
)
def test_tool_choice(choice: Any, expected: Any) -> None:
    assert translate(tools=[WEATHER], tool_choice=choice)["tool_choice"] == expected


def test_allowed_tools_narrows_the_tools_sent() -> None:
    noop = {"type": "function", "name": "noop"}
    choice = {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "noop"}]}
    body = translate(tools=[WEATHER, noop], tool_choice=choice)
    assert body["tool_choice"] == "required"
    assert body["tools"] == [{"type": "function", "function": {"name": "noop"}}]


@pytest.mark.parametrize(
    ("choice", "param"),
    [
        ("any", "tool_choice"),
        ({"type": "web_search_preview"}, "tool_choice"),
        ({"type": "mcp", "server_label": "x"}, "tool_choice"),
        ({"type": "function"}, "tool_choice.name"),
        (
            {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "other"}]},
            "tool_choice.tools",
        ),
        ({"type": "allowed_tools", "mode": "auto", "tools": [{"type": "web_search"}]}, "tool_choice.tools.0"),
        ({"type": "allowed_tools", "mode": "sometimes", "tools": []}, "tool_choice.mode"),
        (7, "tool_choice"),
    ],
)
def test_tool_choice_chat_cannot_express_is_refused(choice: Any, param: str) -> None:
    assert refused(tools=[WEATHER], tool_choice=choice).param == param


def test_tool_choice_and_parallel_calls_are_dropped_without_tools() -> None:
    assert translate(tool_choice="auto", parallel_tool_calls=True) == translate()


# --- request: text format ---------------------------------------------------------------------------


def test_json_schema_format_becomes_response_format() -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    text = {"format": {"type": "json_schema", "name": "answer", "schema": schema, "strict": True, "description": "d"}}
    assert translate(text=text)["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": schema, "description": "d", "strict": True},
    }


def test_json_object_and_text_formats() -> None:
    assert translate(text={"format": {"type": "json_object"}})["response_format"] == {"type": "json_object"}
    assert "response_format" not in translate(text={"format": {"type": "text"}})


@pytest.mark.parametrize(
    ("text", "param"),
    [
        ("json", "text"),
        ({"format": "json"}, "text.format"),
        ({"format": {"type": "grammar"}}, "text.format.type"),
        ({"format": {"type": "json_schema", "schema": {}}}, "text.format.name"),
        ({"format": {"type": "json_schema", "name": "x"}}, "text.format.schema"),
        ({"format": {"type": "json_schema", "name": "x", "schema": {}, "strict": "yes"}}, "text.format.strict"),
    ],
)
def test_malformed_text_format_is_refused(text: Any, param: str) -> None:
    assert refused(text=text).param == param


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"instructions": ["Be brief."]}, "instructions"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"max_output_tokens": "100"}, "max_output_tokens"),
        ({"temperature": "hot"}, "temperature"),
        ({"top_p": True}, "top_p"),
        ({"stream": "yes"}, "stream"),
        ({"tools": {"type": "function"}}, "tools"),
        ({"tools": ["get_weather"]}, "tools.0"),
        ({"tools": [{"name": "f"}]}, "tools.0.type"),
        ({"tools": [{"type": "function", "name": "f", "parameters": "{}"}]}, "tools.0.parameters"),
        ({"reasoning": "high"}, "reasoning"),
        ({"reasoning": {"effort": 3}}, "reasoning.effort"),
    ],
)
def test_malformed_parameters_are_refused(fields: dict[str, Any], param: str) -> None:
    assert refused(**fields).param == param


def test_a_body_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(TranslationError):
        to_chat_request([], model=UPSTREAM)  # type: ignore[arg-type]


JUNK: list[Any] = [None, 0, -1, 1.5, True, "", "x", [], [None], [1], [{}], {}, {"type": None}, {"type": 1}]


@pytest.mark.parametrize("junk", JUNK)
@pytest.mark.parametrize(
    "where",
    [
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "text",
        "reasoning",
        "max_output_tokens",
        "temperature",
        "stream",
        "parallel_tool_calls",
        "item",
        "content",
        "part",
        "output",
        "tool",
        "format",
    ],
)
def test_junk_anywhere_raises_only_translation_error(where: str, junk: Any) -> None:
    body: dict[str, Any] = {"model": "m", "input": [user("hi")], "tools": [WEATHER]}
    if where == "item":
        body["input"] = [junk]
    elif where == "content":
        body["input"] = [{"role": "user", "content": junk}]
    elif where == "part":
        body["input"] = [{"role": "user", "content": [junk]}]
    elif where == "output":
        body["input"] = [user("hi"), {"type": "function_call_output", "call_id": "c", "output": [junk]}]
    elif where == "tool":
        body["tools"] = [junk]
    elif where == "format":
        body["text"] = {"format": junk}
    else:
        body[where] = junk
    with contextlib.suppress(TranslationError):  # anything else fails the test
        to_chat_request(body, model=UPSTREAM)


# --- response -----------------------------------------------------------------------------------------


def completion(message: dict[str, Any], finish_reason: str = "stop", usage: dict[str, Any] | None = None) -> dict:
    data: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": CREATED,
        "model": UPSTREAM,
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish_reason}],
    }
    if usage is not None:
        data["usage"] = usage
    return data


CHAT_USAGE = {
    "prompt_tokens": 120,
    "completion_tokens": 30,
    "total_tokens": 150,
    "prompt_tokens_details": {"cached_tokens": 100},
    "completion_tokens_details": {"reasoning_tokens": 12},
}
RESPONSES_USAGE = {
    "input_tokens": 120,
    "input_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 0},
    "output_tokens": 30,
    "output_tokens_details": {"reasoning_tokens": 12},
    "total_tokens": 150,
}


def respond(data: dict[str, Any], request: dict[str, Any] | None = None, **options: Any) -> dict[str, Any]:
    request = request or {"model": "gpt-5", "input": "Hi"}
    result = from_chat_response(
        data, request=request, model="gpt-5", response_id=RESPONSE_ID, created_at=CREATED, **options
    )
    SDKResponse.model_validate(result)  # the SDK's own type, validated strictly
    return result


def test_text_completion_becomes_a_response() -> None:
    result = respond(completion({"content": "Hello!"}, usage=CHAT_USAGE))
    assert result == {
        "id": RESPONSE_ID,
        "object": "response",
        "created_at": CREATED,
        "status": "completed",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "model": "gpt-5",
        "output": [
            {
                "id": "msg_test1_0",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Hello!", "annotations": [], "logprobs": []}],
            }
        ],
        "usage": RESPONSES_USAGE,
        "instructions": None,
        "max_output_tokens": None,
        "metadata": {},
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": False,
        "temperature": None,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": None,
        "truncation": "disabled",
        "user": None,
    }


def test_request_is_echoed() -> None:
    request = {
        "model": "gpt-5",
        "input": "Hi",
        "instructions": "Be brief.",
        "tools": [WEATHER],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "temperature": 0.3,
        "top_p": 0.8,
        "max_output_tokens": 99,
        "metadata": {"team": "a"},
        "reasoning": {"effort": "low", "summary": "auto"},
        "text": {"format": {"type": "json_object"}},
        "user": "u1",
        "store": True,
    }
    result = respond(completion({"content": "{}"}), request)
    assert {key: result[key] for key in request if key not in ("model", "input")} == {
        **{key: value for key, value in request.items() if key not in ("model", "input")},
        "reasoning": {"effort": "low", "summary": None},
        "store": False,
    }


def test_tool_calls_become_function_call_items_after_the_text() -> None:
    calls = [
        {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
        {"id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}},
    ]
    result = respond(completion({"content": "Checking.", "tool_calls": calls}, "tool_calls"))
    assert result["status"] == "completed"
    assert [item["type"] for item in result["output"]] == ["message", "function_call", "function_call"]
    assert result["output"][2] == {
        "id": "fc_test1_2",
        "type": "function_call",
        "status": "completed",
        "call_id": "call_b",
        "name": "get_weather",
        "arguments": '{"city":"Rome"}',
    }


def test_tool_calls_alone_have_no_message_item() -> None:
    call = {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    result = respond(completion({"content": None, "tool_calls": [call]}, "tool_calls"))
    assert [item["id"] for item in result["output"]] == ["fc_test1_0"]


def test_refusal_becomes_a_refusal_part() -> None:
    result = respond(completion({"content": None, "refusal": "I can't help with that."}))
    assert result["output"][0]["content"] == [{"type": "refusal", "refusal": "I can't help with that."}]


def test_empty_reply_is_an_empty_message() -> None:
    result = respond(completion({"content": None}))
    assert result["output"][0]["content"][0]["text"] == ""


@pytest.mark.parametrize(
    ("finish_reason", "reason"), [("length", "max_output_tokens"), ("content_filter", "content_filter")]
)
def test_cut_replies_are_incomplete(finish_reason: str, reason: str) -> None:
    result = respond(completion({"content": "Once upon a"}, finish_reason))
    assert result["status"] == "incomplete"
    assert result["incomplete_details"] == {"reason": reason}
    assert result["output"][0]["status"] == "incomplete"


def test_url_citations_are_flattened() -> None:
    citation = {"url": "https://example.com", "title": "Ex", "start_index": 0, "end_index": 5}
    result = respond(
        completion({"content": "Hello", "annotations": [{"type": "url_citation", "url_citation": citation}]})
    )
    assert result["output"][0]["content"][0]["annotations"] == [{"type": "url_citation", **citation}]


def test_usage_given_wins_and_missing_usage_is_null() -> None:
    estimate = Usage(input_tokens=7, output_tokens=3, estimated=True)
    assert respond(completion({"content": "x"}, usage=CHAT_USAGE), usage=estimate)["usage"]["total_tokens"] == 10
    assert respond(completion({"content": "x"}))["usage"] is None


def test_response_id_is_generated_when_not_given() -> None:
    result = from_chat_response(completion({"content": "x"}), request={}, model="m", created_at=CREATED)
    assert result["id"].startswith("resp_")
    assert result["output"][0]["id"] == "msg_" + result["id"].removeprefix("resp_") + "_0"


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"choices": []},
        {"choices": [{"message": "hi"}]},
        completion({"content": "x", "tool_calls": "call"}),
        completion({"tool_calls": [{"type": "function", "function": {"name": "f"}}]}),
        completion({"tool_calls": [{"id": "c", "type": "custom", "custom": {}}]}),
        completion({"tool_calls": [{"id": "c", "function": {"name": 1, "arguments": "{}"}}]}),
    ],
)
def test_malformed_completion_raises_value_error(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        from_chat_response(data, request={}, model="m", created_at=CREATED)


# --- stream -------------------------------------------------------------------------------------------


def chunk(delta: dict[str, Any] | None = None, finish_reason: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta or {}, "finish_reason": finish_reason, "logprobs": None}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": UPSTREAM,
        "choices": [choice],
        "usage": None,
    }


def usage_chunk(usage: dict[str, Any] = CHAT_USAGE) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": UPSTREAM,
        "choices": [],
        "usage": usage,
    }


def tool_delta(index: int, arguments: str, call_id: str | None = None, name: str | None = None) -> dict[str, Any]:
    call: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if call_id is not None:
        call |= {"id": call_id, "type": "function"}
        call["function"]["name"] = name
    return {"tool_calls": [call]}


def translator(request: dict[str, Any] | None = None) -> StreamTranslator:
    request = request or {"model": "gpt-5", "input": "Hi", "stream": True}
    return StreamTranslator(request, model="gpt-5", response_id=RESPONSE_ID, created_at=CREATED)


def run(chunks: list[dict[str, Any]], usage: Usage | None = None, request: dict[str, Any] | None = None) -> list[dict]:
    stream = translator(request)
    events = [event for piece in chunks for event in stream.feed(piece)]
    events += stream.finish(usage)
    for number, event in enumerate(events):
        assert event["sequence_number"] == number
        STREAM_EVENTS.validate_python(event)  # each event is one of the SDK's own types
    return events


def types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


TEXT_CHUNKS = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Hello"}),
    chunk({"content": " there"}),
    chunk({}, "stop"),
    usage_chunk(),
]
TOOL_CHUNKS = [
    chunk({"role": "assistant", "content": None}),
    chunk(tool_delta(0, "", "call_a", "get_weather")),
    chunk(tool_delta(0, '{"ci')),
    chunk(tool_delta(0, 'ty":"Paris"}')),
    chunk(tool_delta(1, '{"city":"Rome"}', "call_b", "get_weather")),
    chunk({}, "tool_calls"),
    usage_chunk(),
]


def test_text_stream_events() -> None:
    events = run(TEXT_CHUNKS)
    assert types(events) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[0]["response"]["status"] == "in_progress"
    assert events[0]["response"]["output"] == []
    assert events[2]["item"] == {
        "id": "msg_test1_0",
        "type": "message",
        "status": "in_progress",
        "role": "assistant",
        "content": [],
    }
    assert events[4] == {
        "type": "response.output_text.delta",
        "sequence_number": 4,
        "item_id": "msg_test1_0",
        "output_index": 0,
        "content_index": 0,
        "delta": "Hello",
        "logprobs": [],
    }
    assert events[6]["text"] == "Hello there"
    assert events[8]["item"]["status"] == "completed"
    assert events[-1]["response"]["usage"] == RESPONSES_USAGE


def test_streamed_response_is_the_non_streamed_one() -> None:
    calls = [
        {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
        {"id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}},
    ]
    whole = respond(completion({"content": None, "tool_calls": calls}, "tool_calls", CHAT_USAGE))
    assert run(TOOL_CHUNKS)[-1]["response"] == whole
    assert run(TEXT_CHUNKS)[-1]["response"] == respond(completion({"content": "Hello there"}, usage=CHAT_USAGE))


def test_tool_call_stream_with_split_arguments() -> None:
    events = run(TOOL_CHUNKS)
    assert types(events)[2:] == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[2]["item"] == {
        "id": "fc_test1_0",
        "type": "function_call",
        "status": "in_progress",
        "call_id": "call_a",
        "name": "get_weather",
        "arguments": "",
    }
    assert events[5] == {
        "type": "response.function_call_arguments.done",
        "sequence_number": 5,
        "item_id": "fc_test1_0",
        "output_index": 0,
        "arguments": '{"city":"Paris"}',
    }
    assert events[7]["output_index"] == 1
    assert events[7]["item"]["call_id"] == "call_b"


def test_text_then_tool_calls() -> None:
    events = run([chunk({"content": "Let me check."}), *TOOL_CHUNKS[1:3], chunk({}, "tool_calls")])
    assert types(events)[2:10] == [
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
    ]
    final = events[-1]["response"]
    assert [item["id"] for item in final["output"]] == ["msg_test1_0", "fc_test1_1"]
    assert final["output"][1]["arguments"] == '{"ci'


def test_interleaved_tool_calls_end_whole_in_the_response() -> None:
    events = run(
        [
            chunk(tool_delta(0, '{"city":', "call_a", "get_weather")),
            chunk(tool_delta(1, '{"city":', "call_b", "get_weather")),
            chunk(tool_delta(0, '"Paris"}')),
            chunk(tool_delta(1, '"Rome"}')),
            chunk({}, "tool_calls"),
        ]
    )
    arguments = [item["arguments"] for item in events[-1]["response"]["output"]]
    assert arguments == ['{"city":"Paris"}', '{"city":"Rome"}']


def test_tool_call_without_id_or_with_a_late_name() -> None:
    events = run(
        [
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": ""}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": "{}"}}]}),
        ]
    )
    [call] = events[-1]["response"]["output"]
    assert (call["call_id"], call["name"], call["arguments"]) == ("call_resp_test1_0", "f", "{}")


def test_refusal_stream() -> None:
    events = run([chunk({"refusal": "I can't"}), chunk({"refusal": " help."}), chunk({}, "stop")])
    assert types(events)[2:8] == [
        "response.output_item.added",
        "response.content_part.added",
        "response.refusal.delta",
        "response.refusal.delta",
        "response.refusal.done",
        "response.content_part.done",
    ]
    assert events[6]["refusal"] == "I can't help."
    assert events[-1]["response"]["output"][0]["content"] == [{"type": "refusal", "refusal": "I can't help."}]


def test_length_finish_ends_incomplete() -> None:
    events = run([chunk({"content": "Once upon"}), chunk({}, "length")])
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert events[-2]["item"]["status"] == "incomplete"


def test_finish_usage_wins_over_the_usage_chunk() -> None:
    estimate = Usage(input_tokens=5, output_tokens=2, cached_tokens=1, cache_write_tokens=3, reasoning_tokens=1)
    assert run(TEXT_CHUNKS, estimate)[-1]["response"]["usage"] == {
        "input_tokens": 5,
        "input_tokens_details": {"cached_tokens": 1, "cache_write_tokens": 3},
        "output_tokens": 2,
        "output_tokens_details": {"reasoning_tokens": 1},
        "total_tokens": 7,
    }


def test_finish_without_usage() -> None:
    events = run(TEXT_CHUNKS[:-1])
    assert events[-1]["response"]["usage"] is None
    assert events[-1]["type"] == "response.completed"


def test_finish_with_nothing_streamed_is_an_empty_message() -> None:
    assert types(run([])) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]


def test_the_translator_counts_and_stops() -> None:
    stream = translator()
    stream.feed(TEXT_CHUNKS[1])
    assert stream.next_sequence_number == 5
    stream.feed(TEXT_CHUNKS[3])
    stream.feed(TEXT_CHUNKS[4])
    assert stream.finish_reason == "stop"
    assert stream.usage == Usage.from_openai(CHAT_USAGE)
    assert stream.finish(None)
    assert stream.feed(TEXT_CHUNKS[1]) == []
    assert stream.finish(None) == []


def test_error_chunk_raises() -> None:
    with pytest.raises(ChatStreamError) as caught:
        translator().feed({"error": {"message": "overloaded", "type": "server_error"}})
    assert (caught.value.message, caught.value.code) == ("overloaded", "server_error")


@pytest.mark.parametrize(
    "piece",
    [
        "data",
        {"choices": {}},
        {"choices": [{"index": 0, "delta": "x"}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": {}}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": ["x"]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": [0]}]}}]},
    ],
)
def test_malformed_chunk_raises_value_error(piece: Any) -> None:
    with pytest.raises(ValueError):
        translator().feed(piece)


def test_fail_ends_the_stream_with_error_and_failed_events() -> None:
    stream = translator()
    events = stream.feed(chunk({"content": "Hel"}))
    events += stream.fail("upstream_error", "The provider's stream broke")
    assert types(events)[-2:] == ["error", "response.failed"]
    error, failed = events[-2:]
    assert error == {
        "type": "error",
        "sequence_number": 5,
        "code": "upstream_error",
        "message": "The provider's stream broke",
        "param": None,
        "error": {
            "type": "server_error",
            "code": "upstream_error",
            "message": "The provider's stream broke",
            "param": None,
        },
    }
    assert failed["sequence_number"] == 6
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["error"] == {"code": "upstream_error", "message": "The provider's stream broke"}
    assert failed["response"]["output"][0]["status"] == "incomplete"
    assert failed["response"]["output"][0]["content"][0]["text"] == "Hel"
    assert stream.finish(None) == []


def test_stream_error_events_standalone() -> None:
    events = stream_error_events(
        "upstream_timeout", "No answer", response_id=RESPONSE_ID, created_at=CREATED, model="gpt-5", sequence_number=9
    )
    assert [(e["type"], e["sequence_number"]) for e in events] == [("error", 9), ("response.failed", 10)]
    assert events[1]["response"]["id"] == RESPONSE_ID
    assert events[1]["response"]["output"] == []


# --- over HTTP, with the openai SDK ---------------------------------------------------------------------


def sse(events: list[dict[str, Any]]) -> bytes:
    return b"".join(b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events)


def client(server: ServerThread) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="sk-test", max_retries=0)


NO_TRACING = RunConfig(tracing_disabled=True)


def run_agent(server: ServerThread, text: str, *, model: str = "gpt-5", streamed: bool, tools: Any = ()) -> Any:
    """Run an Agents SDK agent whose default (Responses) model is served by `server`; its final output."""

    async def main() -> Any:
        async with openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="sk-test", max_retries=0) as sdk:
            helper = Agent(
                name="helper", instructions="Help.", model=OpenAIResponsesModel(model, sdk), tools=list(tools)
            )
            if not streamed:
                return (await Runner.run(helper, text, run_config=NO_TRACING)).final_output
            result = Runner.run_streamed(helper, text, run_config=NO_TRACING)
            async for _ in result.stream_events():
                pass
            return result.final_output

    return asyncio.run(main())


class Scripted:
    """A /v1/responses server that answers with whatever the test put in `reply` (a list: as SSE)."""

    def __init__(self) -> None:
        self.reply: dict[str, Any] | list[dict[str, Any]] = {}
        self.server = serve_in_thread(Starlette(routes=[Route("/v1/responses", self.answer, methods=["POST"])]))

    async def answer(self, request: Request) -> Response:
        if isinstance(self.reply, list):
            return Response(sse(self.reply), media_type="text/event-stream")
        return JSONResponse(self.reply)


@pytest.fixture(scope="module")
def scripted() -> Iterator[Scripted]:
    server = Scripted()
    yield server
    server.server.stop()


def test_sdk_stream_helper_reads_text_and_function_calls(scripted: Scripted) -> None:
    scripted.reply = run([chunk({"content": "Let me check."}), *TOOL_CHUNKS[1:]])
    with client(scripted.server) as sdk, sdk.responses.stream(model="gpt-5", input="Hi", tools=[WEATHER]) as stream:
        final = stream.get_final_response()
    assert final.output_text == "Let me check."
    calls = [item for item in final.output if item.type == "function_call"]
    assert [(c.call_id, c.name, c.arguments) for c in calls] == [
        ("call_a", "get_weather", '{"city":"Paris"}'),
        ("call_b", "get_weather", '{"city":"Rome"}'),
    ]
    assert final.usage is not None
    assert (final.usage.input_tokens, final.usage.output_tokens) == (120, 30)
    assert final.usage.input_tokens_details.cached_tokens == 100
    assert final.usage.output_tokens_details.reasoning_tokens == 12


def test_sdk_stream_iteration_yields_typed_events_in_order(scripted: Scripted) -> None:
    scripted.reply = run(TEXT_CHUNKS)
    with client(scripted.server) as sdk:
        events = list(sdk.responses.create(model="gpt-5", input="Hi", stream=True))
    assert [e.type for e in events] == types(scripted.reply)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "Hello there"


def test_sdk_stream_helper_parses_json_schema_output(scripted: Scripted) -> None:
    scripted.reply = run([chunk({"content": '{"answer": "4'}), chunk({"content": '2"}'}), chunk({}, "stop")])
    text = {"format": {"type": "json_schema", "name": "a", "schema": {"type": "object"}}}
    with client(scripted.server) as sdk, sdk.responses.stream(model="gpt-5", input="Hi", text=text) as stream:  # type: ignore[arg-type]
        assert orjson.loads(stream.get_final_response().output_text) == {"answer": "42"}


def test_sdk_create_reads_a_translated_response(scripted: Scripted) -> None:
    call = {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
    scripted.reply = respond(completion({"content": "Sure.", "tool_calls": [call]}, "tool_calls", CHAT_USAGE))
    with client(scripted.server) as sdk:
        result = sdk.responses.create(model="gpt-5", input="Hi")
    assert result.output_text == "Sure."
    assert result.output[1].type == "function_call"
    assert result.output[1].call_id == "call_a"
    assert result.usage is not None and result.usage.total_tokens == 150


def broken_stream() -> list[dict[str, Any]]:
    stream = translator()
    events = stream.feed(chunk({"content": "Hel"}))
    return events + stream.fail("upstream_error", "The provider's stream broke")


def test_sdk_raises_on_the_error_events(scripted: Scripted) -> None:
    scripted.reply = broken_stream()
    with client(scripted.server) as sdk:
        with pytest.raises(openai.APIError) as caught:
            list(sdk.responses.create(model="gpt-5", input="Hi", stream=True))
        assert caught.value.code == "upstream_error"
        assert caught.value.message == "The provider's stream broke"
        with pytest.raises(openai.APIError), sdk.responses.stream(model="gpt-5", input="Hi") as stream:
            stream.get_final_response()


def test_response_failed_alone_would_not_raise_while_iterating(scripted: Scripted) -> None:
    """Why the error event is sent too: the SDK yields a lone response.failed instead of raising."""
    scripted.reply = [event for event in broken_stream() if event["type"] != "error"]
    with client(scripted.server) as sdk:
        events = list(sdk.responses.create(model="gpt-5", input="Hi", stream=True))
        assert events[-1].type == "response.failed"
        with pytest.raises(RuntimeError), sdk.responses.stream(model="gpt-5", input="Hi") as stream:
            stream.get_final_response()


@pytest.mark.parametrize("failed_only", [False, True])
def test_agents_sdk_fails_the_run_on_the_error_events(scripted: Scripted, failed_only: bool) -> None:
    events = broken_stream()
    scripted.reply = [event for event in events if event["type"] != "error"] if failed_only else events
    with pytest.raises((openai.APIError, ModelBehaviorError), match="stream broke"):
        run_agent(scripted.server, "Hi", streamed=True)


def test_agents_sdk_reads_a_streamed_text_answer(scripted: Scripted) -> None:
    scripted.reply = run(TEXT_CHUNKS)
    assert run_agent(scripted.server, "Hi", streamed=True) == "Hello there"


# --- a translating server over the stand-in's chat completions (or its Messages API), driven by the SDKs --


ANTHROPIC_HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
UPSTREAM_PATHS = {"chat": "/v1/chat/completions", "messages": "/v1/messages"}


class Translating:
    """What the gateway does for a Responses client and a provider without the Responses API, in a few
    lines: translate the request to chat, call the stand-in's chat completions (or, `over` messages,
    translate once more and call its Anthropic Messages API), translate the answer or stream back."""

    def __init__(self, upstream: str, over: str) -> None:
        self.upstream = upstream
        self.over = over
        self.chat_requests: list[dict[str, Any]] = []
        routes = [Route("/v1/responses", self.answer, methods=["POST"])]
        self.server: ServerThread = serve_in_thread(Starlette(routes=routes))

    async def answer(self, request: Request) -> Response:
        body = await request.json()
        try:
            chat = to_chat_request(body, model=body["model"])
        except TranslationError as error:
            detail = {"message": error.message, "type": "invalid_request_error", "param": error.param, "code": None}
            return JSONResponse({"error": detail}, 400)
        self.chat_requests.append(chat)
        if chat.get("stream"):
            return StreamingResponse(self.relay(body, chat), media_type="text/event-stream")
        async with httpx.AsyncClient(base_url=self.upstream) as http:
            completion = await self.complete(http, chat)
        return JSONResponse(from_chat_response(completion, request=body, model=body["model"], created_at=CREATED))

    async def relay(self, body: dict[str, Any], chat: dict[str, Any]) -> AsyncIterator[bytes]:
        stream = StreamTranslator(body, model=body["model"], response_id=new_response_id(), created_at=CREATED)
        try:
            async with httpx.AsyncClient(base_url=self.upstream) as http:
                async for piece in self.chunks(http, chat):
                    yield sse(stream.feed(piece))
        except (httpx.HTTPError, ChatStreamError, AnthropicStreamError):
            yield sse(stream.fail("upstream_error", "The provider's stream broke"))
            return
        yield sse(stream.finish(None))

    async def complete(self, http: httpx.AsyncClient, chat: dict[str, Any]) -> dict[str, Any]:
        if self.over == "chat":
            return dict((await http.post("/v1/chat/completions", json=chat)).json())
        payload = to_anthropic_request(chat, chat["model"], 1024)
        json_tool = payload.pop(JSON_TOOL_KEY, None)
        reply = await http.post("/v1/messages", json=payload, headers=ANTHROPIC_HEADERS)
        return from_anthropic_response(reply.json(), created=CREATED, json_tool=json_tool)[0]

    async def chunks(self, http: httpx.AsyncClient, chat: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        if self.over == "chat":
            async with http.stream("POST", "/v1/chat/completions", json=chat) as reply:
                async for line in reply.aiter_lines():
                    if line.startswith("data: {"):
                        yield orjson.loads(line.removeprefix("data: "))
            return
        payload = to_anthropic_request(chat, chat["model"], 1024)
        to_chunks = MessagesToChunks(created=CREATED, include_usage=True, json_tool=payload.pop(JSON_TOOL_KEY, None))
        name = ""
        async with http.stream("POST", "/v1/messages", json=payload, headers=ANTHROPIC_HEADERS) as reply:
            async for line in reply.aiter_lines():
                if line.startswith("event: "):
                    name = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    for piece in to_chunks.feed(name, orjson.loads(line.removeprefix("data: "))):
                        yield piece


@pytest.fixture(params=["chat", "messages"])
def translating(standin: StandIn, request: pytest.FixtureRequest) -> Iterator[Translating]:
    server = Translating(standin.url, request.param)
    yield server
    server.server.stop()


@function_tool
def get_weather(city: str) -> str:
    """Current weather in a city."""
    return f"18C in {city}"


@pytest.mark.parametrize("streamed", [False, True])
def test_agents_sdk_runs_a_tool_loop(translating: Translating, standin: StandIn, streamed: bool) -> None:
    final = run_agent(translating.server, "weather in Paris?", streamed=streamed, tools=[get_weather])

    assert final == "Hello from stand-in gpt-5: weather in Paris?"
    first, second = translating.chat_requests
    assert first["tools"][0]["function"]["name"] == "get_weather"
    call_id = second["messages"][-2]["tool_calls"][0]["id"]
    assert call_id.startswith(("call_standin_", "toolu_standin_"))
    assert second["messages"][-1] == {"role": "tool", "tool_call_id": call_id, "content": "18C in x"}
    assert [entry.path for entry in standin.requests] == [UPSTREAM_PATHS[translating.over]] * 2


@pytest.mark.parametrize("model", ["stream-error", "stream-cut"])
def test_agents_sdk_fails_when_the_provider_stream_breaks(translating: Translating, model: str) -> None:
    with pytest.raises(openai.APIError) as caught:
        run_agent(translating.server, "Hi", model=model, streamed=True)
    assert caught.value.code == "upstream_error"


def test_refused_request_reaches_the_sdk_as_a_400(translating: Translating) -> None:
    with client(translating.server) as sdk, pytest.raises(openai.BadRequestError) as caught:
        sdk.responses.create(model="gpt-5", input="Hi", previous_response_id="resp_abc")
    assert caught.value.param == "previous_response_id"
    assert translating.chat_requests == []
