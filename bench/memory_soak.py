"""Memory soak: does the gateway's memory stay flat over a million requests? (docs/contract.md: "Memory
flat over a million requests".)

It starts the static upstream and `agentgw serve` with every feature on: overhead_bench.py's `all`
variant (tracing to the upstream's /v1/traces sink, rate limits and budgets on the memory store,
guardrails, the SQLite ledger, metrics), plus a per-task budget (`task_budget`, period total) on
the bench team and prices on the bench model so every call reserves and settles real money. Then
wrk (`bench/soak.lua`, -t2 -c32) sends the small chat request of proxy_bench.py N times, varying per
request what callers control and what could make state grow: X-Agent-Id over 500 names, X-Task-Id
over 50,000 ids (so tasks repeat and each has a budget account), X-Session-Id unique per request
(--agents and --tasks change the first two; a huge --agents makes every agent name new).

wrk runs in chunks (15 s by default) until N requests are done; after each chunk it records the
requests done so far (wrk's own counts), the gateway's RSS (VmRSS from /proc, summed over the
gateway and any child processes), the ledger queue depth and number of series from /metrics, and
the ledger's size on disk. A sampler thread also reads RSS every second for the peak. It prints
that table, the RSS after warm-up (the first 5 % of requests) and at the end, the growth between
them in MiB and in bytes per request (end minus warm-up, and the least-squares slope over every
row after warm-up), the RSS after a few idle seconds, and the ledger's size and row count after a
graceful shutdown (which flushes it; it holds a few more rows than wrk counted: wrk leaves out
the requests still in flight when each of its runs stops, up to 32 a run). Non-2xx responses and
socket errors are counted and reported; any makes the exit status 1. Results go to
bench/results/memory-<ts>.json (gitignored). These are measurements to read, never assertions.

Processes are pinned as in proxy_bench.py (the gateway on CPU 0, wrk and the upstream on CPU 1)
unless --no-pin. At ~1,300-2,000 req/s a million requests take 10-15 minutes.

The gateway is the installed `agentgw` command, so it imports the `gateway` package this
Python finds; set PYTHONPATH to measure another checkout (e.g. a `git archive HEAD` export). The
JSON records the git HEAD and PYTHONPATH.

Run:
    python bench/memory_soak.py                          # 1,000,000 requests
    python bench/memory_soak.py --requests 50000         # a quick look
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import overhead_bench as ob  # the sibling scripts, imported as modules
import proxy_bench as pb

SOAK_LUA = pb.BENCH_DIR / "soak.lua"
DEFAULT_REQUESTS = 1_000_000
WARMUP_FRACTION = 0.05
WRK_THREADS, WRK_CONNECTIONS = 2, 32
DEFAULT_AGENTS, DEFAULT_TASKS = 500, 50_000
SAMPLE_SECONDS = 1.0
IDLE_SECONDS = 5.0
SHUTDOWN_TIMEOUT = 120.0  # a graceful stop flushes the ledger's queue first
MIB = 1024 * 1024

# On top of overhead_bench's `all`: a budget account per X-Task-Id, and a price, so budgets and the
# ledger see non-zero costs (the bench model is otherwise free, and reservations of 0).
SOAK_EXTRA: dict[str, Any] = {
    "teams": {"bench": {"task_budget": {"usd": 1_000_000, "period": "total"}}},
    "models": {"bench-model": {"input_per_mtok": 0.15, "output_per_mtok": 0.60}},
}


# --------------------------------------------------------------------------- memory


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[1])  # after "pid (comm) state"


def process_tree(root: int) -> list[int]:
    """`root` and every descendant of it that is alive now."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parent = _parent_of(int(entry))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def rss_bytes(pid: int) -> int:
    """VmRSS of a process, 0 when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    return int(match.group(1)) * 1024 if match else 0


def tree_rss(root: int) -> tuple[int, int]:
    """The summed RSS of `root` and its descendants, and how many processes that is."""
    pids = process_tree(root)
    return sum(rss_bytes(pid) for pid in pids), len(pids)


class Sampler(threading.Thread):
    """RSS of the gateway's process tree every SAMPLE_SECONDS, for the peak and the JSON."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.started_at = time.monotonic()
        self.samples: list[tuple[float, int]] = []
        self.peak = 0
        self.max_processes = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            rss, processes = tree_rss(self.pid)
            self.samples.append((round(time.monotonic() - self.started_at, 2), rss))
            self.peak = max(self.peak, rss)
            self.max_processes = max(self.max_processes, processes)
            self._stop_event.wait(SAMPLE_SECONDS)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


