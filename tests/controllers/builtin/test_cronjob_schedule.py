"""The cron parser: fields, macros, the day-of-month/day-of-week rule, time zones and DST."""

from __future__ import annotations

import datetime
import zoneinfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controllers.builtin.cronjob.schedule import MACROS, ScheduleError, parse_schedule

UTC = datetime.UTC
NY = zoneinfo.ZoneInfo("America/New_York")
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
LORD_HOWE = zoneinfo.ZoneInfo("Australia/Lord_Howe")


def utc(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


def iso(moment: datetime.datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


# (expression, after (UTC), the next five times (UTC))
NEXT_TIMES = [
    ("* * * * *", "2024-01-01T00:00:30",
     ["2024-01-01T00:01", "2024-01-01T00:02", "2024-01-01T00:03", "2024-01-01T00:04",
      "2024-01-01T00:05"]),
    ("*/15 * * * *", "2024-01-01T00:00",
     ["2024-01-01T00:15", "2024-01-01T00:30", "2024-01-01T00:45", "2024-01-01T01:00",
      "2024-01-01T01:15"]),
    ("5,10-12 3 * * *", "2024-01-01T00:00",
     ["2024-01-01T03:05", "2024-01-01T03:10", "2024-01-01T03:11", "2024-01-01T03:12",
      "2024-01-02T03:05"]),
    ("0 9-17/4 * * *", "2024-01-01T10:00",
     ["2024-01-01T13:00", "2024-01-01T17:00", "2024-01-02T09:00", "2024-01-02T13:00",
      "2024-01-02T17:00"]),
    ("30 5/6 * * *", "2024-01-01T00:00",
     ["2024-01-01T05:30", "2024-01-01T11:30", "2024-01-01T17:30", "2024-01-01T23:30",
      "2024-01-02T05:30"]),
    # Weekday names and ranges; 2024-01-01 is a Monday.
    ("0 8 * * mon-fri", "2024-01-05T09:00",
     ["2024-01-08T08:00", "2024-01-09T08:00", "2024-01-10T08:00", "2024-01-11T08:00",
      "2024-01-12T08:00"]),
    # Sunday as 0 and as 7.
    ("0 0 * * 0", "2024-01-01T00:00",
     ["2024-01-07T00:00", "2024-01-14T00:00", "2024-01-21T00:00", "2024-01-28T00:00",
      "2024-02-04T00:00"]),
    ("0 0 * * 7", "2024-01-01T00:00",
     ["2024-01-07T00:00", "2024-01-14T00:00", "2024-01-21T00:00", "2024-01-28T00:00",
      "2024-02-04T00:00"]),
    ("0 0 * * SUN,Sat", "2024-01-01T00:00",
     ["2024-01-06T00:00", "2024-01-07T00:00", "2024-01-13T00:00", "2024-01-14T00:00",
      "2024-01-20T00:00"]),
    # Month names.
    ("0 12 1 jan,JUL *", "2024-01-01T12:00",
     ["2024-07-01T12:00", "2025-01-01T12:00", "2025-07-01T12:00", "2026-01-01T12:00",
      "2026-07-01T12:00"]),
    # Both day fields restricted: either matches (the 13th, or any Friday).
    ("0 0 13 * 5", "2024-09-01T00:00",
     ["2024-09-06T00:00", "2024-09-13T00:00", "2024-09-20T00:00", "2024-09-27T00:00",
      "2024-10-04T00:00"]),
    # Day of week a star: only day of month counts.
    ("0 0 13 * *", "2024-09-01T00:00",
     ["2024-09-13T00:00", "2024-10-13T00:00", "2024-11-13T00:00", "2024-12-13T00:00",
      "2025-01-13T00:00"]),
    # A stepped star is a restriction: OR again (every 2nd day from the 1st, or Mondays).
    ("0 0 */10 * 1", "2024-01-01T00:00",
     ["2024-01-08T00:00", "2024-01-11T00:00", "2024-01-15T00:00", "2024-01-21T00:00",
      "2024-01-22T00:00"]),
    # The 31st only in months that have it.
    ("0 0 31 * *", "2024-01-31T00:00",
     ["2024-03-31T00:00", "2024-05-31T00:00", "2024-07-31T00:00", "2024-08-31T00:00",
      "2024-10-31T00:00"]),
    # February 29: leap years only, and 2100 is not one.
    ("0 0 29 2 *", "2024-03-01T00:00",
     ["2028-02-29T00:00", "2032-02-29T00:00", "2036-02-29T00:00", "2040-02-29T00:00",
      "2044-02-29T00:00"]),
    ("0 0 29 feb *", "2096-03-01T00:00",
     ["2104-02-29T00:00", "2108-02-29T00:00", "2112-02-29T00:00", "2116-02-29T00:00",
      "2120-02-29T00:00"]),
    # Year and month rollover.
    ("59 23 31 12 *", "2024-12-31T23:59",
     ["2025-12-31T23:59", "2026-12-31T23:59", "2027-12-31T23:59", "2028-12-31T23:59",
      "2029-12-31T23:59"]),
    ("? * ? * ?", "2024-01-01T00:00",
     ["2024-01-01T00:01", "2024-01-01T00:02", "2024-01-01T00:03", "2024-01-01T00:04",
      "2024-01-01T00:05"]),
]


@pytest.mark.parametrize(("expr", "after", "expected"), NEXT_TIMES,
                         ids=[row[0] for row in NEXT_TIMES])
def test_next_times(expr: str, after: str, expected: list[str]) -> None:
    schedule = parse_schedule(expr)
    got: list[str] = []
    t = utc(after)
    for _ in expected:
        nxt = schedule.next_after(t)
        assert nxt is not None
        got.append(nxt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M"))
        t = nxt
    assert got == expected


@pytest.mark.parametrize(("macro", "after", "expected"), [
    ("@yearly", "2024-03-01T00:00", "2025-01-01T00:00:00+00:00"),
    ("@annually", "2024-03-01T00:00", "2025-01-01T00:00:00+00:00"),
    ("@monthly", "2024-03-01T00:00", "2024-04-01T00:00:00+00:00"),
    ("@weekly", "2024-01-01T00:00", "2024-01-07T00:00:00+00:00"),
    ("@daily", "2024-01-01T10:00", "2024-01-02T00:00:00+00:00"),
    ("@midnight", "2024-01-01T10:00", "2024-01-02T00:00:00+00:00"),
    ("@hourly", "2024-01-01T10:00", "2024-01-01T11:00:00+00:00"),
    ("@HOURLY", "2024-01-01T10:59", "2024-01-01T11:00:00+00:00"),
])
def test_macros(macro: str, after: str, expected: str) -> None:
    assert iso(parse_schedule(macro).next_after(utc(after))) == expected


def test_macros_equal_their_fields() -> None:
    for macro, fields in MACROS.items():
        a, b = parse_schedule(macro), parse_schedule(fields)
        assert (a.minutes, a.hours, a.days_of_month, a.months, a.days_of_week) == (
            b.minutes, b.hours, b.days_of_month, b.months, b.days_of_week)


def test_next_is_strictly_after_and_seconds_round_up() -> None:
    s = parse_schedule("0 * * * *")
    assert iso(s.next_after(utc("2024-01-01T10:00"))) == "2024-01-01T11:00:00+00:00"
    assert iso(s.next_after(utc("2024-01-01T09:59:59"))) == "2024-01-01T10:00:00+00:00"


def test_never_firing_schedule_returns_none() -> None:
    assert parse_schedule("0 0 30 2 *").next_after(utc("2024-01-01T00:00")) is None
    assert parse_schedule("0 0 31 4,6,9,11 *").next_after(utc("2024-01-01T00:00")) is None


def test_naive_after_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_schedule("* * * * *").next_after(datetime.datetime(2024, 1, 1))


# -- time zones and daylight saving ---------------------------------------------------------
def test_schedule_read_in_time_zone() -> None:
    s = parse_schedule("0 9 * * *")
    nxt = s.next_after(utc("2024-01-01T00:00"), NY)
    assert iso(nxt) == "2024-01-01T09:00:00-05:00"
    assert nxt is not None and nxt.astimezone(UTC).hour == 14
    summer = s.next_after(utc("2024-07-01T00:00"), NY)
    assert iso(summer) == "2024-07-01T09:00:00-04:00"


def test_spring_forward_skips_the_missing_wall_time() -> None:
    # 2024-03-10 02:00 EST jumps to 03:00 EDT: 02:30 does not exist that day.
    s = parse_schedule("30 2 * * *")
    after = datetime.datetime(2024, 3, 9, 12, 0, tzinfo=NY)
    assert iso(s.next_after(after, NY)) == "2024-03-11T02:30:00-04:00"
    hourly = parse_schedule("0 * * * *")
    times = hourly.times_between(datetime.datetime(2024, 3, 10, 0, 0, tzinfo=NY),
                                 datetime.datetime(2024, 3, 10, 4, 0, tzinfo=NY), NY)
    assert [iso(t) for t in times] == ["2024-03-10T01:00:00-05:00",
                                       "2024-03-10T03:00:00-04:00",
                                       "2024-03-10T04:00:00-04:00"]


def test_fall_back_fires_the_repeated_wall_time_twice() -> None:
    # 2024-11-03 02:00 EDT goes back to 01:00 EST: 01:30 happens twice.
    s = parse_schedule("30 1 * * *")
    start = datetime.datetime(2024, 11, 2, 12, 0, tzinfo=NY)
    times = s.times_between(start, start + datetime.timedelta(days=2), NY)
    assert [t.astimezone(UTC).isoformat() for t in times] == [
        "2024-11-03T05:30:00+00:00", "2024-11-03T06:30:00+00:00", "2024-11-04T06:30:00+00:00"]
    # From 01:45 EDT the next 01:30 is the repeated one, 01:30 EST, 45 minutes later.
    again = s.next_after(datetime.datetime(2024, 11, 3, 1, 45, tzinfo=NY), NY)
    assert again is not None and again.astimezone(UTC).isoformat() == \
        "2024-11-03T06:30:00+00:00"
    hourly = parse_schedule("0 * * * *").times_between(
        utc("2024-11-03T04:30"), utc("2024-11-03T08:30"), NY)
    assert [t.astimezone(UTC).strftime("%H:%M") for t in hourly] == [
        "05:00", "06:00", "07:00", "08:00"]
    assert [t.strftime("%H:%M%z") for t in hourly] == [
        "01:00-0400", "01:00-0500", "02:00-0500", "03:00-0500"]


def test_europe_transitions() -> None:
    s = parse_schedule("30 2 * * *")
    # 2024-03-31: 02:00 CET -> 03:00 CEST; 2024-10-27: 03:00 CEST -> 02:00 CET.
    spring = s.times_between(utc("2024-03-30T00:00"), utc("2024-04-01T12:00"), BERLIN)
    assert [iso(t) for t in spring] == ["2024-03-30T02:30:00+01:00",
                                        "2024-04-01T02:30:00+02:00"]
    autumn = s.times_between(utc("2024-10-26T12:00"), utc("2024-10-28T12:00"), BERLIN)
    assert [t.astimezone(UTC).isoformat() for t in autumn] == [
        "2024-10-27T00:30:00+00:00", "2024-10-27T01:30:00+00:00", "2024-10-28T01:30:00+00:00"]


def test_half_hour_dst_shift() -> None:
    # Lord Howe moves its clocks by 30 minutes: 2024-10-06 02:00 -> 02:30.
    s = parse_schedule("15 2 * * *")
    times = s.times_between(utc("2024-10-04T12:00"), utc("2024-10-07T12:00"), LORD_HOWE)
    assert [t.strftime("%m-%d %H:%M") for t in times] == ["10-05 02:15", "10-07 02:15"]


def test_times_between_limit() -> None:
    s = parse_schedule("* * * * *")
    got = s.times_between(utc("2024-01-01T00:00"), utc("2024-01-02T00:00"), limit=3)
    assert [t.strftime("%H:%M") for t in got] == ["00:01", "00:02", "00:03"]


# -- errors ------------------------------------------------------------------------------
@pytest.mark.parametrize(("expr", "message"), [
    ("", "expected exactly 5 fields, found 0: ''"),
    ("* * * *", "expected exactly 5 fields, found 4: '* * * *'"),
    ("* * * * * *", "expected exactly 5 fields, found 6: '* * * * * *'"),
    ("60 * * * *", "minute: 60 is out of range 0-59"),
    ("* 24 * * *", "hour: 24 is out of range 0-23"),
    ("* * 0 * *", "day of month: 0 is out of range 1-31"),
    ("* * 32 * *", "day of month: 32 is out of range 1-31"),
    ("* * * 13 *", "month: 13 is out of range 1-12"),
    ("* * * 0 *", "month: 0 is out of range 1-12"),
    ("* * * * 8", "day of week: 8 is out of range 0-7"),
    ("5-3 * * * *", "minute: range '5-3' runs backwards"),
    ("*/0 * * * *", "minute: step must be positive"),
    ("*/x * * * *", "minute: step 'x' is not a number"),
    ("a * * * *", "minute: 'a' is not a number"),
    ("* * * foo *", "month: 'foo' is not a number or a name"),
    ("* * * * funday", "day of week: 'funday' is not a number or a name"),
    ("1,,2 * * * *", "minute: empty list element in '1,,2'"),
    ("-1 * * * *", "minute: '' is not a number"),
    ("@fortnightly", "unrecognized descriptor: @fortnightly"),
    ("@every 5m", "unrecognized descriptor: @every 5m"),
])
def test_invalid_expressions(expr: str, message: str) -> None:
    with pytest.raises(ScheduleError) as info:
        parse_schedule(expr)
    assert str(info.value) == message


# -- properties ------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(minute=st.integers(0, 59), hour=st.integers(0, 23),
       start=st.datetimes(min_value=datetime.datetime(2000, 1, 1),
                          max_value=datetime.datetime(2090, 1, 1)))
def test_next_matches_and_nothing_is_skipped(minute: int, hour: int,
                                             start: datetime.datetime) -> None:
    s = parse_schedule(f"{minute} {hour} * * *")
    after = start.replace(tzinfo=UTC)
    nxt = s.next_after(after)
    assert nxt is not None and nxt > after
    assert (nxt.minute, nxt.hour) == (minute, hour)
    assert nxt - after <= datetime.timedelta(days=1)


@settings(max_examples=40, deadline=None)
@given(minute=st.sampled_from(["0", "30", "*/20", "15,45"]),
       hour=st.sampled_from(["*", "1", "2", "0-3", "1,2"]),
       zone=st.sampled_from([NY, BERLIN, LORD_HOWE]),
       offset_minutes=st.integers(-6 * 60, 6 * 60),
       transition=st.sampled_from(["2024-03-10T07:00", "2024-11-03T06:00", "2024-03-31T01:00",
                                   "2024-10-27T01:00", "2024-10-05T15:00", "2024-04-06T15:00"]))
def test_next_equals_a_minute_by_minute_scan_around_transitions(
        minute: str, hour: str, zone: zoneinfo.ZoneInfo, offset_minutes: int,
        transition: str) -> None:
    s = parse_schedule(f"{minute} {hour} * * *")
    after = utc(transition) + datetime.timedelta(minutes=offset_minutes, seconds=10)
    t = after.replace(second=0) + datetime.timedelta(minutes=1)
    while not s.matches(t.astimezone(zone)):
        t += datetime.timedelta(minutes=1)
    got = s.next_after(after, zone)
    assert got is not None and got.astimezone(UTC) == t
