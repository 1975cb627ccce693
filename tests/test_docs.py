"""The README and docs/contract.md stand alone and keep up with the code: they point at nothing
outside the repository, and the contract names every endpoint, error code and server option."""

from __future__ import annotations

import re
from pathlib import Path

from starlette.routing import Route

from gateway import errors
from gateway.app import create_app
from gateway.config import ServerConfig
from gateway.config_file import load_config

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / "docs/contract.md"
README = ROOT / "README.md"
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def user_facing() -> list[Path]:
    files = [README, ROOT / "Dockerfile", ROOT / "config.yaml", *(ROOT / "docs").rglob("*")]
    files += [*(ROOT / "examples").rglob("*"), *(ROOT / "deploy").rglob("*")]
    return [f for f in files if f.is_file() and f.suffix != ".png"]  # screenshots hold no text


def test_nothing_a_user_reads_points_outside_the_repository() -> None:
    for path in user_facing():
        text = path.read_text()
        assert "../shared" not in text and "shared/" not in text, path
        for target in LINK.findall(text) if path.suffix == ".md" else []:
            if "://" not in target:
                assert (path.parent / target).resolve().is_relative_to(ROOT), (path, target)
                assert (path.parent / target).exists(), (path, target)


def test_the_readme_links_the_contract_and_starts_with_the_two_commands() -> None:
    text = README.read_text()
    assert "](docs/contract.md)" in text
    first_block = text.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    assert [line.split("#")[0].strip() for line in first_block] == [
        "pip install -c constraints.txt -e .",
        "agentgw serve",
    ]


def test_the_contract_names_every_endpoint() -> None:
    app = create_app(load_config(ROOT / "config.yaml"))
    contract = CONTRACT.read_text()
    for route in app.routes:
        assert isinstance(route, Route)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            assert f"`{method} {route.path}`" in contract, f"{method} {route.path}"


def test_the_contract_names_every_error_code() -> None:
    contract = CONTRACT.read_text()
    pending: list[type[errors.GatewayError]] = [errors.GatewayError]
    while pending:
        cls = pending.pop()
        pending += cls.__subclasses__()
        assert f"`{cls.code}`" in contract, cls.__name__
        assert str(cls.status) in contract, cls.__name__


def test_the_contract_names_every_server_option() -> None:
    contract = CONTRACT.read_text()
    for name in ServerConfig.model_fields:
        assert f"`{name}`" in contract, name
