"""Rate limits on the `limits` library (sliding window counter), plus concurrency leases in the state store.

Why the sliding window counter: its state is two counters per limit whatever the amount, so a hit of
5,000 tokens costs the same as a hit of 1 request. The moving window keeps one entry per unit (per
token: a tpm of 1,000,000 would mean lists of a million timestamps). The counter's approximation (the
previous window weighted by how much of it still overlaps) is the one Cloudflare and others use.

The limiter talks to the `limits` storage through its sliding-window-counter interface
(`SlidingWindowCounterSupport.acquire_sliding_window_entry` / `get_sliding_window`, exactly what
`SlidingWindowCounterRateLimiter.hit` / `get_window_stats` call) with each limit's key computed once,
rather than through the strategy object, which rebuilds the key on every call (a third of the cost).

Token limits reserve the estimate at admission and are corrected at settle:

- lower real usage: the difference is hit again with a negative cost. `limits` 5.8 applies negative
  costs on both storages we use (memory and Redis) but does not document them (a pending change,
  alisaifee/limits#362, proposes rejecting them): should a later version raise ValueError, the limiter
  stops giving back, logs it once, and accepts the over-count. The give-back lands in the current
  window, so it is scaled down once the estimate itself has started to age out (after one window), and
  skipped after two;
- higher real usage: the extra is hit; if the window has no room for it, the window is filled to its
  limit instead, so the overrun is not lost from view but does not push past the limit either.

A refused admission undoes the hits it made (negative costs again): a call refused by one limit does
not use up the others.

Round trips on Redis: admission is one concurrent round for the hits and the lease script, then one for
reading the windows (the x-ratelimit-* numbers; `headers=False` skips it); settle is one round. On
memory nothing awaits the network and each admission runs without yielding, so it is atomic.

Concurrency: a lease per call in each scope's lease set, with a deadline (`lease_seconds`) after which
it is dropped as leaked, so a replica that dies mid-call frees its slots by itself.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.aio.storage import SlidingWindowCounterSupport

from policies.limits.errors import LimitKind, RateLimited
from policies.limits.headers import RateLimitHeaders
from policies.limits.rules import LimitRule
from policies.state.base import StateStore
from policies.state.errors import StoreUnavailable
from policies.state.scope import Scope

log = logging.getLogger("agentgw.limits")

_NAMESPACE = "agentgw"
_MAX_PLANS = 16_384  # cached plans (one per distinct set of rules); beyond this the cache starts over
Window = tuple[int, float, int, float]  # previous count, previous expires in, current count, current expires in


class _Limit:
    """One window counter: a request or token limit of one scope, with its `limits` key."""

    __slots__ = ("key", "kind", "scope", "value")

    def __init__(self, scope: Scope, kind: LimitKind, value: int, key: str) -> None:
        self.scope = scope
        self.kind = kind
        self.value = value
        self.key = key


class _Plan:
    """What a set of rules means for the store, worked out once per distinct set of rules."""

    __slots__ = ("lease_keys", "lease_limits", "lease_scopes", "limits", "requests", "tokens")

    def __init__(self, limits: list[_Limit], leases: list[tuple[str, int, Scope]]) -> None:
        self.limits = limits
        self.requests = [limit.kind == "requests" for limit in limits]
        self.tokens = [limit for limit in limits if limit.kind == "tokens"]
        self.lease_keys = [key for key, _, _ in leases]
        self.lease_limits = [value for _, value, _ in leases]
        self.lease_scopes = [scope for _, _, scope in leases]


class Admission:
    """An admitted call's hold on its rate limits.

    Call `settle(actual_tokens)` when the call's real usage is known (it corrects the token limits and
    frees the concurrency slots), or `release()` when it is not (frees the slots, keeps the estimate).
    Either is idempotent and the second call is a no-op; neither raises for store failures (they are
    logged and counted; leases then lapse by themselves).
    """

    __slots__ = ("_admitted_at", "_estimate", "_lease_keys", "_limiter", "_member", "_open", "_tokens", "headers")

    def __init__(
        self,
        limiter: RateLimiter | None,
        tokens: list[_Limit],
        estimate: int,
        lease_keys: list[str],
        member: str,
        headers: RateLimitHeaders | None,
    ) -> None:
        self._limiter = limiter
        self._tokens = tokens
        self._estimate = estimate
        self._lease_keys = lease_keys
        self._member = member
        self._admitted_at = time.monotonic()
        self._open = limiter is not None
        self.headers = headers
        """x-ratelimit-* numbers after this call's hit, for the response (None when no limit applies)."""

    @classmethod
    def unlimited(cls) -> Admission:
        """An admission that holds nothing: no limit applied, or the store failed open."""
        return cls(None, [], 0, [], "", None)

    async def settle(self, actual_tokens: int) -> None:
        """Correct the token limits from the estimate to `actual_tokens` and free the concurrency slots."""
        if not self._open:
            return
        self._open = False
        assert self._limiter is not None
        await self._limiter._finish(self, actual_tokens)

    async def release(self) -> None:
        """Free the concurrency slots; token limits keep the estimate."""
        if not self._open:
            return
        self._open = False
        assert self._limiter is not None
        await self._limiter._finish(self, None)


