"""Cost per MCP tool call: through agentgw's /mcp against the same upstream MCP server called
directly, side by side in one run.

The upstream is bench/mcp_upstream.py (the official SDK's `MCPServer`, one `echo` tool, streamable
HTTP). The gateway is `agentgw serve` from this checkout with its defaults (SQLite ledger, metrics)
and an `mcp:` section naming that server (`up`, everything allowed). The client is the official
SDK's `Client`, in this process, in each protocol era:

  auto     the 2026-07-28 revision: each call a whole POST, no session
  legacy   the initialize handshake of 2025-11-25: one session, `Mcp-Session-Id`

For each era, each target (`direct`: the upstream's `echo`; `agentgw`: `up__echo` through /mcp) is
measured in turn, and the pair is repeated --rounds times (medians reported), so both see the same
machine at the same minutes:

  c=1       --calls sequential calls on one client session after a warm-up: p50 and p99 latency
  c=N       --clients sessions calling in a loop for --duration seconds: calls/s, and CPU seconds
            per call of the gateway's and the upstream's processes (from /proc, their whole process
            groups), i.e. what a tool call costs each of them

Every call's answer is checked (the text comes back); the gateway's ledger must hold exactly the
calls made through it (`/v1/usage?operation=tool_call`). Pinning (on by default; --no-pin turns it
off): the gateway on CPU 0; the upstream and this client on CPU 1. On two cores the client (the
SDK, in Python) is usually what limits c=N, so calls/s compares the two targets under the same
client; the CPU per call is the cost to read. Results also go to bench/results/mcp-<ts>.json.
Measurements to read, never assertions.

Run:
    python bench/mcp_bench.py                 # 3 rounds, 300 calls at c=1, 8 clients for 5 s
    python bench/mcp_bench.py --quick         # a short run, to check the script works
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

sys.path.insert(0, str(Path(__file__).resolve().parent))
import proxy_bench as pb  # the sibling script, imported as a module

ERAS = ("auto", "legacy")
TARGETS = ("direct", "agentgw")
SERVER = "up"
TEXT = "a tool call through the gateway"
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Row:
    era: str
    target: str
    round: int
    p50_ms: float
    p99_ms: float
    calls_per_s: float
    gateway_cpu_ms_per_call: float | None
    upstream_cpu_ms_per_call: float


def gateway_config(upstream: str) -> str:
    return f"""\
server: {{host: 127.0.0.1, port: 0}}
providers:
  mock: {{type: mock}}
models:
  bench-model: {{provider: mock}}
teams: {{bench: {{}}}}
keys:
  - {{name: bench, key: "{pb.GATEWAY_KEY}", team: bench, role: admin}}
mcp:
  servers:
    {SERVER}: {{transport: streamable_http, url: "{upstream}/mcp"}}
  access:
    - {{allow: ["*"]}}
"""


def group_cpu_seconds(pgid: int) -> float:
    """User and system CPU of every process in the group, in seconds."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:  # fields[2]: pgrp; [11], [12]: utime, stime
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


class Target:
    def __init__(self, name: str, url: str, tool: str, headers: dict[str, str]) -> None:
        self.name, self.url, self.tool, self.headers = name, url, tool, headers
        self.calls = 0  # answered, for the ledger check

    def session(self, mode: str, http: httpx2.AsyncClient) -> Client:
        return Client(streamable_http_client(self.url, http_client=http), mode=mode)

    async def call(self, client: Client) -> None:
        result = await client.call_tool(self.tool, {"text": TEXT})
        if result.is_error or result.content[0].text != TEXT:  # type: ignore[union-attr]
            raise pb.BenchError(f"{self.name}: a wrong answer: {result}")
        self.calls += 1


async def sequential(target: Target, mode: str, calls: int, warmup: int) -> list[float]:
    async with httpx2.AsyncClient(headers=target.headers, timeout=30) as http, target.session(mode, http) as client:
        for _ in range(warmup):
            await target.call(client)
        latencies = []
        for _ in range(calls):
            started = time.perf_counter()
            await target.call(client)
            latencies.append((time.perf_counter() - started) * 1000)
        return latencies


