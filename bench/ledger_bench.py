"""How fast the usage ledger writes: events per second through `Ledger` (batched multi-row INSERTs
on its writer thread, SQLite in WAL mode), against a file on this machine's disk.

It records N realistic events as fast as the event loop can produce them, then waits until every one
is on disk, and reports events/s end to end, the time `record()` costs the caller (the request
path), and the writer thread's CPU time. Compare the events/s with the gateway's request rate
(bench/overhead_bench.py): the ledger must keep up with far more than the gateway can serve.

Run: python bench/ledger_bench.py [--events 200000] [--batch 500]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.metering.events import UsageEvent
from gateway.metering.ledger import Ledger
from gateway.metering.usage import Usage


def event(i: int) -> UsageEvent:
    return UsageEvent(
        ts=1_790_000_000 + i / 1000, request_id=f"req_{i:032x}", key_name="crawler-key", team="research",
        agent=f"agent-{i % 50}", task=f"T-{i % 1000}", session=f"s-{i % 5000}", tags=(("env", "prod"),),
        operation="chat", requested_model="auto", route="auto", model="gpt-4o-mini", provider="openai",
        stream=i % 2 == 0, status=200, outcome="ok", usage=Usage(1200 + i % 300, 250 + i % 80, cached_tokens=i % 7),
        cost_nanos=330_000 + i % 1000, latency_ms=412.5, ttft_ms=180.25, attempts=1,
    )  # fmt: skip


async def run(events: int, batch: int, path: Path) -> None:
    ledger = Ledger(path, batch_size=batch, flush_interval=0.2)
    await ledger.start()
    prepared = [event(i) for i in range(events)]
    started = time.perf_counter()
    cpu_before = time.thread_time()
    for i, e in enumerate(prepared, 1):
        ledger.record(e)
        if i % 1000 == 0:
            await asyncio.sleep(0)  # let the writer run, as it would between requests
    record_cost = (time.thread_time() - cpu_before) / events
    while ledger.written < events:
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    await ledger.close()
    with sqlite3.connect(path) as db:
        stored = db.execute("SELECT COUNT(*) FROM usage_events").fetchone()[0]
    print(f"events written      {stored:>12,}")
    print(f"end to end          {events / elapsed:>12,.0f} events/s   ({elapsed:.2f} s)")
    print(f"record() per event  {record_cost * 1e6:>12.2f} us on the caller's thread (no I/O)")
    print(f"database size       {path.stat().st_size / events:>12.0f} bytes per event")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="agentgw-ledger-") as tmp:
        asyncio.run(run(args.events, args.batch, Path(tmp) / "ledger.db"))


if __name__ == "__main__":
    main()
