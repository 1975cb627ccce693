"""The gateway under test: a config written to disk, the real app served on a loopback port."""

from __future__ import annotations

import copy
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import openai
import yaml

from gateway.app import create_app
from gateway.config_file import load_config
from tests.standin import ServerThread, StandIn

ADMIN_KEY = "agentgw-test-admin-key"
AGENT_KEY = "agentgw-test-agent-key"
LIMITED_KEY = "agentgw-test-limited-key"
OPENAI_SECRET = "sk-standin-openai-SECRET-0001"
ANTHROPIC_SECRET = "sk-ant-standin-SECRET-0002"

SCENARIOS = [
    "gpt-x",
    "fail-500",
    "fail-503",
    "fail-429",
    "fail-400",
    "fail-401",
    "not-json",
    "slow",
    "slow-1",
    "stream-cut",
    "stream-error",
    "stream-slow",
    "stream-late-end",
    "no-usage",
    "echo-request",
    "cache-x",
    "leak-key",
]


def base_config(standin: StandIn) -> dict[str, Any]:
    """Two providers on the stand-in (one per wire format) and the built-in mock; for every
    stand-in scenario a model `oa-<scenario>` (OpenAI wire) and `an-<scenario>` (Anthropic)."""
    models: dict[str, Any] = {
        "mock-chat": {"provider": "mock"},
        "mock-embed": {"provider": "mock", "kind": "embeddings"},
        "oa-embed": {"provider": "standin-openai", "upstream": "embed-x", "kind": "embeddings"},
    }
    for scenario in SCENARIOS:
        models[f"oa-{scenario}"] = {"provider": "standin-openai", "upstream": scenario}
        models[f"an-{scenario}"] = {"provider": "standin-anthropic", "upstream": scenario}
    return {
        "server": {"host": "127.0.0.1", "port": 0},
        "providers": {
            "standin-openai": {
                "type": "openai",
                "base_url": standin.openai_base,
                "api_key": OPENAI_SECRET,
                "timeout": {"connect": 2, "read": 1},
            },
            "standin-anthropic": {
                "type": "anthropic",
                "base_url": standin.anthropic_base,
                "api_key": ANTHROPIC_SECRET,
                "timeout": {"connect": 2, "read": 1},
            },
            "mock": {"type": "mock"},
        },
        "models": models,
        "routes": {},
        "teams": {"research": {}, "ops": {}},
        "keys": [
            {"name": "admin", "key": ADMIN_KEY, "team": "ops", "role": "admin"},
            {"name": "crawler-key", "key": AGENT_KEY, "team": "research", "agent": "crawler"},
            {"name": "limited", "key": LIMITED_KEY, "team": "research", "models": ["oa-gpt-x"]},
        ],
    }


class Gateway:
    """A running gateway: `url`, `base_url` for SDKs, `client()` and `http()` to talk to it."""

    def __init__(self, config: dict[str, Any], workdir: Path, span_sink: Any = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "config.yaml"
        self.ledger_path = workdir / "agentgw.db"
        self.write_config(config)
        self.config = load_config(self.config_path)
        self.app = create_app(self.config, config_path=self.config_path, span_sink=span_sink)
        self.server = ServerThread(self.app, "127.0.0.1", 0, graceful_timeout=5.0, edge=self.config.server)
        self._clients: list[openai.OpenAI | httpx.Client] = []

    def write_config(self, config: dict[str, Any]) -> None:
        write_config(self.config_path, config, self.ledger_path)

    def start(self) -> Gateway:
        self.server.start()
        return self

    def stop(self) -> None:
        for client in self._clients:
            client.close()
        self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def client(self, key: str = ADMIN_KEY, **options: Any) -> openai.OpenAI:
        options.setdefault("max_retries", 0)
        client = openai.OpenAI(base_url=self.base_url, api_key=key, **options)
        self._clients.append(client)
        return client

    def http(self, key: str | None = ADMIN_KEY, **options: Any) -> httpx.Client:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        client = httpx.Client(base_url=self.url, headers=headers, timeout=10, **options)
        self._clients.append(client)
        return client


class GatewayProcess:
    """`agentgw serve` in its own process, for what only a process has: signals, exit codes."""

    def __init__(
        self,
        config: dict[str, Any],
        workdir: Path,
        env: dict[str, str] | None = None,
        args: Sequence[str] = (),
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.args = tuple(args)  # more `agentgw serve` options, e.g. ("--host", "0.0.0.0")
        self.config_path = workdir / "config.yaml"
        self.log_path = workdir / "gateway.log"
        self.ledger_path = workdir / "agentgw.db"
        self.write_config(config)
        self.port = free_port()
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def write_config(self, config: dict[str, Any]) -> None:
        write_config(self.config_path, config, self.ledger_path)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> GatewayProcess:
        command = [
            sys.executable,
            "-m",
            "gateway",
            "serve",
            "-c",
            str(self.config_path),
            "--port",
            str(self.port),
            *self.args,
        ]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"gateway did not start:\n{self.output()}")

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait(self, timeout: float = 15.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(path: Path, config: dict[str, Any], ledger_path: Path) -> None:
    """Write a test config; unless it says otherwise, its ledger lives next to it."""
    config = {**copy.deepcopy(config), "ledger": config.get("ledger", {"path": str(ledger_path)})}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
