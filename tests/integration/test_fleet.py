"""Replicas of `agentgw serve` (real processes) on one Redis and one PostgreSQL ledger: every replica
answers the same reports, sessions and feedback; a stalled and restarted database loses nothing and
counts nothing twice."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.gateway_harness import ADMIN_KEY, AGENT_KEY, GatewayProcess, base_config
from tests.postgres_server import PASSWORD, PostgresServer
from tests.redis_server import RedisServer
from tests.standin import StandIn

PRICED = {"input_per_mtok": 0.15, "output_per_mtok": 0.6}


def fleet_config(standin: StandIn, redis: RedisServer, dsn: str, spool: Path, **ledger: Any) -> dict[str, Any]:
    config = base_config(standin)
    config["models"]["oa-gpt-x"].update(PRICED)
    config["models"]["an-gpt-x"].update(PRICED)
    config["state"] = {"url": redis.url, "key_prefix": f"fleet{time.monotonic_ns()}:"}
    config["ledger"] = {"url": dsn, "spool_dir": str(spool), "flush_interval_ms": 50, **ledger}
    config["telemetry"] = {"capture_content": {"enabled": True}}
    return config


def start_replicas(config: dict[str, Any], tmp_path: Path, count: int = 2) -> list[GatewayProcess]:
    replicas = []
    for i in range(count):
        own = {**config, "ledger": {**config["ledger"], "spool_dir": str(tmp_path / f"spool-{i}")}}
        replicas.append(GatewayProcess(own, tmp_path / f"replica-{i}").start())
    return replicas


def call(http: httpx.Client, model: str, session: str, text: str, key: str = AGENT_KEY) -> str:
    response = http.post(
        "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": text}]},
        headers={"authorization": f"Bearer {key}", "x-session-id": session},
    )
    assert response.status_code == 200, response.text
    return response.headers["x-request-id"]


def get(url: str, path: str, **params: str) -> Any:
    response = httpx.get(url + path, params=params, headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=30)
    assert response.status_code == 200, response.text
    return response.text if "ndjson" in response.headers["content-type"] else response.json()


def test_every_replica_answers_the_same_reports_sessions_and_feedback(
    standin: StandIn, redis_server: RedisServer, postgres_dsn: str, tmp_path: Path
) -> None:
    a, b = start_replicas(fleet_config(standin, redis_server, postgres_dsn, tmp_path), tmp_path)
    try:
        ids = []
        with httpx.Client(base_url=a.url, timeout=10) as on_a, httpx.Client(base_url=b.url, timeout=10) as on_b:
            for i in range(6):
                ids.append(call(on_a if i % 2 == 0 else on_b, "oa-gpt-x", "shared-session", f"step {i}"))
            call(on_b, "an-gpt-x", "other", "alone", key=ADMIN_KEY)
        get(a.url, "/v1/usage")  # each replica writes what it answered before it reports
        get(b.url, "/v1/usage")
        for group_by in ("team,agent,day", "key,model", "session"):
            reports = [get(r.url, "/v1/usage", group_by=group_by) for r in (a, b)]
            assert reports[0]["data"] == reports[1]["data"] and reports[0]["totals"] == reports[1]["totals"]
        assert reports[0]["totals"]["requests"] == 7

        sessions = [get(r.url, "/v1/sessions/shared-session") for r in (a, b)]
        assert sessions[0] == sessions[1]
        assert [c["request_id"] for c in sessions[0]["calls"]] == ids  # the order they happened in
        assert sessions[0]["calls"][3]["input_messages"][0]["parts"] == [{"type": "text", "content": "step 3"}]

        feedback = httpx.post(
            b.url + "/v1/feedback",
            json={"request_id": ids[0], "label": "wrong", "score": 0.0},  # answered by replica a
            headers={"authorization": f"Bearer {AGENT_KEY}"},
        )
        assert feedback.status_code == 201, feedback.text
        exported = [json.loads(line) for line in get(a.url, "/v1/feedback/export").splitlines()]
        assert [(case["request_id"], case["labels"]) for case in exported] == [(ids[0], ["wrong"])]

        cli = subprocess.run(
            [sys.executable, "-m", "gateway", "usage", "--ledger", postgres_dsn, "--group-by", "team,agent,day",
             "--format", "json", "--since", "1d"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert cli.returncode == 0, cli.stderr
        assert json.loads(cli.stdout)["data"] == get(a.url, "/v1/usage", group_by="team,agent,day")["data"]
    finally:
        for replica in (a, b):
            replica.stop()
    for replica in (a, b):
        assert PASSWORD not in replica.output()


def ledger_state(url: str) -> dict[str, Any]:
    response = httpx.get(url + "/readyz", timeout=5)
    assert response.status_code == 200, response.text  # the ledger never fails readiness
    return dict(response.json()["ledger"])


def wait_for(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


async def stored(dsn: str) -> tuple[list[str], int]:
    db = await asyncpg.connect(dsn)
    try:
        ids = [r[0] for r in await db.fetch("SELECT request_id FROM usage_events")]
        rolled = int(await db.fetchval("SELECT coalesce(sum(requests), 0) FROM usage_rollup"))
        return ids, rolled
    finally:
        await db.close()


def test_a_stalled_then_restarted_database_loses_nothing_and_counts_nothing_twice(
    standin: StandIn, redis_server: RedisServer, postgres_server: PostgresServer, postgres_dsn: str, tmp_path: Path
) -> None:
    import asyncio

    # A report on a pooled connection to the hung server waits the statement timeout (README: Known
    # limitations); the pool holds one once anything has read or written through it (the agentops
    # version registry and anomaly watcher do at once).
    config = fleet_config(standin, redis_server, postgres_dsn, tmp_path, write_timeout_ms=700, connect_timeout_ms=700,
                          statement_timeout_ms=2000)  # fmt: skip
    (replica,) = start_replicas(config, tmp_path, count=1)
    ids: list[str] = []
    try:
        with httpx.Client(base_url=replica.url, timeout=10) as http:
            ids += [call(http, "oa-gpt-x", "before", f"{i}") for i in range(10)]
            wait_for(lambda: ledger_state(replica.url)["queued"] == 0)
            postgres_server.pause()  # hung: connections open, nothing answers
            try:
                ids += [call(http, "oa-gpt-x", "stalled", f"{i}") for i in range(15)]  # answered as usual
                wait_for(lambda: ledger_state(replica.url)["spooled"] > 0)
                assert ledger_state(replica.url)["state"] == "spooling"
                for path in ("/v1/usage", "/v1/sessions/stalled"):  # reports need the database: 503, not a hang
                    assert http.get(path, headers={"authorization": f"Bearer {ADMIN_KEY}"}).status_code == 503
                ids += [call(http, "oa-gpt-x", "stalled", f"{i}") for i in range(15, 25)]
            finally:
                postgres_server.restart()  # it comes back from a stall by restarting
            ids += [call(http, "oa-gpt-x", "after", f"{i}") for i in range(10)]
            wait_for(lambda: ledger_state(replica.url) | {"queued": 0} == {
                "backend": "postgresql", "state": "ok", "queued": 0, "spooled": 0})  # fmt: skip
            metrics = http.get("/metrics").text
    finally:
        replica.stop()
    rows, rolled = asyncio.run(stored(postgres_dsn))
    assert sorted(rows) == sorted(ids) and rolled == len(ids) == 45  # each call once, in events and rollup
    assert "agentgw_ledger_write_failures_total" in metrics and PASSWORD not in metrics
    assert PASSWORD not in replica.output()