# --------------------------------------------------------------------------- gateway


def soak_config(upstream: str, workdir: Path) -> tuple[str, Path]:
    """overhead_bench's `all` variant plus SOAK_EXTRA, and where its ledger goes."""
    config = ob.merge(yaml.safe_load(ob.variant_config("all", upstream, workdir, "")), SOAK_EXTRA)
    return yaml.safe_dump(config), Path(config["ledger"]["path"])


def start_gateway(services: pb.Services, upstream: str) -> tuple[pb.Service, str, Path]:
    text, ledger = soak_config(upstream, services.workdir)
    config = services.workdir / "agentgw-soak.yaml"
    config.write_text(text)
    port = pb.free_port()
    argv = [*pb.agentgw_command(), "serve", "-c", str(config), "--port", str(port), "--log-level", "warning"]
    service = services.start("agentgw:soak", argv, pb.SUT_CPU)
    base = f"http://127.0.0.1:{port}"
    pb.wait_ready(service, base + "/healthz", pb.STARTUP_TIMEOUT)
    pb.verify_chat(service.name, base, pb.GATEWAY_KEY)
    return service, base, ledger


def ledger_bytes(path: Path) -> int:
    """The database and its WAL and shared-memory files."""
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists())


def scrape(base: str) -> tuple[int | None, int | None]:
    """The ledger queue depth and the number of series /metrics shows (None when it does not answer)."""
    try:
        status, body = pb.request_once("GET", base + "/metrics")
    except OSError:
        return None, None
    if status != 200:
        return None, None
    text = body.decode(errors="replace")
    depth = re.search(r"^agentgw_ledger_queue_depth (\S+)$", text, re.M)
    series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    return (int(float(depth.group(1))) if depth else None), series