async def concurrent(target: Target, mode: str, clients: int, seconds: float) -> tuple[int, float]:
    """Calls made by `clients` sessions in `seconds` (their sessions opened before the clock starts)."""
    async with httpx2.AsyncClient(
        headers=target.headers, timeout=30, limits=httpx2.Limits(max_connections=clients * 2)
    ) as http:
        sessions = [target.session(mode, http) for _ in range(clients)]
        opened = [await s.__aenter__() for s in sessions]
        try:
            for client in opened:
                await target.call(client)
            deadline = 0.0
            counts = [0] * clients

            async def loop(i: int, client: Client) -> None:
                while time.perf_counter() < deadline:
                    await target.call(client)
                    counts[i] += 1

            started = time.perf_counter()
            deadline = started + seconds
            await asyncio.gather(*(loop(i, c) for i, c in enumerate(opened)))
            return sum(counts), time.perf_counter() - started
        finally:
            for session in reversed(sessions):
                await session.__aexit__(None, None, None)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(
    target: Target, mode: str, args: argparse.Namespace, gateway: pb.Service, upstream: pb.Service, rnd: int
) -> Row:
    latencies = asyncio.run(sequential(target, mode, args.calls, args.warmup))
    cpu_gw, cpu_up = group_cpu_seconds(gateway.process.pid), group_cpu_seconds(upstream.process.pid)
    calls, elapsed = asyncio.run(concurrent(target, mode, args.clients, args.duration))
    gw_ms = (group_cpu_seconds(gateway.process.pid) - cpu_gw) * 1000 / calls
    up_ms = (group_cpu_seconds(upstream.process.pid) - cpu_up) * 1000 / calls
    return Row(
        era=mode,
        target=target.name,
        round=rnd,
        p50_ms=statistics.median(latencies),
        p99_ms=percentile(latencies, 0.99),
        calls_per_s=calls / elapsed,
        gateway_cpu_ms_per_call=gw_ms if target.name == "agentgw" else None,
        upstream_cpu_ms_per_call=up_ms,
    )


def ledger_tool_calls(base: str) -> int:
    status, body = pb.request_once("GET", base + "/v1/usage?operation=tool_call", key=pb.GATEWAY_KEY)
    if status != 200:
        raise pb.BenchError(f"/v1/usage answered {status}: {body[:200]!r}")
    return int(json.loads(body)["totals"]["requests"])


def run(args: argparse.Namespace, services: pb.Services) -> tuple[list[Row], dict[str, int]]:
    port = pb.free_port()
    upstream = services.start(
        "upstream", [sys.executable, str(pb.BENCH_DIR / "mcp_upstream.py"), "--port", str(port)], pb.LOAD_CPU
    )
    upstream_base = f"http://127.0.0.1:{port}"
    pb.wait_ready(upstream, upstream_base + "/healthz", pb.STARTUP_TIMEOUT)

    config = services.workdir / "agentgw.yaml"
    config.write_text(gateway_config(upstream_base))
    port = pb.free_port()
    argv = [*pb.agentgw_command(), "serve", "-c", str(config), "--port", str(port), "--log-level", "warning"]
    gateway = services.start("agentgw", argv, pb.SUT_CPU)
    base = f"http://127.0.0.1:{port}"
    pb.wait_ready(gateway, base + "/healthz", pb.STARTUP_TIMEOUT)

    targets = {
        "direct": Target("direct", upstream_base + "/mcp", "echo", {}),
        "agentgw": Target("agentgw", base + "/mcp", f"{SERVER}__echo", {"authorization": f"Bearer {pb.GATEWAY_KEY}"}),
    }
    rows: list[Row] = []
    before = ledger_tool_calls(base)
    for rnd in range(1, args.rounds + 1):
        for mode in ERAS:
            for name in TARGETS:
                row = measure(targets[name], mode, args, gateway, upstream, rnd)
                rows.append(row)
                print(
                    f"  round {rnd} {mode:<6} {name:<7} p50 {row.p50_ms:6.2f} ms  p99 {row.p99_ms:6.2f} ms  "
                    f"c={args.clients} {row.calls_per_s:7.1f} calls/s",
                    flush=True,
                )
    made = targets["agentgw"].calls
    deadline = time.monotonic() + 10  # the ledger writes in batches
    while (recorded := ledger_tool_calls(base) - before) < made and time.monotonic() < deadline:
        time.sleep(0.2)
    return rows, {"calls_through_gateway": made, "ledger_events": recorded}


