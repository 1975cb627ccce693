"""The benchmarks' static upstream answers what the official SDKs read: each API, whole and streamed.

Its answers are bytes encoded once (bench/upstream_answers.py); a wrong field there would make every
benchmark measure a gateway failing, so the SDKs read them here, over HTTP from the real server, and
the SDKs' own models validate every body and event strictly.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from bench import upstream_answers as answers

ROOT = Path(__file__).resolve().parents[1]
USER = "Say hello in one short sentence."


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    command = [sys.executable, str(ROOT / "bench" / "static_upstream.py"), "--port", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()  # "listening on 127.0.0.1:PORT"
            assert line.startswith("listening on "), line
            yield "http://" + line.split()[-1]
        finally:
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture
def openai_client(upstream: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=upstream + "/v1", api_key="sk-bench", max_retries=0, timeout=10) as client:
        yield client


@pytest.fixture
def anthropic_client(upstream: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=upstream, api_key="sk-bench", max_retries=0, timeout=10) as client:
        yield client


def events(stream: answers.Stream) -> list[bytes]:
    """The `data:` payload of every event of a stream, `[DONE]` left out."""
    now, later = stream
    lines = [line for event in now + later for line in event.splitlines() if line.startswith(b"data: ")]
    return [line[len(b"data: ") :] for line in lines if line != b"data: [DONE]"]


def test_every_body_and_event_validates_against_the_sdk_models() -> None:
    ChatCompletion.model_validate(answers.CHAT_COMPLETION, strict=True)
    Response.model_validate(answers.RESPONSE, strict=True)
    Message.model_validate(answers.MESSAGE, strict=True)
    for payload in events(answers.chat_stream(include_usage=True)):
        ChatCompletionChunk.model_validate_json(payload, strict=True)
    for payload in events(answers.responses_stream()):
        TypeAdapter(ResponseStreamEvent).validate_json(payload, strict=True)
    for payload in events(answers.messages_stream()):
        if payload != b'{"type":"ping"}':  # Anthropic sends pings; the SDK's union leaves them out
            TypeAdapter(RawMessageStreamEvent).validate_json(payload, strict=True)


def test_chat_whole_and_streamed(openai_client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": USER}]
    whole = openai_client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert whole.choices[0].message.content == answers.TEXT
    assert whole.usage is not None and whole.usage.prompt_tokens == answers.INPUT_TOKENS

    with openai_client.chat.completions.stream(
        model="gpt-4o-mini",
        messages=messages,
        stream_options={"include_usage": True},
    ) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == answers.TEXT
    assert final.usage is not None and final.usage.completion_tokens == answers.OUTPUT_TOKENS


def test_responses_whole_and_streamed(openai_client: openai.OpenAI) -> None:
    whole = openai_client.responses.create(model="gpt-4o-mini", input=USER)
    assert whole.output_text == answers.TEXT
    assert whole.usage is not None and whole.usage.input_tokens == answers.INPUT_TOKENS

    with openai_client.responses.stream(model="gpt-4o-mini", input=USER) as stream:
        numbers = [event.sequence_number for event in stream]
        final = stream.get_final_response()
    assert numbers == list(range(len(numbers)))
    assert final.output_text == answers.TEXT
    assert final.usage is not None and final.usage.output_tokens == answers.OUTPUT_TOKENS


def test_messages_whole_and_streamed(anthropic_client: anthropic.Anthropic) -> None:
    messages = [{"role": "user", "content": USER}]
    whole = anthropic_client.messages.create(model="claude-sonnet-4-5", max_tokens=32, messages=messages)
    assert [block.type for block in whole.content] == ["text"]
    assert whole.content[0].text == answers.TEXT

    with anthropic_client.messages.stream(model="claude-sonnet-4-5", max_tokens=32, messages=messages) as stream:
        assert stream.get_final_text() == answers.TEXT
        final = stream.get_final_message()
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (answers.INPUT_TOKENS, answers.OUTPUT_TOKENS)
