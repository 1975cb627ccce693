"""Fixtures for the policy engines: a real redis-server for the session, and state configs to run each
test on memory and on Redis. Stores are opened inside each test's event loop (redis.asyncio clients
belong to the loop that first uses them)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from policies.config import StateConfig
from tests.redis_server import RedisServer

_prefixes = itertools.count()


class FakeClock:
    """Unix seconds that move only when told to."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server for one test, to kill and restart."""
    with RedisServer() as server:
        yield server


def redis_config(server: RedisServer, **options: object) -> StateConfig:
    """A Redis state config with a key prefix no other test uses. Connecting may take up to 2 s (the
    default 250 ms is short for a test that opens 200 connections at once on a loaded 2-core VM)."""
    return StateConfig.model_validate(
        {"url": server.url, "key_prefix": f"t{next(_prefixes)}:", "connect_timeout_ms": 2_000, **options}
    )


@pytest.fixture(params=["memory", "redis"])
def state(request: pytest.FixtureRequest) -> StateConfig:
    """Each test that takes `state` runs on the memory store and on Redis."""
    if request.param == "memory":
        return StateConfig()
    return redis_config(request.getfixturevalue("redis_server"))
