"""StreamGuard: streamed output is redacted exactly like the whole response, and blocks release nothing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from policies.guardrails import GuardrailSet
from tests.policies.guardrails.support import OPENAI_KEY, args_of, chunk, completion, content_of, gset, run_stream

TEXT = f"Contact alice.smith@example.com, key {OPENAI_KEY} thanks. Call +1 415 555 0132 or card 4111 1111 1111 1111."
REDACT = gset({"pii": {"type": "pii"}, "secrets": {"type": "secrets", "action": "redact"}})
BLOCK = gset({"pii": {"type": "pii"}, "secrets": {"type": "secrets", "action": "block"}})


def whole(guards: GuardrailSet, text: str) -> str:
    result = asyncio.run(guards.scan_response(completion(text)))
    content: str = result.body["choices"][0]["message"]["content"]
    return content


def stream(guards: GuardrailSet, pieces: list[str]) -> tuple[list[dict[str, Any]], str | None]:
    chunks = [chunk(role="assistant", content="")] + [chunk(p) for p in pieces] + [chunk(finish="stop")]
    return run_stream(guards.stream_guard(), chunks)


def test_every_two_way_split_matches_the_whole_redaction() -> None:
    expected = whole(REDACT, TEXT)
    assert expected == "Contact [EMAIL], key [SECRET] thanks. Call [PHONE] or card [CREDIT_CARD]."
    for i in range(1, len(TEXT)):
        sent, blocked = stream(REDACT, [TEXT[:i], TEXT[i:]])
        assert blocked is None and content_of(sent) == expected, i


@pytest.mark.parametrize("max_hold", [64, 128])
def test_one_char_chunks_match_the_whole_redaction(max_hold: int) -> None:
    guards = gset({"pii": {"type": "pii"}, "secrets": {"type": "secrets", "action": "redact"}}, max_hold=max_hold)
    sent, blocked = stream(guards, list(TEXT))
    assert blocked is None and content_of(sent) == whole(guards, TEXT)


def test_block_releases_nothing_of_the_key_at_any_split() -> None:
    key_at = TEXT.index(OPENAI_KEY)
    safe = whole(REDACT, TEXT[:key_at])  # all that may have gone out before the block
    for pieces in [[TEXT[:i], TEXT[i:]] for i in range(1, len(TEXT))] + [list(TEXT)]:
        sent, blocked = stream(BLOCK, pieces)
        assert blocked == "secrets"
        assert safe.startswith(content_of(sent)), pieces


def test_clean_text_flows_with_little_delay() -> None:
    guard = REDACT.stream_guard()
    words = ["The", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "and", "keeps", "running"]
    words += ["far", "away.", ""]
    sent = ""
    for word in words:
        for c in guard.feed(chunk(word + " ")).chunks:
            sent += content_of([c])
    held = len("".join(w + " " for w in words)) - len(sent)
    assert held <= len("away. ") + 1  # at most the last word (it could still become an email)


def test_long_secret_past_max_hold_is_swallowed() -> None:
    pem = (
        "-----BEGIN PRIVATE KEY-----\n"
        + "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n" * 40
        + "-----END PRIVATE KEY-----"
    )
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJ" + "abcdefghij" * 40 + ".sig_nature-123"
    text = f"Here:\n{pem}\nand {jwt} done."
    guards = gset({"secrets": {"type": "secrets", "action": "redact"}}, max_hold=64)
    assert whole(guards, text) == "Here:\n[SECRET]\nand [SECRET] done."
    for size in (1, 7, 50):
        sent, _ = stream(guards, [text[i : i + size] for i in range(0, len(text), size)])
        assert content_of(sent) == "Here:\n[SECRET]\nand [SECRET] done."


def test_tool_call_arguments_are_redacted_as_valid_json() -> None:
    args = json.dumps({"to": "bob@example.com", "body": f"key {OPENAI_KEY}\nbye"})
    expected_args = json.dumps({"to": "[EMAIL]", "body": "key [SECRET]\nbye"})
    for size in (1, 3, 11):
        chunks = [
            chunk(
                role="assistant",
                tool_calls=[
                    {"index": 0, "id": "c1", "type": "function", "function": {"name": "send", "arguments": ""}}
                ],
            )
        ]
        chunks += [
            chunk(tool_calls=[{"index": 0, "function": {"arguments": args[i : i + size]}}])
            for i in range(0, len(args), size)
        ]
        chunks.append(chunk(finish="tool_calls"))
        sent, blocked = run_stream(REDACT.stream_guard(), chunks)
        assert blocked is None and args_of(sent) == expected_args
        assert sent[0]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == "send"
        assert sent[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_disallowed_tool_call_is_never_released() -> None:
    guards = gset({"tools": {"type": "tool_access", "allow": ["get_weather"]}})
    first = chunk(role="assistant", content="Let me check.")
    call = chunk(
        tool_calls=[{"index": 0, "id": "c1", "type": "function", "function": {"name": "delete_repo", "arguments": ""}}]
    )
    more = chunk(tool_calls=[{"index": 0, "function": {"arguments": '{"repo": "x"}'}}])
    guard = guards.stream_guard()
    assert content_of(guard.feed(first).chunks) == "Let me check."
    step = guard.feed(call)
    assert step.blocked_by == "tools" and step.chunks == []
    assert guard.feed(more).blocked_by == "tools" and guard.feed(more).chunks == []
    assert guard.verdicts[0].guardrail == "tools" and guard.verdicts[0].action == "block"
    allowed = [
        chunk(
            tool_calls=[
                {"index": 0, "id": "c", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ]
        ),
        chunk(finish="tool_calls"),
    ]
    assert run_stream(guards.stream_guard(), allowed)[1] is None


def test_finish_and_usage_chunks_come_after_the_held_text() -> None:
    usage = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "choices": [],
        "usage": {"prompt_tokens": 3, "completion_tokens": 5},
    }
    chunks = [
        chunk(role="assistant", content=""),
        chunk("mail me: ann@exam"),
        chunk("ple.org"),
        chunk(finish="stop"),
        usage,
    ]
    sent, _ = run_stream(REDACT.stream_guard(), chunks)
    assert content_of(sent) == "mail me: [EMAIL]"
    assert sent[-1] is usage and sent[-2]["choices"][0]["finish_reason"] == "stop"
    assert all(c["id"] == "chatcmpl-1" and c["object"] == "chat.completion.chunk" for c in sent)
    positions = [i for i, c in enumerate(sent) if content_of([c])]
    assert max(positions) < len(sent) - 2


def test_stream_cut_without_finish_is_flushed_by_finish() -> None:
    guard = REDACT.stream_guard()
    out = guard.feed(chunk("write to bob@exa")).chunks + guard.feed(chunk("mple.com")).chunks
    out += asyncio.run(guard.finish()).chunks
    assert content_of(out) == "write to [EMAIL]"


def test_choices_are_kept_apart() -> None:
    chunks = [
        chunk("a@b.", index=0),
        chunk("hi there", index=1),
        chunk("io", index=0),
        chunk(finish="stop", index=0),
        chunk(finish="stop", index=1),
    ]
    sent, _ = run_stream(REDACT.stream_guard(), chunks)
    assert content_of(sent, 0) == "[EMAIL]" and content_of(sent, 1) == "hi there"


def test_verdicts_count_each_match_once() -> None:
    guard = REDACT.stream_guard()
    run_stream(guard, [chunk(c) for c in TEXT] + [chunk(finish="stop")])
    verdicts = {v.guardrail: v for v in guard.verdicts}
    assert verdicts["pii"].count == 3 and verdicts["pii"].entities == ("credit_card", "email", "phone")
    assert verdicts["secrets"].count == 1 and verdicts["secrets"].entities == ("openai",)


def test_logprobs_do_not_leak_held_text() -> None:
    c = chunk("ann@example.org")
    c["choices"][0]["logprobs"] = {"content": [{"token": "ann", "logprob": -0.1}]}
    sent, _ = run_stream(REDACT.stream_guard(), [c, chunk(finish="stop")])
    assert all(ch.get("logprobs") is None for s in sent for ch in s["choices"])