class RateLimiter:
    """Requests and tokens per window and calls in flight, per scope, shared through the state store."""

    def __init__(
        self,
        store: StateStore,
        *,
        window_seconds: int = 60,
        lease_seconds: float = 900.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`window_seconds` is the rate window (60: rpm and tpm; tests shorten it). `lease_seconds` is how
        long a concurrency slot may be held before it counts as leaked. `clock` gives unix seconds for lease
        deadlines; the `limits` windows keep their own (wall) clock."""
        storage = store.limits_storage
        if not isinstance(storage, SlidingWindowCounterSupport):
            raise TypeError(f"{type(storage).__name__} has no sliding window counter")
        self._store = store
        self._storage: SlidingWindowCounterSupport = storage
        self._window = window_seconds
        self._lease_ms = round(lease_seconds * 1000)
        self._clock = clock
        self._plans: dict[tuple[LimitRule, ...], _Plan] = {}
        self._ids = itertools.count()
        self._instance = secrets.token_hex(6)
        self._negative_costs = True
        self.lost_settlements = 0
        """Settles or releases that failed because the store was unreachable."""

    def _plan(self, rules: tuple[LimitRule, ...]) -> _Plan:
        plan = self._plans.get(rules)
        if plan is None:
            if len(self._plans) >= _MAX_PLANS:
                self._plans.clear()
            limits: list[_Limit] = []
            leases: list[tuple[str, int, Scope]] = []
            for rule in rules:
                if rule.rpm:
                    limits.append(_Limit(rule.scope, "requests", rule.rpm, self._key("rpm", rule.scope, rule.rpm)))
                if rule.tpm:
                    limits.append(_Limit(rule.scope, "tokens", rule.tpm, self._key("tpm", rule.scope, rule.tpm)))
                if rule.concurrent:
                    leases.append((rule.scope.state_key + ":c", rule.concurrent, rule.scope))
            plan = self._plans[rules] = _Plan(limits, leases)
        return plan

    def _key(self, kind: str, scope: Scope, amount: int) -> str:
        """The `limits` key of one limit, as `RateLimitItem.key_for` makes it."""
        item: RateLimitItem
        if self._window % 60 == 0:
            item = RateLimitItemPerMinute(amount, self._window // 60, namespace=_NAMESPACE)
        else:
            item = RateLimitItemPerSecond(amount, self._window, namespace=_NAMESPACE)
        return item.key_for(kind, scope.path)

    async def admit(self, rules: Sequence[LimitRule], estimated_tokens: int, *, headers: bool = True) -> Admission:
        """Count the call against every rule, all or nothing.

        Raises RateLimited naming the first limit without room (and undoes the rest), or StoreUnavailable.
        With `headers`, the admission carries the x-ratelimit-* numbers of the tightest limits (each
        window is read alongside its hit). Pass the same tuple of rules for the same caller (as
        `limit_rules` results cached per key, agent and model): the work they imply is kept per tuple.
        """
        plan = self._plan(rules if isinstance(rules, tuple) else tuple(rules))
        limits, lease_keys = plan.limits, plan.lease_keys
        if not limits and not lease_keys:
            return _UNLIMITED
        estimated_tokens = max(0, estimated_tokens)
        costs = [1 if is_request else estimated_tokens for is_request in plan.requests]
        member = f"{self._instance}.{next(self._ids)}" if lease_keys else ""
        storage, store, expiry = self._storage, self._store, self._window
        windows: list[Window] = []
        full_lease: int | None = None
        with store.guard():
            if store.parallel:  # one concurrent round for the hits and leases, one for the windows
                calls: list[Awaitable[Any]] = [
                    storage.acquire_sliding_window_entry(limit.key, limit.value, expiry, cost)
                    for limit, cost in zip(limits, costs, strict=True)
                ]
                if lease_keys:
                    now_ms = int(self._clock() * 1000)
                    calls.append(store.acquire(lease_keys, plan.lease_limits, member, now_ms, now_ms + self._lease_ms))
                results = await _all(calls)
                passed = [bool(r) for r in results[: len(limits)]]
                if lease_keys:
                    full_lease = results[-1]
                if headers and full_lease is None and all(passed):
                    windows = await _all([storage.get_sliding_window(limit.key, expiry) for limit in limits])
            else:
                passed = []
                for limit, cost in zip(limits, costs, strict=True):
                    passed.append(await storage.acquire_sliding_window_entry(limit.key, limit.value, expiry, cost))
                    if not passed[-1]:
                        break
                    if headers:
                        windows.append(await storage.get_sliding_window(limit.key, expiry))
                if lease_keys and all(passed):
                    now_ms = int(self._clock() * 1000)
                    deadline = now_ms + self._lease_ms
                    full_lease = await store.acquire(lease_keys, plan.lease_limits, member, now_ms, deadline)
        if full_lease is not None or not all(passed):
            await self._refuse(plan, costs, passed, member, full_lease)
        numbers = self._numbers(limits, windows) if headers else None
        return Admission(self, plan.tokens, estimated_tokens, lease_keys, member, numbers)

    async def _refuse(
        self,
        plan: _Plan,
        costs: list[int],
        passed: list[bool],
        member: str,
        full_lease: int | None,
    ) -> None:
        """Give back what a refused admission took, then raise RateLimited for the limit that refused."""
        with self._store.guard():
            undo: list[Awaitable[Any]] = [
                self._hit(limit, -cost)
                for limit, cost, ok in zip(plan.limits, costs, passed, strict=False)
                if ok and cost > 0
            ]
            if plan.lease_keys and full_lease is None:  # the leases were taken, a rate limit refused
                undo.append(self._store.release(plan.lease_keys, member))
            await self._run(undo)
        refused = next((i for i, ok in enumerate(passed) if not ok), None)
        if refused is None:
            assert full_lease is not None
            scope, value = plan.lease_scopes[full_lease], plan.lease_limits[full_lease]
            raise RateLimited(scope, "concurrent", value, 1.0, window_seconds=self._window)
        limit, cost = plan.limits[refused], costs[refused]
        with self._store.guard():
            window = await self._storage.get_sliding_window(limit.key, self._window)
        never_fits = cost > limit.value
        retry_after = float(self._window) if never_fits else max(1.0, _reset_in(window, self._window))
        raise RateLimited(
            limit.scope,
            limit.kind,
            limit.value,
            retry_after,
            window_seconds=self._window,
            never_fits=never_fits,
            headers=self._numbers([limit], [window]),
        )

    def _numbers(self, limits: list[_Limit], windows: list[Window]) -> RateLimitHeaders:
        """The tightest limit of each kind: least remaining, then smallest."""
        best: dict[LimitKind, tuple[int, int, Window]] = {}
        expiry = self._window
        for limit, window in zip(limits, windows, strict=True):
            previous, previous_expires_in, current, _ = window
            used = math.floor(previous * previous_expires_in / expiry + current)
            remaining = min(limit.value, max(0, limit.value - used))
            current_best = best.get(limit.kind)
            if current_best is None or (remaining, limit.value) < current_best[:2]:
                best[limit.kind] = (remaining, limit.value, window)
        requests = best.get("requests")
        tokens = best.get("tokens")
        return RateLimitHeaders(
            limit_requests=requests[1] if requests else None,
            remaining_requests=requests[0] if requests else None,
            reset_requests=_reset_in(requests[2], expiry) if requests else None,
            limit_tokens=tokens[1] if tokens else None,
            remaining_tokens=tokens[0] if tokens else None,
            reset_tokens=_reset_in(tokens[2], expiry) if tokens else None,
        )

    async def _finish(self, admission: Admission, actual_tokens: int | None) -> None:
        if not admission._lease_keys and (actual_tokens is None or not admission._tokens):
            return
        try:
            with self._store.guard():
                calls: list[Awaitable[Any]] = []
                if actual_tokens is not None and admission._tokens:
                    calls += self._corrections(admission, actual_tokens)
                if admission._lease_keys:
                    calls.append(self._store.release(admission._lease_keys, admission._member))
                await self._run(calls)
        except StoreUnavailable as exc:
            self.lost_settlements += 1
            log.warning("rate-limit settle lost (%s); leases lapse by themselves", exc)

    def _corrections(self, admission: Admission, actual_tokens: int) -> list[Awaitable[Any]]:
        diff = max(0, actual_tokens) - admission._estimate
        if diff > 0:
            return [self._overrun(check, diff) for check in admission._tokens]
        if diff == 0 or not self._negative_costs:
            return []
        # The estimate sits in the window it was hit in; past one window it starts to age out of the weighted
        # count, so give back proportionally less, and nothing once it has gone.
        age = (time.monotonic() - admission._admitted_at) / self._window
        share = 1.0 if age <= 1 else max(0.0, 2.0 - age)
        give_back = math.floor(-diff * share)
        if give_back <= 0:
            return []
        return [self._hit(check, -give_back) for check in admission._tokens]

    async def _overrun(self, check: _Limit, extra: int) -> None:
        storage, expiry = self._storage, self._window
        if await storage.acquire_sliding_window_entry(check.key, check.value, expiry, extra):
            return
        previous, previous_expires_in, current, _ = await storage.get_sliding_window(check.key, expiry)
        room = check.value - math.floor(previous * previous_expires_in / expiry + current)
        if room > 0:
            await storage.acquire_sliding_window_entry(check.key, check.value, expiry, min(room, extra))

    async def _hit(self, check: _Limit, cost: int) -> None:
        """A hit whose refusal does not matter (undo, give-back)."""
        if cost < 0 and not self._negative_costs:
            return
        try:
            await self._storage.acquire_sliding_window_entry(check.key, check.value, self._window, cost)
        except ValueError:
            self._negative_costs = False
            log.warning("this version of `limits` rejects negative costs: token estimates are no longer given back")

    async def _run(self, calls: list[Awaitable[Any]]) -> None:
        if self._store.parallel:
            await _all(calls)
            return
        for done, call in enumerate(calls):
            try:
                await call
            except BaseException:
                for rest in calls[done + 1 :]:
                    if isinstance(rest, Coroutine):
                        rest.close()
                raise


_UNLIMITED = Admission.unlimited()


def _reset_in(window: Window, expiry: int) -> float:
    """Seconds until the window has room for one more unit (as `limits`' get_window_stats computes it)."""
    previous, previous_expires_in, current, current_expires_in = window
    if not (previous or current):
        return 0.0
    previous_reset_in = previous_expires_in % (expiry / previous) if previous > 0 else math.inf
    current_reset_in = current_expires_in % expiry if current else math.inf
    reset_in = min(previous_reset_in, current_reset_in)
    return 0.0 if math.isinf(reset_in) else reset_in


async def _all(calls: Sequence[Awaitable[Any]]) -> list[Any]:
    """Await all (concurrently when there are several); once all are done, raise the first error, if any."""
    if len(calls) == 1:
        return [await calls[0]]
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results
