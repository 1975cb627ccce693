"""Policy overhead benchmark: what rate limits and budgets add to one call, on memory and on Redis.

One "call" here is the policy work of a request with everything on, as the gateway does it:

  limits    admit (team rpm + tpm, key rpm + tpm + concurrent, with x-ratelimit-* numbers), then
            settle (token correction, lease release)
  budgets   reserve the worst case against the team's monthly, the key's daily and the task's
            total budget, then settle to the real cost
  both      limits admit, budget reserve, budget settle, limits settle: two store steps each way (how
            the gateway did it before issue 15)
  call      the same work as one call: one step to admit (limits and budgets together), one to settle,
            settlements of concurrent calls batched into one round trip (what the gateway does now)
  near      `call` with every budget near its cap: each admission counts its prompt exactly (a
            2,000-token chat prompt with tiktoken) and asks the store a second time
  sliced    `call` with strict local slices (`state.slices`, the default on Redis): a busy call shape
            draws many calls' worth from the store at once and admits them in memory (the same as
            `call` on memory state, where there are no slices); the 100 task budgets make 100 shapes

measured per call as the time spent in those policy calls (p50/p99 in microseconds; between admission
and settle each call yields once, as a real call does while it waits upstream, and that wait is not
counted) and as calls/s, at concurrency 1 (one task calling in a loop) and 32 (32 tasks), for
`state: memory` and `state: redis://` (a real redis-server on loopback, started here like the tests do,
pinned to another CPU than this process when there are two). At concurrency 32 on Redis the time
includes waiting for the event loop while other calls' replies are handled: that is the latency a
loaded gateway would add.
Limits and caps are far above the load, so nothing is refused. These are measurements to read,
never assertions; results also go to bench/results/policies-<ts>.json.

Run:
    python bench/policies_bench.py                 # default counts
    python bench/policies_bench.py --calls 20000   # more calls per measurement
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from policies.budgets import Budget, BudgetEngine
from policies.calls import CallPolicies, Exact
from policies.config import SlicesConfig, StateConfig
from policies.limits import LimitRule, RateLimiter
from policies.state import Scope, StateStore, open_store
from tests.redis_server import RedisServer, redis_server_binary

RESULTS_DIR = Path(__file__).resolve().parent / "results"
BIG = 10**12
TEAM = Scope.of_team("bench")
KEY = Scope("bench", "key", "bench-key")
RULES = [LimitRule(TEAM, rpm=BIG, tpm=BIG), LimitRule(KEY, rpm=BIG, tpm=BIG, concurrent=10_000)]
TASKS = 100


def budgets_for(call: int) -> list[Budget]:
    task = Scope("bench", "task", f"task-{call % TASKS}")
    return [Budget(TEAM, BIG, "month", (0.8, 0.95)), Budget(KEY, BIG, "day"), Budget(task, BIG, "total")]


Call = Callable[[int], Awaitable[int]]
"""One call's policy work; returns the nanoseconds spent in it (not counting the simulated upstream)."""


def make_calls(store: StateStore) -> tuple[dict[str, Call], Callable[[], Awaitable[None]]]:
    """The calls to measure, and what gives back the slices still open at the end."""
    limiter = RateLimiter(store)
    engine = BudgetEngine(store)
    rules = tuple(RULES)
    clock = time.perf_counter_ns

    async def upstream() -> None:
        await asyncio.sleep(0)  # the call goes upstream: other tasks run

    async def limits(n: int) -> int:
        started = clock()
        admission = await limiter.admit(rules, 1_200)
        admitted = clock()
        await upstream()
        resumed = clock()
        await admission.settle(300)
        return admitted - started + clock() - resumed

    async def budgets(n: int) -> int:
        started = clock()
        reservation = await engine.reserve(budgets_for(n), 5_000_000)
        admitted = clock()
        await upstream()
        resumed = clock()
        await reservation.settle(1_250_000)
        return admitted - started + clock() - resumed

    async def both(n: int) -> int:
        started = clock()
        admission = await limiter.admit(rules, 1_200)
        try:
            reservation = await engine.reserve(budgets_for(n), 5_000_000)
        except BaseException:
            await admission.release()
            raise
        admitted = clock()
        await upstream()
        resumed = clock()
        await reservation.settle(1_250_000)
        await admission.settle(300)
        return admitted - started + clock() - resumed

    calls = CallPolicies(store, limiter, engine)
    sliced_calls = CallPolicies(store, limiter, engine, slices=SlicesConfig())
    near_budgets = [Budget(TEAM, 20 * 5_000_000, "day")]  # near its cap for every call (each settles at 0)
    prompt = {"messages": [{"role": "user", "content": "word " * 2000}]}

    def whole(policies: CallPolicies, budgets: Callable[[int], list[Budget]], spent: int, exact: Exact | None) -> Call:
        async def call(n: int) -> int:
            started = clock()
            hold = await policies.admit(rules, budgets(n), 1_200, 5_000_000, exact)
            admitted = clock()
            await upstream()
            resumed = clock()
            await hold.settle(spent, 300)
            return admitted - started + clock() - resumed

        return call

    call = whole(calls, budgets_for, 1_250_000, None)
    near = whole(calls, lambda n: near_budgets, 0, _exact_counter(prompt))
    sliced = whole(sliced_calls, budgets_for, 1_250_000, None)

    async def give_back() -> None:
        if sliced_calls.slices is not None:
            await sliced_calls.slices.flush()

    return {"limits": limits, "budgets": budgets, "both": both, "call": call, "near": near, "sliced": sliced}, give_back


