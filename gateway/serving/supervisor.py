"""`agentgw serve --workers N`: N worker processes serving one port.

The supervisor binds the listening socket once and starts N workers (`gateway.serving.worker`), each
inheriting the socket and running the gateway's own server class and protocol; the kernel hands each
new connection to one of them. The supervisor serves nothing itself. It forwards SIGTERM, SIGINT (as
SIGTERM) and SIGHUP to every worker: a graceful shutdown drains every worker's calls within
`server.graceful_shutdown_seconds`, and a reload reaches every worker. A worker that dies is started
again; one that keeps dying at once (a broken config, a port problem) stops the whole server.
Shared state (limits, budgets) must live in a store the workers share: `agentgw serve` refuses
`state: memory` with more than one worker.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType

from gateway.serving.worker import CONSOLE_SECRET_ENV

log = logging.getLogger("agentgw")

QUICK_DEATH_SECONDS = 5.0  # a worker that dies sooner than this after its start did not really start
MAX_QUICK_DEATHS = 5  # in a row, per worker slot: then the server gives up
KILL_AFTER_GRACE_SECONDS = 15.0
POLL_SECONDS = 0.1


def bind(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """The listening socket every worker shares, bound once here."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


class Supervisor:
    def __init__(self, sock: socket.socket, workers: int, worker_args: list[str], grace_seconds: float) -> None:
        self.sock = sock
        self.count = workers
        self.worker_args = worker_args
        self.grace = grace_seconds
        self.run_dir = Path(tempfile.mkdtemp(prefix="agentgw-workers-"))
        self.workers: list[subprocess.Popen[bytes] | None] = [None] * workers
        self.started_at = [0.0] * workers
        self.quick_deaths = [0] * workers
        self.stopping = threading.Event()  # set by a signal handler
        self.ever_ran = False
        self.restarts = 0
        # Console sessions signed by one worker must be valid on the others: one secret for all of them
        # (used only when the config names none), in their environment rather than on a command line.
        self.env = {**os.environ, CONSOLE_SECRET_ENV: secrets.token_urlsafe(48)}

    def _start(self, slot: int) -> None:
        command = [
            sys.executable, "-m", "gateway.serving.worker", "--fd", str(self.sock.fileno()), "--worker", str(slot),
            "--run-dir", str(self.run_dir), *self.worker_args,
        ]  # fmt: skip
        self.workers[slot] = subprocess.Popen(command, pass_fds=[self.sock.fileno()], env=self.env)
        self.started_at[slot] = time.monotonic()
        log.info("worker %d started (pid %d)", slot, self.workers[slot].pid)  # type: ignore[union-attr]

    def _signal_all(self, signum: int) -> None:
        for worker in self.workers:
            if worker is not None and worker.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.send_signal(signum)

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        if not self.stopping.is_set():
            log.info("%s: stopping %d workers gracefully", signal.Signals(signum).name, self.count)
        self.stopping.set()
        self._signal_all(signal.SIGTERM)

    def _on_reload(self, signum: int, frame: FrameType | None) -> None:
        log.info("SIGHUP: every worker reloads its config")
        self._signal_all(signal.SIGHUP)

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT; 0, or 3 when the workers never came up, 1 when they kept dying."""
        previous = {
            sig: signal.signal(sig, handler)
            for sig, handler in (
                (signal.SIGTERM, self._on_stop),
                (signal.SIGINT, self._on_stop),
                (signal.SIGHUP, self._on_reload),
            )
        }
        try:
            for slot in range(self.count):
                self._start(slot)
            status = self._watch()
            self._wait_for_all()
            return status
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.sock.close()
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def _watch(self) -> int:
        while not self.stopping.is_set():
            for slot, worker in enumerate(self.workers):
                if worker is None or worker.poll() is None:
                    if worker is not None and time.monotonic() - self.started_at[slot] > QUICK_DEATH_SECONDS:
                        self.ever_ran = True
                        self.quick_deaths[slot] = 0
                    continue
                if self.stopping.is_set():
                    break
                lived = time.monotonic() - self.started_at[slot]
                log.error("worker %d (pid %d) exited with %s after %.1fs", slot, worker.pid, worker.returncode, lived)
                self.quick_deaths[slot] = self.quick_deaths[slot] + 1 if lived < QUICK_DEATH_SECONDS else 0
                if self.quick_deaths[slot] >= MAX_QUICK_DEATHS:
                    log.error("worker %d keeps dying at start; stopping the server", slot)
                    self.stopping.set()
                    self._signal_all(signal.SIGTERM)
                    return 1 if self.ever_ran else 3
                self.restarts += 1
                time.sleep(min(2.0, 0.1 * 2 ** self.quick_deaths[slot]))  # a crash loop does not spin
                self._start(slot)
            time.sleep(POLL_SECONDS)
        return 0

    def _wait_for_all(self) -> None:
        deadline = time.monotonic() + self.grace + KILL_AFTER_GRACE_SECONDS
        for slot, worker in enumerate(self.workers):
            if worker is None:
                continue
            try:
                worker.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker %d did not stop within the grace; killing it", slot)
                worker.kill()
                worker.wait()


def supervise(host: str, port: int, workers: int, worker_args: list[str], grace_seconds: float) -> int:
    """Bind host:port and run `workers` worker processes on it until SIGTERM."""
    try:
        sock = bind(host, port)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", host, port, exc.strerror or exc)
        return 3
    log.info("agentgw listening on http://%s:%d with %d workers", host, sock.getsockname()[1], workers)
    return Supervisor(sock, workers, worker_args, grace_seconds).run()
