"""Open the store a `state:` config names."""

from __future__ import annotations

from typing import TYPE_CHECKING

from policies.state.base import StateStore
from policies.state.memory import MemoryStore
from policies.state.urls import parse_state_url

if TYPE_CHECKING:
    from policies.config import StateConfig


def open_store(config: StateConfig) -> StateStore:
    """A MemoryStore or RedisStore. Nothing connects yet; the first call (or `ping()`) does."""
    location = parse_state_url(config.url)
    if location.kind == "memory":
        return MemoryStore()
    from policies.state.redis_store import RedisStore

    return RedisStore(
        location,
        key_prefix=config.key_prefix,
        connect_timeout=config.connect_timeout_ms / 1000,
        timeout=config.timeout_ms / 1000,
        max_connections=config.max_connections,
        fail_fast=config.fail_fast_ms / 1000,
    )
