"""The container image's start-up, replayed outside a container (no engine runs here): the Dockerfile's
CMD and HEALTHCHECK, as written, against the image's config. Only what a container provides is
swapped: the config's path, its port (8080 may be taken on this machine) and the volume's directory."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.gateway_harness import free_port
from tests.test_dockerfile import IMAGE_CONFIG, image_config_source, only

OWN_KEY = "a-key-of-our-own-0123456789"


class Container:
    """The image's command as a process: its config at `config_path`, its volume at `data`."""

    def __init__(self, workdir: Path, key: str | None) -> None:
        config: dict[str, Any] = yaml.safe_load(image_config_source().read_text())
        self.port = free_port()
        self.data = workdir / "data"
        config["server"]["port"] = self.port
        config["ledger"] = config["ledger"].replace("/var/lib/agentgw", str(self.data))
        self.config_path = workdir / "config.yaml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.log_path = workdir / "container.log"
        self.env = {k: v for k, v in os.environ.items() if k != "AGENTGW_KEY"}
        if key is not None:
            self.env["AGENTGW_KEY"] = key
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        command = [str(self.config_path) if part == IMAGE_CONFIG else part for part in json.loads(only("CMD"))]
        return [str(Path(sys.executable).parent / command[0]), *command[1:]]  # the installed entry point

    def run(self) -> subprocess.CompletedProcess[str]:
        """Start and wait for the exit: for starts that must be refused."""
        return subprocess.run(self.command(), capture_output=True, text=True, env=self.env, timeout=60)

    def start(self) -> None:
        self.data.mkdir()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=self.env)

    def healthy(self) -> bool:
        """The image's HEALTHCHECK command, aimed at this replay's port."""
        check = only("HEALTHCHECK").split(" CMD ", 1)[1].replace(":8080/", f":{self.port}/")
        argv = shlex.split(check)
        argv[0] = sys.executable if argv[0] == "python" else argv[0]
        return subprocess.run(argv, capture_output=True, env=self.env, timeout=10).returncode == 0

    def wait_healthy(self, timeout: float = 20.0) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while not self.healthy():
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, self.output()
            time.sleep(0.1)

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def container(tmp_path: Path) -> Any:
    running = Container(tmp_path, OWN_KEY)
    yield running
    if running.process is not None and running.process.poll() is None:
        running.stop()


def chat(port: int, key: str) -> httpx.Response:
    return httpx.post(
        f"http://127.0.0.1:{port}/v1/chat/completions",
        json={"model": "mock-chat", "messages": [{"role": "user", "content": "hello"}]},
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    )


def test_the_image_serves_its_config_on_every_interface_with_the_key_it_is_given(container: Container) -> None:
    container.start()
    container.wait_healthy()
    assert chat(container.port, OWN_KEY).status_code == 200
    assert chat(container.port, "agentgw-local-dev-key").status_code == 401
    assert container.stop() in (0, -signal.SIGTERM)
    assert f"Uvicorn running on http://0.0.0.0:{container.port}" in container.output()
    assert (container.data / "agentgw.db").exists()  # the ledger is on the volume
    assert OWN_KEY not in container.output()


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (None, "keys.0.key: environment variable AGENTGW_KEY is not set"),
        ("change-me", "keys.0: `key` must be a string of at least 12 characters"),
        ("agentgw-local-dev-key", "is the published development key (agentgw-local-dev-key)"),
    ],
)
def test_the_image_refuses_to_start_without_a_key_of_its_own(tmp_path: Path, key: str | None, message: str) -> None:
    result = Container(tmp_path, key).run()
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
