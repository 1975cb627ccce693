"""A graceful shutdown that runs out of time: the calls still running are cut by the gateway, each
with an error in its API's shape, and the ledger says they were cut."""

from __future__ import annotations

import json
import signal
import sqlite3
import threading
from pathlib import Path
from typing import Any

import httpx

from tests.gateway_harness import ADMIN_KEY, GatewayProcess, base_config
from tests.standin import StandIn

USER = [{"role": "user", "content": "What is the capital of France?"}]


def post(url: str, path: str, body: dict[str, Any], out: dict[str, Any], name: str) -> threading.Thread:
    """Send one call in the background; `out[name]` gets its status and every line of its body."""

    def run() -> None:
        headers = {"authorization": f"Bearer {ADMIN_KEY}", "x-api-key": ADMIN_KEY}
        with httpx.stream("POST", url + path, json=body, headers=headers, timeout=30) as response:
            out[name] = (response.status_code, [line for line in response.iter_lines() if line])

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_calls_still_running_when_the_grace_runs_out_are_cut_in_their_shape(standin: StandIn, tmp_path: Path) -> None:
    config = base_config(standin)
    config["server"]["graceful_shutdown_seconds"] = 1.5
    for provider in ("standin-openai", "standin-anthropic"):
        config["providers"][provider]["timeout"] = {"connect": 2, "read": 10}
    gateway = GatewayProcess(config, tmp_path).start()
    try:
        out: dict[str, Any] = {}
        calls = [
            post(
                gateway.url,
                "/v1/chat/completions",
                {"model": "oa-stream-slow", "messages": USER, "stream": True},
                out,
                "stream",
            ),
            post(gateway.url, "/v1/chat/completions", {"model": "oa-slow", "messages": USER}, out, "whole"),
            post(
                gateway.url, "/v1/messages", {"model": "an-slow", "max_tokens": 20, "messages": USER}, out, "messages"
            ),
        ]
        # All three reached the stand-in (a SIGTERM before a call has connected would refuse it instead).
        standin.wait_for(lambda e: e.model == "stream-slow")
        standin.wait_for(lambda e: e.model == "slow" and e.path.endswith("/chat/completions"))
        standin.wait_for(lambda e: e.model == "slow" and e.path == "/v1/messages")
        gateway.signal(signal.SIGTERM)
        for thread in calls:
            thread.join(20)
        assert gateway.wait() in (0, -signal.SIGTERM)
    finally:
        gateway.stop()

    status, lines = out["stream"]
    assert status == 200 and "data: [DONE]" not in lines
    assert json.loads(lines[-1].removeprefix("data: "))["error"]["code"] == "service_unavailable"
    status, lines = out["whole"]
    assert status == 503 and json.loads(lines[0])["error"]["code"] == "service_unavailable"
    status, lines = out["messages"]
    assert status == 503 and json.loads(lines[0]) == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": json.loads(lines[0])["error"]["message"]},
    }
    with sqlite3.connect(gateway.ledger_path) as db:
        rows = db.execute("SELECT requested_model, outcome, status, estimated FROM usage_events").fetchall()
    assert sorted(rows) == [
        ("an-slow", "shutdown", 503, 1),
        ("oa-slow", "shutdown", 503, 1),
        ("oa-stream-slow", "shutdown", 200, 1),
    ]
