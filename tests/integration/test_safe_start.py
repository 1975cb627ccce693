"""`agentgw serve` refuses to start where it would be unsafe or could not keep its ledger, with a
message that says what to change; and starts where it is safe."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.gateway_harness import GatewayProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
DEV_KEY = "agentgw-local-dev-key"
OWN_KEY = "a-key-of-our-own-0123456789"
REFUSAL = "is the published development key (agentgw-local-dev-key)"


def env_without_gateway_key() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "AGENTGW_KEY"}


def serve(config: Path, *args: str, cwd: Path, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """Run `agentgw serve` to its exit; used where it must refuse before listening."""
    command = [*prefix, sys.executable, "-m", "gateway", "serve", "-c", str(config), "--port", str(free_port()), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env_without_gateway_key(), cwd=cwd, timeout=60)


def config(host: str, key: dict[str, Any], **server: Any) -> dict[str, Any]:
    return {
        "server": {"host": host, **server},
        "providers": {"mock": {"type": "mock"}},
        "models": {"mock-chat": {"provider": "mock"}},
        "teams": {"default": {}},
        "keys": [{"name": "local-dev", "team": "default", "role": "admin", **key}],
    }


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def chat(url: str, key: str) -> httpx.Response:
    return httpx.post(
        url + "/v1/chat/completions",
        json={"model": "mock-chat", "messages": [{"role": "user", "content": "hello"}]},
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    )


def test_the_shipped_config_refuses_to_serve_its_dev_key_on_the_network(tmp_path: Path) -> None:
    result = serve(ROOT / "config.yaml", "--host", "0.0.0.0", cwd=tmp_path)
    assert result.returncode == 1
    assert "agentgw serve: cannot start" in result.stderr
    assert f"keys.0: 'local-dev' {REFUSAL} and --host 0.0.0.0 serves it beyond this machine" in result.stderr
    assert "set AGENTGW_KEY" in result.stderr and "server.allow_dev_key_on_network: true" in result.stderr
    assert not (tmp_path / "agentgw.db").exists()


def test_a_config_listening_on_the_network_with_the_dev_key_is_invalid(tmp_path: Path) -> None:
    path = write(tmp_path / "config.yaml", config("0.0.0.0", {"key": "${AGENTGW_KEY:-agentgw-local-dev-key}"}))
    for result in (
        serve(path, cwd=tmp_path),
        subprocess.run(
            [sys.executable, "-m", "gateway", "check-config", str(path)],
            capture_output=True,
            text=True,
            env=env_without_gateway_key(),
            timeout=60,
        ),
    ):
        assert result.returncode == 1
        assert f"keys.0: 'local-dev' {REFUSAL} and server.host 0.0.0.0 serves it" in result.stderr


def test_the_dev_key_is_recognised_by_its_digest(tmp_path: Path) -> None:
    digest = hashlib.sha256(DEV_KEY.encode()).hexdigest()
    path = write(tmp_path / "config.yaml", config("::", {"key_sha256": digest}))
    result = serve(path, cwd=tmp_path)
    assert result.returncode == 1
    assert f"{REFUSAL} and server.host :: serves it" in result.stderr


def test_the_dev_key_serves_on_loopback(tmp_path: Path) -> None:
    gateway = GatewayProcess(config("127.0.0.1", {"key": DEV_KEY}), tmp_path).start()
    try:
        assert chat(gateway.url, DEV_KEY).status_code == 200
    finally:
        gateway.stop()


def test_an_own_key_serves_on_the_network(tmp_path: Path) -> None:
    gateway = GatewayProcess(config("0.0.0.0", {"key": OWN_KEY}), tmp_path).start()
    try:
        assert chat(gateway.url, OWN_KEY).status_code == 200
        assert chat(gateway.url, DEV_KEY).status_code == 401
    finally:
        gateway.stop()


def test_the_documented_override_serves_the_dev_key_on_the_network(tmp_path: Path) -> None:
    data = config("127.0.0.1", {"key": DEV_KEY}, allow_dev_key_on_network=True)
    gateway = GatewayProcess(data, tmp_path, args=("--host", "0.0.0.0")).start()
    try:
        assert chat(gateway.url, DEV_KEY).status_code == 200
    finally:
        gateway.stop()


def test_an_unwritable_ledger_directory_is_named_with_the_uid_to_give_it_to(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data = {**config("127.0.0.1", {"key": OWN_KEY}), "ledger": {"path": str(data_dir / "agentgw.db")}}
    path = write(tmp_path / "config.yaml", data)
    prefix: tuple[str, ...] = ()
    if os.getuid() == 0:
        # Like a bind mount in the image: someone else's directory. Root would write it anyway, so
        # the gateway runs without the capability that lets root ignore file permissions.
        os.chown(data_dir, 65534, 65534)
        prefix = (shutil.which("setpriv") or "setpriv", "--bounding-set", "-dac_override", "--")
    else:
        data_dir.chmod(0o555)
    try:
        result = serve(path, cwd=tmp_path, prefix=prefix)
    finally:
        data_dir.chmod(0o755)
    uid, gid = os.getuid(), os.getgid()
    assert result.returncode == 1, result.stderr
    assert f"ledger.path: cannot write {data_dir} (Permission denied) as uid {uid} (gid {gid})" in result.stderr
    assert f"chown -R {uid}:{gid} {data_dir}" in result.stderr and "docker run --user" in result.stderr
    assert "Traceback" not in result.stderr
