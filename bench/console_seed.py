"""A ledger of generated calls for the console: N events over the last 30 days, written through the
gateway's own `Ledger` (the same rows real calls leave).

A fleet of 3 teams and 40 agents working on 1,000 tasks in 5,000 sessions, on 6 models through the
four APIs, with about 3% errors, 5% guardrail verdicts, retries and fallbacks, and the messages
captured for one session in fifty. Deterministic for a given --seed and --now.

Run: python bench/console_seed.py agentgw.db [--events 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.metering.events import UsageEvent
from gateway.metering.ledger import Ledger
from gateway.metering.usage import Usage

TEAMS = {"research": "crawler", "support": "support", "billing": "billing"}
MODELS = {  # name: (provider, input $/Mtok, output $/Mtok, typical latency ms)
    "gpt-4o-mini": ("openai", 0.15, 0.60, 700),
    "gpt-4o": ("openai", 2.50, 10.0, 1400),
    "claude-sonnet": ("anthropic", 3.0, 15.0, 1800),
    "claude-haiku": ("anthropic", 1.0, 5.0, 650),
    "llama-70b": ("vllm", 0.0, 0.0, 900),
    "embed-small": ("openai", 0.02, 0.0, 80),
}
OPERATIONS = ("chat", "chat", "chat", "responses", "messages", "embeddings")
GUARDRAILS = (("pii", "redact", ["email"]), ("secrets", "block", ["openai"]), ("injection", "block", ["prompt"]))
DAY = 86400


def events(count: int, now: float, rng: random.Random) -> list[UsageEvent]:
    agents = [(team, f"{prefix}-{i}") for i, (team, prefix) in enumerate(list(TEAMS.items()) * 14)][:40]
    starts = [now - rng.random() ** 1.3 * 30 * DAY for _ in range(5000)]  # when each session began
    out = []
    for i in range(count):
        team, agent = agents[int(rng.paretovariate(1.2)) % len(agents)]
        session_n = rng.randrange(5000)
        task = f"T-{session_n % 1000:04d}"
        operation = rng.choice(OPERATIONS)
        model = "embed-small" if operation == "embeddings" else rng.choice(list(MODELS)[:5])
        provider, price_in, price_out, typical = MODELS[model]
        failed = rng.random() < 0.03
        tokens_in = int(rng.lognormvariate(7, 0.8))
        tokens_out = 0 if operation == "embeddings" or failed else int(rng.lognormvariate(5.5, 0.7))
        cost = round(tokens_in * price_in * 1000 + tokens_out * price_out * 1000)  # nano-dollars
        latency = rng.lognormvariate(0, 0.45) * typical
        verdicts = []
        if rng.random() < 0.05:
            name, action, entities = rng.choice(GUARDRAILS)
            verdicts.append({"guardrail": name, "phase": "input", "action": action, "entities": entities,
                             "count": rng.randint(1, 3)})  # fmt: skip
        blocked = any(v["action"] == "block" for v in verdicts)
        attempts = 2 if rng.random() < 0.02 else 1
        captured = session_n % 50 == 0
        out.append(UsageEvent(
            ts=min(now - 1, starts[session_n] + rng.random() * 1200), request_id=f"req_{i:032x}",
            key_name=f"{agent}-key", team=team,
            agent=agent, task=task, session=f"s-{session_n:05d}", operation=operation, requested_model=model,
            model=model, provider=provider, stream=operation != "embeddings" and rng.random() < 0.6,
            status=400 if blocked else 502 if failed else 200,
            outcome="error" if failed or blocked else "ok", error_type="upstream_error" if failed else
            "guardrail_blocked" if blocked else None,
            usage=Usage(tokens_in, tokens_out, cached_tokens=tokens_in // 4 if rng.random() < 0.3 else 0),
            cost_nanos=cost, latency_ms=latency, ttft_ms=None if operation == "embeddings" else latency * 0.3,
            attempts=attempts,
            attempt_log=[{"provider": provider, "model": model, "error": "upstream_error", "status": 503}]
            if attempts > 1 else [],
            guardrails=verdicts,
            input_messages=_text("user", f"Step {i} of {task}") if captured else None,
            output_messages=_text("assistant", "Done.") if captured and not failed else None,
        ))  # fmt: skip
    return out


def _text(role: str, text: str) -> str:
    return orjson.dumps([{"role": role, "parts": [{"type": "text", "content": text}]}]).decode()


async def write(path: Path, generated: list[UsageEvent]) -> None:
    ledger = Ledger(path, batch_size=5000, flush_interval=0.05)
    await ledger.start()
    for n, event in enumerate(generated, 1):
        ledger.record(event)
        if n % 5000 == 0:
            await ledger.flush()
    await ledger.close()


def seed(path: Path, count: int, now: float | None = None, seed_value: int = 18) -> None:
    generated = events(count, time.time() if now is None else now, random.Random(seed_value))
    asyncio.run(write(path, generated))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("path", type=Path)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--now", type=float, default=None, help="unix seconds the generated month ends at")
    args = parser.parse_args()
    started = time.perf_counter()
    seed(args.path, args.events, args.now, args.seed)
    print(f"{args.events:,} events in {args.path} ({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
