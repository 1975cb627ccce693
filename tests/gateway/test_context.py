"""Attribution headers: validated, and unable to override what the key pins."""

from __future__ import annotations

import time

import pytest

from gateway.auth import Principal, Role
from gateway.context import attribute, client_request_id, new_request_id
from gateway.errors import InvalidRequest, PermissionDenied

PINNED = Principal("crawler-key", "research", "crawler", Role.AGENT, frozenset({"*"}))
FREE = Principal("shared-key", "research", None, Role.AGENT, frozenset({"*"}))


def test_headers_attribute_the_call() -> None:
    ctx = attribute(
        FREE,
        {
            "x-agent-id": "planner",
            "x-task-id": "T-1",
            "x-session-id": "s1",
            "x-tags": "env=prod, tier = gold",
        },
        "req_1",
    )
    assert (ctx.team, ctx.agent, ctx.task, ctx.session) == ("research", "planner", "T-1", "s1")
    assert ctx.tags == (("env", "prod"), ("tier", "gold"))


def test_agent_defaults_to_key_name() -> None:
    assert attribute(FREE, {}, "r").agent == "shared-key"


def test_pinned_agent_cannot_be_overridden() -> None:
    assert attribute(PINNED, {"x-agent-id": "crawler"}, "r").agent == "crawler"
    with pytest.raises(PermissionDenied):
        attribute(PINNED, {"x-agent-id": "someone-else"}, "r")


def latin1(text: str) -> str:
    """What the server hands over for a header sent as UTF-8: its bytes as latin-1 text."""
    return text.encode().decode("latin-1")


@pytest.mark.parametrize(
    "value",
    ["Weather reporter", "=cmd|' /C calc'!A0", 'say "hi" \\ back\\slash', "天气预报员", "🌦️ reporter", "👩\u200d💻",
     "drop;table", "x" * 128, "é"],
)  # fmt: skip
@pytest.mark.parametrize("name", ["x-agent-id", "x-task-id", "x-session-id"])
def test_any_printable_text_attributes_a_call(name: str, value: str) -> None:
    ctx = attribute(FREE, {name: latin1(value)}, "r")
    assert {"x-agent-id": ctx.agent, "x-task-id": ctx.task, "x-session-id": ctx.session}[name] == value


def test_a_header_that_is_not_utf8_reads_as_latin1() -> None:
    assert attribute(FREE, {"x-task-id": "caf\xe9"}, "r").task == "café"  # the byte 0xE9 alone


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("x-task-id", ""),
        ("x-task-id", "   "),
        ("x-task-id", "a" * 129),
        ("x-agent-id", "tab\there"),
        ("x-agent-id", "new\nline"),
        ("x-session-id", "nul\x00"),
        ("x-session-id", "del\x7f"),
        ("x-agent-id", "admin\u202egnp.exe"),  # a bidi override reorders what a log line shows
        ("x-tags", "novalue"),
        ("x-tags", "k=v,=v"),
        ("x-tags", ",".join(f"k{i}=v" for i in range(17))),
    ],
)
def test_malformed_headers_are_400(name: str, value: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        attribute(FREE, {name: value}, "r")
    assert info.value.param == name


def test_a_callers_request_id_is_kept_only_when_sane() -> None:
    assert client_request_id("abc-123") == "abc-123"
    assert client_request_id("bad id\n") is None
    assert client_request_id(None) is None
    assert new_request_id() != new_request_id() and new_request_id().startswith("req_")


def test_request_ids_grow_with_time() -> None:
    """Time-ordered (48-bit milliseconds first), so the ledger's index on them appends."""
    ids = []
    for _ in range(3):
        ids.append(new_request_id())
        time.sleep(0.002)
    assert ids == sorted(ids)
    assert all(len(i) == 4 + 32 and int(i[4:], 16) for i in ids)
    assert int(ids[0][4:16], 16) == pytest.approx(time.time() * 1000, abs=5_000)
