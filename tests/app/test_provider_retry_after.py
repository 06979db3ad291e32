"""Reading a provider's Retry-After header into seconds to wait."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from catalogue.retry_after import MAX_RETRY_AFTER, retry_after_seconds

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("86400", MAX_RETRY_AFTER),
        ("9" * 400, MAX_RETRY_AFTER),
        (http_date(NOW + timedelta(seconds=45)), 45.0),
        (http_date(NOW - timedelta(hours=1)), 0.0),
        (http_date(NOW + timedelta(days=2)), MAX_RETRY_AFTER),
        ("Sun, 01 Mar 2026 12:00:30", 30.0),  # no zone: GMT
    ],
)
def test_seconds_and_http_dates_are_read_and_capped(
    value: str, seconds: float
) -> None:
    assert retry_after_seconds(value, NOW) == seconds


@pytest.mark.parametrize(
    "value", [None, "", "soon", "-5", "1.5", "\u0663", "Mon, 99 Oct 2015"]
)
def test_anything_else_is_no_answer(value: str | None) -> None:
    assert retry_after_seconds(value, NOW) is None
