"""Forwarding: try a plan's targets in order, collect each failed attempt, fall back on the
triggers the plan allows, and turn a hopeless call into one aggregate error.

Each attempt carries the call to its target's provider in an API that provider speaks: as it is,
or translated (`gateway.translate`); the answer says which translation brings the reply back.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from gateway.apis.base import Api, Event
from gateway.errors import (
    Attempt,
    GatewayError,
    InvalidRequest,
    RequestTooLarge,
    ServiceUnavailable,
    UpstreamBadResponse,
    UpstreamFailed,
    UpstreamProblem,
    UpstreamStatusError,
    UpstreamTimedOut,
    UpstreamTimeout,
)
from gateway.providers import Completion, EventStream, Provider, ProviderCall
from gateway.translate import TranslationError
from gateway.translate.chain import Translation, translation_for
from routing import HealthTracker, Plan, Target

log = logging.getLogger("agentgw.forward")


@dataclass(slots=True)
class Answer:
    """Which target answered, how the call reached it, and after which failed attempts."""

    target: Target
    provider: Provider
    translation: Translation
    failed: list[Attempt] = field(default_factory=list)

    @property
    def attempts(self) -> int:
        return len(self.failed) + 1


T = TypeVar("T")
Attempter = Callable[[Provider, ProviderCall], Awaitable[T]]


@dataclass(slots=True)  # not frozen: one per call, and frozen fields cost ~0.1 us each to set
class Outbound:
    """What every attempt of one call sends: the client's body in its API, the headers the provider
    receives, and the client headers a provider speaking the client's own API also gets."""

    api: Api
    body: dict[str, Any]
    headers: Mapping[str, str]
    native_headers: Mapping[str, str] = field(default_factory=dict)


class AttemptHooks(Protocol):
    """What the call learns of each attempt, for its spans and metrics."""

    def entering(self, target: Target) -> Awaitable[bool] | None:
        """Whether an attempt to `target` may go (its own per-model rate limits): None when it surely
        may (no store step), else what to await; False skips it."""

    def attempt_started(self, target: Target, provider: Provider, number: int) -> Mapping[str, str]:
        """Returns headers to add to this attempt's request (its trace context)."""

    def attempt_ended(self, target: Target, provider: Provider, problem: UpstreamProblem | None) -> None: ...

    def fell_back(self, target: Target) -> None:
        """The call moves on from `target` to the next one."""


class Forwarder:
    """Runs a plan: each target in order while its breaker allows, retried with backoff when the
    route says so, within the call's attempt and deadline bounds."""

    def __init__(self, providers: Mapping[str, Provider], health: HealthTracker) -> None:
        self._providers = providers
        self._health = health

    async def complete(self, plan: Plan, out: Outbound, hooks: AttemptHooks) -> tuple[Completion, Answer]:
        """The first whole answer from the plan's targets (in the wire API of the answer's translation)."""
        return await self._first_success(plan, out, hooks, _complete, streaming=False)

    async def open_stream(
        self, plan: Plan, out: Outbound, hooks: AttemptHooks
    ) -> tuple[tuple[EventStream, Event], Answer]:
        """An open stream and its first event: a target that fails before sending anything is
        replaced by the next one without the client noticing."""
        return await self._first_success(plan, out, hooks, _open, streaming=True)

    async def _first_success(
        self, plan: Plan, out: Outbound, hooks: AttemptHooks, attempt: Attempter[T], *, streaming: bool
    ) -> tuple[T, Answer]:
        health = self._health
        attempts = plan.start()
        targets = plan.targets
        failed: list[Attempt] = []
        last: UpstreamProblem | None = None
        previous: Target | None = None
        index = 0
        while index < len(targets) and attempts.can_start():
            target = targets[index]
            if not health.allow(target):  # its circuit is open (or another call holds the half-open probe)
                index += 1
                continue
            provider = self._providers[target.provider]
            try:
                translation, call = _prepare(out, target, provider)
            except InvalidRequest:
                health.release(target)
                raise
            entering = hooks.entering(target)
            if entering is not None and not await entering:
                health.release(target)  # its own per-model limit is full: on to the next target
                index += 1
                continue
            if previous is not None and previous is not target:
                hooks.fell_back(previous)
            attempts.begin(target)
            extra = hooks.attempt_started(target, provider, attempts.attempts)
            if extra:
                call.headers = {**call.headers, **extra}
            started = time.perf_counter()
            try:
                # The first attempt is bounded by its provider's timeouts; later ones also by the call's
                # deadline, which exists to bound retries and fallbacks (and costs a timer per attempt).
                deadline = attempts.remaining_s() if attempts.attempts > 1 else None
                result = await _bounded(attempt(provider, call), deadline)
            except UpstreamProblem as problem:
                hooks.attempt_ended(target, provider, problem)
                failed.append(_attempt(problem, target))
                kind = trigger_of(problem)
                if kind is None or (kind == "context_length" and kind not in plan.fallback_on):
                    # The provider found the request itself invalid: it is the client's to fix.
                    health.release(target)
                    raise _client_fault(problem, target, failed) from None
                health.record_failure(target, kind)
                decision = attempts.after_failure(
                    kind, retry_after_s=_retry_after(problem), has_next=index + 1 < len(targets)
                )
                log.warning(
                    "upstream attempt failed: provider=%s model=%s error=%s detail=%s -> %s",
                    target.provider,
                    target.model,
                    failed[-1].error,
                    problem.detail,
                    decision.action,
                )
                last, previous = problem, target
                if decision.action == "retry":
                    await asyncio.sleep(decision.delay_s)
                elif decision.action == "next":
                    index += 1
                else:
                    break
                continue
            except BaseException:
                health.release(target)
                hooks.attempt_ended(target, provider, None)
                raise
            elapsed = time.perf_counter() - started
            health.record_success(target, None if streaming else elapsed, elapsed if streaming else None)
            hooks.attempt_ended(target, provider, None)
            return result, Answer(target, provider, translation, failed)
        if not failed:
            raise ServiceUnavailable(
                f"No target for '{plan.requested}' is available: their circuits are open.", param="model"
            )
        raise _exhausted(failed, last)


