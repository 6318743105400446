"""Cron schedules: the standard five fields, parsed once, asked for their next times.

A schedule is ``MINUTE HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK`` or a macro
(``@yearly``/``@annually``, ``@monthly``, ``@weekly``, ``@daily``/``@midnight``,
``@hourly``). Each field is a comma-separated list of ``*`` (or ``?``),
``N``, ``N-M``, each optionally followed by ``/STEP`` (``N/STEP`` means
``N-max/STEP``). Months and weekdays take English names (``jan``, ``mon``,
any case); Sunday is 0 or 7. Ranges must not run backwards and steps must be
positive. When both day fields are restricted (neither starts with an
unstepped ``*``), a day matches if either matches, as cron does; otherwise
both must.

Times are judged in a time zone (``zoneinfo``; UTC by default) by their
wall-clock reading: an instant fires when its local reading matches the
fields. So a wall time skipped by a daylight-saving jump never fires, and a
wall time that occurs twice when clocks go back fires twice (as the cron
library Kubernetes uses does). Every computation is pure: callers pass the
time to search from.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "MACROS",
    "MAX_SEARCH_YEARS",
    "Schedule",
    "ScheduleError",
    "parse_schedule",
]

MACROS: dict[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
"""The macros and the five fields each stands for."""

MAX_SEARCH_YEARS = 9
"""How far ahead ``next_after`` looks before deciding a schedule never fires (Feb 29 needs 8)."""

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_UTC = datetime.UTC
_MAX_FOLD_SHIFT = datetime.timedelta(hours=3)


class ScheduleError(ValueError):
    """A schedule that cannot be parsed; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    name_base: int = 0


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, _MONTHS, 1),
    _Field("day of week", 0, 7, _DAYS, 0),
)


def _value(text: str, field: _Field) -> int:
    lowered = text.lower()
    if lowered in field.names:
        return field.names.index(lowered) + field.name_base
    if not text.isdigit():
        raise ScheduleError(f"{field.name}: {text!r} is not a number"
                            + (" or a name" if field.names else ""))
    value = int(text)
    if not field.low <= value <= field.high:
        raise ScheduleError(f"{field.name}: {value} is out of range "
                            f"{field.low}-{field.high}")
    return value


def _parse_field(text: str, field: _Field) -> tuple[frozenset[int], bool]:
    """The values ``text`` allows, and whether it is an unstepped star."""
    values: set[int] = set()
    star = False
    if not text:
        raise ScheduleError(f"{field.name}: empty field")
    for part in text.split(","):
        if not part:
            raise ScheduleError(f"{field.name}: empty list element in {text!r}")
        span, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit():
                raise ScheduleError(f"{field.name}: step {step_text!r} is not a number")
            step = int(step_text)
            if step == 0:
                raise ScheduleError(f"{field.name}: step must be positive")
        if span in ("*", "?"):
            low, high = field.low, field.high
            star = star or step == 1
        else:
            first, dash, last = span.partition("-")
            low = _value(first, field)
            if dash:
                high = _value(last, field)
            elif slash:
                high = field.high
            else:
                high = low
            if high < low:
                raise ScheduleError(f"{field.name}: range {span!r} runs backwards")
        values.update(range(low, high + 1, step))
    if field.name == "day of week" and 7 in values:
        values.discard(7)
        values.add(0)
    return frozenset(values), star


