"""What a call's workflow version costs on the request path (`gateway.agentops.versions.Versions.assign`).

Realistic bodies: a chat call with a system prompt (2 KB or 20 KB) and five tools with JSON schemas;
the same in the Responses and Messages shapes. Each case is timed call by call with perf_counter_ns
after a warm-up, and printed as p50, p99 and mean microseconds per call:

    hit    the same prompt every call: the parts are read, the tools serialised as sent and those
           exact bytes hashed; the cache answers
    miss   the prompt's first line carries today's date and a ticket number that change every call:
           every call also normalises the prompt (the line that changed through the built-in variable
           patterns, the others from the line cache) and hashes the canonical parts
    one-line miss  the same, with the whole prompt on one line: the patterns run over all of it
    header the agent sends X-Agent-Version: no fingerprint at all once the registry knows it
    bare   no system prompt, no tools (the body bench/proxy_bench.py and overhead_bench.py send)

Measurements to read, never assertions.

Run:
    python bench/agentops_bench.py
    python bench/agentops_bench.py --calls 50000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.agentops.alerts import Alerts
from gateway.agentops.config import AlertsConfig, VersionsConfig
from gateway.agentops.registry import VersionRegistry
from gateway.agentops.versions import Versions
from gateway.auth import Principal, Role
from gateway.config import Config
from gateway.context import CallContext
from gateway.guards import Guards

PARAGRAPH = (
    "You are the travel desk's planning agent. Read the traveller's request, check the policy below, "
    "search for options with the tools, and answer with at most three options, each with its price. "
)


def tools() -> list[dict[str, Any]]:
    out = []
    for name in ("search_flights", "search_hotels", "book", "cancel", "lookup_policy"):
        schema = {
            "type": "object",
            "properties": {
                "origin": {"type": "string", "description": "IATA code"},
                "destination": {"type": "string"},
                "date": {"type": "string", "format": "date"},
                "passengers": {"type": "integer", "minimum": 1},
                "class": {"type": "string", "enum": ["economy", "premium", "business"]},
            },
            "required": ["destination", "date"],
        }
        out.append({"type": "function", "function": {"name": name, "description": f"{name} for the traveller",
                                                      "parameters": schema}})  # fmt: skip
    return out


def chat(prompt: str) -> dict[str, Any]:
    return {
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": prompt}, {"role": "user", "content": "Paris next Tuesday"}],
        "tools": tools(),
    }


def responses(prompt: str) -> dict[str, Any]:
    flat = [{"type": "function", **t["function"]} for t in tools()]
    return {"model": "gpt-4o-mini", "instructions": prompt, "input": "Paris next Tuesday", "tools": flat}


def messages(prompt: str) -> dict[str, Any]:
    flat = [{"name": t["function"]["name"], "description": t["function"]["description"],
             "input_schema": t["function"]["parameters"]} for t in tools()]  # fmt: skip
    return {"model": "gpt-4o-mini", "system": prompt, "messages": [{"role": "user", "content": "Paris"}],
            "tools": flat, "max_tokens": 256}  # fmt: skip


def prompt(size: int, call: int | None, *, lines: bool = True) -> str:
    """A system prompt of about `size` characters, in lines of about 200 (or one line), the first line
    naming the date and a ticket number when `call` is given (they change every call)."""
    line = PARAGRAPH + "Policy: economy under six hours, premium above."
    text = ("\n" if lines else " ").join([line] * (size // (len(line) + 1)))
    if call is None:
        return text
    day = 1 + call % 28
    return f"Today is 2026-12-{day:02d}. Ticket {10_000_000 + call}." + ("\n" if lines else " ") + text


def measure(label: str, calls: int, bodies: list[tuple[str, dict[str, Any], CallContext]], run: Any) -> None:
    for api, body, ctx in bodies[:200]:
        run(ctx, api, body)
    samples = []
    for api, body, ctx in bodies:
        start = time.perf_counter_ns()
        run(ctx, api, body)
        samples.append((time.perf_counter_ns() - start) / 1000)
    samples.sort()
    p50, p99, mean = statistics.median(samples), samples[int(len(samples) * 0.99) - 1], statistics.fmean(samples)
    print(f"{label:<44} p50 {p50:7.1f} us   p99 {p99:7.1f} us   mean {mean:7.1f} us")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()

    async def run() -> None:
        config = Config.model_validate({
            "providers": {"mock": {"type": "mock"}}, "models": {"gpt-4o-mini": {"provider": "mock"}},
            "guardrails": {"pii": {"type": "pii", "action": "redact"}},
            "teams": {"travel": {"guardrails": ["pii"]}},
            "keys": [{"name": "planner", "key_sha256": "0" * 64, "team": "travel"}],
        })  # fmt: skip
        registry = VersionRegistry(VersionsConfig(), None, Alerts(AlertsConfig(), None), None)  # type: ignore[arg-type]
        versions = Versions(VersionsConfig(), Guards(config, None), registry)  # type: ignore[arg-type]
        principal = Principal("planner", "travel", None, Role.AGENT, frozenset({"*"}))
        plain = CallContext("req", principal, "planner")
        named = CallContext("req", principal, "planner", version="release-42")

        def assign(ctx: CallContext, api: str, body: dict[str, Any]) -> None:
            versions.assign(ctx, api, body, "gpt-4o-mini")

        print(f"{args.calls} calls per case; Python {sys.version.split()[0]}")
        n = args.calls
        bare = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello in one short sentence."}]}
        measure("chat, no system prompt, no tools", n, [("chat", bare, plain)] * n, assign)
        for size in (2_000, 20_000):
            for api, shape in (("chat", chat), ("responses", responses), ("messages", messages)):
                steady = shape(prompt(size, None))
                measure(f"{api}, {size // 1000} KB prompt + 5 tools, hit", n, [(api, steady, plain)] * n, assign)
            changing = [("chat", chat(prompt(size, i)), plain) for i in range(n)]
            measure(f"chat, {size // 1000} KB prompt + 5 tools, miss", n, changing, assign)
            one_line = [("chat", chat(prompt(size, i, lines=False)), plain) for i in range(n // 10)]
            measure(f"chat, {size // 1000} KB one-line prompt + 5 tools, miss", n // 10, one_line, assign)
        measure("chat, X-Agent-Version header", n, [("chat", chat(prompt(2000, None)), named)] * n, assign)
        print(f"registry: {len(registry._known)} versions known; cache hits {versions.fingerprinter.hits}, "
              f"misses {versions.fingerprinter.misses}")  # fmt: skip

    asyncio.run(run())


if __name__ == "__main__":
    main()
