"""What each gateway feature costs, in one run: agentgw in several configurations against the same
static upstream, plus the bare pass-through proxy and the upstream itself.

For every target: wrk at concurrency 1 (p50, p99) and 32 (req/s), and a streaming run of sequential
requests measuring time to first chunk and to the end of the stream (an aiohttp client). It prints
each variant's cost over `minimal` (keys, validation, forwarding; no ledger, no metrics) and its
throughput as a fraction of the bare proxy. Measurements to read, never assertions.

Variants are YAML fragments merged into the gateway's config (see VARIANTS); later features add
theirs here. Processes are pinned as in proxy_bench.py: the target on CPU 0, wrk and the upstream
on CPU 1.

Run:
    python bench/overhead_bench.py                           # every variant, 5 s per measurement
    python bench/overhead_bench.py --variants minimal,ledger --duration 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import proxy_bench as pb  # the sibling script, imported as a module


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


_BARE = {"ledger": False, "telemetry": {"metrics": {"enabled": False}}}
_TRACING = {"telemetry": {"tracing": {"enabled": True, "endpoint": "{upstream}/v1/traces"}}}
_HUGE = 10**8  # limits and budgets that apply (and are counted) but never refuse
_POLICIES = {
    "teams": {
        "bench": {
            "limits": {"rpm": _HUGE, "tpm": _HUGE},
            "agent_limits": {"rpm": _HUGE},
            "budget": {"usd": _HUGE, "period": "month"},
            "task_budget": {"usd": _HUGE, "period": "total"},
        }
    },
    "keys": [
        {
            "name": "bench",
            "key": pb.GATEWAY_KEY,
            "team": "bench",
            "role": "admin",
            "limits": {"rpm": _HUGE, "concurrent": 10_000},
            "budget": {"usd": _HUGE, "period": "day"},
        }
    ],
}
_GUARDRAILS = {
    "guardrails": {
        "pii": {"type": "pii", "action": "redact"},
        "secrets": {"type": "secrets", "action": "block"},
        "injection": {"type": "prompt_injection", "action": "block", "threshold": 0.5},
    },
    "teams": {"bench": {"guardrails": ["pii", "secrets", "injection"]}},
}
_ALL = merge(merge(_TRACING, _POLICIES), _GUARDRAILS)
VARIANTS: dict[str, dict[str, Any]] = {
    "minimal": _BARE,
    "ledger": {"telemetry": {"metrics": {"enabled": False}}},
    "ledger+metrics": {},  # the defaults: workflow versions on, anomaly watcher on
    "versions-off": {"agentops": {"versions": {"enabled": False}, "anomalies": {"enabled": False}}},
    "tracing": _TRACING,
    "tracing+capture": merge(_TRACING, {"telemetry": {"capture_content": {"enabled": True}}}),
    "limits+budgets": merge(_BARE, _POLICIES),
    "limits+budgets:redis": merge(merge(_BARE, _POLICIES), {"state": "{redis}"}),
    "guardrails": merge(_BARE, _GUARDRAILS),
    "all": _ALL,
    "all:redis": merge(_ALL, {"state": "{redis}"}),  # strict local slices on (the default)
    "all:redis-per-call": merge(_ALL, {"state": {"url": "{redis}", "slices": {"enabled": False}}}),
}
STREAM_BODY = {**pb.REQUEST_BODY, "stream": True}


@dataclass
class StreamResult:
    ttfc_p50_ms: float
    ttfc_p99_ms: float
    total_p50_ms: float
    requests: int


def variant_config(name: str, upstream: str, workdir: Path, redis: str) -> str:
    base = yaml.safe_load(pb.gateway_config(upstream, "httptools"))  # the default upstream client
    base["ledger"] = {"path": str(workdir / f"{name.replace(':', '-')}.db")}
    text = json.dumps(VARIANTS[name]).replace("{upstream}", upstream).replace("{redis}", redis)
    return yaml.safe_dump(merge(base, json.loads(text)))


def start_variant(services: pb.Services, upstream: str, name: str, redis: str) -> tuple[pb.Service, str]:
    config = services.workdir / f"agentgw-{name.replace(':', '-')}.yaml"
    config.write_text(variant_config(name, upstream, services.workdir, redis))
    port = pb.free_port()
    argv = [*pb.agentgw_command(), "serve", "-c", str(config), "--port", str(port), "--log-level", "warning"]
    service = services.start(f"agentgw:{name}", argv, pb.SUT_CPU)
    base = f"http://127.0.0.1:{port}"
    pb.wait_ready(service, base + "/healthz", pb.STARTUP_TIMEOUT)
    pb.verify_chat(service.name, base, pb.GATEWAY_KEY)
    return service, base


async def _stream_run(url: str, headers: dict[str, str], body: bytes, requests: int, end: bytes | None) -> StreamResult:
    firsts, totals = [], []
    async with aiohttp.ClientSession() as session:
        for i in range(requests + 20):
            started = time.perf_counter()
            first = last = None
            async with session.post(url, data=body, headers=headers) as response:
                if response.status != 200:
                    raise pb.BenchError(f"stream request failed: {response.status} {await response.text()}")
                async for line in response.content:
                    if line.startswith(b"data: "):
                        first = first or time.perf_counter()
                        last = line
            done = time.perf_counter()
            if end is not None and (last is None or end not in last):
                raise pb.BenchError(f"a stream from {url} did not end with {end!r}: its last event was {last!r}")
            if i >= 20 and first is not None:  # the first 20 warm up
                firsts.append((first - started) * 1000)
                totals.append((done - started) * 1000)
    firsts.sort()
    return StreamResult(
        statistics.median(firsts), firsts[int(len(firsts) * 0.99) - 1], statistics.median(totals), len(firsts)
    )


def stream_run(
    url: str,
    key: str,
    requests: int,
    pin: bool,
    *,
    path: str = pb.CHAT_PATH,
    body: dict[str, Any] = STREAM_BODY,
    headers: dict[str, str] | None = None,
    end: bytes | None = None,
) -> StreamResult:
    """The streamed calls, made from this process: pinned, like wrk, to the load generator's core,
    or the client would share the core of the process it measures (and be measured with it).

    `headers` replace the bearer `key` (a Messages client sends x-api-key); `end`, when given, is
    what the last `data:` line of every stream must hold (a stream cut short stops the run)."""
    sent = {"content-type": "application/json", **(headers or {"authorization": f"Bearer {key}"})}
    previous = os.sched_getaffinity(0) if pin and hasattr(os, "sched_setaffinity") else None
    if previous is not None:
        os.sched_setaffinity(0, {int(pb.LOAD_CPU)})
    try:
        return asyncio.run(_stream_run(url + path, sent, json.dumps(body).encode(), requests, end))
    finally:
        if previous is not None:
            os.sched_setaffinity(0, previous)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk measurement (default 5)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, from: " + ", ".join(VARIANTS))
    parser.add_argument("--stream-requests", type=int, default=300, help="sequential streamed requests per target")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        print(f"unknown variants: {', '.join(unknown)}", file=sys.stderr)
        return 2
    pin = not args.no_pin
    pb.check_tools(pin)
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="agentgw-overhead-") as tmp:
        services = pb.Services(Path(tmp), pin)
        try:
            _, upstream = pb.start_upstream(services)
            redis = start_redis(services) if any(":redis" in n for n in names) else ""
            targets: list[tuple[str, tuple[pb.Service, str] | None]] = [("direct", None), ("bare", None)]
            targets += [(name, None) for name in names]
            for name, _ in targets:
                if name == "direct":
                    base, service = upstream, None
                elif name == "bare":
                    service, base = pb.start_bare_proxy(services, upstream)
                else:
                    service, base = start_variant(services, upstream, name, redis)
                c1, c32 = pb.measure(name, base, pb.GATEWAY_KEY, args.duration, pin)
                stream = stream_run(base, pb.GATEWAY_KEY, args.stream_requests, pin) if name != "bare" else None
                if stream is not None:
                    print(
                        f"  {name:<22} stream  first chunk p50 {stream.ttfc_p50_ms:7.3f} ms  "
                        f"p99 {stream.ttfc_p99_ms:7.3f} ms  whole stream p50 {stream.total_p50_ms:7.3f} ms",
                        flush=True,
                    )
                rows[name] = {"c1": c1, "c32": c32, "stream": stream}
                if service is not None:
                    services.stop(service)
        finally:
            services.stop_all()
    report(rows, names)
    return 0


def start_redis(services: pb.Services) -> str:
    """A redis-server for the `:redis` variants, next to the load generator (CPU 1)."""
    port = pb.free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    services.start("redis", argv, pb.LOAD_CPU)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    raise pb.BenchError("redis-server did not start")


def report(rows: dict[str, dict[str, Any]], names: list[str]) -> None:
    direct, bare = rows["direct"], rows["bare"]
    reference = rows.get("minimal")
    print("\nvariant               +p50 c1 ms  +p99 c1 ms   c32 req/s  vs bare  vs minimal  +first chunk p50 ms")
    for name in names:
        row = rows[name]
        c1, c32, stream = row["c1"], row["c32"], row["stream"]
        vs_min = c32.requests_per_s / reference["c32"].requests_per_s if reference else float("nan")
        added_ttfc = stream.ttfc_p50_ms - direct["stream"].ttfc_p50_ms
        print(
            f"{name:<20} {c1.p50_ms - direct['c1'].p50_ms:11.3f} {c1.p99_ms - direct['c1'].p99_ms:11.3f} "
            f"{c32.requests_per_s:11.0f} {c32.requests_per_s / bare['c32'].requests_per_s:8.2f} {vs_min:10.2f} "
            f"{added_ttfc:20.3f}"
        )
    out = pb.RESULTS_DIR / f"overhead-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    serial = {
        name: {
            "c1": vars(r["c1"]) | {"raw": None},
            "c32": vars(r["c32"]) | {"raw": None},
            "stream": None if r["stream"] is None else vars(r["stream"]),
        }
        for name, r in rows.items()
    }
    out.write_text(json.dumps(serial, indent=2))
    print(f"\nresults written to {out}")


if __name__ == "__main__":
    sys.exit(main())
