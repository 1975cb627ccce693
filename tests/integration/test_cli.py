"""The `agentgw` command as an operator uses it: check-config, serve, SIGHUP reload, SIGTERM drain."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

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
    assert set(ready.json()["token_counts"]) == {"o200k_base", "cl100k_base"}
    assert set(ready.json()["token_counts"].values()) <= {"loading", "loaded", "unavailable"}


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


# `agentgw usage`, as an operator runs it next to the gateway's config.

USAGE_AGENT_KEY = "agentgw-usage-agent-key"


def usage_config() -> dict[str, Any]:
    """The shipped config's key (`${AGENTGW_KEY:-agentgw-local-dev-key}`, an admin) after an agent's
    key, and a provider whose API key is in the gateway's environment only."""
    return {
        "server": {"host": "127.0.0.1", "port": 0},
        "providers": {"mock": {"type": "mock"}, "openai": {"type": "openai", "api_key": "${OPENAI_API_KEY}"}},
        "models": {"mock-chat": {"provider": "mock"}, "gpt-4o-mini": {"provider": "openai"}},
        "teams": {"default": {}, "research": {}},
        "keys": [
            {"name": "crawler", "key": USAGE_AGENT_KEY, "team": "research", "agent": "crawler"},
            {"name": "local-dev", "key": "${AGENTGW_KEY:-agentgw-local-dev-key}", "team": "default", "role": "admin"},
        ],
    }


@pytest.fixture(scope="module")
def metered(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A gateway (with OPENAI_API_KEY and no AGENTGW_KEY) that has served one call per key."""
    env = {"OPENAI_API_KEY": "sk-usage-test-0001", "AGENTGW_KEY": ""}  # empty is unset to ${...:-default}
    process = GatewayProcess(usage_config(), tmp_path_factory.mktemp("usage"), env=env)
    process.start()
    for key in (USAGE_AGENT_KEY, "agentgw-local-dev-key"):
        assert chat(process.url, "mock-chat", key).status_code == 200
    flushed = httpx.get(process.url + "/v1/usage", headers={"authorization": "Bearer agentgw-local-dev-key"})
    assert flushed.json()["totals"]["requests"] == 2  # the endpoint flushes the ledger before it reads
    yield process
    process.stop()


def usage(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`agentgw usage` in an operator's shell: no provider keys, no AGENTGW_KEY unless given."""
    clean = {k: v for k, v in os.environ.items() if k not in ("AGENTGW_KEY", "OPENAI_API_KEY")}
    command = [sys.executable, "-m", "gateway", "usage", "--group-by", "team", *args]
    return subprocess.run(command, capture_output=True, text=True, env={**clean, **env}, cwd=cwd, timeout=60)


def teams(table: str) -> list[str]:
    """The team column of a usage table, between its header rules."""
    rows = table.splitlines()[3:-2]
    return [row.split()[0] for row in rows]


def test_usage_from_a_gateway_uses_the_configs_key_as_the_gateway_resolves_it(
    metered: GatewayProcess, tmp_path: Path
) -> None:
    result = usage("--url", metered.url, "-c", str(metered.config_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert teams(result.stdout) == ["default", "research"]  # the admin key, so every team
    assert "agentgw-local-dev-key" not in result.stdout + result.stderr


def test_usage_from_a_gateway_prefers_agentgw_key(metered: GatewayProcess, tmp_path: Path) -> None:
    result = usage("--url", metered.url, "-c", str(metered.config_path), cwd=tmp_path, AGENTGW_KEY=USAGE_AGENT_KEY)
    assert result.returncode == 0, result.stderr
    assert teams(result.stdout) == ["research"]  # an agent's key sees its own calls


def test_usage_from_a_gateway_says_how_to_give_a_key_the_config_cannot(tmp_path: Path) -> None:
    config = {**usage_config(), "keys": [{"name": "k", "key_sha256": "0" * 64, "team": "default"}]}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = usage("--url", "http://127.0.0.1:9", "-c", str(path), cwd=tmp_path)
    assert result.returncode == 1
    assert "--url needs a gateway key: pass --api-key or set AGENTGW_KEY" in result.stderr


def test_usage_reads_the_configs_ledger_without_the_providers_variables(
    metered: GatewayProcess, tmp_path: Path
) -> None:
    result = usage("-c", str(metered.config_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert teams(result.stdout) == ["default", "research"]


def test_usage_still_needs_the_variables_of_the_ledger_section(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({**usage_config(), "ledger": {"path": "${AGENTGW_DATA_DIR_UNSET}/agentgw.db"}}))
    result = usage("-c", str(path), cwd=tmp_path)
    assert result.returncode == 1
    assert "ledger.path: environment variable AGENTGW_DATA_DIR_UNSET is not set" in result.stderr
    assert "OPENAI_API_KEY" not in result.stderr


def test_usage_takes_the_ledger_in_the_configs_form(metered: GatewayProcess, tmp_path: Path) -> None:
    as_path = usage("--ledger", str(metered.ledger_path), cwd=tmp_path)
    as_url = usage("--ledger", f"sqlite:///{metered.ledger_path}", cwd=tmp_path)
    assert as_url.returncode == 0, as_url.stderr
    assert as_url.stdout.splitlines()[1:] == as_path.stdout.splitlines()[1:]
    assert teams(as_url.stdout) == ["default", "research"]
    other = usage("--ledger", "mysql://db/usage", cwd=tmp_path)
    assert other.returncode == 1
    assert "--ledger is a SQLite file (a path or sqlite:///<path>) or a postgresql:// URL, not mysql://" in other.stderr


def test_a_bad_since_or_until_is_named_by_its_option(metered: GatewayProcess, tmp_path: Path) -> None:
    local = ("--ledger", str(metered.ledger_path))
    remote = ("--url", metered.url, "--api-key", "agentgw-local-dev-key")
    for source in (local, remote):
        since = usage(*source, "--since", "last tuesday", cwd=tmp_path)
        assert since.returncode == 1
        assert since.stderr.startswith("agentgw usage: --since must be unix seconds, an ISO 8601 date or time")
        assert "'from'" not in since.stderr
        order = usage(*source, "--since", "1d", "--until", "7d", cwd=tmp_path)
        assert order.returncode == 1
        assert "agentgw usage: --since is after --until." in order.stderr
        group = usage(*source, "--group-by", "colour", cwd=tmp_path)
        assert group.returncode == 1
        assert "agentgw usage: --group-by: Cannot group by 'colour'" in group.stderr
