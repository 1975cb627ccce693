"""OpenAI chat <-> Anthropic Messages translation (request, response, stream)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.metering.usage import Usage
from gateway.translate.chat_to_messages import (
    DROPPED_OPENAI_FIELDS,
    JSON_OBJECT_INSTRUCTION,
    JSON_TOOL_KEY,
    AnthropicStreamError,
    StreamTranslator,
    TranslationError,
    from_anthropic_response,
    map_stop_reason,
    to_anthropic_request,
    usage_from_anthropic,
)

MODEL = "claude-sonnet-4-5-20250929"
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def translate(messages: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return to_anthropic_request({"model": "claude", "messages": messages, **fields}, MODEL, 1024)


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def translation_error(messages: list[dict[str, Any]], **fields: Any) -> TranslationError:
    with pytest.raises(TranslationError) as caught:
        translate(messages, **fields)
    return caught.value


# --- request: basics ------------------------------------------------------------------------------


def test_minimal_request_uses_upstream_model_and_default_max_tokens() -> None:
    assert translate([user("Hi")]) == {
        "model": MODEL,
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": [text("Hi")]}],
    }


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"max_tokens": 50}, 50),
        ({"max_completion_tokens": 70}, 70),
        ({"max_tokens": 50, "max_completion_tokens": 70}, 70),
        ({"max_tokens": None}, 1024),
    ],
)
def test_max_tokens(fields: dict[str, Any], expected: int) -> None:
    assert translate([user("Hi")], **fields)["max_tokens"] == expected


@pytest.mark.parametrize(("given", "sent"), [(0, 0), (0.7, 0.7), (1, 1), (1.5, 1), (2, 1)])
def test_temperature_is_clamped_to_anthropic_range(given: float, sent: float) -> None:
    assert translate([user("Hi")], temperature=given)["temperature"] == sent


def test_sampling_stream_and_user_fields() -> None:
    body = translate([user("Hi")], top_p=0.9, top_k=40, stream=True, user="agent-7")
    assert body["top_p"] == 0.9
    assert body["top_k"] == 40
    assert body["stream"] is True
    assert body["metadata"] == {"user_id": "agent-7"}


@pytest.mark.parametrize(
    ("stop", "sequences"), [("END", ["END"]), (["END", "###"], ["END", "###"]), ([], None), (None, None)]
)
def test_stop_becomes_stop_sequences(stop: Any, sequences: list[str] | None) -> None:
    assert translate([user("Hi")], stop=stop).get("stop_sequences") == sequences


@pytest.mark.parametrize("n", [2, 5])
def test_n_above_one_is_refused(n: int) -> None:
    error = translation_error([user("Hi")], n=n)
    assert error.param == "n"
    assert error.message == "Anthropic models return one choice; n must be 1"


def test_n_of_one_is_accepted() -> None:
    assert "n" not in translate([user("Hi")], n=1)


def test_openai_only_and_unknown_fields_are_dropped() -> None:
    extras = {
        "seed": 7,
        "logprobs": True,
        "top_logprobs": 3,
        "frequency_penalty": 0.5,
        "presence_penalty": 0.5,
        "logit_bias": {"50256": -100},
        "service_tier": "auto",
        "store": True,
        "metadata": {"team": "a"},
        "stream_options": {"include_usage": True},
        "modalities": ["text"],
        "audio": None,
        "prediction": {"type": "content", "content": "x"},
        "reasoning_effort": "low",
        "some_future_field": 1,
    }
    assert set(extras) - {"some_future_field"} <= DROPPED_OPENAI_FIELDS
    assert translate([user("Hi")], **extras) == translate([user("Hi")])


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"functions": [{"name": "f", "parameters": {}}]}, "functions"),
        ({"function_call": "auto"}, "function_call"),
    ],
)
def test_legacy_function_fields_are_refused(fields: dict[str, Any], param: str) -> None:
    assert translation_error([user("Hi")], **fields).param == param


# --- request: system prompt -----------------------------------------------------------------------


def test_system_message_moves_to_top_level_string() -> None:
    body = translate([{"role": "system", "content": "Be brief."}, user("Hi")])
    assert body["system"] == "Be brief."
    assert body["messages"] == [{"role": "user", "content": [text("Hi")]}]


def test_system_and_developer_messages_are_joined() -> None:
    body = translate(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [text("Answer in French."), text("No emoji.")]},
            user("Hi"),
        ]
    )
    assert body["system"] == "Be brief.\n\nAnswer in French.\n\nNo emoji."


def test_system_with_cache_control_stays_a_list_of_blocks() -> None:
    cached = {"type": "text", "text": "Long policy document", "cache_control": {"type": "ephemeral"}}
    body = translate([{"role": "system", "content": [cached]}, {"role": "system", "content": "Be brief."}])
    assert body["system"] == [
        {"type": "text", "text": "Long policy document", "cache_control": {"type": "ephemeral"}},
        text("Be brief."),
    ]


def test_no_system_key_without_system_messages() -> None:
    assert "system" not in translate([user("Hi")])


def test_non_text_system_part_is_refused() -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    error = translation_error([user("Hi"), {"role": "system", "content": [text("x"), image]}])
    assert error.param == "messages[1].content[1]"


# --- request: user content ------------------------------------------------------------------------


def test_multi_part_user_content_with_images() -> None:
    content = [
        text("What is in these images?"),
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]
    assert translate([{"role": "user", "content": content}])["messages"] == [
        {
            "role": "user",
            "content": [
                text("What is in these images?"),
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                },
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            ],
        }
    ]


def test_cache_control_on_user_parts_is_kept() -> None:
    content = [
        {"type": "text", "text": "Big context", "cache_control": {"type": "ephemeral"}},
        {
            "type": "image_url",
            "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"},
            "cache_control": {"type": "ephemeral", "ttl": "1h"},
        },
    ]
    blocks = translate([{"role": "user", "content": content}])["messages"][0]["content"]
    assert blocks[0]["cache_control"] == {"type": "ephemeral"}
    assert blocks[1]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}


@pytest.mark.parametrize(
    ("part", "message"),
    [
        (
            {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
            "Anthropic models do not accept 'input_audio' content",
        ),
        (
            {"type": "file", "file": {"file_id": "file-abc"}},
            "Anthropic models do not accept 'file' content",
        ),
        (
            {"type": "video_url", "video_url": {"url": "x"}},
            "Anthropic models do not accept 'video_url' content",
        ),
    ],
)
def test_unsupported_user_part_names_its_param(part: dict[str, Any], message: str) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        user("Hi"),
        {"role": "user", "content": [text("Listen:"), part]},
    ]
    error = translation_error(messages)
    assert error.param == "messages[2].content[1]"
    assert error.message == message


@pytest.mark.parametrize(
    "url",
    ["data:image/png,not-base64", "ftp://example.com/a.png", "data:image/tiff;base64,SUkqAA=="],
)
def test_unusable_image_urls_are_refused(url: str) -> None:
    content = [{"type": "image_url", "image_url": {"url": url}}]
    error = translation_error([{"role": "user", "content": content}])
    assert error.param == "messages[0].content[0]"
    assert "SUkqAA" not in error.message


def test_blank_text_is_skipped_and_empty_messages_dropped() -> None:
    messages = [
        user("Hi"),
        {"role": "assistant", "content": None},
        {"role": "user", "content": " "},
        user("?"),
    ]
    assert translate(messages)["messages"] == [{"role": "user", "content": [text("Hi"), text("?")]}]


# --- request: assistant and tool messages ---------------------------------------------------------


def tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def test_assistant_text_and_tool_calls_become_blocks() -> None:
    assistant = {
        "role": "assistant",
        "content": "Let me check both.",
        "tool_calls": [
            tool_call("toolu_01", "get_weather", '{"city": "Paris"}'),
            tool_call("toolu_02", "get_time", ""),
        ],
    }
    assert translate([user("Weather and time in Paris?"), assistant])["messages"][1] == {
        "role": "assistant",
        "content": [
            text("Let me check both."),
            {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_02", "name": "get_time", "input": {}},
        ],
    }


def test_assistant_with_null_content_and_only_tool_calls() -> None:
    assistant = {"role": "assistant", "content": None, "tool_calls": [tool_call("toolu_01", "f", "{}")]}
    assert translate([user("Go"), assistant])["messages"][1]["content"] == [
        {"type": "tool_use", "id": "toolu_01", "name": "f", "input": {}}
    ]


def test_assistant_text_and_refusal_parts() -> None:
    assistant = {"role": "assistant", "content": [text("Part one. "), {"type": "refusal", "refusal": "No."}]}
    assert translate([user("Hi"), assistant])["messages"][1]["content"] == [text("Part one. "), text("No.")]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [('{"city": "Par', "not valid JSON"), ("[1, 2]", "must be a JSON object")],
)
def test_bad_tool_call_arguments_name_their_param(arguments: str, message: str) -> None:
    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [tool_call("toolu_01", "f", "{}"), tool_call("toolu_02", "g", arguments)],
    }
    error = translation_error([user("Go"), assistant])
    assert error.param == "messages[1].tool_calls[1].function.arguments"
    assert message in error.message
    assert "Par" not in error.message


def test_consecutive_tool_results_and_following_user_message_share_one_turn() -> None:
    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            tool_call("toolu_01", "get_weather", '{"city": "Paris"}'),
            tool_call("toolu_02", "get_weather", '{"city": "Rome"}'),
        ],
    }
    messages = [
        user("Weather in Paris and Rome?"),
        assistant,
        {"role": "tool", "tool_call_id": "toolu_01", "content": "18C, cloudy"},
        {"role": "tool", "tool_call_id": "toolu_02", "content": [text("24C"), text("sunny")]},
        user("Which is warmer?"),
    ]
    body = translate(messages)
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_01", "content": "18C, cloudy"},
        {"type": "tool_result", "tool_use_id": "toolu_02", "content": [text("24C"), text("sunny")]},
        text("Which is warmer?"),
    ]


def test_consecutive_same_role_messages_are_merged() -> None:
    messages = [
        user("One"),
        user("Two"),
        {"role": "assistant", "content": "A"},
        {"role": "assistant", "content": "B"},
    ]
    assert translate(messages)["messages"] == [
        {"role": "user", "content": [text("One"), text("Two")]},
        {"role": "assistant", "content": [text("A"), text("B")]},
    ]


def test_legacy_function_role_is_refused() -> None:
    error = translation_error([user("Hi"), {"role": "function", "name": "f", "content": "42"}])
    assert error.param == "messages[1].role"


def test_legacy_assistant_function_call_is_refused() -> None:
    assistant = {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": "{}"}}
    assert translation_error([user("Hi"), assistant]).param == "messages[1].function_call"


# --- request: tools -------------------------------------------------------------------------------


def test_tools_become_anthropic_tools() -> None:
    bare = {"type": "function", "function": {"name": "ping"}}
    body = translate([user("Hi")], tools=[WEATHER_TOOL, bare])
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather in a city",
            "input_schema": WEATHER_TOOL["function"]["parameters"],
        },
        {"name": "ping", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in body


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"type": "tool", "name": "get_weather"}),
    ],
)
def test_tool_choice(choice: Any, expected: dict[str, Any]) -> None:
    assert translate([user("Hi")], tools=[WEATHER_TOOL], tool_choice=choice)["tool_choice"] == expected


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", {"type": "any", "disable_parallel_tool_use": True}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        ),
        ("none", {"type": "none"}),
    ],
)
def test_parallel_tool_calls_false(choice: Any, expected: dict[str, Any]) -> None:
    body = translate([user("Hi")], tools=[WEATHER_TOOL], tool_choice=choice, parallel_tool_calls=False)
    assert body["tool_choice"] == expected


def test_parallel_tool_calls_true_adds_nothing() -> None:
    assert "tool_choice" not in translate([user("Hi")], tools=[WEATHER_TOOL], parallel_tool_calls=True)


def test_tool_choice_without_tools_is_dropped() -> None:
    body = translate([user("Hi")], tool_choice="auto", parallel_tool_calls=False)
    assert "tool_choice" not in body
    assert "tools" not in body


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tools": [WEATHER_TOOL], "tool_choice": "sometimes"}, "tool_choice"),
        ({"tools": [WEATHER_TOOL], "tool_choice": {"type": "function"}}, "tool_choice"),
        ({"tools": [WEATHER_TOOL, {"type": "custom", "custom": {"name": "x"}}]}, "tools[1].type"),
    ],
)
def test_bad_tools_are_refused(fields: dict[str, Any], param: str) -> None:
    assert translation_error([user("Hi")], **fields).param == param


# --- request: response_format ---------------------------------------------------------------------


def test_response_format_text_changes_nothing() -> None:
    assert translate([user("Hi")], response_format={"type": "text"}) == translate([user("Hi")])


def test_json_object_appends_instruction_to_system() -> None:
    fmt = {"type": "json_object"}
    assert translate([user("Hi")], response_format=fmt)["system"] == JSON_OBJECT_INSTRUCTION
    with_system = translate([{"role": "system", "content": "Be brief."}, user("Hi")], response_format=fmt)
    assert with_system["system"] == f"Be brief.\n\n{JSON_OBJECT_INSTRUCTION}"
    cached = [{"type": "text", "text": "Policy", "cache_control": {"type": "ephemeral"}}]
    with_blocks = translate([{"role": "system", "content": cached}, user("Hi")], response_format=fmt)
    assert with_blocks["system"] == [*cached, text(JSON_OBJECT_INSTRUCTION)]


def test_json_schema_becomes_a_forced_tool() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "city_answer", "schema": schema, "strict": True}}
    body = translate([user("Where is the Louvre?")], response_format=fmt)
    assert body["tools"] == [
        {
            "name": "city_answer",
            "description": "Give the response as this tool's input.",
            "input_schema": schema,
        }
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "city_answer"}
    assert body[JSON_TOOL_KEY] == "city_answer"
    assert JSON_TOOL_KEY == "_agentgw_json_tool"


def test_json_schema_without_name_uses_default_tool_name() -> None:
    fmt = {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}}
    body = translate([user("Hi")], response_format=fmt)
    assert body[JSON_TOOL_KEY] == "json_response"
    assert body["tool_choice"] == {"type": "tool", "name": "json_response"}


def test_json_schema_with_user_tools_is_refused() -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    assert translation_error([user("Hi")], tools=[WEATHER_TOOL], response_format=fmt).param == "response_format"


def test_unknown_response_format_is_refused() -> None:
    assert translation_error([user("Hi")], response_format={"type": "grammar"}).param == "response_format"


# --- usage and stop reasons -----------------------------------------------------------------------


def test_usage_adds_cache_tokens_to_prompt() -> None:
    usage = usage_from_anthropic(
        {
            "input_tokens": 10,
            "cache_read_input_tokens": 100,
            "cache_creation_input_tokens": 5,
            "output_tokens": 42,
        }
    )
    assert usage == Usage(input_tokens=115, output_tokens=42, cached_tokens=100, cache_write_tokens=5)
    assert usage.to_openai() == {
        "prompt_tokens": 115,
        "completion_tokens": 42,
        "total_tokens": 157,
        "prompt_tokens_details": {"cached_tokens": 100},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def test_usage_missing_or_bad_fields_count_zero() -> None:
    assert usage_from_anthropic({}) == Usage()
    bad = {"input_tokens": "10", "cache_read_input_tokens": None, "cache_creation_input_tokens": True}
    assert usage_from_anthropic({**bad, "output_tokens": 3.5}) == Usage()
    assert usage_from_anthropic({"input_tokens": 7}) == Usage(input_tokens=7)


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        (None, "stop"),
        ("model_context_window_exceeded_someday", "stop"),
    ],
)
def test_map_stop_reason(reason: str | None, finish: str) -> None:
    assert map_stop_reason(reason) == finish


# --- response -------------------------------------------------------------------------------------


def anthropic_message(content: list[dict[str, Any]], stop_reason: str | None = "end_turn") -> dict[str, Any]:
    return {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "cache_creation_input_tokens": 5,
            "cache_read_input_tokens": 100,
            "output_tokens": 25,
        },
    }


def test_text_response() -> None:
    data = anthropic_message([{"type": "text", "text": "Hello"}, {"type": "text", "text": ", world"}])
    completion, usage = from_anthropic_response(data, created=1700000000)
    assert completion == {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "object": "chat.completion",
        "created": 1700000000,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello, world", "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": usage.to_openai(),
    }
    assert usage == Usage(input_tokens=115, output_tokens=25, cached_tokens=100, cache_write_tokens=5)


def test_tool_use_response_skips_thinking() -> None:
    data = anthropic_message(
        [
            {"type": "thinking", "thinking": "The user wants weather.", "signature": "EqQB"},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_02", "name": "get_time", "input": {}},
        ],
        stop_reason="tool_use",
    )
    completion, _ = from_anthropic_response(data, created=1)
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"] == {
        "role": "assistant",
        "content": "Checking.",
        "refusal": None,
        "tool_calls": [
            {
                "id": "toolu_01",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            },
            {"id": "toolu_02", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
        ],
    }


def test_response_without_text_has_null_content() -> None:
    data = anthropic_message([{"type": "tool_use", "id": "toolu_01", "name": "f", "input": {}}], "tool_use")
    completion, _ = from_anthropic_response(data, created=1)
    assert completion["choices"][0]["message"]["content"] is None


@pytest.mark.parametrize(
    ("reason", "finish"), [("max_tokens", "length"), ("refusal", "content_filter"), ("stop_sequence", "stop")]
)
def test_response_finish_reason(reason: str, finish: str) -> None:
    completion, _ = from_anthropic_response(anthropic_message([], reason), created=1)
    assert completion["choices"][0]["finish_reason"] == finish


def test_json_tool_response_becomes_content() -> None:
    data = anthropic_message(
        [
            {
                "type": "tool_use",
                "id": "toolu_01",
                "name": "city_answer",
                "input": {"city": "Paris", "ok": True},
            }
        ],
        stop_reason="tool_use",
    )
    completion, _ = from_anthropic_response(data, created=1, json_tool="city_answer")
    choice = completion["choices"][0]
    assert choice["message"] == {
        "role": "assistant",
        "content": '{"city":"Paris","ok":true}',
        "refusal": None,
    }
    assert choice["finish_reason"] == "stop"


def test_json_tool_cut_short_keeps_length() -> None:
    data = anthropic_message([{"type": "tool_use", "id": "t", "name": "x", "input": {}}], stop_reason="max_tokens")
    completion, _ = from_anthropic_response(data, created=1, json_tool="x")
    assert completion["choices"][0]["finish_reason"] == "length"


@pytest.mark.parametrize(
    "data",
    [
        {"id": "msg_1", "model": MODEL},
        {"id": "msg_1", "model": MODEL, "content": "Hello"},
        {"id": "msg_1", "model": MODEL, "content": ["Hello"]},
        {"id": "msg_1", "model": MODEL, "content": [{"type": "text"}]},
        {"id": "msg_1", "model": MODEL, "content": [{"type": "tool_use", "input": {}}]},
        {"model": MODEL, "content": []},
    ],
)
def test_broken_response_raises_value_error(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="Anthropic"):
        from_anthropic_response(data, created=1)


# --- streaming ------------------------------------------------------------------------------------

MESSAGE_ID = "msg_014p7gG3wDgGV9EUtLvnow3U"

STREAM_EVENTS: list[tuple[str, dict[str, Any]]] = [
    (
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": MESSAGE_ID,
                "type": "message",
                "role": "assistant",
                "model": MODEL,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 10,
                    "cache_creation_input_tokens": 5,
                    "cache_read_input_tokens": 100,
                    "output_tokens": 1,
                },
            },
        },
    ),
    (
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ),
    ("ping", {"type": "ping"}),
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Okay"}},
    ),
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": ", checking."}},
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    (
        "content_block_start",
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}},
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": ""},
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '{"city": '},
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '"Paris"}'},
        },
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    (
        "content_block_start",
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {"type": "tool_use", "id": "toolu_02", "name": "get_weather", "input": {}},
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": '{"city": "Rome"}'},
        },
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 2}),
    (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 89},
        },
    ),
    ("message_stop", {"type": "message_stop"}),
]


def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": MESSAGE_ID,
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
        **extra,
    }


def run(translator: StreamTranslator, events: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [out for name, data in events for out in translator.feed(name, data)]


def test_stream_text_and_two_tool_calls() -> None:
    translator = StreamTranslator(created=1700000000, include_usage=False)
    assert run(translator, STREAM_EVENTS) == [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Okay"}),
        chunk({"content": ", checking."}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "toolu_01",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "toolu_02",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": '{"city": "Rome"}'}}]}),
        chunk({}, "tool_calls"),
    ]
    assert translator.done
    assert translator.finish_reason == "tool_calls"
    assert translator.response_id == MESSAGE_ID
    assert translator.model == MODEL
    assert translator.usage == Usage(input_tokens=115, output_tokens=89, cached_tokens=100, cache_write_tokens=5)


def test_stream_include_usage_adds_null_usage_and_a_final_usage_chunk() -> None:
    chunks = run(StreamTranslator(created=1700000000, include_usage=True), STREAM_EVENTS)
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[0] == chunk({"role": "assistant", "content": ""}, usage=None)
    assert chunks[-2] == chunk({}, "tool_calls", usage=None)
    assert chunks[-1] == {
        "id": MESSAGE_ID,
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": MODEL,
        "choices": [],
        "usage": {
            "prompt_tokens": 115,
            "completion_tokens": 89,
            "total_tokens": 204,
            "prompt_tokens_details": {"cached_tokens": 100},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }


def test_stream_state_before_message_start() -> None:
    translator = StreamTranslator(created=1, include_usage=False)
    assert translator.usage is None
    assert translator.finish_reason is None
    assert translator.response_id is None
    assert not translator.done


def test_stream_state_after_message_start() -> None:
    translator = StreamTranslator(created=1, include_usage=False)
    translator.feed(*STREAM_EVENTS[0])
    assert translator.response_id == MESSAGE_ID
    assert translator.usage == Usage(input_tokens=115, output_tokens=1, cached_tokens=100, cache_write_tokens=5)
    assert not translator.done


def test_stream_ignores_ping_block_stop_thinking_and_unknown_events() -> None:
    translator = StreamTranslator(created=1, include_usage=True)
    translator.feed(*STREAM_EVENTS[0])
    quiet: list[tuple[str, dict[str, Any]]] = [
        ("ping", {"type": "ping"}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "thinking", "thinking": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "Hmm"},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "signature_delta", "signature": "EqQB"},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("some_new_event", {"type": "some_new_event"}),
    ]
    assert run(translator, quiet) == []


def test_stream_text_block_start_with_text_emits_content() -> None:
    translator = StreamTranslator(created=1700000000, include_usage=False)
    translator.feed(*STREAM_EVENTS[0])
    start = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": "Hi"}}
    assert translator.feed("content_block_start", start) == [chunk({"content": "Hi"})]


def test_stream_message_delta_updates_input_and_cache_usage() -> None:
    translator = StreamTranslator(created=1, include_usage=False)
    translator.feed(*STREAM_EVENTS[0])
    translator.feed(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
            "usage": {
                "input_tokens": 12,
                "cache_creation_input_tokens": None,
                "cache_read_input_tokens": 200,
                "output_tokens": 15,
            },
        },
    )
    assert translator.usage == Usage(input_tokens=217, output_tokens=15, cached_tokens=200, cache_write_tokens=5)
    assert translator.finish_reason == "length"


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("refusal", "content_filter"),
    ],
)
def test_stream_finish_reasons(reason: str, finish: str) -> None:
    translator = StreamTranslator(created=1700000000, include_usage=False)
    translator.feed(*STREAM_EVENTS[0])
    delta = {"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": None}, "usage": {}}
    assert translator.feed("message_delta", delta) == [chunk({}, finish)]


def test_stream_json_tool_becomes_content() -> None:
    translator = StreamTranslator(created=1700000000, include_usage=False, json_tool="city_answer")
    events = [
        STREAM_EVENTS[0],
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "tool_use", "id": "toolu_01", "name": "city_answer", "input": {}},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": '{"city"'},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": ': "Paris"}'},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 12}},
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    assert run(translator, events) == [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": '{"city"'}),
        chunk({"content": ': "Paris"}'}),
        chunk({}, "stop"),
    ]
    assert translator.finish_reason == "stop"


def test_stream_error_event_raises() -> None:
    translator = StreamTranslator(created=1, include_usage=False)
    translator.feed(*STREAM_EVENTS[0])
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    with pytest.raises(AnthropicStreamError) as caught:
        translator.feed("error", error)
    assert caught.value.error_type == "overloaded_error"
    assert caught.value.message == "Overloaded"
    assert not translator.done


@pytest.mark.parametrize(
    ("event", "data"),
    [
        ("message_start", {"type": "message_start", "message": "msg_1"}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": ["text"]}),
        ("message_delta", {"type": "message_delta", "delta": {}, "usage": 12}),
    ],
)
def test_stream_malformed_event_raises_value_error(event: str, data: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="malformed"):
        StreamTranslator(created=1, include_usage=False).feed(event, data)