def summarize(rows: list[Row]) -> list[dict[str, Any]]:
    out = []
    for mode in ERAS:
        medians: dict[str, dict[str, float | None]] = {}
        for name in TARGETS:
            mine = [r for r in rows if r.era == mode and r.target == name]
            medians[name] = {
                "p50_ms": statistics.median(r.p50_ms for r in mine),
                "p99_ms": statistics.median(r.p99_ms for r in mine),
                "calls_per_s": statistics.median(r.calls_per_s for r in mine),
                "upstream_cpu_ms_per_call": statistics.median(r.upstream_cpu_ms_per_call for r in mine),
                "gateway_cpu_ms_per_call": (
                    statistics.median(r.gateway_cpu_ms_per_call for r in mine if r.gateway_cpu_ms_per_call is not None)
                    if name == "agentgw"
                    else None
                ),
            }
        direct, gateway = medians["direct"], medians["agentgw"]
        out.append(
            {
                "era": mode,
                "direct": direct,
                "agentgw": gateway,
                "added_p50_ms": float(gateway["p50_ms"] or 0) - float(direct["p50_ms"] or 0),
                "throughput_vs_direct": float(gateway["calls_per_s"] or 0) / float(direct["calls_per_s"] or 1),
            }
        )
    return out


def print_report(summary: list[dict[str, Any]], clients: int) -> None:
    print(
        f"\n{'era':<7}{'target':<9}{'p50 ms':>8}{'p99 ms':>8}{f'c={clients} calls/s':>16}"
        f"{'gw CPU ms/call':>16}{'up CPU ms/call':>16}"
    )
    for item in summary:
        for name in TARGETS:
            m = item[name]
            gw = m["gateway_cpu_ms_per_call"]
            print(
                f"{item['era']:<7}{name:<9}{m['p50_ms']:>8.2f}{m['p99_ms']:>8.2f}{m['calls_per_s']:>16.1f}"
                f"{'-' if gw is None else f'{gw:.2f}':>16}{m['upstream_cpu_ms_per_call']:>16.2f}"
            )
        print(
            f"  {item['era']}: the gateway adds {item['added_p50_ms']:.2f} ms at p50; c={clients} throughput "
            f"{item['throughput_vs_direct']:.2f} of direct"
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=300, help="sequential calls at c=1")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of the c=N loop")
    parser.add_argument("--quick", action="store_true", help="1 round, 40 calls, 1 s loops")
    parser.add_argument("--no-pin", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.calls, args.warmup, args.duration = 1, 40, 5, 1.0
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.no_pin:
        os.sched_setaffinity(0, {int(pb.LOAD_CPU)})  # this client beside the upstream, off the gateway's core
    with tempfile.TemporaryDirectory(prefix="agentgw-mcp-bench-") as tmp:
        services = pb.Services(Path(tmp), pin=not args.no_pin)
        try:
            rows, ledger = run(args, services)
        except pb.BenchError as exc:
            print(f"\nFAILED: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("\ninterrupted", file=sys.stderr)
            return 130
        finally:
            services.stop_all()
    summary = summarize(rows)
    print_report(summary, args.clients)
    print(
        f"\ntool calls through the gateway: {ledger['calls_through_gateway']}, in its ledger: {ledger['ledger_events']}"
    )
    pb.RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = pb.RESULTS_DIR / f"mcp-{stamp}.json"
    meta = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "args": vars(args),
        "pinning": None if args.no_pin else {"gateway": pb.SUT_CPU, "upstream_and_client": pb.LOAD_CPU},
        "python": platform.python_version(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "ledger": ledger,
    }
    path.write_text(json.dumps({"meta": meta, "rows": [asdict(r) for r in rows], "summary": summary}, indent=2))
    print(f"results written to {path.relative_to(pb.BENCH_DIR.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
