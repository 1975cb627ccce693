"""The model name answers carry: set in the parsed answer, and in the provider's bytes without
re-encoding them."""

from __future__ import annotations

import orjson
import pytest

from gateway.apis import API
from gateway.apis.base import renamed


@pytest.mark.parametrize("separator", [b'":', b'": '])
def test_the_model_pair_is_renamed_in_place(separator: bytes) -> None:
    raw = b'{"id":"x","model' + separator + b'"gpt-x","choices":[{"text":"the \\"model\\":\\"gpt-x\\""}]}'
    out = renamed(raw, "gpt-x", "smart")
    assert out is not None
    assert orjson.loads(out) == {**orjson.loads(raw), "model": "smart"}  # only the pair changed


def test_names_are_json_escaped_both_ways() -> None:
    raw = orjson.dumps({"model": 'odd"name\\', "x": 1})
    out = renamed(raw, 'odd"name\\', "天气/模型")
    assert out is not None and orjson.loads(out) == {"model": "天气/模型", "x": 1}


def test_no_pair_as_written_means_no_rewrite() -> None:
    assert renamed(b'{"model" : "gpt-x"}', "gpt-x", "smart") is None  # unusual spacing: the caller re-encodes
    assert renamed(b'{"id":"x"}', "gpt-x", "smart") is None
    assert renamed(b'{"model":""}', "", "smart") is None


@pytest.mark.parametrize(
    ("api", "event", "path"),
    [
        ("chat", {"object": "chat.completion.chunk", "model": "up"}, ("model",)),
        ("messages", {"type": "message_start", "message": {"model": "up"}}, ("message", "model")),
        ("responses", {"type": "response.created", "response": {"model": "up"}}, ("response", "model")),
        ("responses", {"type": "response.completed", "response": {"model": "up"}}, ("response", "model")),
    ],
)
def test_stream_events_name_the_requested_model(api: str, event: dict[str, object], path: tuple[str, ...]) -> None:
    assert API[api].set_stream_model(event, "asked") == "up"
    holder: object = event
    for key in path:
        assert isinstance(holder, dict)
        holder = holder[key]
    assert holder == "asked"
    assert API[api].set_stream_model(event, "asked") is None  # already so: nothing changes


def test_events_without_a_model_are_left_alone() -> None:
    delta = {"type": "content_block_delta", "delta": {"text": "hi"}}
    assert API["messages"].set_stream_model(delta, "asked") is None and "model" not in delta
