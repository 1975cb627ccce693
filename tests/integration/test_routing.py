"""Routing through the real gateway: fallback chains over providers failing in every way, retries,
the circuit breaker, streams that fall back before their first byte, strategies and rules."""

from __future__ import annotations

import collections
import json
import sqlite3
import time
from typing import Any

import openai
import pytest

from tests.gateway_harness import ADMIN_KEY, AGENT_KEY, base_config
from tests.standin import StandIn

USER = [{"role": "user", "content": "route me"}]
TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}


def routing_config(standin: StandIn) -> dict[str, Any]:
    config = base_config(standin)
    models = config["models"]
    models["oa-too-long"] = {"provider": "standin-openai", "upstream": "too-long"}
    models["oa-flaky"] = {"provider": "standin-openai", "upstream": "flaky-500-1"}
    # Three priced models on one upstream name, for the cost/quality strategies.
    models["cheap"] = {
        "provider": "standin-openai",
        "upstream": "gpt-x",
        "quality": 0.5,
        "input_per_mtok": 0.1,
        "output_per_mtok": 0.4,
    }
    models["middle"] = {
        "provider": "standin-anthropic",
        "upstream": "gpt-x",
        "quality": 0.8,
        "input_per_mtok": 1,
        "output_per_mtok": 4,
    }
    models["premium"] = {
        "provider": "standin-openai",
        "upstream": "gpt-x",
        "quality": 0.95,
        "input_per_mtok": 10,
        "output_per_mtok": 40,
    }
    models["no-tools"] = {"provider": "standin-openai", "upstream": "gpt-x", "capabilities": {"tools": False}}
    config["routes"] = {
        "chain": {"candidates": ["oa-fail-500", "an-fail-503", "oa-not-json", "oa-fail-429", "oa-gpt-x"]},
        "chain-timeout": {"candidates": ["oa-slow", "an-gpt-x"]},
        "chain-context": {"candidates": ["oa-too-long", "an-gpt-x"], "fallback_on": ["5xx", "context_length"]},
        "no-context-fallback": {"candidates": ["oa-too-long", "an-gpt-x"]},
        "stream-chain": {"candidates": ["oa-fail-503", "an-not-json", "an-gpt-x"]},
        "breaker-chain": {"candidates": ["oa-fail-503", "an-gpt-x"]},
        "budget": {"candidates": ["cheap"]},
        "late-failure": {"candidates": ["oa-stream-error", "oa-gpt-x"]},
        "retrying": {
            "candidates": ["oa-flaky", "an-gpt-x"],
            "retry": {"max_attempts_per_target": 2, "base_delay_s": 0.01},
        },
        "split": {"strategy": "weighted", "weights": {"oa-gpt-x": 70, "an-gpt-x": 30}},
        "sticky": {"strategy": "weighted", "weights": {"oa-gpt-x": 50, "an-gpt-x": 50}, "sticky": True},
        "auto": {
            "strategy": "cheapest_above_quality",
            "min_quality": 0.75,
            "candidates": ["cheap", "premium", "middle"],
        },
        "capped": {
            "strategy": "best_quality_under_cost",
            "max_cost_usd": 0.01,
            "candidates": ["cheap", "premium", "middle"],
        },
        "tools-route": {"candidates": ["no-tools", "cheap"]},
        "canary": {"candidates": ["an-gpt-x"]},
    }
    config["routing"] = {
        "breaker": {"failure_threshold": 2, "cooldown_s": 1},
        "rules": [
            {"name": "canary-header", "match": {"headers": {"X-Canary": "on"}}, "route": "canary"},
            {"name": "research-cheap", "match": {"team": "research", "model": "auto"}, "route": "budget"},
        ],
    }
    return config


@pytest.fixture
def gateway(standin: StandIn, gateway_factory: Any) -> Any:
    return gateway_factory(routing_config(standin))


def chat(gateway: Any, model: str, key: str = ADMIN_KEY, **options: Any) -> Any:
    return client(gateway, key).chat.completions.with_raw_response.create(model=model, messages=USER, **options)


def client(gateway: Any, key: str) -> Any:
    """One SDK client per gateway and key (building one costs tens of milliseconds)."""
    clients = gateway.__dict__.setdefault("_routing_clients", {})
    if key not in clients:
        clients[key] = gateway.client(key)
    return clients[key]


def ledger_row(gateway: Any, request_id: str) -> sqlite3.Row:
    with gateway.http() as http:
        http.get("/v1/usage")  # flushes the ledger
    with sqlite3.connect(gateway.ledger_path) as db:
        db.row_factory = sqlite3.Row
        return db.execute("SELECT * FROM usage_events WHERE request_id = ?", (request_id,)).fetchone()


def test_fallback_chain_over_every_kind_of_failure(gateway: Any, standin: StandIn) -> None:
    raw = chat(gateway, "chain")
    assert raw.headers["x-agentgw-model"] == "oa-gpt-x" and raw.headers["x-agentgw-route"] == "chain"
    assert raw.parse().choices[0].message.content.startswith("Hello from stand-in gpt-x")
    assert [e.model for e in standin.requests] == ["fail-500", "fail-503", "not-json", "fail-429", "gpt-x"]
    row = ledger_row(gateway, raw.headers["x-request-id"])
    assert row["attempts"] == 5 and row["model"] == "oa-gpt-x" and row["route"] == "chain"
    assert [a["error"] for a in json.loads(row["attempt_log"])] == [
        "status_500",
        "status_503",
        "bad_response",
        "status_429",
    ]


def test_timeouts_fall_back(gateway: Any) -> None:
    assert chat(gateway, "chain-timeout").headers["x-agentgw-model"] == "an-gpt-x"