def _exact_counter(body: dict[str, object]) -> Callable[[], Awaitable[tuple[int, int] | None]]:
    """The exact count the gateway makes near a cap: the chat prompt with o200k_base, as OpenAI counts it."""
    from gateway.apis.chat import ChatApi
    from gateway.metering.tokenizers import Tokenizer
    from gateway.metering.tokens import TokenCounter

    counter = TokenCounter()
    counter.preload(("o200k_base",)).join()
    encode = counter.exact("o200k_base")
    api = ChatApi()

    async def exact() -> tuple[int, int] | None:
        if encode is None:
            return None
        tokens = api.prompt_tokens(body, Tokenizer("o200k_base", encode)) or 0
        return tokens + 100, (tokens + 100) * 1_000

    return exact


async def measure(call: Call, calls: int, concurrency: int) -> dict[str, float]:
    latencies: list[int] = []
    counter = iter(range(calls))

    async def worker() -> None:
        for n in counter:
            latencies.append(await call(n))

    for n in range(min(500, calls)):  # warm up: connections, script loads, key creation
        await call(n)
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "p50_us": latencies[len(latencies) // 2] / 1000,
        "p99_us": latencies[min(len(latencies) - 1, len(latencies) * 99 // 100)] / 1000,
        "calls_per_s": len(latencies) / elapsed,
    }


async def run_store(state: StateConfig, calls: int) -> dict[str, dict[str, dict[str, float]]]:
    store = open_store(state)
    try:
        results: dict[str, dict[str, dict[str, float]]] = {}
        measured, give_back = make_calls(store)
        for name, call in measured.items():
            results[name] = {}
            for concurrency in (1, 32):
                results[name][f"c{concurrency}"] = await measure(call, calls, concurrency)
        await give_back()
        return results
    finally:
        await store.aclose()


def pin(pid: int, cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(pid, {cpu})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=10_000, help="calls per memory measurement")
    parser.add_argument("--redis-calls", type=int, default=4_000, help="calls per Redis measurement")
    parser.add_argument("--no-uvloop", action="store_true", help="use asyncio's default loop (the gateway uses uvloop)")
    args = parser.parse_args()

    run: Callable[..., object] = asyncio.run
    if not args.no_uvloop:
        try:
            import uvloop

            run = uvloop.run
        except ImportError:
            pass
    pin(0, 0)
    report: dict[str, object] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loop": "asyncio" if run is asyncio.run else "uvloop",
    }
    report["memory"] = run(run_store(StateConfig(), args.calls))
    if redis_server_binary() is None:
        print("redis-server not found: skipping the Redis measurements", file=sys.stderr)
    else:
        with RedisServer() as server:
            if server._process is not None:
                pin(server._process.pid, 1)
            report["redis"] = run(run_store(StateConfig.model_validate(server.url), args.redis_calls))

    print(f"policy overhead per call, {report['loop']}, python {report['python']}, {report['cpus']} CPUs")
    print(f"{'state':<8}{'policies':<10}{'c':>4}{'p50 us':>10}{'p99 us':>10}{'calls/s':>11}")
    for state in ("memory", "redis"):
        for name, by_concurrency in report.get(state, {}).items():  # type: ignore[attr-defined]
            for concurrency, numbers in by_concurrency.items():
                print(
                    f"{state:<8}{name:<10}{concurrency[1:]:>4}{numbers['p50_us']:>10.1f}"
                    f"{numbers['p99_us']:>10.1f}{numbers['calls_per_s']:>11.0f}"
                )
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"policies-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results: {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


if __name__ == "__main__":
    main()
