"""The Redis store: one Lua script per operation, so each is atomic and one round trip.

Errors: any client error becomes StoreUnavailable. After a connection failure the store fails fast
(no network at all) for `fail_fast` seconds, so an unreachable Redis costs requests nothing but the
decision; then the next call tries again, and redis-py reconnects by itself. Redis forgets loaded
scripts when it restarts: redis-py's script objects answer NOSCRIPT by loading the script again, and
so do `limits`' own.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

from limits.errors import StorageError
from limits.storage import storage_from_string
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from policies.state import scripts
from policies.state.base import Account, Reserved, Shortfall, StateStore, StoreGuard
from policies.state.errors import StoreUnavailable
from policies.state.urls import StoreLocation, redis_client

log = logging.getLogger("agentgw.state")

_STORE_ERRORS = (RedisError, RedisClusterException, StorageError, OSError)
_CONNECTION_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


class _RedisGuard(StoreGuard):
    __slots__ = ("_store",)

    def __init__(self, store: RedisStore) -> None:
        self._store = store

    def __enter__(self) -> None:
        store = self._store
        if store._down_until and time.monotonic() < store._down_until:
            raise StoreUnavailable(f"state store {store.location.redacted} is unreachable (failing fast)")

    def __exit__(self, kind: object, error: BaseException | None, trace: object) -> None:
        store = self._store
        if error is None:
            if store._down_until:
                store._down_until = 0.0
                log.warning("state store %s is reachable again", store.location.redacted)
            return
        if isinstance(error, StorageError):  # `limits` wrapping: look at what it wraps
            error = error.storage_error
        if not isinstance(error, _STORE_ERRORS):
            return
        if isinstance(error, _CONNECTION_ERRORS) or isinstance(error.__cause__, _CONNECTION_ERRORS):
            if not store._down_until:
                log.warning("state store %s is unreachable: %s", store.location.redacted, _describe(error))
            store._down_until = time.monotonic() + store.fail_fast
        raise StoreUnavailable(f"state store {store.location.redacted}: {_describe(error)}") from error


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:300]


class RedisStore(StateStore):
    """Budgets, leases and `limits` windows in Redis (plain, cluster or sentinel)."""

    kind = "redis"
    parallel = True

    def __init__(
        self,
        location: StoreLocation,
        *,
        key_prefix: str = "agentgw:",
        connect_timeout: float = 0.25,
        timeout: float = 0.5,
        max_connections: int = 256,
        fail_fast: float = 1.0,
    ) -> None:
        self.location = location
        self.fail_fast = fail_fast
        self._prefix = key_prefix
        self._down_until = 0.0
        self._guard = _RedisGuard(self)
        self._client: Any = redis_client(
            location, connect_timeout=connect_timeout, timeout=timeout, max_connections=max_connections
        )
        limits_options: dict[str, Any] = {"implementation": "redispy", "key_prefix": f"{key_prefix}limits"}
        if location.kind == "redis":  # share our connection pool (and its timeouts and retry policy)
            limits_options["connection_pool"] = self._client.connection_pool
        else:
            limits_options.update(socket_connect_timeout=connect_timeout, socket_timeout=timeout)
        self.limits_storage = storage_from_string(location.limits_uri, **limits_options)  # type: ignore[assignment]
        register = self._client.register_script
        self._reserve = register(scripts.RESERVE)
        self._settle = register(scripts.SETTLE)
        self._balance = register(scripts.BALANCE)
        self._acquire = register(scripts.ACQUIRE)
        self._release = register(scripts.RELEASE)

    @property
    def client(self) -> Any:
        """The redis.asyncio client (tests and diagnostics)."""
        return self._client

    def guard(self) -> StoreGuard:
        return self._guard

    def _keys(self, accounts: Sequence[Account]) -> list[str]:
        keys: list[str] = []
        for account in accounts:
            key = self._prefix + account.key
            keys += (key, key + ":h")
        return keys

    async def reserve(
        self, accounts: Sequence[Account], member: str, amount: int, now_ms: int, deadline_ms: int
    ) -> Reserved | Shortfall:
        args: list[Any] = [now_ms, deadline_ms, member, amount]
        for account in accounts:
            args += (account.cap, account.expire_at)
        with self._guard:
            result = await self._reserve(self._keys(accounts), args)
        if int(result[0]) == 0:
            return Reserved(tuple(int(value) for value in result[1:]))
        index, spent, reserved = result
        return Shortfall(int(index) - 1, int(spent), int(reserved))

    async def settle(
        self, accounts: Sequence[Account], member: str, held: int, actual: int
    ) -> list[tuple[int, str, int]]:
        args: list[Any] = [member, held, actual]
        for account in accounts:
            args += (account.expire_at, len(account.alerts))
            for label, level in account.alerts:
                args += (label, level)
        with self._guard:
            result = await self._settle(self._keys(accounts), args)
        return [(int(result[i]) - 1, result[i + 1].decode(), int(result[i + 2])) for i in range(0, len(result), 3)]

    async def balance(self, account: Account, now_ms: int) -> tuple[int, int]:
        with self._guard:
            spent, reserved = await self._balance(self._keys((account,)), [now_ms])
        return int(spent), int(reserved)

    async def acquire(
        self, keys: Sequence[str], limits: Sequence[int], member: str, now_ms: int, deadline_ms: int
    ) -> int | None:
        key_expire_at = deadline_ms + (deadline_ms - now_ms)  # outlive any live lease, with room for clock skew
        with self._guard:
            result = await self._acquire(
                [self._prefix + k for k in keys], [now_ms, deadline_ms, member, key_expire_at, *limits]
            )
        return None if result == 0 else int(result) - 1

    async def release(self, keys: Sequence[str], member: str) -> None:
        with self._guard:
            await self._release([self._prefix + k for k in keys], [member])

    async def ping(self) -> None:
        with self._guard:
            await self._client.ping()

    async def aclose(self) -> None:
        with contextlib.suppress(*_STORE_ERRORS):  # closing a dead connection is not worth an error
            await self._client.aclose()
