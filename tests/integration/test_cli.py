"""The `agentgw` command as an operator uses it: check-config, serve, SIGHUP reload, SIGTERM drain."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gateway_harness import ADMIN_KEY, AGENT_KEY, GatewayProcess, base_config
from tests.standin import StandIn

ROOT = Path(__file__).resolve().parents[2]
USER = [{"role": "user", "content": "hello"}]


def agentgw(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True, env=env, timeout=60)


def test_check_config_accepts_the_shipped_config() -> None:
    result = agentgw("check-config", str(ROOT / "config.yaml"))
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


def test_check_config_names_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "providers:\n  p: {type: openai, api_key: '${NOT_SET_ANYWHERE_123}', bse_url: x}\n"
        "models: {m: {provider: q}}\nteams: {}\nkeys: []\n"
    )
    result = agentgw("check-config", str(path))
    assert result.returncode == 1
    assert "providers.p.api_key: environment variable NOT_SET_ANYWHERE_123 is not set" in result.stderr


def test_check_config_reports_validation_paths(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "providers:\n  p: {type: openai, bse_url: 'http://x'}\nmodels: {m: {provider: q}}\n"
        "teams: {t: {}}\nkeys: [{name: k, key: 'long-enough-key-1', team: t}]\n"
    )
    result = agentgw("check-config", str(path))
    assert result.returncode == 1
    assert "providers.p.bse_url: unknown key (did you mean 'base_url'?)" in result.stderr


def test_serve_refuses_a_bad_config(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("providers: {}\n")
    result = agentgw("serve", "-c", str(path), "--port", "1")
    assert result.returncode == 1
    assert "invalid config" in result.stderr


@pytest.fixture
def served(standin: StandIn, tmp_path: Path) -> Any:
    process = GatewayProcess(base_config(standin), tmp_path)
    yield process.start()
    process.stop()


def chat(url: str, model: str, key: str = ADMIN_KEY) -> httpx.Response:
    return httpx.post(
        url + "/v1/chat/completions",
        json={"model": model, "messages": USER},
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    )


def slow_stream(url: str, out: list[str]) -> threading.Thread:
    def run() -> None:
        with httpx.stream(
            "POST",
            url + "/v1/chat/completions",
            timeout=30,
            json={"model": "oa-stream-slow", "messages": USER, "stream": True},
            headers={"authorization": f"Bearer {ADMIN_KEY}"},
        ) as response:
            out.extend(line for line in response.iter_lines() if line)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_health_and_readiness(served: GatewayProcess) -> None:
    assert httpx.get(served.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(served.url + "/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_sighup_reloads_without_dropping_in_flight_requests(served: GatewayProcess, standin: StandIn) -> None:
    config = base_config(standin)
    config["models"]["fresh-model"] = {"provider": "mock"}
    config["keys"] = [k for k in config["keys"] if k["name"] != "crawler-key"]
    assert chat(served.url, "fresh-model").status_code == 404
    assert chat(served.url, "oa-gpt-x", AGENT_KEY).status_code == 200

    events: list[str] = []
    stream = slow_stream(served.url, events)
    time.sleep(0.5)
    served.write_config(config)
    served.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while chat(served.url, "fresh-model").status_code != 200:
        assert time.monotonic() < deadline, served.output()
        time.sleep(0.1)
    assert chat(served.url, "oa-gpt-x", AGENT_KEY).status_code == 401
    stream.join(20)
    assert events[-1] == "data: [DONE]" and len(events) > 20
    assert "config reloaded" in served.output()


def test_sighup_with_a_broken_config_keeps_serving(served: GatewayProcess) -> None:
    served.config_path.write_text("providers: {oops\n")
    served.signal(signal.SIGHUP)
    time.sleep(0.5)
    assert chat(served.url, "oa-gpt-x").status_code == 200
    assert "config reload refused" in served.output()


def test_sigterm_drains_in_flight_streams(served: GatewayProcess) -> None:
    events: list[str] = []
    stream = slow_stream(served.url, events)
    time.sleep(0.5)
    served.signal(signal.SIGTERM)
    stream.join(20)
    assert events[-1] == "data: [DONE]" and len(events) > 20
    # uvicorn re-raises the signal once it has shut down gracefully, so the exit status says SIGTERM.
    assert served.wait() in (0, -signal.SIGTERM)
    assert "Finished server process" in served.output()
