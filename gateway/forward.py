"""Forwarding: try a plan's targets in order, collect each failed attempt, fall back on the
triggers the plan allows, and turn a hopeless call into one aggregate error."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from gateway.errors import (
    Attempt,
    InvalidRequest,
    RequestTooLarge,
    UpstreamBadResponse,
    UpstreamFailed,
    UpstreamProblem,
    UpstreamStatusError,
    UpstreamTimedOut,
)
from gateway.providers import Chunk, ChunkStream, Completion, Provider, ProviderCall
from gateway.providers.base import Operation
from routing import Plan, Target

log = logging.getLogger("agentgw.forward")


@dataclass(slots=True)
class Answer:
    """Which target answered, after which failed attempts, and how long the exchange took."""

    target: Target
    provider: Provider
    failed: list[Attempt] = field(default_factory=list)
    upstream_seconds: float = 0.0

    @property
    def attempts(self) -> int:
        return len(self.failed) + 1


T = TypeVar("T")
Attempter = Callable[[Provider, ProviderCall], Awaitable[T]]


class AttemptHooks(Protocol):
    """What the call learns of each attempt, for its spans and metrics."""

    def attempt_started(self, target: Target, provider: Provider, number: int) -> Mapping[str, str]:
        """Returns headers to add to this attempt's request (its trace context)."""

    def attempt_ended(self, target: Target, provider: Provider, problem: UpstreamProblem | None) -> None: ...

    def fell_back(self, target: Target) -> None:
        """The call moves on from `target` to the next one."""


class Forwarder:
    def __init__(self, providers: Mapping[str, Provider]) -> None:
        self._providers = providers

    async def complete(
        self,
        plan: Plan,
        body: dict[str, Any],
        operation: Operation,
        headers: Mapping[str, str],
        hooks: AttemptHooks,
    ) -> tuple[Completion, Answer]:
        """The first whole answer from the plan's targets."""
        attempt: Attempter[Completion] = _embed if operation == "embeddings" else _complete
        return await self._first_success(plan, body, operation, headers, hooks, attempt)

    async def open_stream(
        self, plan: Plan, body: dict[str, Any], headers: Mapping[str, str], hooks: AttemptHooks
    ) -> tuple[tuple[ChunkStream, Chunk], Answer]:
        """An open stream and its first chunk: a target that fails before sending anything is
        replaced by the next one without the client noticing."""
        return await self._first_success(plan, body, "chat", headers, hooks, _open)

    async def _first_success(
        self,
        plan: Plan,
        body: dict[str, Any],
        operation: Operation,
        headers: Mapping[str, str],
        hooks: AttemptHooks,
        attempt: Attempter[T],
    ) -> tuple[T, Answer]:
        failed: list[Attempt] = []
        last: UpstreamProblem | None = None
        failed_target: Target | None = None
        for number, target in enumerate(plan.targets, 1):
            provider = self._providers[target.provider]
            if failed_target is not None:
                hooks.fell_back(failed_target)
            extra = hooks.attempt_started(target, provider, number)
            call = ProviderCall(target, body, operation, {**headers, **extra} if extra else headers)
            started = time.perf_counter()
            try:
                result = await attempt(provider, call)
            except UpstreamProblem as problem:
                hooks.attempt_ended(target, provider, problem)
                self._record(problem, target, plan, failed)
                last, failed_target = problem, target
                continue
            except BaseException:
                hooks.attempt_ended(target, provider, None)
                raise
            hooks.attempt_ended(target, provider, None)
            return result, Answer(target, provider, failed, time.perf_counter() - started)
        raise _exhausted(failed, last)

    def _record(self, problem: UpstreamProblem, target: Target, plan: Plan, failed: list[Attempt]) -> None:
        status = problem.status if isinstance(problem, UpstreamStatusError) else None
        attempt = Attempt(target.provider, target.model, problem.error_kind(), status, problem.detail)
        failed.append(attempt)
        log.warning(
            "upstream attempt failed: provider=%s model=%s error=%s detail=%s",
            target.provider,
            target.model,
            attempt.error,
            problem.detail,
        )
        if isinstance(problem, UpstreamStatusError) and problem.client_fault:
            error = _client_fault(problem, target)
            error.attempts = tuple(failed)
            raise error
        if trigger_of(problem) not in plan.fallback_on:
            raise _exhausted(failed, problem)


def _complete(provider: Provider, call: ProviderCall) -> Awaitable[Completion]:
    return provider.complete(call)  # the provider's coroutine itself: no extra frame to resume through


def _embed(provider: Provider, call: ProviderCall) -> Awaitable[Completion]:
    return provider.embed(call)


async def _open(provider: Provider, call: ProviderCall) -> tuple[ChunkStream, Chunk]:
    stream = await provider.open_stream(call)
    try:
        first = await anext(stream)
    except StopAsyncIteration:
        await stream.aclose()
        raise UpstreamBadResponse("the stream ended before its first chunk") from None
    except BaseException:
        await stream.aclose()
        raise
    return stream, first


def trigger_of(problem: UpstreamProblem) -> str:
    """The fallback trigger a failure counts as: 429, 5xx, timeout or connect."""
    if isinstance(problem, UpstreamStatusError):
        if problem.status == 429:
            return "429"
        if problem.status == 408:
            return "timeout"
        return "5xx"  # 5xx, and provider-side refusals (401, 403, 404, 409) that another target may not have
    if problem.kind in ("timeout", "connect"):
        return problem.kind
    return "5xx"  # a malformed answer or a broken stream is the provider's failure


def _client_fault(problem: UpstreamStatusError, target: Target) -> InvalidRequest | RequestTooLarge:
    message = f"The provider rejected the request for model '{target.model}': {problem.message}"
    if problem.status == 413:
        return RequestTooLarge(message)
    return InvalidRequest(message)


def _exhausted(failed: list[Attempt], last: UpstreamProblem | None = None) -> UpstreamFailed:
    retry_after = last.retry_after if isinstance(last, UpstreamStatusError) else None
    summary = "; ".join(f"{a.provider}/{a.model}: {a.detail}" for a in failed)
    noun = "attempt" if len(failed) == 1 else f"{len(failed)} attempts"
    if failed and all(a.error == "timeout" for a in failed):
        return UpstreamTimedOut(f"The upstream {noun} timed out: {summary}", attempts=failed)
    return UpstreamFailed(f"The upstream {noun} failed: {summary}", attempts=failed, retry_after=retry_after)