def test_context_length_error_falls_back_only_when_configured(gateway: Any, standin: StandIn) -> None:
    assert chat(gateway, "chain-context").headers["x-agentgw-model"] == "an-gpt-x"
    standin.clear()
    with pytest.raises(openai.BadRequestError) as info:
        chat(gateway, "no-context-fallback")
    assert "maximum context length" in info.value.message
    assert [e.model for e in standin.requests] == ["too-long"]


def test_stream_falls_back_before_its_first_byte(gateway: Any, standin: StandIn) -> None:
    stream = gateway.client().chat.completions.create(model="stream-chain", messages=USER, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Hello from stand-in gpt-x: route me"
    assert [e.model for e in standin.requests] == ["fail-503", "not-json", "gpt-x"]


def test_stream_failing_after_its_first_byte_ends_with_an_error_event(gateway: Any, standin: StandIn) -> None:
    stream = gateway.client().chat.completions.create(model="late-failure", messages=USER, stream=True)
    with pytest.raises(openai.APIError) as info:
        list(stream)
    assert [e.model for e in standin.requests] == ["stream-error"]  # the client saw content: no fallback
    assert isinstance(info.value.body, dict)
    [attempt] = info.value.body["attempts"]  # the event says which attempt broke
    assert (attempt["provider"], attempt["model"], attempt["error"]) == (
        "standin-openai",
        "oa-stream-error",
        "stream_error",
    )
    row = ledger_row(gateway, standin.requests[0].headers["x-request-id"])
    assert row["attempts"] == 1 and json.loads(row["attempt_log"])[0]["model"] == "oa-stream-error"


def test_retry_with_backoff_on_the_same_target(gateway: Any, standin: StandIn) -> None:
    raw = chat(gateway, "retrying")
    assert raw.headers["x-agentgw-model"] == "oa-flaky"
    assert [e.model for e in standin.requests] == ["flaky-500-1", "flaky-500-1"]
    assert ledger_row(gateway, raw.headers["x-request-id"])["attempts"] == 2


def test_circuit_breaker_opens_and_probes_after_the_cooldown(gateway: Any, standin: StandIn) -> None:
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            chat(gateway, "oa-fail-500")
    assert len(standin.requests) == 2
    with pytest.raises(openai.APIStatusError) as info:
        gateway.client().chat.completions.create(model="oa-fail-500", messages=USER)
    assert info.value.status_code == 503 and info.value.body["code"] == "service_unavailable"
    assert int(info.value.response.headers["retry-after"]) >= 1
    assert len(standin.requests) == 2  # open: nothing was sent
    with gateway.http() as http:
        routes = {r["name"]: r for r in http.get("/v1/routes").json()["data"]}
    assert routes["oa-fail-500"]["targets"][0]["breaker"] == "open"
    time.sleep(1.1)
    with pytest.raises(openai.InternalServerError):
        chat(gateway, "oa-fail-500")  # half-open: one probe goes out, fails, and the circuit opens again
    assert len(standin.requests) == 3
    with pytest.raises(openai.APIStatusError) as info:
        chat(gateway, "oa-fail-500")
    assert info.value.status_code == 503


def test_an_open_circuit_is_skipped_in_favour_of_the_next_target(gateway: Any, standin: StandIn) -> None:
    for _ in range(2):
        chat(gateway, "breaker-chain")  # oa-fail-503 fails twice: its circuit opens
    standin.clear()
    assert chat(gateway, "breaker-chain").headers["x-agentgw-model"] == "an-gpt-x"
    assert "fail-503" not in [e.model for e in standin.requests]


def test_weighted_split_within_tolerance(gateway: Any) -> None:
    counts = collections.Counter(chat(gateway, "split").headers["x-agentgw-model"] for _ in range(300))
    assert 0.6 < counts["oa-gpt-x"] / 300 < 0.8


def test_sticky_sessions_keep_one_model(gateway: Any) -> None:
    for session in ("s-1", "s-2", "s-3", "s-4"):
        models = {
            chat(gateway, "sticky", extra_headers={"x-session-id": session}).headers["x-agentgw-model"]
            for _ in range(5)
        }
        assert len(models) == 1


def test_cost_and_quality_strategies(gateway: Any, standin: StandIn) -> None:
    assert chat(gateway, "auto").headers["x-agentgw-model"] == "middle"  # cheapest with quality >= 0.75
    assert chat(gateway, "capped").headers["x-agentgw-model"] == "middle"  # best quality under $0.01


def test_rules_choose_routes_and_narrow_candidates(gateway: Any) -> None:
    canary = chat(gateway, "oa-gpt-x", extra_headers={"X-Canary": "on"})
    assert canary.headers["x-agentgw-model"] == "an-gpt-x" and canary.headers["x-agentgw-route"] == "canary"
    assert chat(gateway, "auto", key=AGENT_KEY).headers["x-agentgw-model"] == "cheap"  # team research
    assert chat(gateway, "auto", key=ADMIN_KEY).headers["x-agentgw-model"] == "middle"  # team ops


def test_capabilities_filter_candidates(gateway: Any) -> None:
    assert chat(gateway, "tools-route", tools=[TOOL]).headers["x-agentgw-model"] == "cheap"
    assert chat(gateway, "tools-route").headers["x-agentgw-model"] == "no-tools"
    with pytest.raises(openai.BadRequestError) as info:
        chat(gateway, "no-tools", tools=[TOOL])
    assert "capability" in info.value.message


def test_routes_endpoint_is_for_admins(gateway: Any) -> None:
    with gateway.http(AGENT_KEY) as http:
        assert http.get("/v1/routes").status_code == 403
    with gateway.http(ADMIN_KEY) as http:
        routes = http.get("/v1/routes").json()["data"]
    assert {"chain", "auto", "oa-gpt-x"} <= {r["name"] for r in routes}
