"""Metering end to end: the ledger agrees with what the providers reported, call by call, and the
usage report agrees with the ledger."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.gateway_harness import ADMIN_KEY, AGENT_KEY, ANTHROPIC_SECRET, OPENAI_SECRET, GatewayProcess, base_config
from tests.standin import StandIn

USER = [{"role": "user", "content": "Count the tokens of this request, please."}]
PRICED = {"input_per_mtok": 0.15, "output_per_mtok": 0.6, "cached_input_per_mtok": 0.075}


def priced_config(standin: StandIn) -> dict[str, Any]:
    config = base_config(standin)
    for name in (
        "oa-gpt-x",
        "an-gpt-x",
        "an-cache-x",
        "oa-stream-slow",
        "an-stream-slow",
        "an-stream-cut",
        "oa-no-usage",
    ):
        config["models"][name].update(PRICED)
    config["models"]["an-cache-x"]["cache_write_per_mtok"] = 0.19
    config["models"]["oa-embed"]["input_per_mtok"] = 0.02
    return config


@pytest.fixture
def gateway(standin: StandIn, gateway_factory: Any) -> Any:
    return gateway_factory(priced_config(standin))


def ledger_rows(path: Path) -> dict[str, sqlite3.Row]:
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        return {row["request_id"]: row for row in db.execute("SELECT * FROM usage_events")}


def flush(gateway: Any) -> None:
    """The usage endpoint flushes the ledger's queue before it reads."""
    with gateway.http() as http:
        assert http.get("/v1/usage").status_code == 200


def hang_up_mid_stream(gateway: Any, model: str) -> None:
    with (
        gateway.http(AGENT_KEY) as http,
        http.stream(
            "POST", "/v1/chat/completions", json={"model": model, "messages": USER, "stream": True}
        ) as response,
    ):
        lines = response.iter_lines()
        for _ in range(4):
            next(lines)


