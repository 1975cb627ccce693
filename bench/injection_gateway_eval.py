"""The held-out injection sets sent through a served gateway with the official SDKs, as the issue checks it.

    python bench/injection_gateway_eval.py                      # chat, the default and patterns detectors
    python bench/injection_gateway_eval.py --api responses      # the same texts as Responses input items
    python bench/injection_gateway_eval.py --api messages       # ... as Anthropic Messages blocks

Each held-out row (the test sources and TensorTrust of build/injection-data, and the second held-out set
of build/fresh-data; docs/injection-data.md) is one call to a gateway served on loopback with the built-in
mock provider and one `prompt_injection` guardrail that blocks: a `direct` row as the user's message, an
`indirect` row as the result of a tool the agent called (`role: tool`, `function_call_output`,
`tool_result`). A call the gateway answers 400 `guardrail_blocked` counts as caught. Each detector is a
gateway of its own, all serving at once; a gateway without the guardrail gives the added latency (p50 of
the same calls, side by side in one run). The offline verdicts of `bench/guardrails_eval.py` should match:
the script also scores every row in-process and reports any call where the two disagree.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import proxy_bench as pb  # noqa: E402
from policies.guardrails import parse_guardrails  # noqa: E402
from policies.guardrails.guards import InjectionGuard, build_guard  # noqa: E402

KEY = "agentgw-injection-eval-key"
MODEL = "mock-chat"
SPLIT_SOURCES = ["deepset", "hackaprompt", "mt_bench", "human_eval", "bipia_test", "bipia_test_clean", "injecagent",
                 "injecagent_tool_outputs", "agentdojo", "agentdojo_tool_outputs", "files_other_repos",
                 "tensor_trust"]  # fmt: skip
Row = dict[str, Any]
Call = Callable[[str, str], Awaitable[bool]]  # (text, setting) -> blocked


def config(detector: str | None) -> str:
    guard = {"type": "prompt_injection", "action": "block", "detector": detector}
    guardrails = {"injection": guard} if detector else {}
    return yaml.safe_dump({
        "server": {"host": "127.0.0.1"},
        "providers": {"mock": {"type": "mock"}},
        "models": {MODEL: {"provider": "mock", "input_per_mtok": 0, "output_per_mtok": 0}},
        "guardrails": guardrails,
        "teams": {"eval": {"guardrails": list(guardrails)}},
        "keys": [{"name": "eval", "key": KEY, "team": "eval", "role": "admin", "models": ["*"]}],
        "ledger": False,
    })  # fmt: skip


def load_rows(data: Path, fresh: Path, limit: int) -> list[Row]:
    files = [data / f"{s}.jsonl" for s in SPLIT_SOURCES] + sorted(fresh.glob("fresh_*.jsonl"))
    rows: list[Row] = []
    for path in files:
        if not path.exists():
            print(f"missing {path}: build it with bench/injection_data.py", file=sys.stderr)
            continue
        lines = [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
        rows += lines[:limit] if limit else lines
    return rows


def chat_call(base: str) -> Call:
    import openai

    client = openai.AsyncOpenAI(base_url=base + "/v1", api_key=KEY, max_retries=0, timeout=30)

    async def call(text: str, setting: str) -> bool:
        if setting == "direct":
            messages: list[Any] = [{"role": "user", "content": text}]
        else:
            tool_call = {"id": "call_1", "type": "function", "function": {"name": "read_page", "arguments": "{}"}}
            messages = [{"role": "user", "content": "Summarise the page for me."},
                        {"role": "assistant", "content": None, "tool_calls": [tool_call]},
                        {"role": "tool", "tool_call_id": "call_1", "content": text}]  # fmt: skip
        try:
            await client.chat.completions.create(model=MODEL, messages=messages)
        except openai.BadRequestError as e:
            return _blocked(e.body)
        return False

    return call


def responses_call(base: str) -> Call:
    import openai

    client = openai.AsyncOpenAI(base_url=base + "/v1", api_key=KEY, max_retries=0, timeout=30)

    async def call(text: str, setting: str) -> bool:
        items: list[Any] = [{"type": "message", "role": "user", "content": text}]
        if setting == "indirect":
            items = [{"type": "message", "role": "user", "content": "Summarise the page for me."},
                     {"type": "function_call", "call_id": "call_1", "name": "read_page", "arguments": "{}"},
                     {"type": "function_call_output", "call_id": "call_1", "output": text}]  # fmt: skip
        try:
            await client.responses.create(model=MODEL, input=items)
        except openai.BadRequestError as e:
            return _blocked(e.body)
        return False

    return call


def messages_call(base: str) -> Call:
    import anthropic

    client = anthropic.AsyncAnthropic(base_url=base, api_key=KEY, max_retries=0, timeout=30)

    async def call(text: str, setting: str) -> bool:
        messages: list[Any] = [{"role": "user", "content": text}]
        if setting == "indirect":
            use = {"type": "tool_use", "id": "toolu_1", "name": "read_page", "input": {}}
            messages = [{"role": "user", "content": "Summarise the page for me."},
                        {"role": "assistant", "content": [use]},
                        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                                      "content": text}]}]  # fmt: skip
        try:
            await client.messages.create(model=MODEL, max_tokens=64, messages=messages)
        except anthropic.BadRequestError as e:
            return _blocked(e.body)
        return False

    return call


def _blocked(body: object) -> bool:
    """A 400 is a catch only when it is the guardrail's; any other 400 is a defect the run must show."""
    error = body.get("error", body) if isinstance(body, dict) else {}
    if isinstance(error, dict) and error.get("code") == "guardrail_blocked":
        return True
    raise RuntimeError(f"a 400 that is not a guardrail's: {body}")


