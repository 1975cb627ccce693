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


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("x-task-id", ""),
        ("x-task-id", "a" * 129),
        ("x-session-id", "has space"),
        ("x-agent-id", "é"),
        ("x-tags", "novalue"),
        ("x-tags", "k=v,=v"),
        ("x-tags", ",".join(f"k{i}=v" for i in range(17))),
        ("x-task-id", "drop;table"),
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
