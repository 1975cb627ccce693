"""Request bodies: every malformed input becomes a 400 that names the offending field."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.body_limits import MAX_CONTAINERS, MAX_NESTING
from gateway.errors import InvalidRequest
from gateway.schemas import (
    MAX_EMBEDDING_INPUTS,
    MAX_INT,
    ChatRequest,
    EmbeddingsRequest,
    parse_body,
    validate,
)

OK_MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "not an array"),
        (b'"text"', "not a string"),
        (b"null", "not null"),
        (b"42", "not a number"),
    ],
)
def test_bodies_that_are_not_objects(body: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_body(body)
    assert message.split()[-1] in info.value.message


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": OK_MESSAGES}, "model"),
        ({"model": 5, "messages": OK_MESSAGES}, "model"),
        ({"model": "m", "messages": "hello"}, "messages"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": OK_MESSAGES, "max_tokens": -1}, "max_tokens"),
        ({"model": "m", "messages": OK_MESSAGES, "max_tokens": "10"}, "max_tokens"),
        ({"model": "m", "messages": OK_MESSAGES, "temperature": 3}, "temperature"),
        ({"model": "m", "messages": OK_MESSAGES, "n": 0}, "n"),
        ({"model": "m", "messages": OK_MESSAGES, "stream": "yes"}, "stream"),
        ({"model": "m", "messages": [{"role": "bot", "content": "x"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "user"}]}, "messages[0]"),
        ({"model": "m", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "video"}]}]},
            "messages[0].content[0]",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]},
            "messages[0].content[0].text",
        ),
        ({"model": "m", "messages": [{"role": "tool", "content": "x"}]}, "messages[0]"),
        (
            {
                "model": "m",
                "messages": OK_MESSAGES,
                "tools": [{"type": "function", "function": {"name": "a b"}}],
            },
            "tools[0].function.name",
        ),
        ({"model": "m", "messages": OK_MESSAGES, "tool_choice": "sometimes"}, "tool_choice"),
        (
            {"model": "m", "messages": OK_MESSAGES, "response_format": {"type": "json_schema"}},
            "response_format",
        ),
    ],
)
def test_chat_schema_errors_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        validate(ChatRequest, body)
    assert info.value.param == param
    assert info.value.status == 400 and info.value.code == "invalid_request"


def test_unknown_fields_are_kept() -> None:
    chat = validate(ChatRequest, {"model": "m", "messages": OK_MESSAGES, "vendor_knob": {"x": 1}})
    assert chat.model_extra == {"vendor_knob": {"x": 1}}


def test_full_featured_request_is_accepted() -> None:
    validate(
        ChatRequest,
        {
            "model": "m",
            "n": 2,
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [
                {"role": "system", "content": "be brief"},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this?"},
                        {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                    ],
                },
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "42"},
            ],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "object"}},
            },
        },
    )


@pytest.mark.parametrize(
    "value",
    [
        "",
        [],
        [[1], []],
        5,
        ["a", 1],
        [1, True],
        [1.5],
        [-1],
        [MAX_INT + 1],
        [[1], [2**63]],
        ["x"] * (MAX_EMBEDDING_INPUTS + 1),
        [[1]] * (MAX_EMBEDDING_INPUTS + 1),
    ],
)
def test_embedding_input_errors(value: Any) -> None:
    with pytest.raises(InvalidRequest) as info:
        validate(EmbeddingsRequest, {"model": "e", "input": value})
    assert (info.value.param or "").startswith("input")


def deep(levels: int) -> bytes:
    """A body whose field `x` makes it nest `levels` levels of arrays and objects in all."""
    inner = levels - 1
    return b'{"model": "m", "x": ' + b"[" * inner + b"1" + b"]" * inner + b"}"


def test_nesting_is_limited_when_the_body_is_parsed() -> None:
    assert parse_body(deep(MAX_NESTING))["model"] == "m"
    for levels in (MAX_NESTING + 1, 255, 991, 1024, 100_000):
        with pytest.raises(InvalidRequest) as info:
            parse_body(deep(levels))
        assert f"more than {MAX_NESTING} levels" in info.value.message
        if levels <= 1024:  # deeper than that the JSON parser stops before any field is known
            assert info.value.param == "x"


def test_nesting_check_names_the_deep_field_among_shallow_ones() -> None:
    deep_value = deep(80).removeprefix(b'{"model": "m", "x": ')
    body = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "y": ' + deep_value
    with pytest.raises(InvalidRequest) as info:
        parse_body(body)
    assert info.value.param == "y"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_tokens", MAX_INT + 1),
        ("max_tokens", 2**62),
        ("max_completion_tokens", 2**63 - 1),
        ("n", 129),
        ("seed", 2**63),
        ("seed", -(2**63) - 1),
    ],
)
def test_integers_are_bounded(field: str, value: int) -> None:
    with pytest.raises(InvalidRequest) as info:
        validate(ChatRequest, {"model": "m", "messages": OK_MESSAGES, field: value})
    assert info.value.param == field


def test_integers_at_their_bounds_are_accepted() -> None:
    validate(ChatRequest, {"model": "m", "messages": OK_MESSAGES, "max_tokens": MAX_INT, "seed": -(2**63)})
    validate(ChatRequest, {"model": "m", "messages": OK_MESSAGES, "max_completion_tokens": MAX_INT, "seed": 2**63 - 1})
    with pytest.raises(InvalidRequest) as info:
        validate(EmbeddingsRequest, {"model": "e", "input": "x", "dimensions": MAX_INT + 1})
    assert info.value.param == "dimensions"


@pytest.mark.parametrize(
    "value",
    ["text", ["a", "b"], [0, MAX_INT], [[1, 2], [3]], list(range(1_000_000)), ["x"] * MAX_EMBEDDING_INPUTS],
)
def test_embedding_inputs_accepted(value: Any) -> None:
    validate(EmbeddingsRequest, {"model": "e", "input": value})


def test_a_body_holds_a_bounded_number_of_arrays_and_objects() -> None:
    """Each array or object costs every walk after parsing a few microseconds: 200,000 one-word
    messages held the event loop for over a second. Plain values in lists do not count."""
    fits = {"model": "m", "messages": [{"role": "user", "content": "hi"}] * (MAX_CONTAINERS - 2)}
    assert parse_body(orjson.dumps(fits))["model"] == "m"
    assert parse_body(orjson.dumps({"model": "m", "x": list(range(1_000_000)), "y": ["s"] * 100_000}))
    for body in (
        {"model": "m", "messages": [{"role": "user", "content": "hi"}] * MAX_CONTAINERS},
        {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}] * MAX_CONTAINERS}]},
        {"model": "m", "messages": [], "vendor": [[]] * 200_000},
    ):
        with pytest.raises(InvalidRequest) as info:
            parse_body(orjson.dumps(body))
        assert info.value.param == ("vendor" if "vendor" in body else "messages")
        assert f"at most {MAX_CONTAINERS:,}" in info.value.message


def test_two_wrong_fields_at_one_depth_are_not_mixed_up() -> None:
    """The message used to list every branch error at the deepest level, whatever the field: a bad
    max_tokens was explained with tool_choice's alternatives."""
    body = {"model": "m", "messages": OK_MESSAGES, "max_tokens": 1.5, "tool_choice": "sometimes"}
    with pytest.raises(InvalidRequest) as info:
        validate(ChatRequest, body)
    assert info.value.param == "max_tokens"
    assert "auto" not in info.value.message and "required" not in info.value.message
