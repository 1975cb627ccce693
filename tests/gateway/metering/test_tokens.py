"""Token counting: tiktoken when its encoding is there, an estimate when not, never a download wait."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from gateway.metering.tokens import SAMPLE_CHARS, TokenCounter

SHARED = Path(os.environ.get("TIKTOKEN_CACHE_DIR", "/nonexistent"))


def test_without_an_encoding_counts_are_estimated_at_once() -> None:
    counter = TokenCounter()  # nothing loaded
    assert counter.count_text("a" * 40, "o200k_base") == 10
    assert counter.count_text("", "o200k_base") == 0
    messages = [{"role": "user", "content": "x" * 8}]
    assert counter.count_messages(messages, "o200k_base") == 3 + 3 + 1 + 2


needs_encodings = pytest.mark.skipif(
    not (SHARED / "fb374d419588a4632f3f557e76b4b70aebbca790").exists(),
    reason="no offline tiktoken encodings in TIKTOKEN_CACHE_DIR",
)


@needs_encodings
def test_with_tiktoken_counts_match_openai() -> None:
    counter = TokenCounter()
    counter.preload(["o200k_base", "cl100k_base"]).join(30)
    assert counter.loaded("o200k_base")
    assert counter.describe() == {"o200k_base": "loaded", "cl100k_base": "loaded"}
    assert counter.count_text("hello world", "o200k_base") == 2
    # OpenAI's cookbook example: these two messages are 3 + (3+1+2) + (3+1+4) ... counted as the API does
    assert counter.count_messages([{"role": "user", "content": "hello world"}], "cl100k_base") == 3 + 3 + 1 + 2
    # A huge text is counted from a sample, scaled: close to the exact count, without a long stall.
    text = "".join(f"Line {i}: the gateway meters every call, {i * 7919 % 1000} tokens.\n" for i in range(20_000))
    assert len(text) > SAMPLE_CHARS
    exact = len(counter._encodings["o200k_base"].encode(text))
    assert counter.count_text(text, "o200k_base") == pytest.approx(exact, rel=0.02)


class CountingEncoding:
    """Wraps a tiktoken encoding and adds up the characters it was asked to encode."""

    def __init__(self, encoding: Any) -> None:
        self.encoding = encoding
        self.chars = 0

    def encode(self, text: str, **options: Any) -> list[int]:
        self.chars += len(text)
        return list(self.encoding.encode(text, **options))


@needs_encodings
def test_a_calls_exact_counting_is_bounded_however_many_texts_it_has() -> None:
    """Counting runs on the event loop: each text used to get its own 200,000-character sample, so
    an 8 MiB body of many long texts (or CJK, or one letter repeated: tiktoken's slowest) held the
    loop for seconds. The sample is per call now; the rest is scaled at the rate counted."""
    counter = TokenCounter()
    counter.preload(["o200k_base"]).join(30)
    spy = CountingEncoding(counter._encodings["o200k_base"])
    counter._encodings["o200k_base"] = spy
    line = "The gateway meters every call and every token it can see. "
    messages = [{"role": "user", "content": line * 400} for _ in range(200)]
    exact = sum(3 + 1 + len(spy.encoding.encode(m["content"])) for m in messages) + 3
    estimate = counter.count_messages(messages, "o200k_base")
    assert spy.chars <= SAMPLE_CHARS
    assert estimate == pytest.approx(exact, rel=0.02)
    spy.chars = 0
    assert counter.count_inputs(["中文文本" * 5_000] * 100, "o200k_base") > 0
    assert spy.chars <= SAMPLE_CHARS


def test_encoding_choice() -> None:
    assert TokenCounter.encoding_for("gpt-4o-mini", None) == "o200k_base"
    assert TokenCounter.encoding_for("gpt-4", None) == "cl100k_base"
    assert TokenCounter.encoding_for("claude-sonnet-4-5", None) == "o200k_base"
    assert TokenCounter.encoding_for("anything", "cl100k_base") == "cl100k_base"


def test_unknown_encoding_fails_softly() -> None:
    counter = TokenCounter()
    counter.preload(["no_such_encoding"]).join(10)
    assert not counter.loaded("no_such_encoding")
    assert counter.describe() == {"no_such_encoding": "unavailable"}
    assert counter.count_text("abcd", "no_such_encoding") == 1


def test_describe_shows_an_encoding_loading_until_it_is_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """`/readyz` shows this: `loading` while the thread reads the encoding, then `loaded`."""
    import tiktoken

    release = threading.Event()
    encoding = object()

    def slow_get_encoding(name: str) -> object:
        release.wait(10)
        return encoding

    monkeypatch.setattr(tiktoken, "get_encoding", slow_get_encoding)
    counter = TokenCounter()
    assert counter.describe() == {}
    thread = counter.preload(["o200k_base"])
    assert counter.describe() == {"o200k_base": "loading"}
    release.set()
    thread.join(10)
    assert counter.describe() == {"o200k_base": "loaded"}
