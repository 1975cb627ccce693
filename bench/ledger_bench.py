"""How fast the usage ledger writes: events per second through `Ledger`, end to end, into SQLite (batched
multi-row INSERTs on its writer thread, WAL mode, a file on this machine's disk) and into PostgreSQL
(binary COPY into a staging table, then one idempotent INSERT that also feeds the rollup), side by side.

It records N realistic events as fast as the event loop can produce them, then waits until every one
is in the database, and reports events/s end to end, the time `record()` costs the caller (the request
path), and the CPU this process spent per event (the loop's and the writer thread's; PostgreSQL's own
server CPU is not in it). Compare the events/s with the gateway's request rate (bench/overhead_bench.py):
the ledger must keep up with far more than the gateway can serve.

Run: python bench/ledger_bench.py [--events 200000] [--batch 500] [--backends sqlite,postgresql]
     (PostgreSQL: a throwaway server of its own, as the tests start; or --dsn postgresql://...)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.metering.config import LedgerConfig
from gateway.metering.events import UsageEvent
from gateway.metering.ledger import Ledger, open_ledger
from gateway.metering.usage import Usage


def event(i: int) -> UsageEvent:
    return UsageEvent(
        ts=1_790_000_000 + i / 1000, request_id=f"req_{i:032x}", key_name="crawler-key", team="research",
        agent=f"agent-{i % 50}", task=f"T-{i % 1000}", session=f"s-{i % 5000}", tags=(("env", "prod"),),
        operation="chat", requested_model="auto", route="auto", model="gpt-4o-mini", provider="openai",
        stream=i % 2 == 0, status=200, outcome="ok", usage=Usage(1200 + i % 300, 250 + i % 80, cached_tokens=i % 7),
        cost_nanos=330_000 + i % 1000, latency_ms=412.5, ttft_ms=180.25, attempts=1,
    )  # fmt: skip


async def run(events: int, batch: int, path: Path, dsn: str | None = None) -> float:
    if dsn is None:
        ledger = Ledger(path, batch_size=batch, flush_interval=0.2)
    else:
        config = LedgerConfig.model_validate({"url": dsn, "batch_size": batch, "spool_dir": str(path) + "-spool"})
        ledger = open_ledger(config)
    await ledger.start()
    prepared = [event(i) for i in range(events)]
    started = time.perf_counter()
    cpu_start = time.process_time()
    cpu_before = time.thread_time()
    for i, e in enumerate(prepared, 1):
        ledger.record(e)
        if i % 1000 == 0:
            await asyncio.sleep(0)  # let the writer run, as it would between requests
    record_cost = (time.thread_time() - cpu_before) / events
    while ledger.written < events:
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_start
    stored = (await ledger.query("SELECT COUNT(*) FROM usage_events"))[0][0]
    await ledger.close()
    name = "postgresql" if dsn else "sqlite"
    print(f"[{name}]")
    print(f"  events written      {stored:>12,}")
    print(f"  end to end          {events / elapsed:>12,.0f} events/s   ({elapsed:.2f} s)")
    print(f"  record() per event  {record_cost * 1e6:>12.2f} us on the caller's thread (no I/O)")
    print(f"  CPU in this process {cpu / events * 1e6:>12.2f} us per event")
    if dsn is None:
        print(f"  database size       {path.stat().st_size / events:>12.0f} bytes per event")
    return events / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--dsn", help="an existing PostgreSQL database (default: a throwaway server)")
    args = parser.parse_args()
    backends = args.backends.split(",")
    print(f"{args.events:,} events, batches of {args.batch}, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs")
    rates = {}
    with tempfile.TemporaryDirectory(prefix="agentgw-ledger-") as tmp, contextlib.ExitStack() as stack:
        if "sqlite" in backends:
            rates["sqlite"] = asyncio.run(run(args.events, args.batch, Path(tmp) / "ledger.db"))
        if "postgresql" in backends:
            dsn = args.dsn
            if dsn is None:
                from tests.postgres_server import PostgresServer

                dsn = stack.enter_context(PostgresServer()).dsn("bench_ledger")
            rates["postgresql"] = asyncio.run(run(args.events, args.batch, Path(tmp) / "pg", dsn))
    if len(rates) == 2:
        print(f"postgresql / sqlite: {rates['postgresql'] / rates['sqlite']:.2f}")


if __name__ == "__main__":
    main()
