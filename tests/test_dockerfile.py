"""The Dockerfile and the image's config, checked without a container engine: what `docker build`
and `docker run` would do is read from the files themselves. tests/integration/test_image_replay.py
runs the image's command outside a container."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from gateway.config_file import ConfigError, load_config
from gateway.metering.tokens import KNOWN_ENCODINGS

ROOT = Path(__file__).resolve().parents[1]
IMAGE_CONFIG = "/etc/agentgw/config.yaml"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip().removesuffix("\\") + " " if line.rstrip().endswith("\\") else line
        if not line.rstrip().endswith("\\"):
            logical.append(pending.strip())
            pending = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def only(name: str) -> str:
    found = [args for instruction, args in instructions() if instruction == name]
    assert len(found) == 1, f"expected one {name}, found {found}"
    return found[0]


def all_of(name: str) -> list[str]:
    return [args for instruction, args in instructions() if instruction == name]


def image_config_source() -> Path:
    copies = [args.split() for args in all_of("COPY") if args.split()[-1] == IMAGE_CONFIG]
    assert len(copies) == 1
    return ROOT / copies[0][0]


def test_the_base_image_is_a_full_version_of_the_python_the_suite_runs() -> None:
    image = only("FROM")
    match = re.fullmatch(r"python:(3)\.(\d+)\.(\d+)-slim-bookworm(@sha256:[0-9a-f]{64})?", image)
    assert match, f"{image}: pin a full version tag such as python:3.11.14-slim-bookworm"
    tested = re.search(r"# Python (\d+)\.(\d+)\.\d+", (ROOT / "constraints.txt").read_text())
    assert tested and tested.groups() == match.groups()[:2], "not the Python constraints.txt was made on"


def test_every_install_uses_the_pinned_constraints() -> None:
    installs = [args for args in all_of("RUN") if "pip install" in args]
    assert installs
    for args in installs:
        for command in args.split("&&"):
            if "pip install" in command:
                assert "-c constraints.txt" in command, command


def test_the_gateway_runs_as_a_fixed_unprivileged_user() -> None:
    user = only("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) >= 1000 and gid == uid, user
    assert any(f"--uid {uid}" in args and f"--gid {gid}" in args for args in all_of("RUN")), "useradd with that uid"
    config = image_config_source().read_text()
    assert f"chown -R {uid}:{gid}" in config  # the image's config tells what to chown a bind mount to


def test_the_command_leaves_host_and_port_to_the_config() -> None:
    command = json.loads(only("CMD"))
    assert command == ["agentgw", "serve", "--config", IMAGE_CONFIG]
    assert image_config_source() == ROOT / "deploy/docker/config.yaml"


def test_the_token_encodings_are_baked_in() -> None:
    env = " ".join(all_of("ENV"))
    match = re.search(r"TIKTOKEN_CACHE_DIR=(\S+)", env)
    assert match, "TIKTOKEN_CACHE_DIR is set in the image"
    cache = match.group(1)
    fetch = next(args for args in all_of("RUN") if "tiktoken.get_encoding" in args)
    for name in KNOWN_ENCODINGS:  # every encoding the gateway loads
        assert f"get_encoding('{name}')" in fetch
    volume = json.loads(only("VOLUME"))
    assert not any(cache.startswith(v) for v in volume), "a volume would hide the baked files"


def test_the_health_check_and_exposed_port_are_the_configs() -> None:
    server = yaml.safe_load(image_config_source().read_text())["server"]
    assert server["host"] == "0.0.0.0"
    health = only("HEALTHCHECK")
    assert f"http://127.0.0.1:{server['port']}/healthz" in health
    assert only("EXPOSE") == str(server["port"])


def test_the_image_config_takes_its_key_from_agentgw_key_without_a_default() -> None:
    path = image_config_source()
    config = load_config(path, {"AGENTGW_KEY": "a-key-of-our-own-0123456789"})
    assert [k.name for k in config.keys] == ["admin"]
    ledger = Path(config.ledger.path)
    assert any(ledger.is_relative_to(v) for v in json.loads(only("VOLUME"))), "the ledger lives on the volume"
    with pytest.raises(ConfigError) as unset:
        load_config(path, {})
    assert unset.value.problems == ["keys.0.key: environment variable AGENTGW_KEY is not set"]
    with pytest.raises(ConfigError) as short:
        load_config(path, {"AGENTGW_KEY": "change-me"})
    assert short.value.problems == ["keys.0: `key` must be a string of at least 12 characters"]


def test_everything_the_build_copies_is_in_the_build_context() -> None:
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()]
    for args in all_of("COPY"):
        for source in shlex.split(args)[:-1]:
            assert (ROOT / source).exists(), source
            assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source