async def _bounded(awaitable: Awaitable[T], seconds: float | None) -> T:
    """The attempt, cut off when the call's deadline passes."""
    if seconds is None:
        return await awaitable
    try:
        async with asyncio.timeout(seconds):
            return await awaitable
    except TimeoutError:
        raise UpstreamTimeout("the call's deadline passed during this attempt") from None


def _attempt(problem: UpstreamProblem, target: Target) -> Attempt:
    status = problem.status if isinstance(problem, UpstreamStatusError) else None
    return Attempt(target.provider, target.model, problem.error_kind(), status, problem.detail)


def _retry_after(problem: UpstreamProblem) -> float | None:
    return problem.retry_after if isinstance(problem, UpstreamStatusError) else None


def _prepare(out: Outbound, target: Target, provider: Provider) -> tuple[Translation, ProviderCall]:
    """The attempt's request in an API the target's provider speaks; 400 when it cannot be expressed."""
    try:
        translation = translation_for(out.api, provider)
        body = translation.request(out.body, target.upstream_model)
    except TranslationError as exc:
        raise InvalidRequest(
            f"The request cannot be sent to model '{target.model}': {exc.message}", param=exc.param
        ) from None
    headers = {**out.headers, **out.native_headers} if translation.passthrough and out.native_headers else out.headers
    return translation, ProviderCall(target, translation.wire, body, headers)


def _complete(provider: Provider, call: ProviderCall) -> Awaitable[Completion]:
    return provider.complete(call)  # the provider's coroutine itself: no extra frame to resume through


async def _open(provider: Provider, call: ProviderCall) -> tuple[EventStream, Event]:
    stream = await provider.open_stream(call)
    try:
        first = await anext(stream)
    except StopAsyncIteration:
        await stream.aclose()
        raise UpstreamBadResponse("the stream ended before its first event") from None
    except BaseException:
        await stream.aclose()
        raise
    return stream, first


_CONTEXT_LENGTH = re.compile(
    r"context[_ ]length|maximum context|context window|prompt is too long|too many (input )?tokens", re.I
)


def trigger_of(problem: UpstreamProblem) -> str | None:
    """The fallback trigger a failure counts as (429, 5xx, timeout, connect, context_length), or
    None when the provider judged the request itself invalid."""
    if isinstance(problem, UpstreamStatusError):
        if problem.status == 429:
            return "429"
        if problem.status == 408:
            return "timeout"
        if problem.client_fault:
            return "context_length" if _CONTEXT_LENGTH.search(problem.message) else None
        return "5xx"  # 5xx, and provider-side refusals (401, 403, 404, 409) that another target may not have
    if problem.kind in ("timeout", "connect"):
        return problem.kind
    return "5xx"  # a malformed answer or a broken stream is the provider's failure


def _client_fault(problem: UpstreamProblem, target: Target, failed: list[Attempt]) -> GatewayError:
    detail = problem.message if isinstance(problem, UpstreamStatusError) else problem.detail
    message = f"The provider rejected the request for model '{target.model}': {detail}"
    error: GatewayError = (
        RequestTooLarge(message) if getattr(problem, "status", None) == 413 else InvalidRequest(message)
    )
    error.attempts = tuple(failed)
    return error


def _exhausted(failed: list[Attempt], last: UpstreamProblem | None = None) -> UpstreamFailed:
    retry_after = last.retry_after if isinstance(last, UpstreamStatusError) else None
    summary = "; ".join(f"{a.provider}/{a.model}: {a.detail}" for a in failed)
    noun = "attempt" if len(failed) == 1 else f"{len(failed)} attempts"
    if failed and all(a.error == "timeout" for a in failed):
        return UpstreamTimedOut(f"The upstream {noun} timed out: {summary}", attempts=failed)
    return UpstreamFailed(f"The upstream {noun} failed: {summary}", attempts=failed, retry_after=retry_after)
