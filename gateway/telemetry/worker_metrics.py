"""One /metrics for `agentgw serve --workers N`: each worker's series, labelled `worker`, from any worker.

A scrape reaches one worker, chosen by the kernel. Each worker writes a snapshot of its own series to
the server's run directory every `PUBLISH_SECONDS` (and when it stops); the worker that is scraped
answers with its own series, live, and every other worker's latest snapshot, each sample labelled
`worker="<n>"`. Counters and histograms therefore sum correctly across workers with
`sum without (worker) (...)` (a restarted worker's counters start again from zero, which Prometheus'
rate() reads as a reset). The budget gauges are read from the shared state store, the same for every
worker: they are shown once, without a `worker` label.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

import orjson

log = logging.getLogger("agentgw")

PUBLISH_SECONDS = 1.0
SHARED = {"agentgw_budget_remaining_usd", "agentgw_budget_cap_usd"}  # the same in every worker
Family = tuple[str, list[str], list[str]]


class WorkerMetrics:
    def __init__(self, directory: Path, worker: int) -> None:
        self.directory = directory
        self.worker = worker

    def _path(self, worker: int | str) -> Path:
        return self.directory / f"metrics-{worker}.json"

    def publish(self, families: list[Family]) -> None:
        """Write this worker's series where the others read them (atomically: write, rename)."""
        own = [(name, samples) for name, _, samples in families if name not in SHARED]
        tmp = self.directory / f".metrics-{self.worker}.{os.getpid()}.tmp"
        tmp.write_bytes(orjson.dumps(own))
        tmp.replace(self._path(self.worker))

    def render(self, families: list[Family]) -> bytes:
        """Every worker's series in the exposition format, this one's live."""
        others: dict[int, dict[str, list[str]]] = {}
        for path in self.directory.glob("metrics-*.json"):
            worker = int(path.stem.removeprefix("metrics-"))
            if worker == self.worker:
                continue
            with contextlib.suppress(OSError, orjson.JSONDecodeError):
                others[worker] = dict(orjson.loads(path.read_bytes()))
        lines: list[str] = []
        for name, header, samples in families:
            lines += header
            if name in SHARED:
                lines += samples
                continue
            lines += labelled(samples, self.worker)
            for worker in sorted(others):
                lines += labelled(others[worker].get(name, []), worker)
        return ("\n".join(lines) + "\n").encode()

    async def run(self, families: Callable[[], list[Family]]) -> None:
        """Publish every PUBLISH_SECONDS until cancelled, and once more then."""
        try:
            while True:
                self._publish_safely(families)
                await asyncio.sleep(PUBLISH_SECONDS)
        finally:
            self._publish_safely(families)

    def _publish_safely(self, families: Callable[[], list[Family]]) -> None:
        try:
            self.publish(families())
        except OSError as exc:
            log.warning("worker %d cannot publish its metrics to %s: %s", self.worker, self.directory, exc)


def labelled(samples: list[str], worker: int) -> list[str]:
    """Sample lines with `worker="<n>"` added to their labels."""
    out = []
    for line in samples:
        head, value = line.rsplit(" ", 1)
        head = head[:-1] + f',worker="{worker}"}}' if head.endswith("}") else head + f'{{worker="{worker}"}}'
        out.append(f"{head} {value}")
    return out
