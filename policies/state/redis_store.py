"""The Redis store: one Lua script per operation, so each is atomic and one round trip.

Errors: any client error becomes StoreUnavailable. After a connection failure the store fails fast
(no network at all) for `fail_fast` seconds, so an unreachable Redis costs requests nothing but the
decision; then the next call tries again, and redis-py reconnects by itself. Redis forgets loaded
scripts when it restarts: `_Script` answers NOSCRIPT by loading the script again.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Sequence
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from policies.state import scripts
from policies.state.base import NEAR_CAP, Account, Crossed, Entry, Exit, Shortfall, StateStore, Verdict
from policies.state.errors import StoreUnavailable
from policies.state.urls import StoreLocation, redis_client

log = logging.getLogger("agentgw.state")

_STORE_ERRORS = (RedisError, RedisClusterException, OSError)
_CONNECTION_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


class _RedisGuard:
    """`with guard: await ...` fails fast while the store is known to be down, and turns client
    errors into StoreUnavailable."""

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
        if not isinstance(error, _STORE_ERRORS):
            return
        if isinstance(error, _CONNECTION_ERRORS) or isinstance(error.__cause__, _CONNECTION_ERRORS):
            if not store._down_until:
                log.warning("state store %s is unreachable: %s", store.location.redacted, _describe(error))
            store._down_until = time.monotonic() + store.fail_fast
        raise StoreUnavailable(
            f"state store {store.location.redacted}: {_describe(error)}", maybe_applied=True
        ) from error


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:300]


class RedisStore(StateStore):
    """Budgets, leases and rate-limit windows in Redis (plain, cluster or sentinel)."""

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
        self._admit = _Script(scripts.ADMIT)
        self._finish = _Script(scripts.FINISH)
        self._renew = _Script(scripts.RENEW)
        self._cancel = _Script(scripts.CANCEL)
        self._balance = _Script(scripts.BALANCE)
        self._seed = _Script(scripts.SEED)

    @property
    def client(self) -> Any:
        """The redis.asyncio client (tests and diagnostics)."""
        return self._client

    def _keys(self, accounts: Sequence[Account]) -> list[str]:
        keys: list[str] = []
        for account in accounts:
            key = self._prefix + account.key
            keys += (key, key + ":h")
        return keys

    async def admit(self, entry: Entry, now_ms: int, window_ms: int, deadline_ms: int) -> Verdict:
        prefix = self._prefix
        counters = [*entry.requests, *entry.tokens]
        keys = [prefix + c.key for c in counters] + [prefix + lease.key for lease in entry.leases]
        keys += self._keys(entry.accounts)
        lease_expire_at = deadline_ms + (deadline_ms - now_ms)  # outlive any live lease, and skew
        args: list[Any] = [
            now_ms, window_ms, len(entry.requests), len(entry.tokens), len(entry.leases), len(entry.accounts),
            entry.lease_member, deadline_ms, lease_expire_at, entry.hold_member, entry.amount,
            NEAR_CAP if entry.refine else 0, 1 if entry.rebuild else 0, entry.lease_count,
        ]  # fmt: skip
        for counter in counters:
            args += (counter.limit, counter.amount)
        args += [lease.limit for lease in entry.leases]
        for account in entry.accounts:
            args += (account.cap, account.expire_at)
        with self._guard:
            result = await self._admit(self._client, keys, args)
        status = int(result[0])
        if status < 0:  # cancelled before it landed (only a late copy of a lost command sees this)
            raise StoreUnavailable(f"reservation {entry.hold_member} was cancelled")
        which, end = int(result[1]) - 1, 4 + 2 * len(counters)
        counts = tuple((int(result[i]), int(result[i + 1])) for i in range(4, end, 2))
        if status == 0:
            return Verdict(counts, tuple(int(value) for value in result[end:]))
        if status == 1:
            return Verdict(counts, refused=which)
        if status == 2:
            return Verdict(counts, full=which)
        if status == 3:
            return Verdict(counts, short=Shortfall(which, int(result[2]), int(result[3])))
        if status == 5:
            return Verdict(counts, missing=tuple(int(value) - 1 for value in result[end:]))
        return Verdict(counts, refine=True)

    def _finish_call(self, exit: Exit, now_ms: int, window_ms: int) -> tuple[list[str], list[Any]]:
        prefix = self._prefix
        keys = [prefix + c.key for c in exit.corrections] + [prefix + key for key in exit.lease_keys]
        keys += self._keys(exit.accounts)
        args: list[Any] = [
            now_ms, window_ms, len(exit.corrections), len(exit.lease_keys), len(exit.accounts), exit.hit_window,
            exit.lease_member, exit.hold_member, exit.held, exit.actual, exit.admitted_ms, exit.ended_ms,
            exit.lease_count,
        ]  # fmt: skip
        for counter in exit.corrections:
            args += (counter.limit, counter.amount)
        for account in exit.accounts:
            args += (account.expire_at, len(account.alerts))
            for label, level in account.alerts:
                args += (label, level)
        return keys, args

    async def finish(self, exit: Exit, now_ms: int, window_ms: int) -> Crossed:
        keys, args = self._finish_call(exit, now_ms, window_ms)
        with self._guard:
            result = await self._finish(self._client, keys, args)
        return _crossed(result)

    async def finish_many(self, exits: Sequence[Exit], now_ms: int, window_ms: int) -> list[Crossed | StoreUnavailable]:
        """One pipeline (not a transaction) of FINISH calls: one round trip for all of them."""
        if len(exits) < 2 or self.location.kind == "cluster":  # a cluster pipeline may span nodes: keep it simple
            return await super().finish_many(exits, now_ms, window_ms)
        calls = [self._finish_call(exit, now_ms, window_ms) for exit in exits]
        try:
            with self._guard:
                results = await self._finish.pipelined(self._client, calls)
        except StoreUnavailable as exc:
            return [exc] * len(exits)
        out: list[Crossed | StoreUnavailable] = []
        for result in results:
            if isinstance(result, BaseException):
                out.append(StoreUnavailable(f"state store {self.location.redacted}: {_describe(result)}"))
            else:
                out.append(_crossed(result))
        return out

    async def renew(self, exit: Exit, deadline_ms: int) -> bool:
        prefix = self._prefix
        keys = [prefix + key for key in exit.lease_keys] + self._keys(exit.accounts)
        lease_expire_at = deadline_ms + (deadline_ms - int(time.time() * 1000))
        args = [
            len(exit.lease_keys), exit.lease_member, exit.hold_member, deadline_ms, lease_expire_at, exit.lease_count
        ]  # fmt: skip
        with self._guard:
            return bool(await self._renew(self._client, keys, args))

    async def release(self, lease_keys: Sequence[str], members: Sequence[str]) -> None:
        if not members:
            return
        with self._guard:
            for key in lease_keys:  # a call has one or two lease sets (team, key): one command each
                await self._client.zrem(self._prefix + key, *members)

    async def cancel(self, accounts: Sequence[Account], member: str, amount: int, until_ms: int) -> None:
        with self._guard:
            await self._cancel(self._client, self._keys(accounts), [member, amount, until_ms])

    async def balance(self, account: Account, now_ms: int) -> tuple[int, int]:
        with self._guard:
            spent, reserved, _ = await self._balance(self._client, self._keys((account,)), [now_ms])
        return int(spent), int(reserved)

    async def seed(self, account: Account, spent: int, now_ms: int) -> bool:
        with self._guard:
            created = await self._seed(self._client, [self._prefix + account.key], [spent, now_ms, account.expire_at])
        return bool(created)

    async def exists(self, account: Account) -> bool:
        with self._guard:
            return bool(await self._client.exists(self._prefix + account.key))

    async def ping(self) -> None:
        with self._guard:
            await self._client.ping()

    async def aclose(self) -> None:
        with contextlib.suppress(*_STORE_ERRORS):  # closing a dead connection is not worth an error
            await self._client.aclose()


def _crossed(result: Any) -> Crossed:
    return [(int(result[i]) - 1, result[i + 1].decode(), int(result[i + 2])) for i in range(0, len(result), 3)]


class _Script:
    """A Lua script run by its SHA1 (EVALSHA), loaded again when Redis answers NOSCRIPT (after a
    restart Redis has forgotten its scripts). In a pipeline too, which redis-py's own script objects
    would precede with a SCRIPT EXISTS round trip every time."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    async def __call__(self, client: Any, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await client.script_load(self.source)
            return await client.evalsha(self.sha, len(keys), *keys, *args)

    async def pipelined(self, client: Any, calls: Sequence[tuple[Sequence[str], Sequence[Any]]]) -> list[Any]:
        """Run the script once per (keys, args), all in one pipeline; each result or its error, in order."""
        results = await self._send(client, calls)
        if any(isinstance(result, NoScriptError) for result in results):  # none of those ran: load, send them again
            await client.script_load(self.source)
            again = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
            for i, result in zip(again, await self._send(client, [calls[i] for i in again]), strict=True):
                results[i] = result
        return results

    async def _send(self, client: Any, calls: Sequence[tuple[Sequence[str], Sequence[Any]]]) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for keys, args in calls:
            pipe.evalsha(self.sha, len(keys), *keys, *args)
        return list(await pipe.execute(raise_on_error=False))
