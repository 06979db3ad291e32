"""A job's call as the dashboard shows it, from the stored arguments."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from backburner.dashboard.calls import view_call
from backburner.jobs.serializer import encode_arguments


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (
            datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
            "datetime('2026-01-02T03:04:00+00:00')",
        ),
        (
            datetime(2026, 1, 2, 3, 4, tzinfo=ZoneInfo("Europe/Paris")),
            "datetime('2026-01-02T03:04:00+01:00', 'Europe/Paris')",
        ),
        (
            datetime(
                2026, 1, 2, 3, 4, tzinfo=timezone(timedelta(hours=1), "CET")
            ),
            "datetime('2026-01-02T03:04:00+01:00', tzname='CET')",
        ),
        (
            datetime(
                2026, 1, 2, 3, 4, tzinfo=timezone(timedelta(microseconds=7))
            ),
            "datetime('2026-01-02T03:04:00+00:00:00.000007')",
        ),
        (time(9, 30), "time('09:30:00')"),
        (
            time(9, 30, tzinfo=ZoneInfo("Europe/Paris")),
            "time('09:30:00', 'Europe/Paris')",
        ),
    ],
)
def test_datetimes_and_times_are_shown_with_their_zone(
    value: object, shown: str
) -> None:
    view = view_call("app:job", encode_arguments((value,), {}))

    (argument,) = view.arguments
    assert argument.text == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (
            timedelta(days=-1, microseconds=5),
            "timedelta(days=-1, microseconds=5)",
        ),
        (timedelta(minutes=90), "timedelta(seconds=5400)"),
        (timedelta(0), "timedelta(0)"),
        (b"\x00hi", "b'\\x00hi'"),
    ],
)
def test_durations_and_bytes_are_shown_as_python_writes_them(
    value: object, shown: str
) -> None:
    view = view_call("app:job", encode_arguments((value,), {}))

    (argument,) = view.arguments
    assert argument.text == shown
    assert argument.text == repr(value).removeprefix("datetime.")


def test_damaged_bytes_are_shown_as_stored() -> None:
    stored = '{"args":[{"__bb__":"bytes","v":"not base64!"}],"kwargs":{}}'

    (argument,) = view_call("app:job", stored).arguments

    assert argument.text == "b64decode('not base64!')"
