"""Captured content (`gen_ai.input.messages` and friends): the conventions' shape, never more than
`max_chars`, always valid JSON, and work that grows with the content kept, not with its square."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from gateway.telemetry import semconv
from gateway.telemetry.semconv import TRUNCATED, input_messages, output_messages, truncate_json


def chat(*contents: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": c} for c in contents]}


HOSTILE = {
    "8,000 one-word messages": chat(*(f"w{i}" for i in range(8_000))),
    "one message of 50,000 parts": chat([{"type": "text", "text": "x"} for _ in range(50_000)]),
    "one huge text": chat("word " * 200_000),
    "escapes everywhere": chat('"\\\n\x01' * 50_000),
    "non-ascii": chat("ü€𝄞中" * 30_000),
    "tool results of many parts": {
        "messages": [
            {"role": "user", "content": "x"},
            {"role": "tool", "tool_call_id": "c" * 50_000, "content": [{"type": "text", "text": "y"}] * 20_000},
        ]
    },
    "embeddings token array": {"input": list(range(300_000))},
    "embeddings texts": {"input": ["some text to embed"] * 2_048},
}


@pytest.mark.parametrize("max_chars", [256, 4096, 16384])
@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_capture_never_exceeds_max_chars_and_stays_json(body: dict[str, Any], max_chars: int) -> None:
    text = input_messages(body, max_chars)
    assert len(text) <= max_chars
    captured = json.loads(text)
    assert isinstance(captured, list) and captured, "something of the newest message is kept"
    assert TRUNCATED in text or len(captured) < len(body.get("messages", ()))


def test_small_content_is_kept_whole() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {}}]},
        ]
    }
    assert json.loads(input_messages(body, 4096)) == [
        {"role": "system", "parts": [{"type": "text", "content": "be brief"}]},
        {"role": "user", "parts": [{"type": "text", "content": "hi"}, {"type": "image_url"}]},
    ]


def test_long_texts_are_cut_and_the_oldest_messages_dropped() -> None:
    body = chat(*(f"message {i} " + "x" * 500 for i in range(100)))
    captured = json.loads(input_messages(body, 4096))
    texts = [m["parts"][0]["content"] for m in captured]
    assert texts[-1].startswith("message 99 ") and texts[-1].endswith(TRUNCATED)
    assert 1 < len(texts) < 100
    assert [int(t.split()[1]) for t in texts] == list(range(100 - len(texts), 100))


def test_a_newest_message_too_big_alone_keeps_the_parts_that_fit() -> None:
    body = chat([{"type": "text", "text": f"part {i}"} for i in range(10_000)])
    [message] = json.loads(input_messages(body, 1024))
    contents = [p["content"] for p in message["parts"]]
    assert contents[:3] == ["part 0", "part 1", "part 2"]
    assert contents[-1].endswith(TRUNCATED)


def test_the_callers_body_is_not_changed() -> None:
    body = {"input": ["a" * 10_000, "b" * 10_000]}
    before = copy.deepcopy(body)
    input_messages(body, 512)
    assert body == before


def test_output_messages_are_bounded_too() -> None:
    choices = [{"message": {"content": "z" * 100_000}, "finish_reason": "stop"} for _ in range(64)]
    text = output_messages(choices, 2048)
    assert len(text) <= 2048
    assert json.loads(text)[-1]["finish_reason"] == "stop"


@pytest.mark.parametrize("count", [1_000, 8_000, 64_000])
def test_truncation_work_does_not_grow_with_the_number_of_messages(count: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The old truncation re-serialised every remaining message each time it dropped one (8,000
    one-word messages held the event loop for 3 s, 200,000 for 18 minutes). Now only the newest
    messages that can fit are serialised, each at most twice, whatever their number."""
    serialised = 0
    dumps = semconv._dumps

    def counting(value: Any) -> str:
        nonlocal serialised
        text = dumps(value)
        serialised += len(text)
        return text

    monkeypatch.setattr(semconv, "_dumps", counting)
    messages = [{"role": "user", "parts": [{"type": "text", "content": f"w{i}"}]} for i in range(count)]
    text = truncate_json(messages, 16_384)
    assert len(text) <= 16_384
    assert serialised <= 3 * 16_384


def test_truncation_work_is_linear_in_one_huge_message(monkeypatch: pytest.MonkeyPatch) -> None:
    serialised = 0
    dumps = semconv._dumps

    def counting(value: Any) -> str:
        nonlocal serialised
        text = dumps(value)
        serialised += len(text)
        return text

    monkeypatch.setattr(semconv, "_dumps", counting)
    message = {"role": "user", "parts": [{"type": "text", "content": "x"}] * 250_000}
    size = len(dumps([message]))
    text = truncate_json([message], 16_384)
    assert len(text) <= 16_384
    assert serialised <= size + 3 * 16_384
