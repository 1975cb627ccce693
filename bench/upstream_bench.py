"""The upstream clients alone: CPU per call and calls per second against the static upstream.

Each client (`gateway.upstream`: httptools, aiohttp, httpx) sends the same small non-streaming chat
request (at concurrency 1 and 16), and then a streaming one (at 16: the upstream holds each stream
20 ms between its first event and the rest), to bench/static_upstream.py, from one process on
uvloop. Per client and case it prints the process's CPU time per call (user + system,
`time.process_time`) and calls per second, and each client's CPU per call relative to aiohttp's.
Clients are measured in turns (every client once, then again, `--rounds` times) and the median kept,
so drift on the machine lands on all of them alike. The bench runs on CPU 0 and the upstream on
CPU 1 (`--no-pin` turns that off). These are measurements to read, never assertions.

Run:
    python bench/upstream_bench.py                 # 3 rounds of 2,000 calls per case
    python bench/upstream_bench.py --calls 5000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.upstream import Timeouts, create_client

CLIENTS = ("httptools", "aiohttp", "httpx")
BODY = (
    b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":32}'
)
STREAM = BODY[:-1] + b',"stream":true}'
HEADERS = {"authorization": "Bearer sk-bench", "content-type": "application/json", "x-request-id": "req_bench"}
TIMEOUTS = Timeouts(connect=10, read=60, total=None)


def start_upstream(pin: bool) -> tuple[subprocess.Popen[str], int]:
    command = [sys.executable, str(Path(__file__).with_name("static_upstream.py")), "--port", "0"]
    if pin:
        command = ["taskset", "-c", "1", *command]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()  # "listening on 127.0.0.1:PORT"
    return process, int(line.rsplit(":", 1)[1])


async def measure(kind: str, url: str, body: bytes, calls: int, concurrency: int) -> tuple[float, float]:
    """(CPU us per call, calls per second)."""
    client = create_client(kind, max_connections=100)  # type: ignore[arg-type]
    stream = b'"stream":true' in body

    async def one() -> None:
        response = await client.send("POST", url, headers=HEADERS, body=body, timeouts=TIMEOUTS)
        if stream:
            async for _ in response.iter_chunks():
                pass
            await response.finish()
        else:
            await response.read()

    async def worker(count: int) -> None:
        for _ in range(count):
            await one()

    await asyncio.gather(*(worker(20) for _ in range(concurrency)))  # connections open, code warm
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(calls // concurrency) for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await client.aclose()
    done = calls // concurrency * concurrency
    return cpu / done * 1e6, done / wall


async def main(args: argparse.Namespace, port: int) -> None:
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    cases = [("whole", BODY, 1), ("whole", BODY, 16), ("stream", STREAM, 16)]
    results: dict[tuple[str, str, int], list[tuple[float, float]]] = {}
    for _ in range(args.rounds):
        for name, body, concurrency in cases:
            for kind in args.clients.split(","):
                results.setdefault((kind, name, concurrency), []).append(
                    await measure(kind, url, body, args.calls, concurrency)
                )
    print(f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"{args.calls} calls per case, median of {args.rounds} rounds\n")
    print(f"{'case':<12} {'client':<10} {'CPU us/call':>12} {'calls/s':>9} {'CPU vs aiohttp':>15}")
    for name, _, concurrency in cases:
        reference = statistics.median(r[0] for r in results[("aiohttp", name, concurrency)])
        for kind in args.clients.split(","):
            rows = results[(kind, name, concurrency)]
            cpu, rate = statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows)
            case = f"{name} c={concurrency}"
            print(f"{case:<12} {kind:<10} {cpu:12.1f} {rate:9.0f} {cpu / reference:15.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", default=",".join(CLIENTS), help="comma-separated; must include aiohttp")
    parser.add_argument("--no-pin", action="store_true")
    arguments = parser.parse_args()
    upstream, upstream_port = start_upstream(not arguments.no_pin)
    try:
        if not arguments.no_pin:
            os.sched_setaffinity(0, {0})
        uvloop.run(main(arguments, upstream_port))
    finally:
        upstream.terminate()