CALLS = {"chat": chat_call, "responses": responses_call, "messages": messages_call}


async def run(call: Call, rows: list[Row], concurrency: int) -> tuple[list[bool], list[float]]:
    gate = asyncio.Semaphore(concurrency)
    blocked = [False] * len(rows)
    latency = [0.0] * len(rows)

    async def one(i: int, row: Row) -> None:
        async with gate:
            start = time.perf_counter()
            blocked[i] = await call(row["text"], row["setting"])
            latency[i] = (time.perf_counter() - start) * 1e3

    await asyncio.gather(*(one(i, r) for i, r in enumerate(rows)))
    return blocked, latency


def offline(detector: str, rows: list[Row]) -> list[bool]:
    parsed = parse_guardrails({"inj": {"type": "prompt_injection", "detector": detector}})["inj"]
    guard = build_guard("inj", parsed, None)
    assert isinstance(guard, InjectionGuard)
    return [guard.score(r["text"], "tool" if r["setting"] == "indirect" else "user").score >= 0.5 for r in rows]


def report(detectors: list[str], rows: list[Row], results: dict[str, list[bool]]) -> None:
    by_source: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_source.setdefault(r["source"], []).append(i)
    print(f"{'source':28s} {'setting':8s} {'n':>5s} {'attacks':>7s}  " + "  ".join(f"{d:>12s}" for d in detectors))
    totals: dict[tuple[str, str, str], list[int]] = {}
    for source, idx in by_source.items():
        setting = rows[idx[0]]["setting"]
        group = "fresh" if source.startswith("fresh_") else "eval-only" if source == "tensor_trust" else "test"
        cells = []
        for d in detectors:
            pos = [results[d][i] for i in idx if rows[i]["label"]]
            neg = [results[d][i] for i in idx if not rows[i]["label"]]
            cells.append(f"R {sum(pos) / len(pos):.3f}" if pos else f"FPR {sum(neg) / len(neg):.3f}")
            t = totals.setdefault((group, setting, d), [0, 0, 0, 0])
            t[0], t[1], t[2], t[3] = t[0] + sum(pos), t[1] + len(pos), t[2] + sum(neg), t[3] + len(neg)
        print(f"{source:28s} {setting:8s} {len(idx):5d} {sum(rows[i]['label'] for i in idx):7d}  " +
              "  ".join(f"{c:>12s}" for c in cells))  # fmt: skip
    print("totals (recall of the attacks, false-positive rate of the benign texts):")
    for (group, setting, d), (tp, pos, fp, neg) in sorted(totals.items()):
        print(f"  {group:9s} {setting:8s} {d:9s} recall {tp / max(pos, 1):.3f} (of {pos:5d})  "
              f"FPR {fp / max(neg, 1):.4f} (of {neg:5d})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT / "build" / "injection-data")
    parser.add_argument("--fresh", type=Path, default=ROOT / "build" / "fresh-data")
    parser.add_argument("--api", choices=sorted(CALLS), default="chat")
    parser.add_argument("--detectors", default="learned,patterns", help="comma-separated, one gateway each")
    parser.add_argument("--limit", type=int, default=0, help="rows per source (0: all)")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    rows = load_rows(args.data, args.fresh, args.limit)
    if not rows:
        raise SystemExit("no held-out rows: build them with bench/injection_data.py (and --fresh)")
    detectors = [d for d in args.detectors.split(",") if d]
    with tempfile.TemporaryDirectory() as workdir:
        services = pb.Services(Path(workdir), pin=False)
        try:
            bases: dict[str, str] = {}
            for name in [*detectors, "none"]:
                path = Path(workdir) / f"{name}.yaml"
                path.write_text(config(None if name == "none" else name))
                port = pb.free_port()
                argv = [*pb.agentgw_command(), "serve", "-c", str(path), "--port", str(port), "--log-level", "warning"]
                service = services.start(f"agentgw:{name}", argv, "")
                bases[name] = f"http://127.0.0.1:{port}"
                pb.wait_ready(service, bases[name] + "/healthz", pb.STARTUP_TIMEOUT)
            results: dict[str, list[bool]] = {}
            latencies: dict[str, list[float]] = {}
            for name, base in bases.items():
                started = time.perf_counter()
                results[name], latencies[name] = asyncio.run(run(CALLS[args.api](base), rows, args.concurrency))
                print(f"{name}: {len(rows)} calls over {args.api} in {time.perf_counter() - started:.1f} s",
                      file=sys.stderr)  # fmt: skip
        finally:
            services.stop_all()
    assert not any(results["none"]), "the gateway without the guardrail blocked a call"
    print(f"== held-out injection sets through the gateway ({args.api}, official SDK): caught = 400 guardrail_blocked")
    report(detectors, rows, results)
    base_p50 = statistics.median(latencies["none"])
    for d in detectors:
        added = statistics.median(latencies[d]) - base_p50
        disagree = sum(a != b for a, b in zip(results[d], offline(d, rows), strict=True))
        print(f"{d}: p50 per call {statistics.median(latencies[d]):.2f} ms (+{added:.2f} ms over no guardrail, "
              f"{base_p50:.2f} ms, at concurrency {args.concurrency}); "
              f"{disagree} of {len(rows)} verdicts differ from the in-process detector")  # fmt: skip


if __name__ == "__main__":
    main()