def mixed_workload(gateway: Any, standin: StandIn) -> None:
    client = gateway.client(AGENT_KEY)
    task = {"x-task-id": "T-42", "x-session-id": "sess-1", "x-tags": "env=test"}
    client.chat.completions.create(model="oa-gpt-x", messages=USER, extra_headers=task)
    client.chat.completions.create(model="an-gpt-x", messages=USER, extra_headers=task)
    client.chat.completions.create(model="an-cache-x", messages=USER)
    list(client.chat.completions.create(model="oa-gpt-x", messages=USER, stream=True))
    list(
        client.chat.completions.create(
            model="oa-gpt-x", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    list(client.chat.completions.create(model="an-gpt-x", messages=USER, stream=True))
    client.embeddings.create(model="oa-embed", input=["alpha beta", "gamma"])
    for model in ("oa-fail-503", "an-fail-500"):
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model=model, messages=USER)
    with pytest.raises(openai.APIError):
        list(client.chat.completions.create(model="oa-stream-cut", messages=USER, stream=True))
    hang_up_mid_stream(gateway, "oa-stream-slow")
    standin.wait_for(lambda e: e.model == "stream-slow" and e.cancelled)


def expected_from_provider(seen: Any) -> tuple[int, int, int]:
    """(input, output, cached) as the provider reported them, in the gateway's terms."""
    usage = seen.usage
    if "input_tokens" in usage:  # Anthropic: input_tokens excludes the cache
        read, write = usage.get("cache_read_input_tokens", 0), usage.get("cache_creation_input_tokens", 0)
        return usage["input_tokens"] + read + write, usage["output_tokens"], read
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
    return usage["prompt_tokens"], usage.get("completion_tokens", 0), cached


def test_ledger_matches_the_providers_call_by_call(gateway: Any, standin: StandIn) -> None:
    mixed_workload(gateway, standin)
    flush(gateway)
    rows = ledger_rows(gateway.ledger_path)
    provider_calls = {e.headers["x-request-id"]: e for e in standin.requests}
    assert set(provider_calls) == set(rows), "one event per admitted call, and only those"
    assert len(rows) == 11
    for request_id, seen in provider_calls.items():
        row = rows[request_id]
        assert row["key_name"] == "crawler-key" and row["team"] == "research" and row["agent"] == "crawler"
        if seen.usage is not None:
            assert (row["input_tokens"], row["output_tokens"], row["cached_tokens"]) == expected_from_provider(seen), (
                row["model"],
                seen.usage,
            )
            assert row["estimated"] == 0
        elif seen.status >= 400:
            assert (row["status"], row["outcome"], row["input_tokens"], row["cost_nanos"]) == (502, "error", 0, 0)
        else:  # a stream cut short or abandoned: the gateway counted it itself
            assert row["estimated"] == 1 and row["input_tokens"] > 0 and row["output_tokens"] > 0
            assert row["outcome"] == ("client_disconnected" if seen.cancelled else "error")


def test_attribution_and_streams_are_recorded(gateway: Any, standin: StandIn) -> None:
    mixed_workload(gateway, standin)
    flush(gateway)
    rows = list(ledger_rows(gateway.ledger_path).values())
    tagged = [r for r in rows if r["task"] == "T-42"]
    assert len(tagged) == 2 and all(r["session"] == "sess-1" and r["tags"] == '{"env":"test"}' for r in tagged)
    streams = [r for r in rows if r["stream"]]
    assert len(streams) == 5 and all(r["ttft_ms"] is not None and r["ttft_ms"] <= r["latency_ms"] for r in streams)


def test_hidden_usage_chunk_is_requested_upstream_but_not_shown(gateway: Any, standin: StandIn) -> None:
    chunks = list(gateway.client().chat.completions.create(model="oa-gpt-x", messages=USER, stream=True))
    assert all(c.choices and c.usage is None for c in chunks)
    [seen] = standin.requests
    assert seen.body["stream_options"] == {"include_usage": True}
    assert seen.usage is not None
    with (
        gateway.http() as http,
        http.stream(
            "POST", "/v1/chat/completions", json={"model": "oa-gpt-x", "messages": USER, "stream": True}
        ) as response,
    ):
        text = response.read().decode()
    assert '"usage"' not in text


def test_cost_is_exact_and_shown_on_the_response(gateway: Any, standin: StandIn) -> None:
    raw = gateway.client().chat.completions.with_raw_response.create(model="an-cache-x", messages=USER)
    [seen] = standin.requests
    u = seen.usage
    # fresh input at 0.15, cache reads at 0.075, cache writes at 0.19, output at 0.6 (USD per million)
    nanos = u["input_tokens"] * 150 + 100 * 75 + 7 * 190 + u["output_tokens"] * 600
    assert raw.headers["x-agentgw-cost-usd"] == f"{nanos / 1e9:.9f}".rstrip("0")
    flush(gateway)
    assert ledger_rows(gateway.ledger_path)[raw.headers["x-request-id"]]["cost_nanos"] == nanos


def test_provider_without_usage_is_estimated(gateway: Any) -> None:
    raw = gateway.client().chat.completions.with_raw_response.create(model="oa-no-usage", messages=USER)
    flush(gateway)
    row = ledger_rows(gateway.ledger_path)[raw.headers["x-request-id"]]
    assert row["estimated"] == 1 and row["input_tokens"] > 10 and row["output_tokens"] > 5
    assert row["cost_nanos"] > 0


def usage(gateway: Any, api_key: str = ADMIN_KEY, **params: str) -> httpx.Response:
    with gateway.http(api_key) as http:
        return http.get("/v1/usage", params=params)


def test_a_cut_anthropic_stream_keeps_the_input_the_provider_reported(gateway: Any, standin: StandIn) -> None:
    """Anthropic reports the input counts (cache included) in its first event: a stream cut or
    abandoned after it is billed on those, and only the output is the gateway's count."""
    client = gateway.client(AGENT_KEY)
    with pytest.raises(openai.APIError):
        list(client.chat.completions.create(model="an-stream-cut", messages=USER, stream=True))
    hang_up_mid_stream(gateway, "an-stream-slow")
    standin.wait_for(lambda e: e.model == "stream-slow" and e.cancelled)
    flush(gateway)
    rows = ledger_rows(gateway.ledger_path)
    for seen in standin.requests:
        row = rows[seen.headers["x-request-id"]]
        assert seen.usage is not None and not seen.finished  # the first event went out, the last did not
        reported_input, _, reported_cached = expected_from_provider(seen)
        assert (row["input_tokens"], row["cached_tokens"]) == (reported_input, reported_cached)
        assert row["cache_write_tokens"] == seen.usage.get("cache_creation_input_tokens", 0)
        assert row["estimated"] == 1 and row["output_tokens"] >= 1 and row["cost_nanos"] > 0


def test_report_totals_equal_the_ledger(gateway: Any, standin: StandIn) -> None:
    mixed_workload(gateway, standin)
    gateway.client().chat.completions.create(model="mock-chat", messages=USER)
    report = usage(gateway, group_by="team,agent,model").json()
    rows = list(ledger_rows(gateway.ledger_path).values())
    totals = report["totals"]
    assert totals["requests"] == len(rows) == 12
    assert totals["errors"] == sum(r["outcome"] == "error" for r in rows) == 3
    for name in ("input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens"):
        assert totals[name] == sum(r[name] for r in rows)
        assert sum(row[name] for row in report["data"]) == totals[name]
    assert round(totals["cost_usd"] * 1e9) == sum(r["cost_nanos"] for r in rows)
    assert {(r["team"], r["agent"]) for r in report["data"]} == {("research", "crawler"), ("ops", "admin")}
    assert report["object"] == "usage.report" and report["group_by"] == ["team", "agent", "model"]


def test_report_filters_buckets_and_csv(gateway: Any, standin: StandIn) -> None:
    mixed_workload(gateway, standin)
    by_task = usage(gateway, group_by="task", task="T-42").json()
    assert [(r["task"], r["requests"]) for r in by_task["data"]] == [("T-42", 2)]
    by_day = usage(gateway, group_by="day").json()
    assert len(by_day["data"]) == 1 and by_day["data"][0]["requests"] == 11
    csv_text = usage(gateway, group_by="provider", format="csv").text
    lines = csv_text.strip().splitlines()
    assert lines[0] == "provider,requests,errors,input_tokens,output_tokens,cached_tokens,reasoning_tokens,cost_usd"
    assert len(lines) == 3
    by_provider = {r["provider"]: r for r in usage(gateway, group_by="provider").json()["data"]}
    for line in lines[1:]:  # USD in plain decimals, equal to the JSON report's
        provider, *_, cost = line.split(",")
        assert "e" not in cost.lower() and float(cost) == pytest.approx(by_provider[provider]["cost_usd"], abs=1e-9)
    future = usage(gateway, **{"from": "2099-01-01", "to": "2099-02-01"}).json()
    assert future["data"] == [] and future["totals"]["requests"] == 0


def test_report_is_scoped_by_role(gateway: Any, standin: StandIn) -> None:
    gateway.client(AGENT_KEY).chat.completions.create(model="oa-gpt-x", messages=USER)
    gateway.client(ADMIN_KEY).chat.completions.create(model="oa-gpt-x", messages=USER)
    mine = usage(gateway, AGENT_KEY, group_by="key").json()
    assert [(r["key"], r["requests"]) for r in mine["data"]] == [("crawler-key", 1)]
    everything = usage(gateway, ADMIN_KEY, group_by="key").json()
    assert {r["key"] for r in everything["data"]} == {"crawler-key", "admin"}
    for params in ({"team": "ops"}, {"key": "admin"}, {"agent": "someone-else"}):
        response = usage(gateway, AGENT_KEY, **params)
        assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"group_by": "team,colour"}, "group_by"),
        ({"group_by": "day,hour"}, "group_by"),
        ({"from": "last tuesday"}, "from"),
        ({"to": "2026-13-45"}, "to"),
        ({"format": "xml"}, "format"),
        ({"grup_by": "team"}, "grup_by"),
        ({"from": "2026-02-01", "to": "2026-01-01"}, "from"),
        ({"team": "x' OR '1'='1"}, None),
    ],
)
def test_report_rejects_bad_parameters(gateway: Any, params: dict[str, str], param: str | None) -> None:
    response = usage(gateway, **params)
    if param is None:  # not an error: the value is bound as a parameter and simply matches nothing
        assert response.status_code == 200 and response.json()["data"] == []
        return
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_graceful_restart_loses_nothing(standin: StandIn, tmp_path: Path) -> None:
    process = GatewayProcess(priced_config(standin), tmp_path).start()
    ids = []
    try:
        with httpx.Client(base_url=process.url, headers={"authorization": f"Bearer {ADMIN_KEY}"}) as http:
            for i in range(30):
                body = {
                    "model": "oa-gpt-x",
                    "messages": [{"role": "user", "content": f"call {i}"}],
                    "stream": i % 2 == 0,
                }
                response = http.post("/v1/chat/completions", json=body)
                ids.append(response.headers["x-request-id"])
    finally:
        process.signal(signal.SIGTERM)
        process.wait()
    assert set(ids) <= set(ledger_rows(process.ledger_path))
    assert "ledger flushed: 30 events written" in process.output()
    restarted = GatewayProcess(priced_config(standin), tmp_path).start()
    try:
        with httpx.Client(base_url=restarted.url, headers={"authorization": f"Bearer {ADMIN_KEY}"}) as http:
            assert http.get("/v1/usage").json()["totals"]["requests"] == 30
    finally:
        restarted.stop()


