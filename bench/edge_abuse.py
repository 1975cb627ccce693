"""Edge abuse: what oversized headers and slowloris connections cost `agentgw serve`.

It starts `agentgw serve` (the mock provider, no ledger, the default `server:` bounds unless
--config names another file) and then, in order:

  headers     --connections clients at once, each sending one header of --header-mb MB in 64 KiB
              writes; prints how long that took, the answers they got (431 with the bounds; a
              server without them buffers every byte), and the gateway's RSS before, after and at
              its peak (VmRSS and VmHWM from /proc)
  slowloris   --slow clients that send a request line and then one header byte every 0.5 s,
              never finishing the head; prints how many the gateway closed within --wait seconds

The gateway is the `gateway` package this Python imports, started with `python -m gateway` from
--tree (default: this checkout), so `--tree` measures another checkout, e.g. a worktree of main.
Linux only (/proc). These are measurements to read, never assertions.

Run:
    python bench/edge_abuse.py
    python bench/edge_abuse.py --tree /path/to/other/checkout --header-mb 8 --slow 100 --wait 30
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """\
server: {host: 127.0.0.1, port: 0}
ledger: false
providers: {mock: {type: mock}}
models: {mock-chat: {provider: mock}}
teams: {bench: {}}
keys: [{name: bench, key: "agentgw-bench-key-0001", team: bench, role: admin}]
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def memory_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"agentgw exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            if sock.recv(12).startswith(b"HTTP/1.1 200"):
                return
        time.sleep(0.1)
    raise RuntimeError("agentgw did not become ready")


def huge_header(port: int, megabytes: int, answers: list[str]) -> None:
    status = "no answer"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            with contextlib.suppress(OSError):  # a bounded gateway stops reading early
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nX-Big: ")
                for _ in range(megabytes * 16):
                    sock.sendall(b"a" * 65536)
                sock.sendall(b"\r\n\r\n")
            first = sock.recv(64).split(b"\r\n", 1)[0]
            status = first.decode("latin-1") or "closed"
    except OSError as exc:
        status = type(exc).__name__
    answers.append(status)


def slowloris(port: int, count: int, wait: float) -> tuple[int, float]:
    """Open `count` connections that never finish their head; how many were closed, and when."""
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        sock.setblocking(False)
        sockets.append(sock)
    started = time.monotonic()
    closed: set[int] = set()
    while time.monotonic() - started < wait and len(closed) < count:
        for i, sock in enumerate(sockets):
            if i in closed:
                continue
            try:
                if sock.recv(4096) == b"":
                    closed.add(i)
                    continue
            except BlockingIOError:
                pass
            except OSError:
                closed.add(i)
                continue
            try:
                sock.send(b"X")
            except OSError:
                closed.add(i)
        time.sleep(0.5)
    elapsed = time.monotonic() - started
    for sock in sockets:
        sock.close()
    return len(closed), elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tree", type=Path, default=ROOT, help="checkout whose gateway package to run")
    parser.add_argument("--config", type=Path, help="config file (default: mock provider, default bounds)")
    parser.add_argument("--connections", type=int, default=20, help="clients sending a huge header (default 20)")
    parser.add_argument("--header-mb", type=int, default=50, help="size of each huge header in MB (default 50)")
    parser.add_argument("--slow", type=int, default=500, help="slowloris connections (default 500)")
    parser.add_argument("--wait", type=float, default=60, help="seconds to watch them (default 60)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as workdir:
        config = args.config or Path(workdir) / "config.yaml"
        if args.config is None:
            config.write_text(CONFIG)
        port = free_port()
        command = [sys.executable, "-m", "gateway", "serve", "-c", str(config), "--port", str(port)]
        process = subprocess.Popen(
            [*command, "--log-level", "error"], cwd=args.tree, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_ready(port, process)
            time.sleep(1)
            before = memory_mib(process.pid, "VmRSS")
            answers: list[str] = []
            started = time.monotonic()
            threads = [
                threading.Thread(target=huge_header, args=(port, args.header_mb, answers))
                for _ in range(args.connections)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            took = time.monotonic() - started
            time.sleep(1)
            after, peak = memory_mib(process.pid, "VmRSS"), memory_mib(process.pid, "VmHWM")
            print(f"gateway: {args.tree}")
            print(f"headers    {args.connections} x {args.header_mb} MB in {took:.1f} s: {dict(Counter(answers))}")
            print(f"           RSS {before:.0f} MiB before, {after:.0f} MiB after, peak {peak:.0f} MiB")
            closed, elapsed = slowloris(port, args.slow, args.wait)
            print(f"slowloris  {closed} of {args.slow} connections closed by the gateway in {elapsed:.1f} s")
        finally:
            process.terminate()
            process.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
