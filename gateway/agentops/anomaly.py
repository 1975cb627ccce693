"""Baselines and departures from them, one series at a time. Pure: no I/O, no clock.

Each series (an agent's cost per task, error rate, mean latency, guardrail trigger rate or mean judge
score, one point per interval) keeps an exponentially weighted mean and variance (EWMA: the newest
point weighs `alpha`, older ones fade geometrically), and with `seasonal: daily` one such baseline per
hour of the day (UTC) as well, used once it has learned that hour. A point departs when it is at
least `z_threshold` standard deviations from the baseline in the series' bad direction (up for cost,
errors, latency and guardrails; down for judge scores) and, for cost and latency, at least
`min_relative_change` of the baseline away. The standard deviation has a floor (a fraction of the
mean, or an absolute amount for rates and scores), so perfectly steady traffic does not make every
small change a departure.

An alert is raised when `consecutive` points in a row depart, and cleared when as many in a row do
not. Departing points do not move the baseline (a spike is not learned); a departure that lasts
`relearn_after` points is accepted as the new normal: the baseline restarts from it and the alert
clears. A baseline needs `warmup_intervals` points before it may alert; an hour of the day that is
still learning its own baseline learns from every point (the overall baseline stands in meanwhile).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from gateway.agentops.config import AnomaliesConfig

Direction = Literal[1, -1]


@dataclass(frozen=True, slots=True)
class Series:
    """A kind of series: its bad direction and the floor of its standard deviation."""

    name: str
    direction: Direction
    relative_floor: float = 0.0  # a fraction of the baseline's mean
    absolute_floor: float = 0.0
    relative: bool = True  # also needs `min_relative_change` to depart


SERIES: dict[str, Series] = {
    s.name: s
    for s in (
        Series("cost_per_task", 1, relative_floor=0.05),
        Series("error_rate", 1, absolute_floor=0.02, relative=False),
        Series("latency_ms", 1, relative_floor=0.05),
        Series("guardrail_rate", 1, absolute_floor=0.02, relative=False),
        Series("judge_score", -1, absolute_floor=0.05, relative=False),
    )
}


@dataclass(slots=True)
class Ewma:
    mean: float = 0.0
    var: float = 0.0
    n: int = 0

    def update(self, x: float, alpha: float) -> None:
        if self.n == 0:
            self.mean, self.var = x, 0.0
        else:
            diff = x - self.mean
            increment = alpha * diff
            self.mean += increment
            self.var = (1 - alpha) * (self.var + diff * increment)
        self.n += 1


@dataclass(frozen=True, slots=True)
class Point:
    """How one point stands against its baseline."""

    value: float
    baseline: float
    stddev: float
    z: float  # signed: positive is the bad direction
    departs: bool


@dataclass(frozen=True, slots=True)
class Change:
    """An alert raised (`raised`) or cleared, with the point that did it and where the departure began."""

    raised: bool
    point: Point
    since: float  # the start of the first departing interval
    relearned: bool = False


@dataclass(slots=True)
class Detector:
    series: Series
    config: AnomaliesConfig
    overall: Ewma = field(default_factory=Ewma)
    hours: list[Ewma] = field(default_factory=list)
    departing: int = 0
    calm: int = 0
    active: bool = False
    since: float = 0.0
    last: Point | None = None

    def __post_init__(self) -> None:
        if self.config.seasonal == "daily" and not self.hours:
            self.hours = [Ewma() for _ in range(24)]

    def _baseline(self, when: float) -> Ewma:
        if self.hours:
            slot = self.hours[int(when // 3600) % 24]
            if slot.n >= self.config.warmup_intervals:
                return slot
        return self.overall

    def _learn(self, x: float, when: float) -> None:
        self.overall.update(x, self.config.alpha)
        if self.hours:
            self.hours[int(when // 3600) % 24].update(x, self.config.alpha)

    def score(self, x: float, when: float) -> Point | None:
        """The point against its baseline, None while the baseline is still learning."""
        base = self._baseline(when)
        if base.n < self.config.warmup_intervals:
            return None
        s = self.series
        stddev = max(math.sqrt(max(base.var, 0.0)), s.relative_floor * abs(base.mean), s.absolute_floor, 1e-12)
        z = s.direction * (x - base.mean) / stddev
        departs = z >= self.config.z_threshold
        if departs and s.relative and base.mean:
            departs = abs(x - base.mean) / abs(base.mean) >= self.config.min_relative_change
        return Point(x, base.mean, stddev, z, departs)

    def observe(self, x: float, when: float) -> Change | None:
        """One interval's point (`when`: the interval's start); the alert it raises or clears, if any."""
        point = self.last = self.score(x, when)
        if point is None:
            self._learn(x, when)
            return None
        if not point.departs:
            self.departing = 0
            self._learn(x, when)
            if self.active:
                self.calm += 1
                if self.calm >= self.config.consecutive:
                    self.active = False
                    return Change(False, point, self.since)
            return None
        self.calm = 0
        if self.hours:  # an hour of the day still learning learns from every point, departing or not
            slot = self.hours[int(when // 3600) % 24]
            if slot.n < self.config.warmup_intervals:
                slot.update(x, self.config.alpha)
        self.departing += 1
        if self.departing == 1:
            self.since = when
        if self.departing >= self.config.relearn_after:
            self._relearn(x, when)
            was_active, self.active, self.departing = self.active, False, 0
            return Change(False, point, self.since, relearned=True) if was_active else None
        if not self.active and self.departing >= self.config.consecutive:
            self.active = True
            return Change(True, point, self.since)
        return None

    def _relearn(self, x: float, when: float) -> None:
        """The departure is the new normal: the baseline moves to it, keeping its spread (with a daily
        shape, the overall baseline and this hour's; other hours accept it when they depart too)."""
        self.overall.mean = x
        if self.hours:
            self.hours[int(when // 3600) % 24].mean = x