def stop_gracefully(services: pb.Services, service: pb.Service) -> bool:
    """SIGTERM and wait for the gateway to flush its ledger and exit; False if it had to be killed."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(service.process.pid, signal.SIGTERM)
    try:
        service.process.wait(timeout=SHUTDOWN_TIMEOUT)
        clean = True
    except subprocess.TimeoutExpired:
        clean = False
    services.stop(service)  # kills whatever is left and reports error lines from its log
    return clean


def ledger_summary(path: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        row = db.execute(
            "SELECT count(*), sum(status != 200), count(DISTINCT agent), count(DISTINCT task),"
            " count(DISTINCT session), sum(cost_nanos) FROM usage_events"
        ).fetchone()
    keys = ("rows", "non_200", "distinct_agents", "distinct_tasks", "distinct_sessions", "cost_nanos")
    return {k: int(v or 0) for k, v in zip(keys, row, strict=True)}


# --------------------------------------------------------------------------- load


@dataclass
class Row:
    chunk: int
    requests: int  # done so far, every chunk included
    elapsed_s: float
    chunk_rps: float
    chunk_p99_ms: float
    rss_bytes: int
    ledger_queue: int | None
    metric_series: int | None
    ledger_bytes: int
    non_2xx: int  # so far
    socket_errors: int  # so far


def run_chunk(url: str, seconds: int, chunk: int, offset: int, args: argparse.Namespace) -> pb.WrkResult:
    command = [
        *([] if args.no_pin else ["taskset", "-c", pb.LOAD_CPU]),
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{WRK_CONNECTIONS}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(SOAK_LUA),
        url,
    ]
    env = {
        **pb.base_env(),
        "BENCH_KEY": pb.GATEWAY_KEY,
        "SOAK_CHUNK": str(chunk),
        "SOAK_OFFSET": str(offset),
        "SOAK_THREADS": str(WRK_THREADS),
        "SOAK_AGENTS": str(args.agents),
        "SOAK_TASKS": str(args.tasks),
    }
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise pb.BenchError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return pb.parse_wrk(done.stdout, WRK_CONNECTIONS)


def chunk_seconds(remaining: int, rate: float | None, longest: int) -> int:
    """Seconds for the next wrk run: `longest`, or fewer to stop near `remaining` (2 s to calibrate)."""
    if rate is None:
        return min(2, longest)
    return max(1, min(longest, math.ceil(remaining / rate)))


HEADER = (
    f"{'chunk':>5} {'requests':>10} {'elapsed s':>9} {'req/s':>7} {'p99 ms':>7} {'RSS MiB':>8} "
    f"{'ledger q':>8} {'series':>6} {'ledger MiB':>10} {'non-2xx':>7} {'sock err':>8}"
)


def format_row(row: Row) -> str:
    return (
        f"{row.chunk:>5} {row.requests:>10,} {row.elapsed_s:>9.0f} {row.chunk_rps:>7.0f} {row.chunk_p99_ms:>7.1f} "
        f"{row.rss_bytes / MIB:>8.1f} {'-' if row.ledger_queue is None else row.ledger_queue:>8} "
        f"{'-' if row.metric_series is None else row.metric_series:>6} {row.ledger_bytes / MIB:>10.1f} "
        f"{row.non_2xx:>7} {row.socket_errors:>8}"
    )


def soak(base: str, pid: int, ledger: Path, args: argparse.Namespace) -> list[Row]:
    """wrk in chunks until args.requests are done; one Row per chunk (row 0: before any load)."""
    total, warmup = args.requests, math.ceil(args.requests * WARMUP_FRACTION)
    started = time.monotonic()
    depth, series = scrape(base)
    rows = [Row(0, 0, 0.0, 0.0, 0.0, tree_rss(pid)[0], depth, series, ledger_bytes(ledger), 0, 0)]
    print(HEADER, flush=True)
    print(format_row(rows[0]), flush=True)
    done = non_2xx = socket_errors = 0
    rate: float | None = None
    while done < total:
        target = warmup if done < warmup else total  # a row lands on the warm-up mark
        chunk, seconds = len(rows), chunk_seconds(target - done, rate, args.chunk_seconds)
        result = run_chunk(base + pb.CHAT_PATH, seconds, chunk, done, args)
        done += result.requests
        non_2xx += result.non_2xx
        socket_errors += result.socket_errors
        rate = result.requests_per_s or rate
        depth, series = scrape(base)
        row = Row(
            chunk=chunk,
            requests=done,
            elapsed_s=time.monotonic() - started,
            chunk_rps=result.requests_per_s,
            chunk_p99_ms=result.p99_ms,
            rss_bytes=tree_rss(pid)[0],
            ledger_queue=depth,
            metric_series=series,
            ledger_bytes=ledger_bytes(ledger),
            non_2xx=non_2xx,
            socket_errors=socket_errors,
        )
        rows.append(row)
        print(format_row(row), flush=True)
    return rows


# --------------------------------------------------------------------------- report


def summarize(rows: list[Row], requests: int) -> dict[str, Any]:
    warmup_mark = math.ceil(requests * WARMUP_FRACTION)
    warm = next(r for r in rows if r.requests >= warmup_mark)
    end = rows[-1]
    after = [r for r in rows if r.requests >= warm.requests]
    growth = end.rss_bytes - warm.rss_bytes
    measured = end.requests - warm.requests
    slope = None
    if len(after) >= 3:
        slope = statistics.linear_regression([r.requests for r in after], [r.rss_bytes for r in after]).slope
    return {
        "requests": end.requests,
        "non_2xx": end.non_2xx,
        "socket_errors": end.socket_errors,
        "elapsed_s": round(end.elapsed_s, 1),
        "mean_rps": round(end.requests / end.elapsed_s, 1) if end.elapsed_s else None,
        "rss_start_bytes": rows[0].rss_bytes,
        "warmup_requests": warm.requests,
        "rss_warmup_bytes": warm.rss_bytes,
        "rss_end_bytes": end.rss_bytes,
        "rss_min_after_warmup_bytes": min(r.rss_bytes for r in after),
        "rss_max_after_warmup_bytes": max(r.rss_bytes for r in after),
        "growth_bytes": growth,
        "growth_bytes_per_request": growth / measured if measured else None,
        "slope_bytes_per_request": slope,
    }


def print_summary(summary: dict[str, Any], extra: dict[str, Any]) -> None:
    def mib(value: int) -> str:
        return f"{value / MIB:.1f} MiB"

    def per_request(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f} B/request"

    print()
    print(
        f"requests: {summary['requests']:,} in {summary['elapsed_s']:.0f} s ({summary['mean_rps']} req/s), "
        f"non-2xx {summary['non_2xx']}, socket errors {summary['socket_errors']}"
    )
    print(f"RSS before load:           {mib(summary['rss_start_bytes'])}")
    print(f"RSS after warm-up:         {mib(summary['rss_warmup_bytes'])} (at {summary['warmup_requests']:,} requests)")
    print(f"RSS at the end:            {mib(summary['rss_end_bytes'])}")
    print(
        f"RSS after warm-up, range:  {mib(summary['rss_min_after_warmup_bytes'])} .. "
        f"{mib(summary['rss_max_after_warmup_bytes'])}; peak of 1 s samples {mib(extra['rss_peak_bytes'])}"
    )
    print(f"{f'RSS after {IDLE_SECONDS:.0f} s idle:':<26} {mib(extra['rss_idle_bytes'])}")
    print(
        f"growth after warm-up:      {summary['growth_bytes'] / MIB:+.1f} MiB, "
        f"{per_request(summary['growth_bytes_per_request'])} (end minus warm-up), "
        f"{per_request(summary['slope_bytes_per_request'])} (least-squares slope)"
    )
    ledger = extra["ledger"]
    print(
        f"ledger after shutdown:     {mib(extra['ledger_bytes_after_shutdown'])} on disk, "
        f"{ledger.get('rows', 0):,} rows ({ledger.get('non_200', 0)} not 200), "
        f"{ledger.get('distinct_agents', 0):,} agents, {ledger.get('distinct_tasks', 0):,} tasks, "
        f"{ledger.get('distinct_sessions', 0):,} sessions; graceful shutdown: {extra['clean_shutdown']}"
    )
    print(f"gateway processes (most seen at once): {extra['max_processes']}")


def git_head() -> str | None:
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=pb.BENCH_DIR, capture_output=True, text=True, check=False)
    return done.stdout.strip() or None


def write_json(payload: dict[str, Any]) -> Path:
    pb.RESULTS_DIR.mkdir(exist_ok=True)
    path = pb.RESULTS_DIR / f"memory-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=DEFAULT_REQUESTS, help="requests to send (default 1,000,000)")
    parser.add_argument("--chunk-seconds", type=int, default=15, help="seconds per wrk run, one table row each")
    parser.add_argument("--agents", type=int, default=DEFAULT_AGENTS, help="distinct X-Agent-Id values (500)")
    parser.add_argument("--tasks", type=int, default=DEFAULT_TASKS, help="distinct X-Task-Id values (50,000)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs with taskset")
    args = parser.parse_args(argv)
    if min(args.requests, args.chunk_seconds, args.agents, args.tasks) < 1:
        parser.error("--requests, --chunk-seconds, --agents and --tasks must be positive")
    return args


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # ends the run like Ctrl-C, so the services stop
    pin = not args.no_pin
    with tempfile.TemporaryDirectory(prefix="agentgw-soak-") as tmp:
        services = pb.Services(Path(tmp), pin)
        try:
            pb.check_tools(pin)
            _, upstream = pb.start_upstream(services)
            gateway, base, ledger = start_gateway(services, upstream)
            pid = gateway.process.pid  # taskset execs the command: the same pid
            print(f"agentgw pid {pid}, {args.requests:,} requests, wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS}", flush=True)
            sampler = Sampler(pid)
            sampler.start()
            try:
                rows = soak(base, pid, ledger, args)
                time.sleep(IDLE_SECONDS)
                rss_idle = tree_rss(pid)[0]
            finally:
                sampler.stop()
            clean = stop_gracefully(services, gateway)
            extra = {
                "rss_peak_bytes": sampler.peak,
                "rss_idle_bytes": rss_idle,
                "max_processes": sampler.max_processes,
                "clean_shutdown": clean,
                "ledger_bytes_after_shutdown": ledger_bytes(ledger),
                "ledger": ledger_summary(ledger) if ledger.exists() else {},
                "config": yaml.safe_load(soak_config(upstream, Path(tmp))[0]),
            }
        except pb.BenchError as exc:
            print(f"\nFAILED: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("\ninterrupted", file=sys.stderr)
            return 130
        finally:
            services.stop_all()
    summary = summarize(rows, args.requests)
    print_summary(summary, extra)
    meta = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "requests_asked": args.requests,
        "chunk_seconds": args.chunk_seconds,
        "wrk": {"threads": WRK_THREADS, "connections": WRK_CONNECTIONS, "script": SOAK_LUA.name},
        "varied": {"agents": args.agents, "tasks": args.tasks, "sessions": "unique per request"},
        "pinning": None if args.no_pin else {"under_test": pb.SUT_CPU, "wrk_and_upstream": pb.LOAD_CPU},
        "git_head": git_head(),
        "pythonpath": os.environ.get("PYTHONPATH"),  # set to measure another checkout of the gateway
        "python": platform.python_version(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
    }
    extra["config"]["ledger"]["path"] = ledger.name  # the temp dir is gone
    payload = {"meta": meta, "summary": summary, **extra, "rows": [asdict(r) for r in rows]}
    payload["rss_samples"] = sampler.samples
    path = write_json(payload)
    print(f"\nresults written to {path.relative_to(pb.BENCH_DIR.parent)}")
    return 1 if summary["non_2xx"] or summary["socket_errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
