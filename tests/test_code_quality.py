"""The code stays lint-clean, type-checked, and layered: gateway -> routing, policies; never back."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_is_clean() -> None:
    result = run(sys.executable, "-m", "ruff", "check", "gateway", "routing", "policies", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean() -> None:
    result = run(sys.executable, "-m", "ruff", "format", "--check", "gateway", "routing", "policies", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    result = run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("package", ["routing", "policies"])
def test_inner_packages_import_neither_gateway_nor_http(package: str) -> None:
    forbidden = {"gateway", "starlette", "uvicorn", "httpx", "aiohttp"}
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.relative_to(ROOT)} imports {name}"


def _name(requirement: str) -> str:
    """A requirement's distribution name, normalised (PEP 503): `uvicorn[standard]>=0.30` -> `uvicorn`."""
    import re

    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match is not None, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def test_every_dependency_is_bounded_and_pinned() -> None:
    """What a fresh machine installs is what the suite was run against: every dependency, runtime and
    extras, has an upper bound in pyproject.toml and an exact version in constraints.txt."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    pinned = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pinned[_name(name)] = version
    for requirement in requirements:
        name = _name(requirement)
        assert name in pinned, f"{name} is not pinned in constraints.txt (run scripts/update-constraints)"
        if not name.startswith("types-"):  # stub packages follow the library they describe
            assert "<" in requirement, f"{requirement}: no upper bound in pyproject.toml"
