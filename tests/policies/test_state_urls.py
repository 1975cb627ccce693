"""The state URL forms: one parser for plain Redis, Cluster and Sentinel, credentials kept out of logs."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis, RedisCluster

from policies.config import StateConfig
from policies.state import MemoryStore, open_store, parse_state_url
from policies.state.redis_store import RedisStore


@pytest.mark.parametrize(
    ("url", "kind", "hosts"),
    [
        ("memory", "memory", ()),
        ("redis://localhost:6379/0", "redis", (("localhost", 6379),)),
        ("rediss://:pw@cache:6380/2", "redis", (("cache", 6380),)),
        ("redis+cluster://a:7000,b:7001", "cluster", (("a", 7000), ("b", 7001))),
        ("redis+sentinel://s1,s2:1/m", "sentinel", (("s1", 26379), ("s2", 1))),
    ],
)
def test_url_forms(url: str, kind: str, hosts: tuple[tuple[str, int], ...]) -> None:
    location = parse_state_url(url)
    assert (location.kind, location.hosts) == (kind, hosts)


def test_credentials_are_parsed_and_redacted() -> None:
    location = parse_state_url("redis+sentinel://user:s3cret@h1:26379,[::1]:26380/main")
    assert (location.username, location.password, location.service_name) == ("user", "s3cret", "main")
    assert location.hosts[1] == ("::1", 26380)
    assert "s3cret" not in location.redacted
    assert StateConfig.model_validate("redis://:s3cret@h:6379/0").secrets() == ["s3cret"]


@pytest.mark.parametrize(
    "url",
    ["postgres://x", "redis+sentinel://h1:26379", "redis+cluster://", "redis+cluster://h:1/3", "redis://h:port"],
)
def test_bad_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ValueError, match="state"):
        StateConfig.model_validate({"url": url})


def test_each_form_opens_the_right_clients_without_connecting() -> None:
    async def scenario() -> None:
        memory = open_store(StateConfig.model_validate("memory"))
        assert isinstance(memory, MemoryStore)
        expected = {
            "redis://127.0.0.1:1/0": Redis,
            "redis+cluster://127.0.0.1:1,127.0.0.1:2": RedisCluster,
            "redis+sentinel://127.0.0.1:1/main": Redis,
        }
        for url, client_type in expected.items():
            store = open_store(StateConfig.model_validate({"url": url, "connect_timeout_ms": 100}))
            assert isinstance(store, RedisStore)
            assert isinstance(store.client, client_type)
            await store.aclose()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://:s3cr%2Ft@h:6379/0", "redis://:***@h:6379/0"),
        ("redis://h:6379/0?password=s3cret", "redis://h:6379/0?password=***"),
        ("redis+cluster://u:p%40ss@h1:1,h2:2", "redis+cluster://u:***@h1:1,h2:2"),
        (
            "redis+sentinel://:pw@h1:1,h2:2/mymaster?sentinel_password=abc",
            "redis+sentinel://:***@h1:1,h2:2/mymaster?sentinel_password=***",
        ),
        ("redis://h:6379/0", "redis://h:6379/0"),
    ],
)
def test_passwords_never_survive_redaction(url: str, masked: str) -> None:
    assert parse_state_url(url).redacted == masked
