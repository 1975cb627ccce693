"""The gateway's throughput as a fleet runs it, side by side in one run: the PostgreSQL ledger against
SQLite, and `agentgw serve --workers 2` against one worker.

Every variant is `agentgw serve` forwarding a small non-streaming chat call to the same static upstream
(bench/static_upstream.py), measured with wrk at c=32 (`-t2 -c32`) after a warm-up, the ledger on:

  ledger:sqlite       the defaults, SQLite ledger         the gateway pinned to CPU 0, the load on CPU 1
  ledger:postgresql   the defaults, PostgreSQL ledger     likewise (PostgreSQL runs on CPU 1 too)
  plain:1             the defaults, PostgreSQL ledger, 1 worker        nothing pinned: every process
  plain:2             the defaults, PostgreSQL ledger, 2 workers       on both cores (state: Redis, unused)
  memory:1            limits and budgets in memory, PostgreSQL ledger, 1 worker   nothing pinned: every
  workers:1           limits and budgets in Redis, PostgreSQL ledger, 1 worker    process on both cores
  workers:2           limits and budgets in Redis, PostgreSQL ledger, 2 workers

(limits and budgets as bench/overhead_bench.py's `limits+budgets`: they apply and count, never refuse; the
key's concurrency limit is left out, so a lease that is not given back cannot end the run in 429s.)

On a 2-core machine the load generator (wrk), the upstream, Redis and PostgreSQL take their share of the
same two cores the workers need: the script reports that share (their CPU time over the run's 2 x wall
time), so a second worker can only win what the load leaves. Measurements to read, never assertions.

Run: python bench/fleet_bench.py [--duration 10] [--variants ledger:sqlite,ledger:postgresql,workers:1,workers:2]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import overhead_bench as ob  # the sibling scripts, imported as modules
import proxy_bench as pb

from tests.postgres_server import PostgresServer
from tests.redis_server import RedisServer

VARIANTS = ("ledger:sqlite", "ledger:postgresql", "plain:1", "plain:2", "memory:1", "workers:1", "workers:2")


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process and its children that it has waited for."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[int]:
    """A process and its descendants."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo += children.get(current, [])
    return out


def refusals(base: str) -> dict[str, float]:
    """What /metrics counted of the answers that were not 200 (every worker's, summed)."""
    from prometheus_client.parser import text_string_to_metric_families

    status, text = pb.request_once("GET", base + "/metrics")
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text.decode()) if status == 200 else []:
        for sample in family.samples:
            if sample.name == "agentgw_requests_total" and sample.labels.get("status") != "200":
                label = f"{sample.labels.get('status')} {sample.labels.get('code')}"
                out[label] = out.get(label, 0) + sample.value
    return out


def config(upstream: str, workdir: Path, name: str, dsn: str, redis: str) -> str:
    base = yaml.safe_load(pb.gateway_config(upstream, "aiohttp"))
    base["telemetry"] = {"metrics": {"enabled": True}}
    if name == "ledger:sqlite":
        base["ledger"] = {"path": str(workdir / "ledger.db")}
    else:
        base["ledger"] = {"url": dsn, "spool_dir": str(workdir / f"spool-{name.replace(':', '-')}")}
    if name.startswith(("memory", "workers")):
        base = ob.merge(base, ob._POLICIES)
        for key in base["keys"]:
            key.get("limits", {}).pop("concurrent", None)
    if name.startswith(("workers", "plain")):
        base["state"] = {"url": redis, "key_prefix": f"{name}:"}
    return yaml.safe_dump(base)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    names = [n for n in args.variants.split(",") if n]
    print(
        f"agentgw fleet bench: {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, wrk c=32, {args.duration:g} s"
    )
    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="agentgw-fleet-bench-") as tmp, PostgresServer() as pg, RedisServer() as rd:
        workdir = Path(tmp)
        services = pb.Services(workdir, pin=True)
        try:
            upstream_service, upstream = pb.start_upstream(services)
            dsn = pg.dsn("bench_fleet")
            for name in names:
                pinned = name.startswith("ledger")
                services.pin = pinned
                for pid in tree(pg._process.pid):  # type: ignore[union-attr]
                    try:  # PostgreSQL with the load on CPU 1 when the gateway is pinned, else anywhere
                        os.sched_setaffinity(pid, {int(pb.LOAD_CPU)} if pinned else set(range(os.cpu_count() or 1)))
                    except OSError:
                        continue
                path = workdir / f"{name.replace(':', '-')}.yaml"
                path.write_text(config(upstream, workdir, name, dsn, rd.url))
                port = pb.free_port()
                workers = name.split(":")[1] if name.startswith(("workers", "plain")) else "1"
                argv = [*pb.agentgw_command(), "serve", "-c", str(path), "--port", str(port), "--log-level", "warning",
                        "--workers", workers]  # fmt: skip
                service = services.start(f"agentgw:{name}", argv, pb.SUT_CPU)
                base = f"http://127.0.0.1:{port}"
                pb.wait_ready(service, base + "/healthz", pb.STARTUP_TIMEOUT)
                pb.verify_chat(service.name, base, pb.GATEWAY_KEY)
                pb.run_wrk(base + pb.CHAT_PATH, pb.GATEWAY_KEY, 32, pb.WARMUP_SECONDS, pinned)
                others = [upstream_service.process.pid, *([pg._process.pid] if pg._process else []), rd._process.pid]  # type: ignore[union-attr]
                load_pids = [p for pid in others for p in tree(pid)]
                before_load = sum(cpu_seconds(p) for p in load_pids)
                before_wrk = resource.getrusage(resource.RUSAGE_CHILDREN)
                started = time.perf_counter()
                result = pb.run_wrk(base + pb.CHAT_PATH, pb.GATEWAY_KEY, 32, args.duration, pinned)
                wall = time.perf_counter() - started
                after_wrk = resource.getrusage(resource.RUSAGE_CHILDREN)
                wrk_cpu = (after_wrk.ru_utime - before_wrk.ru_utime) + (after_wrk.ru_stime - before_wrk.ru_stime)
                load_cpu = sum(cpu_seconds(p) for p in load_pids) - before_load + wrk_cpu
                share = load_cpu / (2 * wall)
                flag = "" if result.ok else f"  !! {result.non_2xx} non-2xx, {result.socket_errors} socket errors"
                print(
                    f"  {name:<18} {result.requests_per_s:9.0f} req/s  p50 {result.p50_ms:7.2f} ms  "
                    f"p99 {result.p99_ms:7.2f} ms  load (wrk, upstream, PostgreSQL, Redis) {share:5.0%} of 2 cores"
                    f"{flag}",
                    flush=True,
                )
                if not result.ok:
                    print(f"    answers other than 200, by status and code: {refusals(base)}", flush=True)
                rates[name] = result.requests_per_s
                services.stop(service)
        finally:
            services.stop_all()
    if {"ledger:sqlite", "ledger:postgresql"} <= set(rates):
        print(f"postgresql / sqlite ledger: {rates['ledger:postgresql'] / rates['ledger:sqlite']:.2f}")
    if {"plain:1", "plain:2"} <= set(rates):
        print(f"--workers 2 / --workers 1 (the defaults): {rates['plain:2'] / rates['plain:1']:.2f}")
    if {"workers:1", "workers:2"} <= set(rates):
        print(f"--workers 2 / --workers 1 (Redis): {rates['workers:2'] / rates['workers:1']:.2f}")
    if {"memory:1", "workers:2"} <= set(rates):
        print(f"--workers 2 on Redis / one worker on memory: {rates['workers:2'] / rates['memory:1']:.2f}")


if __name__ == "__main__":
    main()
