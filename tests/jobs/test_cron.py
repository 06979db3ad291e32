"""Cron expressions in time zones, pinned across daylight-saving changes.

2026 changes: Europe/Berlin jumps 02:00 -> 03:00 on 29 March and falls
back 03:00 -> 02:00 on 25 October; America/New_York jumps 02:00 -> 03:00
on 8 March and falls back 02:00 -> 01:00 on 1 November.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from backburner.jobs.cron import CronSchedule, InvalidCronError


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def take(schedule: CronSchedule, after: datetime, count: int) -> list[str]:
    """The next ``count`` occurrences as local ISO times."""
    zone = schedule.time_zone
    return [
        moment.astimezone(zone).isoformat()
        for moment in itertools.islice(schedule.occurrences(after), count)
    ]


# -- wall-clock schedules (a fixed hour) --------------------------------


def test_berlin_time_skipped_at_spring_forward_runs_once_at_the_jump() -> None:
    daily = CronSchedule("30 2 * * *", "Europe/Berlin")

    assert take(daily, utc(2026, 3, 27, 12), 3) == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]


def test_berlin_time_repeated_at_fall_back_runs_once_at_first_pass() -> None:
    daily = CronSchedule("30 2 * * *", "Europe/Berlin")

    assert take(daily, utc(2026, 10, 24, 12), 2) == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
    ]


def test_asking_during_the_second_pass_does_not_run_the_time_again() -> None:
    daily = CronSchedule("30 2 * * *", "Europe/Berlin")
    second_pass = utc(2026, 10, 25, 1, 10)  # 02:10 CET, after 02:30 CEST

    assert daily.next_after(second_pass) == utc(2026, 10, 26, 1, 30)


def test_several_skipped_times_still_run_once() -> None:
    quarterly = CronSchedule("*/15 2 * * *", "Europe/Berlin")

    assert take(quarterly, utc(2026, 3, 28, 23), 3) == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:00:00+02:00",
        "2026-03-30T02:15:00+02:00",
    ]


def test_a_time_just_after_the_jump_is_not_run_twice() -> None:
    both = CronSchedule("0,30 2,3 * * *", "Europe/Berlin")

    assert take(both, utc(2026, 3, 28, 23), 3) == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T03:30:00+02:00",
        "2026-03-30T02:00:00+02:00",
    ]


def test_new_york_six_field_daily_time_follows_the_same_policy() -> None:
    skipped = CronSchedule("0 30 2 * * *", "America/New_York")
    repeated = CronSchedule("0 30 1 * * *", "America/New_York")

    assert take(skipped, utc(2026, 3, 7, 12), 2) == [
        "2026-03-08T03:00:00-04:00",
        "2026-03-09T02:30:00-04:00",
    ]
    assert take(repeated, utc(2026, 10, 31, 12), 2) == [
        "2026-11-01T01:30:00-04:00",
        "2026-11-02T01:30:00-05:00",
    ]


# -- real-time schedules (hour field *) ---------------------------------


@pytest.mark.parametrize(
    ("zone", "start"),
    [
        ("Europe/Berlin", utc(2026, 3, 28, 22)),
        ("Europe/Berlin", utc(2026, 10, 24, 22)),
        ("America/New_York", utc(2026, 3, 8, 4)),
        ("America/New_York", utc(2026, 11, 1, 3)),
    ],
)
def test_hourly_keeps_firing_every_hour_across_the_change(
    zone: str, start: datetime
) -> None:
    hourly = CronSchedule("0 * * * *", zone)

    runs = list(itertools.islice(hourly.occurrences(start), 6))

    gaps = {later - earlier for earlier, later in itertools.pairwise(runs)}
    assert gaps == {timedelta(hours=1)}
    offsets = {run.astimezone(ZoneInfo(zone)).utcoffset() for run in runs}
    assert len(offsets) == 2  # The window really spans the change.


def test_the_repeated_hour_fires_twice_on_an_hourly_schedule() -> None:
    hourly = CronSchedule("15 * * * *", "America/New_York")

    assert take(hourly, utc(2026, 11, 1, 5), 3) == [
        "2026-11-01T01:15:00-04:00",
        "2026-11-01T01:15:00-05:00",
        "2026-11-01T02:15:00-05:00",
    ]


def test_every_second_schedule_has_no_gap_or_repeat_across_changes() -> None:
    every_second = CronSchedule("* * * * * *", "Europe/Berlin")

    for change in (utc(2026, 3, 29, 1), utc(2026, 10, 25, 1)):
        start = change - timedelta(seconds=5)
        runs = list(itertools.islice(every_second.occurrences(start), 10))
        assert runs == [start + timedelta(seconds=n) for n in range(1, 11)]


# -- calendar edge cases -------------------------------------------------


def test_29_february_runs_in_leap_years_only() -> None:
    leap_day = CronSchedule("0 9 29 2 *", "Europe/Berlin")

    assert take(leap_day, utc(2026, 1, 1), 2) == [
        "2028-02-29T09:00:00+01:00",
        "2032-02-29T09:00:00+01:00",
    ]


def test_last_day_of_month() -> None:
    month_end = CronSchedule("0 18 L * *")

    assert take(month_end, utc(2027, 12, 31, 20), 4) == [
        "2028-01-31T18:00:00+00:00",
        "2028-02-29T18:00:00+00:00",
        "2028-03-31T18:00:00+00:00",
        "2028-04-30T18:00:00+00:00",
    ]


def test_six_fields_every_second() -> None:
    every_second = CronSchedule("* * * * * *")
    after = utc(2026, 5, 1, 12, 0, 0) + timedelta(microseconds=400_000)

    assert every_second.has_seconds
    assert list(itertools.islice(every_second.occurrences(after), 3)) == [
        utc(2026, 5, 1, 12, 0, 1),
        utc(2026, 5, 1, 12, 0, 2),
        utc(2026, 5, 1, 12, 0, 3),
    ]


def test_occurrences_are_strictly_after_the_given_moment() -> None:
    minutely = CronSchedule("* * * * *")

    assert minutely.next_after(utc(2026, 5, 1, 12, 0)) == utc(
        2026, 5, 1, 12, 1
    )


# -- macros ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("macro", "first", "second"),
    [
        ("@hourly", utc(2026, 5, 1, 13), utc(2026, 5, 1, 14)),
        ("@daily", utc(2026, 5, 2), utc(2026, 5, 3)),
        ("@midnight", utc(2026, 5, 2), utc(2026, 5, 3)),
        ("@weekly", utc(2026, 5, 3), utc(2026, 5, 10)),  # Sundays
        ("@monthly", utc(2026, 6, 1), utc(2026, 7, 1)),
        ("@yearly", utc(2027, 1, 1), utc(2028, 1, 1)),
        ("@annually", utc(2027, 1, 1), utc(2028, 1, 1)),
        (" @Daily ", utc(2026, 5, 2), utc(2026, 5, 3)),
    ],
)
def test_a_macro_fires_like_its_five_field_form(
    macro: str, first: datetime, second: datetime
) -> None:
    schedule = CronSchedule(macro)
    after = utc(2026, 5, 1, 12, 30)

    assert list(itertools.islice(schedule.occurrences(after), 2)) == [
        first,
        second,
    ]
    assert len(schedule.expression.split()) == 5


def test_a_daily_macro_follows_the_wall_clock_in_a_time_zone() -> None:
    daily = CronSchedule("@daily", "Europe/Berlin")

    assert take(daily, utc(2026, 5, 1, 12), 1) == ["2026-05-02T00:00:00+02:00"]


@pytest.mark.parametrize("macro", ["@reboot", "@every 5m", "@", "@day"])
def test_an_unknown_macro_is_refused_by_name(macro: str) -> None:
    with pytest.raises(InvalidCronError, match="unknown cron macro") as error:
        CronSchedule(macro)

    assert "@hourly" in str(error.value)


# -- bad input -------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    ["", "* * * *", "* * * * * * *", "61 * * * *", "* 24 * * *", "x * * * *"],
)
def test_malformed_expressions_are_refused(expression: str) -> None:
    with pytest.raises(InvalidCronError, match="cron expression"):
        CronSchedule(expression)


def test_an_expression_that_never_fires_is_refused() -> None:
    with pytest.raises(InvalidCronError):
        CronSchedule("0 0 30 2 *")


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", " UTC", "../etc"])
def test_unknown_time_zones_are_refused(zone: str) -> None:
    with pytest.raises(InvalidCronError, match="time zone"):
        CronSchedule("* * * * *", zone)


def test_a_naive_moment_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CronSchedule("* * * * *").next_after(datetime(2026, 1, 1))
