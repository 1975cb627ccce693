"""The held-out injection sets sent through a served gateway with the official SDKs, as a user or a tool would.

    python bench/injection_gateway_eval.py                      # chat, the default and patterns detectors
    python bench/injection_gateway_eval.py --api responses      # the same texts as Responses input items
    python bench/injection_gateway_eval.py --api messages       # ... as Anthropic Messages blocks

Each held-out row (the test sources and TensorTrust of build/injection-data, and the second held-out set
of build/fresh-data; docs/injection-data.md) is one call to a gateway served on loopback with the built-in
mock provider and one `prompt_injection` guardrail that blocks: a `direct` row as the user's message, an
`indirect` row as the result of a tool the agent called (`role: tool`, `function_call_output`,
`tool_result`). A call the gateway answers 400 `guardrail_blocked` counts as caught. Each detector is a
gateway of its own, all serving at once. A gateway without the guardrail gives the added latency: a
sample of the rows is sent one at a time to every gateway in turn, side by side in one run. Every row is
also scored in-process, and the script reports the calls where the gateway's verdict differs.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import proxy_bench as pb  # noqa: E402
from bench.guardrails_eval import injection_guard  # noqa: E402
from bench.train_injection import load  # noqa: E402

KEY = "agentgw-injection-eval-key"
SEED = 20261205
MODEL = "mock-chat"
SPLIT_SOURCES = ["deepset", "hackaprompt", "mt_bench", "human_eval", "bipia_test", "bipia_test_clean", "injecagent",
                 "injecagent_tool_outputs", "agentdojo", "agentdojo_tool_outputs", "files_other_repos",
                 "tensor_trust"]  # fmt: skip
Row = dict[str, Any]
Call = Callable[[str, str], Awaitable[bool]]  # (text, setting) -> blocked
Client = tuple[Call, Callable[[], Awaitable[None]]]  # the call and how to close its SDK client


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
    """The held-out rows: the test sources and TensorTrust of `data`, every `fresh_*` source of `fresh`."""
    corpus = load(data) if data.is_dir() else {}
    corpus.update({s: rows for s, rows in (load(fresh) if fresh.is_dir() else {}).items() if s.startswith("fresh_")})
    for source in SPLIT_SOURCES:
        if source not in corpus:
            print(f"missing {data / source}.jsonl: build it with bench/injection_data.py", file=sys.stderr)
    wanted = [s for s in SPLIT_SOURCES if s in corpus] + sorted(s for s in corpus if s.startswith("fresh_"))
    return [r for s in wanted for r in (corpus[s][:limit] if limit else corpus[s])]


def chat_call(base: str) -> Client:
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
            return _blocked(e.response.headers, e.response.text)
        return False

    return call, client.close


def responses_call(base: str) -> Client:
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
            return _blocked(e.response.headers, e.response.text)
        return False

    return call, client.close


def messages_call(base: str) -> Client:
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
            return _blocked(e.response.headers, e.response.text)
        return False

    return call, client.close


def _blocked(headers: Mapping[str, str], text: str) -> bool:
    """A 400 is a catch only when it is the guardrail's (`x-agentgw-error-code`, in every API's shape);
    any other 400 is a defect the run must show."""
    if headers.get("x-agentgw-error-code") == "guardrail_blocked":
        return True
    raise RuntimeError(f"a 400 that is not a guardrail's: {text[:300]}")


CALLS = {"chat": chat_call, "responses": responses_call, "messages": messages_call}
DETECTORS = ("learned", "patterns", "classifier")


async def verdicts(client: Callable[[str], Client], base: str, rows: list[Row], concurrency: int) -> list[bool]:
    """Every row through one gateway, `concurrency` calls at a time: blocked or not."""
    call, close = client(base)
    gate = asyncio.Semaphore(concurrency)

    async def one(row: Row) -> bool:
        async with gate:
            return await call(row["text"], row["setting"])

    try:
        return list(await asyncio.gather(*(one(r) for r in rows)))
    finally:
        await close()


async def latencies(client: Callable[[str], Client], bases: dict[str, str], rows: list[Row]) -> dict[str, list[float]]:
    """The same rows one at a time through every gateway in turn (interleaved, so drift hits all alike):
    milliseconds per call."""
    clients = {name: client(base) for name, base in bases.items()}
    out: dict[str, list[float]] = {name: [] for name in bases}
    try:
        for row in rows:
            for name, (call, _close) in clients.items():
                start = time.perf_counter()
                await call(row["text"], row["setting"])
                out[name].append((time.perf_counter() - start) * 1e3)
    finally:
        for _call, close in clients.values():
            await close()
    return out


def offline(detector: str, rows: list[Row]) -> list[bool]:
    guard = injection_guard(detector)
    return [guard.score(r["text"], "tool" if r["setting"] == "indirect" else "user").score >= 0.5 for r in rows]


def report(detectors: list[str], rows: list[Row], results: dict[str, list[bool]]) -> None:
    by_source: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_source.setdefault(r["source"], []).append(i)
    print(f"{'source':28s} {'setting':8s} {'n':>5s} {'attacks':>7s}  " + "  ".join(f"{d:>17s}" for d in detectors))
    totals: dict[tuple[str, str, str], list[int]] = {}
    for source, idx in by_source.items():
        setting = rows[idx[0]]["setting"]
        group = "fresh" if source.startswith("fresh_") else "eval-only" if source == "tensor_trust" else "test"
        cells = []
        for d in detectors:
            pos = [results[d][i] for i in idx if rows[i]["label"]]
            neg = [results[d][i] for i in idx if not rows[i]["label"]]
            parts = [f"R {sum(pos) / len(pos):.3f}"] if pos else []
            parts += [f"FPR {sum(neg) / len(neg):.3f}"] if neg else []
            cells.append(" ".join(parts))
            t = totals.setdefault((group, setting, d), [0, 0, 0, 0])
            t[0], t[1], t[2], t[3] = t[0] + sum(pos), t[1] + len(pos), t[2] + sum(neg), t[3] + len(neg)
        print(f"{source:28s} {setting:8s} {len(idx):5d} {sum(rows[i]['label'] for i in idx):7d}  " +
              "  ".join(f"{c:>17s}" for c in cells))  # fmt: skip
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
    parser.add_argument("--concurrency", type=int, default=8, help="calls at a time while counting verdicts")
    parser.add_argument("--latency-sample", type=int, default=500, help="rows timed one at a time per gateway")
    args = parser.parse_args()
    detectors = [d for d in args.detectors.split(",") if d]
    if not detectors or not set(detectors) <= set(DETECTORS) or len(set(detectors)) < len(detectors):
        parser.error(f"--detectors: one or more of {', '.join(DETECTORS)}, each once")
    rows = load_rows(args.data, args.fresh, args.limit)
    if not rows:
        raise SystemExit("no held-out rows: build them with bench/injection_data.py (and --fresh)")
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
            for name, base in bases.items():
                started = time.perf_counter()
                results[name] = asyncio.run(verdicts(CALLS[args.api], base, rows, args.concurrency))
                print(f"{name}: {len(rows)} calls over {args.api} in {time.perf_counter() - started:.1f} s",
                      file=sys.stderr)  # fmt: skip
            sample = random.Random(SEED).sample(rows, max(0, min(args.latency_sample, len(rows))))
            timed = asyncio.run(latencies(CALLS[args.api], bases, sample)) if sample else {}
        finally:
            services.stop_all()
    assert not any(results["none"]), "the gateway without the guardrail blocked a call"
    print(f"== held-out injection sets through the gateway ({args.api}, official SDK): caught = 400 guardrail_blocked")
    report(detectors, rows, results)
    for d in detectors:
        disagree = sum(a != b for a, b in zip(results[d], offline(d, rows), strict=True))
        line = f"{d}: {disagree} of {len(rows)} verdicts differ from the in-process detector"
        if timed:
            added = statistics.median(a - b for a, b in zip(timed[d], timed["none"], strict=True))
            line += (f"; one call at a time ({len(sample)} rows), p50 {statistics.median(timed[d]):.2f} ms against "
                     f"{statistics.median(timed['none']):.2f} ms without the guardrail: {added:+.2f} ms added "
                     "(median of the paired differences)")  # fmt: skip
        print(line)


if __name__ == "__main__":
    main()
