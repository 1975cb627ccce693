"""Calendar periods in UTC: the window a moment falls in, and its name in state keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from policies.config import Period


@dataclass(frozen=True, slots=True)
class Window:
    """One period window: `label` goes into the state key, so each window starts from zero.

    `start` and `end` are unix seconds (None for `total`, which never resets).
    """

    period: Period
    label: str
    start: int | None
    end: int | None

    def contains(self, now: float) -> bool:
        return self.start is None or self.end is None or self.start <= now < self.end


TOTAL = Window("total", "total", None, None)


def window_of(period: Period, now: float) -> Window:
    """The window of `period` that unix time `now` falls in: day, ISO week (Monday 00:00 UTC), month."""
    if period == "total":
        return TOTAL
    moment = datetime.fromtimestamp(now, UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        start, end, label = day, day + timedelta(days=1), f"d{day:%Y%m%d}"
    elif period == "week":
        start = day - timedelta(days=day.weekday())
        end, label = start + timedelta(days=7), f"w{start:%Y%m%d}"
    else:
        start = day.replace(day=1)
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        label = f"m{start:%Y%m}"
    return Window(period, label, int(start.timestamp()), int(end.timestamp()))
