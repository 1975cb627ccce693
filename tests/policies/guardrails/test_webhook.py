"""Webhook guardrail against a stand-in service that is slow, down, or answering."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from policies.guardrails import GuardrailSet, ScanResult
from tests.policies.guardrails.support import chunk, content_of, gset, run_stream

Handler = Callable[[dict[str, Any]], Awaitable[Any]]


class StandIn:
    """A fake `post_json` that records calls and answers through a handler."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.calls: list[tuple[str, dict[str, Any], dict[str, str], float]] = []

    async def __call__(self, url: str, payload: dict[str, Any], headers: dict[str, str], timeout: float) -> Any:
        self.calls.append((url, payload, headers, timeout))
        return await self.handler(payload)


def hook_set(
    handler: Handler, on_error: str = "block", action: str = "block", extra: tuple[str, ...] = ()
) -> tuple[GuardrailSet, StandIn]:
    service = StandIn(handler)
    guards = {
        "pii": {"type": "pii"},
        "hook": {
            "type": "webhook",
            "url": "https://guard.local/check",
            "timeout_ms": 50,
            "on_error": on_error,
            "action": action,
            "headers": {"Authorization": "Bearer t"},
        },
    }
    return gset(guards, [*extra, "hook"], post_json=service), service


def ask(guards: GuardrailSet, text: str) -> ScanResult:
    return asyncio.run(guards.scan_request({"messages": [{"role": "user", "content": text}]}))


async def answer(value: Any) -> Any:
    return value


def test_allow_and_contract() -> None:
    guards, service = hook_set(lambda p: answer({"action": "allow"}), extra=("pii",))
    result = ask(guards, "hello from a@b.io")
    assert result.blocked_by is None and result.body["messages"][0]["content"] == "hello from [EMAIL]"
    url, payload, headers, timeout = service.calls[0]
    assert url == "https://guard.local/check" and headers == {"Authorization": "Bearer t"} and timeout == 0.05
    # the service sees the texts after local redaction
    assert payload == {"guardrail": "hook", "phase": "input", "texts": ["hello from [EMAIL]"], "roles": ["user"]}


def test_block() -> None:
    guards, _ = hook_set(lambda p: answer({"action": "block", "reason": "policy 7"}))
    result = ask(guards, "anything")
    assert result.blocked_by == "hook" and result.verdicts[0].entities == ("webhook",)


def test_redact() -> None:
    guards, _ = hook_set(
        lambda p: answer({"action": "redact", "redactions": [{"text": "Acme merger", "entity": "deal"}]})
    )
    result = ask(guards, "Draft a memo on the Acme merger; the Acme merger closes Friday.")
    assert result.body["messages"][0]["content"] == "Draft a memo on the [DEAL]; the [DEAL] closes Friday."
    assert result.verdicts[0].count == 2 and result.verdicts[0].entities == ("deal",)


def test_flag_action_records_without_acting() -> None:
    guards, _ = hook_set(lambda p: answer({"action": "block"}), action="flag")
    result = ask(guards, "x")
    assert result.blocked_by is None and result.verdicts[0].action == "flag"


async def slow(_payload: dict[str, Any]) -> Any:
    await asyncio.sleep(5)
    return {"action": "allow"}


async def down(_payload: dict[str, Any]) -> Any:
    raise ConnectionRefusedError("connection refused")


@pytest.mark.parametrize("handler", [slow, down, lambda p: answer({"verdict": "ok"}), lambda p: answer("nope")])
@pytest.mark.parametrize("on_error", ["allow", "block"])
def test_errors_follow_on_error(handler: Handler, on_error: str) -> None:
    guards, _ = hook_set(handler, on_error=on_error)
    loop_start = asyncio.run(_timed(guards))
    result, elapsed = loop_start
    assert elapsed < 1.0  # the 50 ms timeout holds, whatever the service does
    assert result.blocked_by == ("hook" if on_error == "block" else None)
    assert result.verdicts[0].entities == ("webhook_error",)
    assert result.verdicts[0].action == ("block" if on_error == "block" else "flag")


async def _timed(guards: GuardrailSet) -> tuple[ScanResult, float]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    result = await guards.scan_request({"messages": [{"role": "user", "content": "hi"}]})
    return result, loop.time() - start


def test_stream_is_judged_whole_at_the_end() -> None:
    guards, service = hook_set(lambda p: answer({"action": "redact", "redactions": [{"text": "Acme"}]}))
    guard = guards.stream_guard()
    assert guard.feed(chunk("The Ac")).chunks == []  # held until the service has seen the whole text
    sent, blocked = run_stream(guard, [chunk("me deal"), chunk(finish="stop")])
    assert blocked is None and content_of(sent) == "The [REDACTED] deal"
    assert service.calls[0][1]["texts"] == ["The Acme deal"]
    blocking, _ = hook_set(lambda p: answer({"action": "block"}))
    assert run_stream(blocking.stream_guard(), [chunk("hi"), chunk(finish="stop")]) == ([], "hook")
