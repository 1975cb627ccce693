"""The anomaly watcher: every agent's series read from the ledger once per interval, against baselines.

Off the request path entirely: a background task, at each interval's end plus `settle_seconds` (late
writes), asks the ledger for the interval's calls per team, agent and version, and feeds each series to
its detector (`gateway.agentops.anomaly`), per agent (`version` `*`: all its versions together) and per
version (alerting on a version only in intervals when its agent ran several). At start it reads
`history_hours` of the ledger the same way to learn the baselines, so a restart does not forget them.
Since every replica reads the same ledger, replicas compute the same baselines; an anomaly goes into
the ledger's `anomalies` once (`ON CONFLICT DO NOTHING`), and only the process whose insert landed logs
it, counts it and posts the webhook. Every process shows it on `agentgw_agentops_anomaly` while it
lasts.

The series, per interval, over calls that are not eval runs or judge calls:

    cost_per_task   cost of calls with a task (X-Task-Id) / distinct tasks (at least 3 tasks)
    error_rate      calls that ended in an error / calls
    latency_ms      mean latency of answered model calls (not MCP tool calls)
    guardrail_rate  calls on which a guardrail found something / calls
    judge_score     mean online-eval score (at least 5 judged calls)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from gateway.agentops.alerts import Alerts
from gateway.agentops.anomaly import SERIES, Change, Detector
from gateway.agentops.config import AnomaliesConfig
from gateway.errors import ServiceUnavailable

if TYPE_CHECKING:
    from gateway.metering.ledger import Ledger
    from gateway.telemetry import Metrics

log = logging.getLogger("agentgw.agentops")

ALL = "*"  # the version of an agent-level series
MAX_DETECTORS = 20_000
MIN_TASKS = 3
MIN_JUDGED = 5
NOT_EVAL = "(task IS NULL OR (task NOT LIKE 'eval-%' AND task <> 'online-eval'))"
MODEL_OK = "outcome = 'ok' AND operation <> 'tool_call'"  # latency: answered model calls (MCP tool calls apart)
INSERT = (
    "INSERT INTO anomalies (ts, team, agent, agent_version, series, window_start, window_end, value, baseline, "
    "stddev, z) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (team, agent, agent_version, series, window_start) DO NOTHING"
)
Key = tuple[str, str, str]  # team, agent, version


@dataclass(slots=True)
class Tally:
    """One interval of one agent (or version): what the series are made of."""

    calls: int = 0
    errors: int = 0
    task_nanos: int = 0
    tasks: int = 0
    latency_sum: float = 0.0
    answered: int = 0
    guarded: int = 0
    judged: int = 0
    score_sum: float = 0.0

    def add(self, other: Tally) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def points(self, min_calls: int) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.calls >= min_calls:
            out["error_rate"] = self.errors / self.calls
            out["guardrail_rate"] = self.guarded / self.calls
            if self.tasks >= MIN_TASKS:
                out["cost_per_task"] = self.task_nanos / self.tasks / 1e9
        if self.answered >= min_calls:
            out["latency_ms"] = self.latency_sum / self.answered
        if self.judged >= MIN_JUDGED:
            out["judge_score"] = self.score_sum / self.judged
        return out


@dataclass(frozen=True, slots=True)
class Anomaly:
    team: str
    agent: str
    version: str  # `*`: the agent's calls over all its versions
    series: str
    window_start: float
    window_end: float
    value: float
    baseline: float
    stddev: float
    z: float

    def payload(self) -> dict[str, Any]:
        return {"type": "anomaly", **{name: getattr(self, name) for name in self.__slots__}}


class AnomalyWatcher:
    def __init__(
        self,
        config: AnomaliesConfig,
        ledger: Ledger,
        alerts: Alerts,
        metrics: Metrics | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.interval = config.interval_seconds
        self._ledger = ledger
        self._alerts = alerts
        self._metrics = metrics
        self._clock = clock
        self._detectors: OrderedDict[tuple[str, str, str, str], Detector] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self.next_window: float | None = None  # the end of the next interval to read

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="agentops-anomalies")

    async def _run(self) -> None:
        now = self._clock()
        boundary = now // self.interval * self.interval
        while True:
            try:
                await self.warm_up(boundary)
                break
            except ServiceUnavailable:
                await asyncio.sleep(30)
        while True:
            assert self.next_window is not None
            await asyncio.sleep(max(0.0, self.next_window + self.config.settle_seconds - self._clock()))
            try:
                await self.step()
            except ServiceUnavailable:
                await asyncio.sleep(30)  # the ledger is down: the same interval again
            except Exception:
                log.exception("anomaly watcher: an interval failed; the next one goes on")
                self.next_window += self.interval

    async def warm_up(self, until: float) -> None:
        """Learn the baselines from `history_hours` of the ledger before `until` (an interval boundary);
        nothing is raised for that history."""
        start = until - self.config.history_hours * 3600
        start = start // self.interval * self.interval
        by_window = await self._tallies(start, until)
        for window in sorted(by_window):
            self._observe(window, by_window[window], alert=False)
        self.next_window = until + self.interval

    async def step(self) -> list[Anomaly]:
        """Read the next interval (it must have ended) and raise what departs; the anomalies recorded."""
        assert self.next_window is not None, "warm_up first"
        end = self.next_window
        start = end - self.interval
        tallies = (await self._tallies(start, end)).get(start, {})
        raised = self._observe(start, tallies, alert=True)
        recorded = [a for a in raised if await self._record(a)]
        self.next_window = end + self.interval
        return recorded

    # -- reading the ledger -------------------------------------------------------------------------

    async def _tallies(self, start: float, end: float) -> dict[float, dict[Key, Tally]]:
        ledger, seconds = self._ledger, self.interval
        window = ledger.backend.interval(seconds, "ts")
        out: dict[float, dict[Key, Tally]] = defaultdict(lambda: defaultdict(Tally))
        rows = await ledger.query(
            f"SELECT {window}, team, agent, agent_version, COUNT(*), "  # noqa: S608 - constants only
            "SUM(CASE WHEN outcome IN ('error', 'shutdown') THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN task IS NULL THEN 0 ELSE cost_nanos END), COUNT(DISTINCT task), "
            f"SUM(CASE WHEN {MODEL_OK} THEN latency_ms ELSE 0 END), SUM(CASE WHEN {MODEL_OK} THEN 1 ELSE 0 END) "
            f"FROM usage_events WHERE ts >= ? AND ts < ? AND {NOT_EVAL} GROUP BY 1, 2, 3, 4",
            [start, end],
        )
        for w, team, agent, version, calls, errors, nanos, tasks, latency, answered in (tuple(r) for r in rows):
            tally = out[float(w)][(team, agent, version or "")]
            tally.calls, tally.errors, tally.task_nanos, tally.tasks = calls, int(errors or 0), int(nanos or 0), tasks
            tally.latency_sum, tally.answered = float(latency or 0), int(answered or 0)
        guarded = await ledger.query(
            f"SELECT {window}, team, agent, agent_version, guardrails FROM usage_events "  # noqa: S608 - constants
            f"WHERE ts >= ? AND ts < ? AND guardrails <> '[]' AND {NOT_EVAL}",
            [start, end],
        )
        for i, (w, team, agent, version, verdicts) in enumerate(tuple(r) for r in guarded):
            if any(int(v.get("count") or 0) for v in orjson.loads(verdicts)):
                out[float(w)][(team, agent, version or "")].guarded += 1
            if i % 2000 == 1999:
                await asyncio.sleep(0)  # a day of history read at start: calls go on meanwhile
        judged = await ledger.query(
            f"SELECT {window}, team, agent, agent_version, COUNT(*), SUM(score) FROM eval_scores "  # noqa: S608
            "WHERE kind = 'online' AND score IS NOT NULL AND ts >= ? AND ts < ? GROUP BY 1, 2, 3, 4",
            [start, end],
        )
        for w, team, agent, version, count, total in (tuple(r) for r in judged):
            tally = out[float(w)][(team, agent, version or "")]
            tally.judged, tally.score_sum = int(count), float(total or 0)
        return out

    # -- the detectors ------------------------------------------------------------------------------

    def _observe(self, start: float, tallies: dict[Key, Tally], *, alert: bool) -> list[Anomaly]:
        agents: dict[Key, Tally] = defaultdict(Tally)
        for (team, agent, _), tally in tallies.items():
            agents[(team, agent, ALL)].add(tally)
        versions: dict[tuple[str, str], int] = defaultdict(int)
        for team, agent, _ in tallies:
            versions[(team, agent)] += 1
        raised: list[Anomaly] = []
        for key, tally in [*agents.items(), *((k, t) for k, t in tallies.items() if k[2])]:
            # A version's own alert only when its agent ran several in the interval: with one, the
            # agent's series is the same numbers, already alerted on.
            alone = key[2] != ALL and versions[(key[0], key[1])] == 1
            for series, value in tally.points(self.config.min_calls).items():
                detector = self._detector((*key, series))
                change = detector.observe(value, start)
                if change is not None and alert and not alone:
                    raised += self._changed(key, series, start, change)
                if key[2] == ALL and alert and detector.last is not None:
                    self._gauge(key, series, detector)
        return raised

    def _detector(self, key: tuple[str, str, str, str]) -> Detector:
        found = self._detectors.get(key)
        if found is None:
            found = self._detectors[key] = Detector(SERIES[key[3]], self.config)
            if len(self._detectors) > MAX_DETECTORS:
                self._detectors.popitem(last=False)
        else:
            self._detectors.move_to_end(key)
        return found

    def _changed(self, key: Key, series: str, start: float, change: Change) -> list[Anomaly]:
        team, agent, version = key
        point = change.point
        if not change.raised:
            relearned = ", accepted as its new baseline" if change.relearned else ""
            log.info(
                "anomaly over: %s of agent %r (team %r, version %s) is %.6g (baseline %.6g)%s",
                series, agent, team, version, point.value, point.baseline, relearned,
            )  # fmt: skip
            self._set_active(team, agent, series)
            return []
        self._set_active(team, agent, series)
        return [
            Anomaly(team, agent, version, series, change.since, start + self.interval, point.value, point.baseline,
                    point.stddev, point.z)
        ]  # fmt: skip

    async def _record(self, anomaly: Anomaly) -> bool:
        """Into the ledger; whether this process was the one to record it (then it announces it)."""
        changed = await self._ledger.execute(
            INSERT,
            [self._clock(), anomaly.team, anomaly.agent, anomaly.version, anomaly.series, anomaly.window_start,
             anomaly.window_end, anomaly.value, anomaly.baseline, anomaly.stddev, anomaly.z],
        )  # fmt: skip
        if not changed:
            return False
        log.warning(
            "anomaly: %s of agent %r (team %r, version %s) is %.6g against a baseline of %.6g (%.1f standard "
            "deviations) since %s",
            anomaly.series, anomaly.agent, anomaly.team, anomaly.version, anomaly.value, anomaly.baseline, anomaly.z,
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(anomaly.window_start)),
        )  # fmt: skip
        if self._metrics is not None:
            agent = self._metrics.bounded("agent", anomaly.agent)
            self._metrics.anomalies.labels(anomaly.team, agent, anomaly.series).inc()
        self._alerts.post(anomaly.payload())
        return True

    def active(self) -> Iterable[tuple[tuple[str, str, str, str], Detector]]:
        return ((key, d) for key, d in self._detectors.items() if d.active)

    def _set_active(self, team: str, agent: str, series: str) -> None:
        if self._metrics is None:
            return
        on = any(d.active for (t, a, _, s), d in self._detectors.items() if (t, a, s) == (team, agent, series))
        self._metrics.anomaly_active.labels(team, self._metrics.bounded("agent", agent), series).set(int(on))

    def _gauge(self, key: Key, series: str, detector: Detector) -> None:
        if self._metrics is not None and detector.last is not None:
            agent = self._metrics.bounded("agent", key[1])
            self._metrics.anomaly_zscore.labels(key[0], agent, series).set(round(detector.last.z, 3))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
