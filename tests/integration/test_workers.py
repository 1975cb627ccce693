"""`agentgw serve --workers 2`: real processes on one port sharing limits through Redis, one /metrics,
SIGHUP and SIGTERM reaching every worker, a dead worker started again."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway_harness import ADMIN_KEY, AGENT_KEY, GatewayProcess, base_config
from tests.redis_server import RedisServer
from tests.standin import StandIn

MESSAGES = [{"role": "user", "content": "hi"}]


def workers_config(standin: StandIn, redis: RedisServer, tmp_path: Path) -> dict[str, Any]:
    config = base_config(standin)
    config["models"]["oa-slow-short"] = {"provider": "standin-openai", "upstream": "slow-0.8"}
    config["teams"]["research"] = {"limits": {"rpm": 10}}
    config["state"] = {"url": redis.url, "key_prefix": f"workers{time.monotonic_ns()}:"}
    config["ledger"] = {"path": str(tmp_path / "agentgw.db")}
    config["server"]["graceful_shutdown_seconds"] = 20
    return config


def fresh_call(url: str, model: str = "mock-chat") -> int:
    """One call on a connection of its own, so the kernel may give it to either worker."""
    with httpx.Client(base_url=url, timeout=10, headers={"authorization": f"Bearer {AGENT_KEY}"}) as http:
        return http.post("/v1/chat/completions", json={"model": model, "messages": MESSAGES}).status_code


def samples(url: str, name: str) -> list[Any]:
    text = httpx.get(url + "/metrics", timeout=5).text
    return [s for family in text_string_to_metric_families(text) for s in family.samples if s.name == name]


def wait_for(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def worker_pids(output: str) -> dict[int, int]:
    return {int(w): int(p) for w, p in re.findall(r"worker (\d+) started \(pid (\d+)\)", output)}


def test_memory_state_with_several_workers_is_refused(standin: StandIn, tmp_path: Path) -> None:
    config = base_config(standin)
    config["state"] = "memory"
    gateway = GatewayProcess(config, tmp_path / "g", args=("--workers", "2"))
    try:
        gateway.start(timeout=10)
        raise AssertionError("it started")
    except RuntimeError as refused:
        assert "--workers 2 with state: memory" in str(refused)
        assert "state: redis://" in str(refused)


@pytest.mark.usefixtures("within_a_minute")
def test_two_workers_share_one_port_one_limit_and_one_metrics(
    standin: StandIn, redis_server: RedisServer, tmp_path: Path
) -> None:
    gateway = GatewayProcess(workers_config(standin, redis_server, tmp_path), tmp_path / "g", args=("--workers", "2"))
    gateway.start(timeout=30)
    try:
        statuses = [fresh_call(gateway.url) for _ in range(24)]
        assert statuses.count(200) == 10 and statuses.count(429) == 14  # rpm 10, exact across workers

        def answered() -> dict[str, float]:
            by_worker: dict[str, float] = {}
            for s in samples(gateway.url, "agentgw_requests_total"):
                by_worker[s.labels["worker"]] = by_worker.get(s.labels["worker"], 0) + s.value
            return by_worker

        wait_for(lambda: sum(answered().values()) == 24)  # other workers' series arrive within a second
        assert set(answered()) <= {"0", "1"}
        assert len(worker_pids(gateway.output())) == 2

        # A console sign-in on one worker holds on every other (one session secret for all of them).
        with httpx.Client(base_url=gateway.url, timeout=10) as first:
            login = first.post("/ui/login", json={"key": ADMIN_KEY}, headers={"origin": gateway.url})
            assert login.status_code == 204, login.text
            cookies = dict(first.cookies)
        for _ in range(8):  # fresh connections: the kernel hands them to either worker
            with httpx.Client(base_url=gateway.url, timeout=10, cookies=cookies) as other:
                assert other.get("/ui/api/overview").status_code == 200

        # SIGHUP reaches every worker: each reloads (and logs it).
        config = workers_config(standin, redis_server, tmp_path)
        config["models"]["added-on-reload"] = {"provider": "mock"}
        gateway.write_config(config)
        gateway.signal(signal.SIGHUP)
        wait_for(lambda: all(f"[worker {w}]: config reloaded" in gateway.output() for w in (0, 1)))

        # A worker that dies is started again, and the port keeps answering.
        pids = worker_pids(gateway.output())
        os.kill(pids[0], signal.SIGKILL)
        wait_for(lambda: gateway.output().count("[worker 0]: agentgw ready") == 2)
        assert worker_pids(gateway.output())[0] != pids[0]
        assert httpx.get(gateway.url + "/healthz", timeout=2).status_code == 200

        # SIGTERM: every worker drains its calls in flight, then the server exits 0.
        results: list[int] = []
        slow = [threading.Thread(target=lambda: results.append(fresh_call(gateway.url, "oa-slow-short")))
                for _ in range(4)]  # fmt: skip
        config["teams"]["research"] = {}  # no limit for these (reloaded above with rpm 10 spent)
        gateway.write_config(config)
        gateway.signal(signal.SIGHUP)
        wait_for(lambda: gateway.output().count("config reloaded") >= 4)
        for thread in slow:
            thread.start()
        time.sleep(0.3)  # the calls are in flight (the stand-in answers after 0.8 s)
        gateway.signal(signal.SIGTERM)
        for thread in slow:
            thread.join(15)
        assert gateway.wait(30) == 0
        assert results == [200, 200, 200, 200]
    finally:
        gateway.stop()
