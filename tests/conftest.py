"""Shared fixtures: a stand-in provider, and the real gateway app served by uvicorn on loopback."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.redis_server import RedisServer
from tests.standin import StandIn

SHARED_TIKTOKEN = Path(__file__).resolve().parents[2] / "shared" / "tiktoken"
if "TIKTOKEN_CACHE_DIR" not in os.environ and SHARED_TIKTOKEN.is_dir():
    os.environ["TIKTOKEN_CACHE_DIR"] = str(SHARED_TIKTOKEN)


@pytest.fixture(scope="session")
def standin_server() -> Iterator[StandIn]:
    with StandIn() as server:
        yield server


@pytest.fixture
def standin(standin_server: StandIn) -> StandIn:
    standin_server.clear()
    return standin_server


def _gateways(workdir: Path) -> Iterator[Callable[..., Any]]:
    from tests.gateway_harness import Gateway

    started: list[Gateway] = []

    def start(config: dict[str, Any], **options: Any) -> Gateway:
        gateway = Gateway(config, workdir / f"gateway-{len(started)}", **options).start()
        started.append(gateway)
        return gateway

    yield start
    for gateway in reversed(started):
        gateway.stop()


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Start gateways (real app, uvicorn, loopback) for one test; they stop after it."""
    yield from _gateways(tmp_path)


@pytest.fixture(scope="module")
def module_gateway_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Any]]:
    """Like gateway_factory, for gateways shared by the tests of one module."""
    yield from _gateways(tmp_path_factory.mktemp("gateways"))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real redis-server for the session; tests keep apart by key prefix."""
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """One real PostgreSQL for the session; tests keep apart by database (`postgres_server.dsn(name)`)."""
    from tests.postgres_server import PostgresServer

    with PostgresServer() as server:
        yield server


@pytest.fixture
def postgres_dsn(postgres_server: Any, request: pytest.FixtureRequest) -> str:
    """A fresh database of its own for this test, on the session's server."""
    import re

    name = "t_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:50]
    return str(postgres_server.dsn(name))


@pytest.fixture
def within_a_minute() -> None:
    """Start the test with at least 15 s of the wall-clock minute left. Rate limits count per minute
    on sliding-window counters, which weigh the previous minute in by the share the window still
    covers (rounded down), so a burst that straddles a minute's start can get one call more than
    the limit (README: Budgets and rate limits); tests that assert exact counts run inside a minute."""
    left = 60 - time.time() % 60
    if left < 15:
        time.sleep(left + 0.05)
