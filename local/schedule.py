"""NCRONTAB schedules as the Functions timer trigger reads them, for the local host.

Six fields, `{second} {minute} {hour} {day} {month} {day-of-week}` (Microsoft Learn, "Timer
trigger for Azure Functions", NCRONTAB expressions), each `*`, a value, a range `a-b`, a step
`*/n` or `a-b/n`, or a comma list of those; times are UTC (WEBSITE_TIME_ZONE is not supported on
Linux Consumption plans). What this host does not implement it refuses, rather than guess: month
and day names, and a schedule that restricts both the day and the day of the week.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_FIELDS = (
    ("second", 0, 59),
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 6),
)
_PART = re.compile(r"^(\*|\d+(?:-\d+)?)(?:/(\d+))?$")
_SEARCH_LIMIT = timedelta(days=366 * 5)


class ScheduleError(ValueError):
    """A schedule this host cannot read, with what is wrong."""


def _field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        match = _PART.match(part)
        if not match:
            raise ScheduleError(
                f"{name} field {text!r}: expected *, n, a-b, */n or a-b/n (names are not supported)"
            )
        span, step_text = match.groups()
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ScheduleError(f"{name} field {text!r}: the step must be at least 1")
        if span == "*":
            first, last = low, high
        elif "-" in span:
            first, last = (int(value) for value in span.split("-"))
        else:
            first = last = int(span)
            if step_text:
                last = high
        if not low <= first <= last <= high:
            raise ScheduleError(f"{name} field {text!r}: values must be within {low}-{high}")
        values.update(range(first, last + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Schedule:
    """A parsed NCRONTAB schedule."""

    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]

    @classmethod
    def parse(cls, expression: str) -> Schedule:
        """Read a six-field expression, or raise ScheduleError naming the field."""
        fields = expression.split()
        if len(fields) != 6:
            raise ScheduleError(
                f"{expression!r}: a timer schedule has six fields (second minute hour day month day-of-week)"
            )
        sets = [_field(text, *spec) for text, spec in zip(fields, _FIELDS, strict=True)]
        if fields[3] != "*" and fields[5] != "*":
            raise ScheduleError(f"{expression!r}: restrict the day or the day of the week, not both")
        return cls(expression, *sets)

    def _matches_day(self, moment: datetime) -> bool:
        # NCRONTAB counts days of the week from Sunday = 0; Python from Monday = 0.
        return moment.day in self.days and (moment.weekday() + 1) % 7 in self.weekdays

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after `moment` (UTC)."""
        if moment.tzinfo is None:
            raise ValueError("give an aware datetime (UTC)")
        moment = moment.astimezone(UTC)
        candidate = moment.replace(microsecond=0) + timedelta(seconds=1)
        limit = moment + _SEARCH_LIMIT
        while candidate < limit:
            if candidate.month not in self.months:
                year, month = divmod(candidate.month, 12)
                candidate = candidate.replace(
                    year=candidate.year + year, month=month + 1, day=1, hour=0, minute=0, second=0
                )
            elif not self._matches_day(candidate):
                candidate = (candidate + timedelta(days=1)).replace(hour=0, minute=0, second=0)
            elif candidate.hour not in self.hours:
                candidate = (candidate + timedelta(hours=1)).replace(minute=0, second=0)
            elif candidate.minute not in self.minutes:
                candidate = (candidate + timedelta(minutes=1)).replace(second=0)
            elif candidate.second not in self.seconds:
                candidate += timedelta(seconds=1)
            else:
                return candidate
        raise ScheduleError(f"{self.expression!r} has no occurrence in the next five years")
