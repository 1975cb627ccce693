"""An Anthropic Messages call carried over Chat Completions: request, whole response, stream, and the
stream read back by the anthropic SDK's own parser and accumulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import pydantic
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.metering.usage import Usage
from gateway.translate.messages_to_chat import (
    DROPPED_FIELDS,
    StreamTranslator,
    TranslationError,
    from_chat_response,
    map_finish_reason,
    to_chat_request,
    usage_to_anthropic,
)
from tests.standin import serve_in_thread

UPSTREAM = "qwen3-coder"  # the model on the OpenAI-compatible server
CLIENT_MODEL = "claude-sonnet-4-5"  # the name the client asked for
WEATHER_TOOL: dict[str, Any] = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
CHAT_WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": WEATHER_TOOL["input_schema"],
    },
}
PNG = "iVBORw0KGgo="


def translate(messages: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return to_chat_request({"model": CLIENT_MODEL, "max_tokens": 256, "messages": messages, **fields}, model=UPSTREAM)


def refused(body: dict[str, Any]) -> TranslationError:
    with pytest.raises(TranslationError) as caught:
        to_chat_request(body, model=UPSTREAM)
    return caught.value


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def assistant(content: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": content}


def text(value: str, **extra: Any) -> dict[str, Any]:
    return {"type": "text", "text": value, **extra}


def tool_use(call_id: str, city: str) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": "get_weather", "input": {"city": city}}


def tool_result(call_id: str, content: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": call_id, "content": content, **extra}


def chat_call(call_id: str, city: str) -> dict[str, Any]:
    arguments = json.dumps({"city": city}, separators=(",", ":"))
    return {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": arguments}}


def image(source: dict[str, Any]) -> dict[str, Any]:
    return {"type": "image", "source": source}


# --- request: basics ----------------------------------------------------------------------------


def test_minimal_request() -> None:
    assert translate([user("Hi")]) == {
        "model": UPSTREAM,
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 256,
    }


def test_system_string_comes_first() -> None:
    body = translate([user("Hi")], system="Be terse.")
    assert body["messages"] == [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}]


def test_system_text_blocks_are_joined_and_cache_control_dropped() -> None:
    system = [text("You are a coding agent.", cache_control={"type": "ephemeral"}), text("Work in /repo.")]
    body = translate([user("Hi")], system=system)
    assert body["messages"][0] == {"role": "system", "content": "You are a coding agent.\n\nWork in /repo."}


@pytest.mark.parametrize("system", ["", []])
def test_empty_system_adds_no_message(system: Any) -> None:
    assert translate([user("Hi")], system=system)["messages"] == [{"role": "user", "content": "Hi"}]


def test_system_role_message_stays_in_place() -> None:
    body = translate([user("Hi"), {"role": "system", "content": [text("Now answer in French.")]}, user("Go")])
    assert body["messages"] == [
        {"role": "user", "content": "Hi"},
        {"role": "system", "content": "Now answer in French."},
        {"role": "user", "content": "Go"},
    ]


def test_sampling_fields() -> None:
    body = translate([user("Hi")], temperature=0.2, top_p=0.9, top_k=40, stop_sequences=["END", "###"])
    assert body["temperature"] == 0.2
    assert body["top_p"] == 0.9
    assert body["stop"] == ["END", "###"]
    assert "top_k" not in body


def test_empty_stop_sequences_send_no_stop() -> None:
    assert "stop" not in translate([user("Hi")], stop_sequences=[])


def test_metadata_user_id_becomes_user() -> None:
    assert translate([user("Hi")], metadata={"user_id": "agent-7"})["user"] == "agent-7"
    assert "user" not in translate([user("Hi")], metadata={})


def test_stream_asks_for_the_usage_chunk() -> None:
    body = translate([user("Hi")], stream=True)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert "stream" not in translate([user("Hi")], stream=False)


def test_fields_without_counterpart_are_dropped() -> None:
    extras = {
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "cache_control": {"type": "ephemeral"},
        "service_tier": "auto",
        "top_k": 5,
        "context_management": {"edits": []},
        "some_future_field": 1,
    }
    assert set(extras) - {"some_future_field"} <= DROPPED_FIELDS
    assert translate([user("Hi")], **extras) == translate([user("Hi")])


def test_output_config_json_schema_becomes_response_format() -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "additionalProperties": False}
    body = translate(
        [user("Hi")], output_config={"effort": "high", "format": {"type": "json_schema", "schema": schema}}
    )
    assert body["response_format"] == {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
    assert "response_format" not in translate([user("Hi")], output_config={"effort": "low"})


# --- request: user content ----------------------------------------------------------------------


def test_text_blocks_and_images_become_parts() -> None:
    body = translate(
        [
            user(
                [
                    text("What is in these?", cache_control={"type": "ephemeral"}),
                    image({"type": "base64", "media_type": "image/png", "data": PNG}),
                    image({"type": "url", "url": "https://example.com/cat.jpg"}),
                ]
            )
        ]
    )
    assert body["messages"] == [
        user(
            [
                {"type": "text", "text": "What is in these?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            ]
        )
    ]


def test_a_single_text_block_becomes_a_string() -> None:
    assert translate([user([text("Hi")])])["messages"] == [user("Hi")]


def test_several_text_blocks_stay_parts() -> None:
    content = [text("<system-reminder>cwd is /repo</system-reminder>"), text("Fix the bug")]
    assert translate([user(content)])["messages"] == [user(content)]


def test_plain_text_document_becomes_text_with_its_title() -> None:
    document = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "The grass is green."},
        "title": "notes.txt",
        "citations": {"enabled": True},
    }
    body = translate([user([document, text("Summarise")])])
    assert body["messages"] == [user([text("notes.txt"), text("The grass is green."), text("Summarise")])]


def test_content_document_becomes_its_blocks() -> None:
    source = {"type": "content", "content": [text("Part one."), text("Part two.")]}
    body = translate([user([{"type": "document", "source": source}])])
    assert body["messages"] == [user([text("Part one."), text("Part two.")])]


def test_search_result_becomes_text() -> None:
    result = {"type": "search_result", "title": "Docs", "source": "https://x.test/d", "content": [text("Answer.")]}
    assert translate([user([result])])["messages"] == [user("Docs\nSource: https://x.test/d\n\nAnswer.")]


@pytest.mark.parametrize(
    "source",
    [
        {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
        {"type": "url", "url": "https://example.com/paper.pdf"},
        {"type": "file", "file_id": "file_011"},
    ],
)
def test_pdf_and_file_documents_are_refused(source: dict[str, Any]) -> None:
    body = {"max_tokens": 10, "messages": [user([text("Read this"), {"type": "document", "source": source}])]}
    error = refused(body)
    assert error.param == "messages.0.content.1"
    assert error.message.startswith("messages.0.content.1: documents with a")


def test_file_image_is_refused() -> None:
    error = refused({"max_tokens": 10, "messages": [user([image({"type": "file", "file_id": "file_011"})])]})
    assert error.param == "messages.0.content.0.source"


def test_tool_use_in_a_user_message_is_refused() -> None:
    assert (
        refused({"max_tokens": 10, "messages": [user([tool_use("toolu_1", "Paris")])]}).param == "messages.0.content.0"
    )


# --- request: tool use across turns -------------------------------------------------------------


def test_tool_use_and_results_round_trip_across_turns() -> None:
    body = translate(
        [
            user("Weather in Paris, then Rome?"),
            assistant([text("Checking Paris."), tool_use("toolu_1", "Paris")]),
            user([tool_result("toolu_1", "Sunny, 24C")]),
            assistant([tool_use("toolu_2", "Rome")]),
            user([tool_result("toolu_2", [text("Rain, 18C")])]),
            assistant("Paris is sunny; Rome is rainy."),
            user("Thanks"),
        ],
        tools=[WEATHER_TOOL],
    )
    assert body["messages"] == [
        user("Weather in Paris, then Rome?"),
        {"role": "assistant", "content": "Checking Paris.", "tool_calls": [chat_call("toolu_1", "Paris")]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "Sunny, 24C"},
        {"role": "assistant", "content": None, "tool_calls": [chat_call("toolu_2", "Rome")]},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "Rain, 18C"},
        {"role": "assistant", "content": "Paris is sunny; Rome is rainy."},
        user("Thanks"),
    ]
    assert body["tools"] == [CHAT_WEATHER_TOOL]


def test_several_tool_results_come_first_then_the_rest_as_a_user_message() -> None:
    body = translate(
        [
            user("Weather in three cities?"),
            assistant([tool_use("toolu_1", "Paris"), tool_use("toolu_2", "Rome"), tool_use("toolu_3", "Oslo")]),
            user(
                [
                    tool_result("toolu_1", "Sunny"),
                    tool_result("toolu_2", "Rain"),
                    text("<system-reminder>be brief</system-reminder>"),
                    tool_result("toolu_3", "Snow"),
                ]
            ),
        ]
    )
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "tool", "tool", "tool", "user"]
    assert [m.get("tool_call_id") for m in body["messages"][2:5]] == ["toolu_1", "toolu_2", "toolu_3"]
    assert body["messages"][5] == user("<system-reminder>be brief</system-reminder>")


def test_consecutive_user_messages_are_merged_so_tool_results_stay_together() -> None:
    body = translate(
        [
            user("Two cities?"),
            assistant([tool_use("toolu_1", "Paris"), tool_use("toolu_2", "Rome")]),
            user([tool_result("toolu_1", "Sunny"), text("note")]),
            user([tool_result("toolu_2", "Rain")]),
        ]
    )
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "tool", "tool", "user"]
    assert body["messages"][-1] == user("note")


def test_consecutive_assistant_messages_are_merged() -> None:
    body = translate([user("Hi"), assistant("Let me look"), assistant([text("."), tool_use("toolu_1", "Oslo")])])
    assert body["messages"][1] == {
        "role": "assistant",
        "content": "Let me look.",
        "tool_calls": [chat_call("toolu_1", "Oslo")],
    }


def test_tool_result_error_and_empty_content() -> None:
    body = translate(
        [
            user("Go"),
            assistant([tool_use("toolu_1", "Paris"), tool_use("toolu_2", "Rome")]),
            user(
                [
                    tool_result("toolu_1", "city not found", is_error=True),
                    {"type": "tool_result", "tool_use_id": "toolu_2"},
                ]
            ),
        ]
    )
    assert body["messages"][2:] == [
        {"role": "tool", "tool_call_id": "toolu_1", "content": "Error: city not found"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": ""},
    ]


def test_tool_result_text_blocks_are_joined() -> None:
    body = translate(
        [user("Go"), assistant([tool_use("toolu_1", "Paris")]), user([tool_result("toolu_1", [text("a"), text("b")])])]
    )
    assert body["messages"][2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "a\n\nb"}


def test_tool_result_images_follow_in_a_user_message() -> None:
    screenshot = image({"type": "base64", "media_type": "image/png", "data": PNG})
    body = translate(
        [
            user("Take a screenshot"),
            assistant([{"type": "tool_use", "id": "toolu_1", "name": "screenshot", "input": {}}]),
            user([tool_result("toolu_1", [text("Captured."), screenshot]), text("What do you see?")]),
        ]
    )
    assert body["messages"][1]["tool_calls"][0]["function"] == {"name": "screenshot", "arguments": "{}"}
    assert body["messages"][2:] == [
        {"role": "tool", "tool_call_id": "toolu_1", "content": "Captured.\n\n[image: in the next user message]"},
        user(
            [
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "text", "text": "What do you see?"},
            ]
        ),
    ]


def test_thinking_blocks_are_dropped() -> None:
    thinking = {"type": "thinking", "thinking": "The user wants...", "signature": "sig"}
    redacted = {"type": "redacted_thinking", "data": "opaque"}
    body = translate(
        [user("Hi"), assistant([thinking, redacted, text("Hello")]), user("Bye"), assistant([thinking]), user("?")]
    )
    assert body["messages"] == [user("Hi"), {"role": "assistant", "content": "Hello"}, user("Bye"), user("?")]


@pytest.mark.parametrize(
    "block",
    [
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "x"}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
        {"type": "code_execution_tool_result", "tool_use_id": "srvtoolu_1", "content": {}},
    ],
)
def test_server_tool_blocks_in_history_are_refused(block: dict[str, Any]) -> None:
    error = refused({"max_tokens": 10, "messages": [user("Search"), assistant([text("Searching"), block])]})
    assert error.param == "messages.1.content.1"
    assert "server tool" in error.message


# --- request: tools -----------------------------------------------------------------------------


def test_tools_become_function_tools() -> None:
    bare = {
        "name": "list_files",
        "input_schema": {"type": "object", "$schema": "https://json-schema.org/draft/2020-12/schema"},
    }
    cached = {**WEATHER_TOOL, "cache_control": {"type": "ephemeral"}, "strict": True, "type": "custom"}
    assert translate([user("Hi")], tools=[bare, cached])["tools"] == [
        {"type": "function", "function": {"name": "list_files", "parameters": bare["input_schema"]}},
        CHAT_WEATHER_TOOL,
    ]


@pytest.mark.parametrize(
    "tool",
    [
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
        {"type": "web_fetch_20250910", "name": "web_fetch"},
        {"type": "bash_20250124", "name": "bash"},
        {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
        {"type": "computer_20250124", "name": "computer", "display_width_px": 1024, "display_height_px": 768},
        {"type": "code_execution_20250825", "name": "code_execution"},
        {"type": "memory_20250818", "name": "memory"},
    ],
)
def test_server_tools_are_refused(tool: dict[str, Any]) -> None:
    error = refused({"max_tokens": 10, "messages": [user("Hi")], "tools": [WEATHER_TOOL, tool]})
    assert error.param == "tools.1"
    assert f"'{tool['type']}'" in error.message


def test_mcp_servers_are_refused() -> None:
    servers = [{"type": "url", "url": "https://mcp.example.com/sse", "name": "x"}]
    assert refused({"max_tokens": 10, "messages": [user("Hi")], "mcp_servers": servers}).param == "mcp_servers"


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, {"tool_choice": "auto"}),
        ({"type": "any"}, {"tool_choice": "required"}),
        ({"type": "none"}, {"tool_choice": "none"}),
        (
            {"type": "tool", "name": "get_weather"},
            {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
        ),
        ({"type": "auto", "disable_parallel_tool_use": True}, {"tool_choice": "auto", "parallel_tool_calls": False}),
        ({"type": "any", "disable_parallel_tool_use": True}, {"tool_choice": "required", "parallel_tool_calls": False}),
        (
            {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
            {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}, "parallel_tool_calls": False},
        ),
        ({"type": "auto", "disable_parallel_tool_use": False}, {"tool_choice": "auto"}),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: dict[str, Any]) -> None:
    body = translate([user("Hi")], tools=[WEATHER_TOOL], tool_choice=choice)
    assert {k: body[k] for k in ("tool_choice", "parallel_tool_calls") if k in body} == expected


def test_tool_choice_without_tools_is_dropped() -> None:
    body = translate([user("Hi")], tools=[], tool_choice={"type": "any"})
    assert "tools" not in body
    assert "tool_choice" not in body


# --- request: malformed input -------------------------------------------------------------------


def body_with(**fields: Any) -> dict[str, Any]:
    return {"model": CLIENT_MODEL, "max_tokens": 10, "messages": [user("Hi")], **fields}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [user("Hi")]}, "max_tokens"),
        (body_with(max_tokens="10"), "max_tokens"),
        (body_with(max_tokens=True), "max_tokens"),
        (body_with(max_tokens=0), "max_tokens"),
        (body_with(messages=None), "messages"),
        (body_with(messages={"role": "user"}), "messages"),
        (body_with(messages=["Hi"]), "messages.0"),
        (body_with(messages=[{"role": "tool", "content": "x"}]), "messages.0.role"),
        (body_with(messages=[{"content": "x"}]), "messages.0.role"),
        (body_with(messages=[user(7)]), "messages.0.content"),
        (body_with(messages=[user(None)]), "messages.0.content"),
        (body_with(messages=[user(["Hi"])]), "messages.0.content.0"),
        (body_with(messages=[user([{"text": "Hi"}])]), "messages.0.content.0.type"),
        (body_with(messages=[user([{"type": "text", "text": 5}])]), "messages.0.content.0.text"),
        (body_with(messages=[user([{"type": "video"}])]), "messages.0.content.0"),
        (body_with(messages=[user([{"type": "image"}])]), "messages.0.content.0.source"),
        (
            body_with(messages=[user([image({"type": "base64", "data": PNG})])]),
            "messages.0.content.0.source.media_type",
        ),
        (body_with(messages=[user([image({"type": "url"})])]), "messages.0.content.0.source.url"),
        (
            body_with(messages=[user([{"type": "document", "source": {"type": "text"}}])]),
            "messages.0.content.0.source.data",
        ),
        (
            body_with(messages=[assistant([{"type": "tool_use", "id": "t", "name": "x", "input": "{}"}])]),
            "messages.0.content.0.input",
        ),
        (body_with(messages=[assistant([{"type": "tool_use", "name": "x", "input": {}}])]), "messages.0.content.0.id"),
        (body_with(messages=[assistant([{"type": "tool_use", "id": "t", "input": {}}])]), "messages.0.content.0.name"),
        (
            body_with(messages=[assistant([image({"type": "url", "url": "https://x.test/a.png"})])]),
            "messages.0.content.0",
        ),
        (body_with(messages=[user([{"type": "tool_result", "content": "x"}])]), "messages.0.content.0.tool_use_id"),
        (body_with(messages=[user([tool_result("t", 5)])]), "messages.0.content.0.content"),
        (
            body_with(messages=[user([tool_result("t", [{"type": "tool_reference", "tool_name": "x"}])])]),
            "messages.0.content.0.content.0",
        ),
        (body_with(messages=[user([tool_result("t", "x", is_error="yes")])]), "messages.0.content.0.is_error"),
        (body_with(system=5), "system"),
        (body_with(system=[{"type": "image"}]), "system.0.type"),
        (body_with(system=["Be terse"]), "system.0"),
        (body_with(temperature="hot"), "temperature"),
        (body_with(top_p=True), "top_p"),
        (body_with(stop_sequences="END"), "stop_sequences"),
        (body_with(stop_sequences=["END", 3]), "stop_sequences.1"),
        (body_with(metadata="agent"), "metadata"),
        (body_with(metadata={"user_id": 7}), "metadata.user_id"),
        (body_with(stream="yes"), "stream"),
        (body_with(tools={"name": "x"}), "tools"),
        (body_with(tools=["get_weather"]), "tools.0"),
        (body_with(tools=[{"input_schema": {}}]), "tools.0.name"),
        (body_with(tools=[{"name": "x"}]), "tools.0.input_schema"),
        (body_with(tools=[{"name": "x", "input_schema": {}, "description": 1}]), "tools.0.description"),
        (body_with(tools=[{"type": 3, "name": "x"}]), "tools.0.type"),
        (body_with(tools=[WEATHER_TOOL], tool_choice="auto"), "tool_choice"),
        (body_with(tools=[WEATHER_TOOL], tool_choice={"type": "function"}), "tool_choice.type"),
        (body_with(tools=[WEATHER_TOOL], tool_choice={"type": "tool"}), "tool_choice.name"),
        (
            body_with(tools=[WEATHER_TOOL], tool_choice={"type": "any", "disable_parallel_tool_use": 1}),
            "tool_choice.disable_parallel_tool_use",
        ),
        (body_with(output_config={"format": {"type": "xml"}}), "output_config.format.type"),
        (body_with(output_config={"format": {"type": "json_schema"}}), "output_config.format.schema"),
    ],
)
def test_malformed_input_names_its_path(body: dict[str, Any], param: str) -> None:
    error = refused(body)
    assert error.param == param
    assert error.message.startswith(f"{param}: ")


def test_unwritable_tool_input_is_refused() -> None:
    body = body_with(
        messages=[user("Hi"), assistant([{"type": "tool_use", "id": "t", "name": "x", "input": {"n": 2**70}}])]
    )
    assert refused(body).param == "messages.1.content.0.input"


# --- whole response -----------------------------------------------------------------------------


def completion(
    message: dict[str, Any], finish_reason: str | None = "stop", usage: dict[str, Any] | None = None, **choice: Any
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-abc123",
        "object": "chat.completion",
        "created": 1700000000,
        "model": UPSTREAM,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None, **choice}],
        "usage": usage or {"prompt_tokens": 30, "completion_tokens": 7, "total_tokens": 37},
    }


def reply(content: str | None, tool_calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    return message


def call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def answer(data: dict[str, Any], **options: Any) -> dict[str, Any]:
    message = from_chat_response(data, model=CLIENT_MODEL, **options)
    Message.model_validate(message)  # the shape the anthropic SDK reads
    return message


def test_text_response() -> None:
    assert answer(completion(reply("Hello!"))) == {
        "id": "msg_abc123",
        "type": "message",
        "role": "assistant",
        "model": CLIENT_MODEL,
        "content": [{"type": "text", "text": "Hello!"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 30,
            "output_tokens": 7,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        },
    }


def test_tool_use_response_puts_text_first_and_parses_arguments() -> None:
    calls = [call("call_1", "get_weather", '{"city": "Paris"}'), call("call_2", "get_weather", '{"city":"Rome"}')]
    message = answer(completion(reply("Checking both.", calls), "tool_calls"))
    assert message["content"] == [
        {"type": "text", "text": "Checking both."},
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"city": "Rome"}},
    ]
    assert message["stop_reason"] == "tool_use"


@pytest.mark.parametrize("arguments", ["", "   ", '{"city": "Par', "[1, 2]", '"Paris"', "null"])
def test_unusable_tool_arguments_give_an_empty_input(arguments: str) -> None:
    message = answer(completion(reply(None, [call("call_1", "get_weather", arguments)]), "tool_calls"))
    assert message["content"] == [{"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}}]


def test_tool_calls_without_ids_get_distinct_ones() -> None:
    calls = [{"type": "function", "function": {"name": "a", "arguments": "{}"}}, call("", "b", "{}")]
    ids = [block["id"] for block in answer(completion(reply(None, calls), "tool_calls"))["content"]]
    assert ids == ["toolu_abc123_0", "toolu_abc123_1"]


@pytest.mark.parametrize(
    ("finish_reason", "with_tools", "stop_reason"),
    [
        ("stop", False, "end_turn"),
        ("length", False, "max_tokens"),
        ("tool_calls", True, "tool_use"),
        ("content_filter", False, "refusal"),
        ("function_call", True, "tool_use"),
        (None, False, "end_turn"),
        ("something_new", False, "end_turn"),
        ("stop", True, "tool_use"),  # some servers (Ollama) say "stop" with tool calls
        ("tool_calls", False, "end_turn"),  # no tool_use block to go with it
        ("length", True, "max_tokens"),  # the arguments may be cut short
    ],
)
def test_stop_reasons(finish_reason: str | None, with_tools: bool, stop_reason: str) -> None:
    calls = [call("call_1", "get_weather", '{"city": "Oslo"}')] if with_tools else None
    assert answer(completion(reply("x", calls), finish_reason))["stop_reason"] == stop_reason
    assert map_finish_reason(finish_reason, tool_calls=with_tools) == stop_reason


def test_stop_sequence_named_by_the_server() -> None:
    message = answer(completion(reply("1, 2, 3"), "stop", stop_reason="END"))  # vLLM names the matched stop
    assert (message["stop_reason"], message["stop_sequence"]) == ("stop_sequence", "END")


@pytest.mark.parametrize("matched", [None, 128001, ""])
def test_stop_without_a_named_sequence_is_end_turn(matched: Any) -> None:
    message = answer(completion(reply("Done"), "stop", stop_reason=matched))
    assert (message["stop_reason"], message["stop_sequence"]) == ("end_turn", None)


def test_refusal_becomes_text_and_stops_for_refusal() -> None:
    message = answer(completion({"role": "assistant", "content": None, "refusal": "I can't help with that."}))
    assert message["content"] == [{"type": "text", "text": "I can't help with that."}]
    assert message["stop_reason"] == "refusal"


def test_empty_reply_has_no_content_blocks() -> None:
    assert answer(completion(reply(None), "length"))["content"] == []
    assert answer(completion(reply("")))["content"] == []


def test_content_as_text_parts_is_read() -> None:
    message = answer(
        completion({"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]})
    )
    assert message["content"] == [{"type": "text", "text": "ab"}]


def test_usage_leaves_cached_tokens_out_of_input_tokens() -> None:
    usage = {
        "prompt_tokens": 1200,
        "completion_tokens": 80,
        "total_tokens": 1280,
        "prompt_tokens_details": {"cached_tokens": 1000},
    }
    assert answer(completion(reply("Hi"), usage=usage))["usage"] == {
        "input_tokens": 200,
        "output_tokens": 80,
        "cache_read_input_tokens": 1000,
        "cache_creation_input_tokens": 0,
    }


def test_usage_given_by_the_gateway_wins() -> None:
    usage = Usage(input_tokens=500, output_tokens=40, cached_tokens=300, cache_write_tokens=50, estimated=True)
    assert answer(completion(reply("Hi")), usage=usage)["usage"] == {
        "input_tokens": 150,
        "output_tokens": 40,
        "cache_read_input_tokens": 300,
        "cache_creation_input_tokens": 50,
    }


def test_missing_usage_counts_zero() -> None:
    data = completion(reply("Hi"))
    del data["usage"]
    assert answer(data)["usage"] == usage_to_anthropic(Usage())


def test_message_id() -> None:
    assert answer(completion(reply("Hi")), message_id="msg_given")["id"] == "msg_given"
    data = completion(reply("Hi"))
    del data["id"]
    first, second = answer(data)["id"], answer(data)["id"]
    assert first.startswith("msg_") and second.startswith("msg_") and first != second


@pytest.mark.parametrize(
    "data",
    [
        {"id": "x", "choices": []},
        {"id": "x"},
        {"id": "x", "choices": "none"},
        {"id": "x", "choices": [{"index": 1, "message": reply("Hi")}]},
        {"id": "x", "choices": [{"index": 0, "finish_reason": "stop"}]},
        completion(reply(None, "call")),
        completion(reply(None, ["call"])),
        completion(reply(None, [{"id": "c", "function": {"arguments": "{}"}}])),
        completion(reply(None, [{"id": "c", "type": "function"}])),
    ],
)
def test_malformed_completion_raises_value_error(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        from_chat_response(data, model=CLIENT_MODEL)


# --- stream -------------------------------------------------------------------------------------

STREAM_EVENT: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(RawMessageStreamEvent)


def chunk(delta: dict[str, Any], finish_reason: str | None = None, **choice: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-s1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": UPSTREAM,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None, **choice}],
        "usage": None,
    }


def usage_chunk(prompt: int, completion_tokens: int, cached: int = 0) -> dict[str, Any]:
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached},
    }
    return {
        "id": "chatcmpl-s1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": UPSTREAM,
        "choices": [],
        "usage": usage,
    }


def tool_delta(index: int, arguments: str, call_id: str | None = None, name: str | None = None) -> dict[str, Any]:
    tool_call: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if call_id is not None:
        tool_call.update(id=call_id, type="function")
        tool_call["function"]["name"] = name
    return {"tool_calls": [tool_call]}


def run(chunks: list[dict[str, Any]], usage: Usage | None = None, **options: Any) -> list[dict[str, Any]]:
    translator = StreamTranslator(model=CLIENT_MODEL, **options)
    events = [event for c in chunks for event in translator.feed(c)] + translator.finish(usage)
    for event in events:
        STREAM_EVENT.validate_python(event)  # each event has the shape the anthropic SDK reads
    return events


def message_start(input_tokens: int = 0, message_id: str = "msg_s1") -> dict[str, Any]:
    usage = {
        "input_tokens": input_tokens,
        "output_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0,
    }
    message = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": CLIENT_MODEL,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
    return {"type": "message_start", "message": message}


def text_delta(index: int, value: str) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": value}}


def json_delta(index: int, partial: str) -> dict[str, Any]:
    return {
        "type": "content_block_delta",
        "index": index,
        "delta": {"type": "input_json_delta", "partial_json": partial},
    }


def block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def block_stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


def message_end(
    stop_reason: str, usage: dict[str, int] | None = None, stop_sequence: str | None = None
) -> list[dict[str, Any]]:
    usage = usage or usage_to_anthropic(Usage())
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
        "usage": usage,
    }
    return [delta, {"type": "message_stop"}]


def test_stream_text_only() -> None:
    chunks = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}),
        chunk({}, "stop"),
    ]
    assert run(chunks) == [
        message_start(),
        block_start(0, {"type": "text", "text": ""}),
        text_delta(0, "Hel"),
        text_delta(0, "lo"),
        block_stop(0),
        *message_end("end_turn"),
    ]


def test_stream_tool_call_with_arguments_split_across_chunks() -> None:
    chunks = [
        chunk({"role": "assistant", "content": None}),
        chunk(tool_delta(0, "", "call_1", "get_weather")),
        chunk(tool_delta(0, '{"ci')),
        chunk(tool_delta(0, 'ty": "Pa')),
        chunk(tool_delta(0, 'ris"}')),
        chunk({}, "tool_calls"),
    ]
    assert run(chunks) == [
        message_start(),
        block_start(0, {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}}),
        json_delta(0, '{"ci'),
        json_delta(0, 'ty": "Pa'),
        json_delta(0, 'ris"}'),
        block_stop(0),
        *message_end("tool_use"),
    ]


def test_stream_text_then_two_tool_calls() -> None:
    chunks = [
        chunk({"role": "assistant", "content": "Checking."}),
        chunk(tool_delta(0, '{"city": "Paris"}', "call_1", "get_weather")),
        chunk(tool_delta(1, "", "call_2", "get_weather")),
        chunk(tool_delta(1, '{"city": "Rome"}')),
        chunk({}, "tool_calls"),
    ]
    assert run(chunks) == [
        message_start(),
        block_start(0, {"type": "text", "text": ""}),
        text_delta(0, "Checking."),
        block_stop(0),
        block_start(1, {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}}),
        json_delta(1, '{"city": "Paris"}'),
        block_stop(1),
        block_start(2, {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {}}),
        json_delta(2, '{"city": "Rome"}'),
        block_stop(2),
        *message_end("tool_use"),
    ]


def test_stream_usage_chunk_and_the_gateways_usage() -> None:
    chunks = [chunk({"content": "Hi"}), chunk({}, "stop"), usage_chunk(1200, 9, cached=1000)]
    from_chunk = {
        "input_tokens": 200,
        "output_tokens": 9,
        "cache_read_input_tokens": 1000,
        "cache_creation_input_tokens": 0,
    }
    assert run(chunks)[-2:] == message_end("end_turn", from_chunk)
    final = Usage(input_tokens=1300, output_tokens=12, cached_tokens=1000, cache_write_tokens=100)
    from_gateway = {
        "input_tokens": 200,
        "output_tokens": 12,
        "cache_read_input_tokens": 1000,
        "cache_creation_input_tokens": 100,
    }
    assert run(chunks, final)[-2:] == message_end("end_turn", from_gateway)


def test_stream_finish_without_usage_counts_zero() -> None:
    assert run([chunk({"content": "Hi"}), chunk({}, "stop")])[-2:] == message_end(
        "end_turn", usage_to_anthropic(Usage())
    )


def test_stream_message_start_reports_the_known_input_tokens() -> None:
    assert run([chunk({"content": "Hi"})], input_tokens=42, message_id="msg_fixed")[0] == message_start(42, "msg_fixed")


def test_stream_with_no_chunks_still_makes_a_whole_message() -> None:
    assert [event["type"] for event in run([])] == ["message_start", "message_delta", "message_stop"]


@pytest.mark.parametrize(
    ("last", "stop_reason", "stop_sequence"),
    [
        (chunk({}, "length"), "max_tokens", None),
        (chunk({}, "content_filter"), "refusal", None),
        (chunk({}, "stop", stop_reason="END"), "stop_sequence", "END"),
        (chunk({}, "stop", stop_reason=None), "end_turn", None),
        (chunk({"content": "!"}), "end_turn", None),  # the stream ended without a finish_reason
    ],
)
def test_stream_stop_reasons(last: dict[str, Any], stop_reason: str, stop_sequence: str | None) -> None:
    delta = run([chunk({"content": "1, 2"}), last])[-2]
    assert delta["delta"] == {"stop_reason": stop_reason, "stop_sequence": stop_sequence}


def test_stream_refusal_is_text_and_stops_for_refusal() -> None:
    events = run([chunk({"refusal": "I can't"}), chunk({"refusal": " help."}), chunk({}, "stop")])
    assert events[1:4] == [
        block_start(0, {"type": "text", "text": ""}),
        text_delta(0, "I can't"),
        text_delta(0, " help."),
    ]
    assert events[-2]["delta"]["stop_reason"] == "refusal"


def test_stream_text_after_a_tool_call_opens_a_new_block() -> None:
    events = run([chunk(tool_delta(0, "{}", "call_1", "ls")), chunk({"content": "Done."}), chunk({}, "tool_calls")])
    assert [(e["type"], e.get("index")) for e in events[1:6]] == [
        ("content_block_start", 0),
        ("content_block_delta", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_delta", 1),
    ]


def test_stream_tool_call_without_id_gets_one() -> None:
    events = run(
        [chunk({"tool_calls": [{"index": 0, "function": {"name": "ls", "arguments": "{}"}}]}), chunk({}, "tool_calls")]
    )
    assert events[1]["content_block"]["id"] == "toolu_s1_0"


def test_stream_reused_index_with_a_new_id_is_a_new_call() -> None:
    events = run(
        [
            chunk(tool_delta(0, "{}", "call_1", "ls")),
            chunk(tool_delta(0, "{}", "call_2", "pwd")),
            chunk({}, "tool_calls"),
        ]
    )
    starts = [e["content_block"]["id"] for e in events if e["type"] == "content_block_start"]
    assert starts == ["call_1", "call_2"]


def test_stream_reads_choice_zero_only_and_skips_empty_and_reasoning_deltas() -> None:
    other = chunk({"content": "second answer"})
    other["choices"][0]["index"] = 1
    chunks = [
        chunk({"role": "assistant"}),
        chunk({"content": ""}),
        chunk({"reasoning_content": "hmm"}),
        other,
        chunk({"content": "Hi"}),
    ]
    assert run(chunks)[1:3] == [block_start(0, {"type": "text", "text": ""}), text_delta(0, "Hi")]


def test_stream_ends_once() -> None:
    translator = StreamTranslator(model=CLIENT_MODEL)
    translator.feed(chunk({"content": "Hi"}))
    closing = [event["type"] for event in translator.finish(None)]
    assert closing == ["content_block_stop", "message_delta", "message_stop"]
    assert translator.finish(None) == []
    assert translator.feed(chunk({"content": "late"})) == []
    assert translator.message_id == "msg_s1"
    assert translator.stop_reason == "end_turn"


@pytest.mark.parametrize(
    "bad",
    [
        {"id": "x", "choices": "none"},
        {"id": "x", "choices": ["x"]},
        {"id": "x", "choices": [{"index": 0, "delta": "hi"}]},
        {"id": "x", "choices": [{"index": 0, "delta": {"tool_calls": {"index": 0}}}]},
        {"id": "x", "choices": [{"index": 0, "delta": {"tool_calls": ["call"]}}]},
        {"id": "x", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": "0", "function": {"name": "ls"}}]}}]},
        {
            "id": "x",
            "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}}],
        },
    ],
)
def test_stream_malformed_chunk_raises_value_error(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        StreamTranslator(model=CLIENT_MODEL).feed(bad)


# --- the anthropic SDK reads the translation ----------------------------------------------------


def sse(events: list[dict[str, Any]]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


@pytest.fixture(scope="module")
def provider() -> Iterator[tuple[str, dict[str, Any]]]:
    """A stand-in `/v1/messages` that translates the SDK's request to chat and answers with the
    translation of the chat completion (or chunks) the test put in `script`."""
    script: dict[str, Any] = {}

    async def messages(request: Request) -> Response:
        body = await request.json()
        script["chat_request"] = to_chat_request(body, model=UPSTREAM)
        usage = script.get("usage")
        if not body.get("stream"):
            message = from_chat_response(script["completion"], model=body["model"], usage=usage)
            return Response(json.dumps(message), media_type="application/json")
        translator = StreamTranslator(model=body["model"])
        events = [event for c in script["chunks"] for event in translator.feed(c)] + translator.finish(usage)
        return Response(sse(events), media_type="text/event-stream")

    app = Starlette(routes=[Route("/v1/messages", messages, methods=["POST"])])
    with serve_in_thread(app, lifespan="off") as server:
        yield server.url, script


def client(url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key="test-key", max_retries=0)


def test_the_sdk_accumulates_the_streamed_text_and_tool_use(provider: tuple[str, dict[str, Any]]) -> None:
    url, script = provider
    script["usage"] = None
    script["chunks"] = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Let me "}),
        chunk({"content": "check."}),
        chunk(tool_delta(0, "", "call_1", "get_weather")),
        chunk(tool_delta(0, '{"city": ')),
        chunk(tool_delta(0, '"Paris", "units": ["C", ')),
        chunk(tool_delta(0, '"F"]}')),
        chunk({}, "tool_calls"),
        usage_chunk(1200, 25, cached=1000),
    ]
    with client(url).messages.stream(
        model=CLIENT_MODEL, max_tokens=256, messages=[{"role": "user", "content": "Weather?"}], tools=[WEATHER_TOOL]
    ) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()

    assert script["chat_request"]["stream_options"] == {"include_usage": True}
    assert texts == ["Let me ", "check."]
    assert final.id == "msg_s1"
    assert final.model == CLIENT_MODEL
    assert [block.type for block in final.content] == ["text", "tool_use"]
    assert final.content[0].type == "text" and final.content[0].text == "Let me check."
    tool = final.content[1]
    assert tool.type == "tool_use"
    assert (tool.id, tool.name, tool.input) == ("call_1", "get_weather", {"city": "Paris", "units": ["C", "F"]})
    assert (final.stop_reason, final.stop_sequence) == ("tool_use", None)
    usage = final.usage
    assert (usage.input_tokens, usage.output_tokens) == (200, 25)
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (1000, 0)


def test_the_sdk_takes_the_gateways_usage_from_message_delta(provider: tuple[str, dict[str, Any]]) -> None:
    url, script = provider
    script["usage"] = Usage(input_tokens=40, output_tokens=3, estimated=True)
    script["chunks"] = [chunk({"content": "Hi"}), chunk({}, "stop", stop_reason="END")]
    with client(url).messages.stream(
        model=CLIENT_MODEL, max_tokens=16, stop_sequences=["END"], messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        final = stream.get_final_message()
    assert script["chat_request"]["stop"] == ["END"]
    assert final.content[0].type == "text" and final.content[0].text == "Hi"
    assert (final.stop_reason, final.stop_sequence) == ("stop_sequence", "END")
    assert (final.usage.input_tokens, final.usage.output_tokens) == (40, 3)


def test_the_sdk_reads_the_whole_message(provider: tuple[str, dict[str, Any]]) -> None:
    url, script = provider
    script["usage"] = None
    script["completion"] = completion(
        reply("On it.", [call("call_9", "get_weather", '{"city": "Oslo"}')]), "tool_calls"
    )
    message = client(url).messages.create(
        model=CLIENT_MODEL, max_tokens=64, messages=[{"role": "user", "content": "Oslo?"}], tools=[WEATHER_TOOL]
    )
    assert "stream" not in script["chat_request"]
    assert message.content[0].type == "text" and message.content[0].text == "On it."
    assert message.content[1].type == "tool_use" and message.content[1].input == {"city": "Oslo"}
    assert message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (30, 7)


def test_tool_arguments_too_deep_to_serialise_again_become_an_empty_input() -> None:
    deep = '{"a": ' + "[" * 300 + "1" + "]" * 300 + "}"
    completion = {
        "id": "chatcmpl-1",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": deep}}],
                },
                "finish_reason": "tool_calls",
            }
        ],
    }
    [tool_use] = from_chat_response(completion, model="m")["content"]
    assert tool_use["type"] == "tool_use" and tool_use["input"] == {}
