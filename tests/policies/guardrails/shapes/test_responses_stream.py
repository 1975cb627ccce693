"""Responses streams: deltas redacted like the whole response, done events repeat only what was sent,
sequence numbers stay increasing, blocks release nothing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from openai import omit
from openai.lib.streaming.responses import ResponseStreamState

from policies.guardrails import GuardrailSet
from tests.policies.guardrails.streams import (
    check_responses_events,
    message_item,
    response_object,
    responses_events,
    responses_model,
    streamed,
    whole_texts,
)
from tests.policies.guardrails.support import OPENAI_KEY, gset, run_stream

TEXT = f"Contact alice.smith@example.com, key {OPENAI_KEY} thanks. Call +1 415 555 0132 or card 4111 1111 1111 1111."
EXPECTED = "Contact [EMAIL], key [SECRET] thanks. Call [PHONE] or card [CREDIT_CARD]."
REDACT = gset({"pii": {"type": "pii"}, "secrets": {"type": "secrets", "action": "redact"}})
BLOCK = gset({"pii": {"type": "pii"}, "secrets": {"type": "secrets", "action": "block"}})
RAW = ("alice.smith@example.com", OPENAI_KEY, "555 0132", "4111 1111")


def stream(guards: GuardrailSet, *items: tuple[Any, ...]) -> tuple[list[dict[str, Any]], str | None]:
    return run_stream(guards.stream_guard("responses"), responses_events(*items))


def assert_clean(sent: list[dict[str, Any]]) -> None:
    check_responses_events(sent)
    dumped = json.dumps(sent)
    assert not any(raw in dumped for raw in RAW)


def test_every_two_way_split_is_redacted_in_deltas_and_done_events() -> None:
    whole = asyncio.run(REDACT.scan_response(response_object("completed", [message_item(TEXT)]), api="responses"))
    assert whole.body["output"][0]["content"][0]["text"] == EXPECTED
    for i in range(1, len(TEXT)):
        sent, blocked = stream(REDACT, ("message", [TEXT[:i], TEXT[i:]]))
        assert blocked is None and streamed(sent) == EXPECTED, i
        assert whole_texts(sent) == [EXPECTED] * 4, i  # output_text.done, content_part.done, item done, completed
        assert_clean(sent)


@pytest.mark.parametrize("max_hold", [64, 128])
def test_one_char_deltas(max_hold: int) -> None:
    guards = gset({"pii": {"type": "pii"}, "secrets": {"type": "secrets", "action": "redact"}}, max_hold=max_hold)
    sent, blocked = stream(guards, ("message", list(TEXT)))
    assert blocked is None and streamed(sent) == EXPECTED and whole_texts(sent) == [EXPECTED] * 4
    assert_clean(sent)
    numbers = [e["sequence_number"] for e in sent]
    assert numbers == list(range(len(sent)))  # held deltas dropped, the rest renumbered without gaps


def test_block_releases_nothing_of_the_key_at_any_split() -> None:
    safe = "Contact [EMAIL], key "
    for pieces in [[TEXT[:i], TEXT[i:]] for i in range(1, len(TEXT))] + [list(TEXT)]:
        guard = BLOCK.stream_guard("responses")
        sent, blocked = run_stream(guard, responses_events(("message", pieces)))
        assert blocked == "secrets"
        assert safe.startswith(streamed(sent)), pieces
        assert whole_texts(sent) == [] and OPENAI_KEY not in json.dumps(sent)
        check_responses_events(sent)
        assert guard.next_sequence_number == len(sent)  # the error event's number


def test_function_call_arguments_stay_valid_json_everywhere() -> None:
    args = json.dumps({"to": "bob@example.com", "body": f"key {OPENAI_KEY}\nbye"})
    expected = json.dumps({"to": "[EMAIL]", "body": "key [SECRET]\nbye"})
    for size in (1, 3, 11):
        pieces = [args[i : i + size] for i in range(0, len(args), size)]
        sent, blocked = stream(REDACT, ("message", ["Sending."]), ("function_call", "send", pieces))
        assert blocked is None and streamed(sent, "args", 1) == expected
        assert whole_texts(sent, 1) == [expected] * 3  # arguments.done, item done, completed
        assert sent[-1]["response"]["output"][1]["name"] == "send"
        assert_clean(sent)


def test_reasoning_summary_refusal_and_custom_tool_input_are_guarded() -> None:
    sent, blocked = stream(
        REDACT,
        ("reasoning", ["The user is alice.smith@exam", "ple.com, so"]),
        ("refusal", ["I can't mail alice.smith@", "example.com."]),
        ("custom_tool_call", "shell", ["mail alice.smith@example", ".com"]),
    )
    assert blocked is None
    assert streamed(sent, "summary", 0) == "The user is [EMAIL], so"
    assert set(whole_texts(sent, 0)) == {"The user is [EMAIL], so"}
    assert streamed(sent, "refusal", 1) == "I can't mail [EMAIL]."
    assert set(whole_texts(sent, 1)) == {"I can't mail [EMAIL]."}
    assert streamed(sent, "input", 2) == "mail [EMAIL]" and set(whole_texts(sent, 2)) == {"mail [EMAIL]"}
    assert_clean(sent)


def test_a_denied_tool_is_blocked_on_the_event_that_names_it() -> None:
    guards = gset({"tools": {"type": "tool_access", "allow": ["get_weather"]}})
    events = responses_events(("message", ["Let me check."]), ("function_call", "delete_repo", ['{"repo": "x"}']))
    named = next(i for i, e in enumerate(events) if e.get("item", {}).get("name") == "delete_repo")
    guard = guards.stream_guard("responses")
    sent = [c for e in events[:named] for c in guard.feed(e).chunks]
    assert streamed(sent) == "Let me check." and sent[-1]["type"] == "response.output_item.done"
    step = guard.feed(events[named])
    assert step.blocked_by == "tools" and step.chunks == []
    assert guard.feed(events[named + 1]).blocked_by == "tools"
    assert guard.verdicts[0].guardrail == "tools" and guard.verdicts[0].action == "block"
    assert guard.next_sequence_number == named
    allowed = responses_events(("function_call", "get_weather", ['{"city": "Paris"}']))
    assert run_stream(guards.stream_guard("responses"), allowed)[1] is None


def test_logprobs_are_emptied_while_text_guards_are_on() -> None:
    events = responses_events(("message", ["mail ann@", "example.org now"]), logprobs=True)
    assert any(e.get("logprobs") for e in events)
    sent, _ = run_stream(REDACT.stream_guard("responses"), events)
    assert all(not e.get("logprobs") and not (e.get("part") or {}).get("logprobs") for e in sent)
    assert all(not p.get("logprobs") for p in sent[-1]["response"]["output"][0]["content"])
    assert streamed(sent) == "mail [EMAIL] now"


def test_stream_cut_before_done_is_flushed_by_finish() -> None:
    events = responses_events(("message", ["write to bob@exa", "mple.com"]))
    cut = [e for e in events if not e["type"].endswith(".done") and e["type"] != "response.completed"]
    guard = REDACT.stream_guard("responses")
    sent = [c for e in cut for c in guard.feed(e).chunks] + asyncio.run(guard.finish()).chunks
    assert streamed(sent) == "write to [EMAIL]"
    check_responses_events(sent)


def test_a_text_never_streamed_is_scanned_where_it_appears() -> None:
    item = message_item("Reach ann@example.org")
    events = [
        {"type": "response.output_item.done", "output_index": 0, "item": item, "sequence_number": 7},
        {"type": "response.completed", "response": response_object("completed", [item]), "sequence_number": 8},
    ]
    sent, blocked = run_stream(REDACT.stream_guard("responses"), events)
    assert blocked is None and whole_texts(sent) == ["Reach [EMAIL]"] * 2
    assert [e["sequence_number"] for e in sent] == [7, 8]


def test_unknown_events_pass_renumbered() -> None:
    events = responses_events(("message", ["mail ann@", "example.org"]))
    where = {"item_id": "msg_0", "output_index": 0, "content_index": 0, "sequence_number": 99}
    events.insert(
        6, {"type": "response.output_text.annotation.added", **where, "annotation_index": 0, "annotation": None}
    )
    sent, _ = run_stream(REDACT.stream_guard("responses"), events)
    assert any(e["type"] == "response.output_text.annotation.added" for e in sent)
    check_responses_events(sent)


def test_the_openai_sdk_reads_the_redacted_stream() -> None:
    args = json.dumps({"to": "bob@example.com"})
    events = responses_events(("message", [TEXT[:30], TEXT[30:90], TEXT[90:]]), ("function_call", "send", [args]))
    sent, _ = run_stream(REDACT.stream_guard("responses"), events)
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    seen = [out for e in sent for out in state.handle_event(responses_model(e))]
    final = seen[-1]
    assert final.type == "response.completed"
    assert final.response.output_text == EXPECTED
    assert final.response.output[1].arguments == json.dumps({"to": "[EMAIL]"})


def test_webhook_judges_whole_texts_and_rewrites_every_event() -> None:
    async def service(url: str, payload: dict[str, Any], headers: dict[str, str], timeout: float) -> Any:
        calls.append(payload)
        return {"action": "redact", "redactions": [{"text": "Acme"}]}

    calls: list[dict[str, Any]] = []
    guards = gset(
        {"hook": {"type": "webhook", "url": "https://guard.local/check", "on_error": "block"}}, post_json=service
    )
    guard = guards.stream_guard("responses")
    events = responses_events(("message", ["The Ac", "me deal"]), ("function_call", "send", ['{"co": "Acme"}']))
    assert guard.feed(events[0]).chunks == []  # held until the service has seen the whole texts
    sent, blocked = run_stream(guard, events[1:])
    assert blocked is None and calls[0]["texts"] == ["The Acme deal", '{"co": "Acme"}']
    assert streamed(sent) == "The [REDACTED] deal" and whole_texts(sent) == ["The [REDACTED] deal"] * 4
    assert whole_texts(sent, 1) == ['{"co": "[REDACTED]"}'] * 3
    check_responses_events(sent)
    blocking = gset(
        {"hook": {"type": "webhook", "url": "https://guard.local/check", "on_error": "block"}}, post_json=refuse
    )
    assert run_stream(blocking.stream_guard("responses"), responses_events(("message", ["hi"]))) == ([], "hook")


async def refuse(url: str, payload: dict[str, Any], headers: dict[str, str], timeout: float) -> Any:
    return {"action": "block"}
