"""Declaring a retry policy: what ``retry()`` refuses."""

from __future__ import annotations

import math
from typing import Any

import pytest

from backburner.jobs import RetryPolicy, retry
from backburner.jobs.retry import policy_of


@pytest.mark.parametrize(
    "delay", [-1, math.nan, math.inf, 1e300, "30", None, True]
)
def test_a_delay_that_is_not_finite_seconds_is_refused(delay: Any) -> None:
    # A nan delay used to be accepted and fail only in the server, at
    # the job's first failure, leaving the job stuck in processing.
    with pytest.raises(ValueError, match="invalid delays"):
        retry(delays=[5, delay])


def test_a_policy_built_by_hand_refuses_them_too() -> None:
    with pytest.raises(ValueError, match="invalid delays"):
        RetryPolicy(delays=(math.nan,))


def test_finite_delays_are_kept_as_seconds() -> None:
    @retry(attempts=4, delays=[0, 1, 2.5])
    def job() -> None: ...

    assert policy_of(job).delays == (0.0, 1.0, 2.5)
