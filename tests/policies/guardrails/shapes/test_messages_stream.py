"""Messages streams: blocks redacted like the whole message, flushed before they stop, tool inputs kept
valid JSON, blocks release nothing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from anthropic.lib.streaming._messages import accumulate_event

from policies.guardrails import GuardrailSet
from tests.policies.guardrails.streams import (
    blocks_of,
    check_messages_events,
    messages_events,
    messages_model,
    tool_input,
)
from tests.policies.guardrails.support import OPENAI_KEY, gset, run_stream

TEXT = f"Contact alice.smith@example.com, key {OPENAI_KEY} thanks. Call +1 415 555 0132 or card 4111 1111 1111 1111."
EXPECTED = "Contact [EMAIL], key [SECRET] thanks. Call [PHONE] or card [CREDIT_CARD]."
REDACT = gset({"pii": {"type": "pii"}, "secrets": {"type": "secrets", "action": "redact"}})
BLOCK = gset({"pii": {"type": "pii"}, "secrets": {"type": "secrets", "action": "block"}})
RAW = ("alice.smith@example.com", OPENAI_KEY, "555 0132", "4111 1111")


def stream(
    *blocks: tuple[Any, ...], guards: GuardrailSet = REDACT, stop_reason: str = "end_turn"
) -> tuple[list[dict[str, Any]], str | None]:
    return run_stream(guards.stream_guard("messages"), messages_events(*blocks, stop_reason=stop_reason))


def assert_clean(sent: list[dict[str, Any]]) -> None:
    check_messages_events(sent)
    dumped = json.dumps(sent)
    assert not any(raw in dumped for raw in RAW)
    kinds = [e["type"] for e in sent]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]


def test_every_two_way_split_matches_the_whole_redaction() -> None:
    whole = {"type": "message", "role": "assistant", "content": [{"type": "text", "text": TEXT}]}
    assert asyncio.run(REDACT.scan_response(whole, api="messages")).body["content"][0]["text"] == EXPECTED
    for i in range(1, len(TEXT)):
        sent, blocked = stream(("text", [TEXT[:i], TEXT[i:]]))
        assert blocked is None and blocks_of(sent) == {0: EXPECTED}, i
        assert_clean(sent)


@pytest.mark.parametrize("max_hold", [64, 128])
def test_one_char_deltas(max_hold: int) -> None:
    guards = gset({"pii": {"type": "pii"}, "secrets": {"type": "secrets", "action": "redact"}}, max_hold=max_hold)
    sent, blocked = stream(("text", list(TEXT)), guards=guards)
    assert blocked is None and blocks_of(sent) == {0: EXPECTED}
    assert_clean(sent)


def test_block_releases_nothing_of_the_key_at_any_split() -> None:
    safe = "Contact [EMAIL], key "
    for pieces in [[TEXT[:i], TEXT[i:]] for i in range(1, len(TEXT))] + [list(TEXT)]:
        sent, blocked = stream(("text", pieces), guards=BLOCK)
        assert blocked == "secrets"
        assert safe.startswith(blocks_of(sent).get(0, "")), pieces
        assert OPENAI_KEY not in json.dumps(sent) and "content_block_stop" not in {e["type"] for e in sent}
        check_messages_events(sent)


def test_tool_input_json_is_redacted_and_stays_valid() -> None:
    args = json.dumps({"to": "bob@example.com", "body": f"key {OPENAI_KEY}\nbye", "n": 4111111111111111})
    for size in (1, 3, 11):
        pieces = [args[i : i + size] for i in range(0, len(args), size)]
        sent, blocked = stream(("text", ["Sending."]), ("tool_use", "send", pieces), stop_reason="tool_use")
        assert blocked is None
        assert tool_input(sent, 1) == {"to": "[EMAIL]", "body": "key [SECRET]\nbye", "n": "[CREDIT_CARD]"}
        assert_clean(sent)


def test_thinking_is_guarded_and_flushed_before_its_signature() -> None:
    sent, blocked = stream(("thinking", ["The user is alice.smith@exam", "ple.com"]), ("text", ["Done."]))
    assert blocked is None and blocks_of(sent) == {0: "The user is [EMAIL]", 1: "Done."}
    kinds = [(e["type"], e.get("delta", {}).get("type")) for e in sent if e.get("index") == 0]
    assert kinds[-3:] == [
        ("content_block_delta", "thinking_delta"),
        ("content_block_delta", "signature_delta"),
        ("content_block_stop", None),
    ]
    assert_clean(sent)


def test_held_text_is_flushed_before_the_block_stops() -> None:
    sent, _ = stream(("text", ["mail me: ann@exam", "ple.org"]), ("text", ["Bye."]))
    kinds = [(e["type"], e.get("index")) for e in sent]
    assert kinds.index(("content_block_stop", 0)) < kinds.index(("content_block_start", 1))
    assert blocks_of(sent) == {0: "mail me: [EMAIL]", 1: "Bye."}  # blocks_of refuses a delta after its stop


def test_text_in_a_start_event_is_guarded() -> None:
    events = messages_events(("text", [".org, thanks"]))
    events[1]["content_block"]["text"] = "mail ann@example"
    sent, _ = run_stream(REDACT.stream_guard("messages"), events)
    assert blocks_of(sent) == {0: "mail [EMAIL], thanks"}
    assert sent[1]["content_block"]["text"] == "mail "  # what could still be an email waits for the deltas
    leafy = messages_events(("tool_use", "send", []))
    leafy[1]["content_block"]["input"] = {"to": "ann@example.org", "n": [1, "ok"]}
    sent, _ = run_stream(REDACT.stream_guard("messages"), leafy)
    assert sent[1]["content_block"]["input"] == {"to": "[EMAIL]", "n": [1, "ok"]}


def test_a_denied_tool_is_blocked_on_the_start_that_names_it() -> None:
    guards = gset({"tools": {"type": "tool_access", "allow": ["get_weather"]}})
    events = messages_events(("text", ["Let me check."]), ("tool_use", "delete_repo", ['{"repo": "x"}']))
    named = next(i for i, e in enumerate(events) if e.get("content_block", {}).get("name") == "delete_repo")
    guard = guards.stream_guard("messages")
    sent = [c for e in events[:named] for c in guard.feed(e).chunks]
    assert blocks_of(sent) == {0: "Let me check."}
    step = guard.feed(events[named])
    assert step.blocked_by == "tools" and step.chunks == []
    assert guard.feed(events[named + 1]).blocked_by == "tools"
    assert guard.verdicts[0].guardrail == "tools" and guard.next_sequence_number is None
    allowed = messages_events(("tool_use", "get_weather", ['{"city": "Paris"}']))
    assert run_stream(guards.stream_guard("messages"), allowed)[1] is None


def test_stream_cut_without_stop_is_flushed_by_finish() -> None:
    events = [e for e in messages_events(("text", ["write to bob@exa", "mple.com"])) if "stop" not in e["type"]]
    guard = REDACT.stream_guard("messages")
    sent = [c for e in events[:-1] for c in guard.feed(e).chunks] + asyncio.run(guard.finish()).chunks
    assert blocks_of(sent) == {0: "write to [EMAIL]"}


def test_the_anthropic_sdk_reads_the_redacted_stream() -> None:
    args = json.dumps({"to": "bob@example.com"})
    events = messages_events(
        ("thinking", ["about alice.smith@example.com"]),
        ("text", [TEXT[:40], TEXT[40:]]),
        ("tool_use", "send", [args[:9], args[9:]]),
    )
    sent, _ = run_stream(REDACT.stream_guard("messages"), events)
    snapshot: Any = None
    buffers: dict[int, bytes] = {}
    for event in sent:
        if event["type"] != "ping":
            snapshot = accumulate_event(event=messages_model(event), current_snapshot=snapshot, json_bufs=buffers)
    thinking, text, use = snapshot.content
    assert thinking.thinking == "about [EMAIL]" and thinking.signature.startswith("EqQB")
    assert text.text == EXPECTED and use.input == {"to": "[EMAIL]"}


def test_webhook_judges_whole_texts_and_rewrites_the_deltas() -> None:
    async def service(url: str, payload: dict[str, Any], headers: dict[str, str], timeout: float) -> Any:
        calls.append(payload)
        return {"action": "redact", "redactions": [{"text": "Acme"}]}

    calls: list[dict[str, Any]] = []
    guards = gset(
        {"hook": {"type": "webhook", "url": "https://guard.local/check", "on_error": "block"}}, post_json=service
    )
    guard = guards.stream_guard("messages")
    events = messages_events(("text", ["The Ac", "me deal"]), ("tool_use", "send", ['{"co": "Ac', 'me"}']))
    assert guard.feed(events[0]).chunks == []  # held until the service has seen the whole texts
    sent, blocked = run_stream(guard, events[1:])
    assert blocked is None and calls[0]["texts"] == ["The Acme deal", '{"co": "Acme"}']
    assert blocks_of(sent) == {0: "The [REDACTED] deal", 1: '{"co": "[REDACTED]"}'}
    check_messages_events(sent)