def test_usage_cli_reads_the_ledger_and_the_gateway(gateway: Any, standin: StandIn) -> None:
    mixed_workload(gateway, standin)
    flush(gateway)
    cli = [sys.executable, "-m", "gateway", "usage", "--group-by", "team,agent", "--since", "7d"]
    table = subprocess.run([*cli, "--ledger", str(gateway.ledger_path)], capture_output=True, text=True, check=True)
    lines = table.stdout.splitlines()
    assert lines[1].split()[:4] == ["team", "agent", "requests", "errors"]
    assert lines[3].split()[:4] == ["research", "crawler", "11", "3"]
    assert lines[-1].split()[:3] == ["TOTAL", "11", "3"]
    remote = subprocess.run(
        [*cli, "--url", gateway.url, "--api-key", ADMIN_KEY, "--format", "csv"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert remote.stdout.splitlines()[1].startswith("research,crawler,11,3,")


def test_the_ledger_file_holds_no_key(standin: StandIn, gateway_factory: Any) -> None:
    """Neither gateway keys (valid or refused) nor provider keys reach the ledger, content capture on
    and upstream failures included: the bytes of the database and its WAL are searched."""
    config = priced_config(standin)
    config["telemetry"] = {"capture_content": {"enabled": True}}
    gateway = gateway_factory(config)
    mixed_workload(gateway, standin)
    with pytest.raises(openai.AuthenticationError):
        gateway.client("agentgw-not-a-key-0000").chat.completions.create(model="oa-gpt-x", messages=USER)
    flush(gateway)
    raw = b"".join(p.read_bytes() for p in gateway.ledger_path.parent.glob(gateway.ledger_path.name + "*"))
    assert len(ledger_rows(gateway.ledger_path)) == 11 and b"Count the tokens" in raw  # content was captured
    for secret in (ADMIN_KEY, AGENT_KEY, OPENAI_SECRET, ANTHROPIC_SECRET, "agentgw-not-a-key-0000"):
        assert secret.encode() not in raw, secret
