"""EWMA baselines with variance, one series at a time (`gateway.agentops.anomaly`), on synthetic series
with the defaults (5-minute intervals): a week of steady noisy traffic raises nothing on any series; a
cost-per-task doubling is flagged at the end of its second interval, where the shipped static rule
(a team's last-hour spend above three times its daily hourly average) never fires; a drop in judge
scores is flagged, a rise is not; a lasting change becomes the new baseline; a daily shape is learned."""

from __future__ import annotations

import random

import pytest

from gateway.agentops.anomaly import SERIES, Detector
from gateway.agentops.config import AnomaliesConfig

DEFAULTS = AnomaliesConfig()
STEP = DEFAULTS.interval_seconds
WEEK = 7 * 24 * 3600 // STEP
T0 = 1_800_000_000 // 86400 * 86400  # a UTC midnight


def steady(name: str, rng: random.Random) -> float:
    """One interval of a healthy agent: noise as real traffic has it."""
    return {
        "cost_per_task": 0.02 * rng.gauss(1, 0.06),
        "error_rate": sum(rng.random() < 0.02 for _ in range(100)) / 100,  # 2% of 100 calls
        "latency_ms": 800 * rng.gauss(1, 0.1),
        "guardrail_rate": sum(rng.random() < 0.05 for _ in range(100)) / 100,
        "judge_score": min(1.0, rng.gauss(0.85, 0.04)),
    }[name]


@pytest.mark.parametrize("name", sorted(SERIES))
def test_a_week_of_steady_traffic_raises_nothing(name: str) -> None:
    rng = random.Random(17)
    detector = Detector(SERIES[name], DEFAULTS)
    changes = [detector.observe(steady(name, rng), T0 + i * STEP) for i in range(WEEK)]
    assert [c for c in changes if c is not None] == []
    assert detector.last is not None  # it was scoring, not still learning


def test_a_cost_per_task_doubling_is_flagged_at_the_end_of_its_second_interval() -> None:
    rng = random.Random(5)
    detector = Detector(SERIES["cost_per_task"], DEFAULTS)
    day = 24 * 3600 // STEP
    hourly_spend: list[float] = []  # the static rule's view: the team's spend, 40 tasks per interval
    changes = []
    for i in range(2 * day):
        cost = steady("cost_per_task", rng) * (2 if i >= day + 10 else 1)
        changes.append(detector.observe(cost, T0 + i * STEP))
        hourly_spend.append(cost * 40)
    raised = [(i, c) for i, c in enumerate(changes) if c is not None and c.raised]
    assert raised and raised[0][0] == day + 11  # the second doubled interval: 10 minutes after it began
    first = raised[0][1]
    assert first.since == T0 + (day + 10) * STEP and first.point.value > 1.7 * first.point.baseline
    # the shipped AgentgwCostSpike rule (1 h > 3 x the day's hourly mean, for 10 min) on the same spend
    per_hour = 3600 // STEP
    static = [
        i
        for i in range(day, 2 * day)
        if sum(hourly_spend[i - per_hour + 1 : i + 1]) > 3 * sum(hourly_spend[i - day + 1 : i + 1]) / 24
    ]
    assert static == []


def test_a_spike_of_one_interval_is_not_an_alert_and_is_not_learned() -> None:
    detector = Detector(SERIES["latency_ms"], DEFAULTS)
    rng = random.Random(3)
    for i in range(50):
        detector.observe(800 * rng.gauss(1, 0.05), T0 + i * STEP)
    assert detector.observe(4000, T0 + 50 * STEP) is None
    assert detector.overall.mean == pytest.approx(800, rel=0.05)
    assert detector.observe(800, T0 + 51 * STEP) is None


def test_judge_scores_alert_when_they_fall_not_when_they_rise() -> None:
    falling, rising = Detector(SERIES["judge_score"], DEFAULTS), Detector(SERIES["judge_score"], DEFAULTS)
    for i in range(30):
        falling.observe(0.85, T0 + i * STEP)
        rising.observe(0.6, T0 + i * STEP)
    changes = [falling.observe(0.6, T0 + (30 + i) * STEP) for i in range(3)]
    assert [c is not None and c.raised for c in changes] == [False, True, False]
    assert all(rising.observe(0.95, T0 + (30 + i) * STEP) is None for i in range(10))


def test_a_lasting_change_becomes_the_new_baseline_and_the_alert_clears() -> None:
    detector = Detector(SERIES["cost_per_task"], DEFAULTS)
    for i in range(30):
        detector.observe(0.02, T0 + i * STEP)
    changes = [detector.observe(0.04, T0 + (30 + i) * STEP) for i in range(DEFAULTS.relearn_after)]
    assert changes[1] is not None and changes[1].raised
    last = changes[-1]
    assert last is not None and not last.raised and last.relearned
    assert detector.overall.mean == 0.04 and not detector.active
    assert all(detector.observe(0.04, T0 + (60 + i) * STEP) is None for i in range(20))


def test_a_daily_shape_is_learned_per_hour_of_the_day() -> None:
    """Traffic whose latency is twice as high from 09:00 to 17:00 UTC: an overall baseline alerts every
    morning; with `seasonal: daily` each hour has its own baseline, and a real change still alerts."""

    def latency(i: int) -> float:
        hour = (i * STEP // 3600) % 24
        return 1600.0 if 9 <= hour < 17 else 800.0

    plain = Detector(SERIES["latency_ms"], DEFAULTS)
    daily = Detector(SERIES["latency_ms"], AnomaliesConfig(seasonal="daily"))
    days = 4 * 24 * 3600 // STEP
    plain_raised = [c for i in range(days) if (c := plain.observe(latency(i), T0 + i * STEP)) and c.raised]
    daily_changes = [daily.observe(latency(i), T0 + i * STEP) for i in range(days)]
    assert plain_raised  # the morning looks like an anomaly to a single baseline
    assert [c for c in daily_changes[days // 2 :] if c is not None] == []  # learned after the first days
    late = [daily.observe(3 * latency(days + i), T0 + (days + i) * STEP) for i in range(2)]
    assert late[1] is not None and late[1].raised
