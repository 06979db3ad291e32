"""What the client refuses before anything is written."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from backburner.jobs import Client, JobOptions


def noop(*args: object, **kwargs: object) -> None:
    """A job function that is never run here."""


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    async with Client(f"sqlite:///{tmp_path / 'jobs.db'}") as client:
        yield client


@pytest.mark.parametrize(
    "delay",
    [-1, math.inf, -math.inf, math.nan, 1e300, timedelta.max, 10**12],
)
async def test_a_delay_that_is_not_a_usable_number_is_refused(
    client: Client, delay: float | timedelta
) -> None:
    with pytest.raises(ValueError, match="invalid delay"):
        await client.schedule(delay, noop)

    assert (await client.list_jobs()).jobs == []


@pytest.mark.parametrize("delay", [math.inf, 1e300, timedelta.max])
def test_job_options_refuse_an_unusable_delay_on_construction(
    delay: float | timedelta,
) -> None:
    with pytest.raises(ValueError, match=r"invalid delay"):
        JobOptions(delay=delay)


async def test_a_delay_of_many_years_is_still_accepted(
    client: Client,
) -> None:
    job_id = await client.schedule(timedelta(days=365 * 100), noop)

    job = await client.get(job_id)
    assert job.scheduled_at is not None
    assert job.scheduled_at.year >= 2100