@dataclass(frozen=True, slots=True)
class Schedule:
    """A parsed cron schedule (see the module docstring); build one with ``parse_schedule``."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]
    day_of_month_star: bool
    day_of_week_star: bool

    def matches_day(self, day: datetime.date) -> bool:
        """Whether ``day`` is a day the schedule runs on (cron's day-of-month/day-of-week rule)."""
        dom = day.day in self.days_of_month
        dow = (day.isoweekday() % 7) in self.days_of_week
        if self.day_of_month_star or self.day_of_week_star:
            return dom and dow
        return dom or dow

    def matches(self, wall: datetime.datetime) -> bool:
        """Whether the wall-clock reading ``wall`` (its time zone ignored) fires."""
        return (wall.minute in self.minutes and wall.hour in self.hours
                and wall.month in self.months and self.matches_day(wall.date()))

    def _wall_times(self, start: datetime.datetime) -> Iterator[datetime.datetime]:
        """Matching naive wall-clock minutes at or after ``start``, in order."""
        t = start.replace(second=0, microsecond=0, tzinfo=None)
        if t < start.replace(tzinfo=None):
            t += datetime.timedelta(minutes=1)
        end_year = t.year + MAX_SEARCH_YEARS
        while t.year <= end_year:
            if t.month not in self.months:
                year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
                t = datetime.datetime(year, month, 1)
                continue
            if not self.matches_day(t.date()):
                t = datetime.datetime(t.year, t.month, t.day) + datetime.timedelta(days=1)
                continue
            if t.hour not in self.hours:
                t = t.replace(minute=0) + datetime.timedelta(hours=1)
                continue
            if t.minute not in self.minutes:
                t += datetime.timedelta(minutes=1)
                continue
            yield t
            t += datetime.timedelta(minutes=1)

    def next_after(self, after: datetime.datetime,
                   tz: datetime.tzinfo | None = None) -> datetime.datetime | None:
        """The first instant strictly after ``after`` (aware) that fires in ``tz`` (UTC).

        Returns:
            That instant, aware in ``tz``; None if the schedule never fires
            (``30 2 31 2 *``) within ``MAX_SEARCH_YEARS``.
        """
        if after.tzinfo is None:
            raise ValueError("after must be an aware datetime")
        zone = tz if tz is not None else _UTC
        # Compare in UTC only: aware datetimes sharing a tzinfo compare by wall reading.
        after_utc = after.astimezone(_UTC)
        best: datetime.datetime | None = None
        start = after.astimezone(zone).replace(tzinfo=None)
        offset = after.astimezone(zone).utcoffset()
        window = datetime.timedelta(0)
        if any((after_utc + shift).astimezone(zone).utcoffset() != offset
               for shift in (-_MAX_FOLD_SHIFT, _MAX_FOLD_SHIFT)):
            # Clocks move around now: wall times and instants may run in different orders,
            # and a wall time before ``after``'s may still come (again).
            window = _MAX_FOLD_SHIFT
            start -= window
        for wall in self._wall_times(start):
            if best is not None and (wall.replace(tzinfo=zone, fold=0).astimezone(_UTC) - best
                                     > window):
                break
            for candidate in _instants(wall, zone):
                if candidate > after_utc and (best is None or candidate < best):
                    best = candidate
        return None if best is None else best.astimezone(zone)

    def times_between(self, start: datetime.datetime, end: datetime.datetime,
                      tz: datetime.tzinfo | None = None, *,
                      limit: int | None = None) -> list[datetime.datetime]:
        """The instants in ``(start, end]`` that fire, oldest first (at most ``limit``)."""
        found: list[datetime.datetime] = []
        t: datetime.datetime | None = start
        end_utc = end.astimezone(_UTC)
        while t is not None and (limit is None or len(found) < limit):
            t = self.next_after(t, tz)
            if t is None or t.astimezone(_UTC) > end_utc:
                break
            found.append(t)
        return found


def _instants(wall: datetime.datetime, zone: datetime.tzinfo) -> list[datetime.datetime]:
    """The instants (in UTC) whose reading in ``zone`` is ``wall``: none in a gap, two in a fold."""
    found: list[datetime.datetime] = []
    for fold in (0, 1):
        instant = wall.replace(tzinfo=zone, fold=fold).astimezone(_UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == wall and instant not in found:
            found.append(instant)
    return found


def parse_schedule(text: str) -> Schedule:
    """Parse a five-field schedule or a macro.

    Raises:
        ScheduleError: the schedule is malformed (the message names the field).
    """
    spec = text.strip()
    if spec.startswith("@"):
        fields_text = MACROS.get(spec.lower())
        if fields_text is None:
            raise ScheduleError(f"unrecognized descriptor: {spec}")
    else:
        fields_text = spec
    parts = fields_text.split()
    if len(parts) != 5:
        raise ScheduleError(f"expected exactly 5 fields, found {len(parts)}: {spec!r}")
    parsed = [_parse_field(part, field) for part, field in zip(parts, _FIELDS)]
    return Schedule(text=spec, minutes=parsed[0][0], hours=parsed[1][0],
                    days_of_month=parsed[2][0], months=parsed[3][0], days_of_week=parsed[4][0],
                    day_of_month_star=parsed[2][1], day_of_week_star=parsed[4][1])
