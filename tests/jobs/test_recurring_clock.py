"""Recurring jobs when a server's wall clock was wrong, then corrected.

The scheduler is given each pass's ``now`` by the test, so a clock that
jumps an hour ahead and back takes no waiting and no faketime;
``tests/chaos/test_clock.py`` does the same to a real server process.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from server_helpers import client, storage

from backburner.jobs import Client, MissedRunPolicy
from backburner.jobs.recurring_scheduler import RecurringScheduler
from backburner.storage import RecurringDefinition, Storage, open_storage

__all__ = ["client", "storage"]

pytestmark = pytest.mark.timeout(60)

T = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)
EVERY_TWO_SECONDS = "*/2 * * * * *"


async def save(
    storage: Storage,
    recurring_id: str,
    cron: str,
    next_run_at: datetime,
    *,
    function: str = "recurring_samples:tick",
) -> None:
    """Store a recurring job whose next occurrence is ``next_run_at``."""
    await storage.save_recurring(
        RecurringDefinition(
            id=recurring_id,
            function=function,
            arguments='{"args":["x"],"kwargs":{}}',
            queue="default",
            cron=cron,
            time_zone="UTC",
            missed=MissedRunPolicy.RUN_ONCE.value,
        ),
        next_run_at,
        next_run_at,
    )


async def occurrences(client: Client) -> list[str]:
    """The occurrence parameter of every job, oldest job first."""
    page = await client.list_jobs(limit=1000)
    return [
        await client.get_parameter(job.id, "occurrence")
        for job in reversed(page.jobs)
    ]


async def test_a_plan_made_an_hour_ahead_is_moved_back_to_now(
    storage: Storage, client: Client
) -> None:
    await save(storage, "tick", EVERY_TWO_SECONDS, T + HOUR)
    scheduler = RecurringScheduler(storage, grace=60)

    looked = await scheduler.schedule_due(T)
    fired = await scheduler.schedule_due(T + timedelta(seconds=2))

    assert (looked, fired) == (0, 1)
    assert await occurrences(client) == ["2026-06-01T12:00:32+00:00"]
    record = await client.recurring.get("tick")
    assert record.next_run_at == T + timedelta(seconds=4)


async def test_ticks_resume_at_once_when_the_clock_steps_back(
    storage: Storage, client: Client
) -> None:
    await save(storage, "tick", EVERY_TWO_SECONDS, T)
    scheduler = RecurringScheduler(storage, grace=60)

    before = await scheduler.schedule_due(T)
    ahead = await scheduler.schedule_due(T + HOUR)
    # Back to the right time a moment later (monotonic time barely
    # moved), long before the periodic look for such plans.
    back = await scheduler.schedule_due(T + timedelta(seconds=1))
    resumed = await scheduler.schedule_due(T + timedelta(seconds=2))

    assert (before, ahead, back, resumed) == (1, 1, 0, 1)
    assert (await occurrences(client))[-1] == "2026-06-01T12:00:32+00:00"
    record = await client.recurring.get("tick")
    assert record.next_run_at == T + timedelta(seconds=4)


async def test_a_plan_less_than_the_grace_ahead_is_kept(
    storage: Storage, client: Client
) -> None:
    # Planned by a server whose clock is 30 s ahead of this one.
    planned = T + timedelta(seconds=40)
    await save(storage, "tick", "*/10 * * * * *", planned)

    created = await RecurringScheduler(storage, grace=60).schedule_due(T)

    assert created == 0
    assert (await client.recurring.get("tick")).next_run_at == planned


async def test_an_import_retry_planned_ahead_is_moved_back(
    storage: Storage, client: Client
) -> None:
    await save(storage, "gone", "* * * * *", T + HOUR, function="gone:job")
    ahead = RecurringScheduler(storage, grace=60, retry_delay=5)
    await ahead.schedule_due(T + HOUR)

    corrected = RecurringScheduler(storage, grace=60, retry_delay=5)
    await corrected.schedule_due(T)

    record = await client.recurring.get("gone")
    assert record.next_run_at == T + timedelta(seconds=5)
    assert record.failures == 1
    assert record.error is not None
    assert "gone:job" in record.error


@pytest.fixture
async def three_storages(tmp_path: Path) -> AsyncIterator[list[Storage]]:
    """Three storages (three connections) on one SQLite file."""
    opened = [open_storage(f"sqlite:///{tmp_path / 'jobs.db'}") for _ in "abc"]
    try:
        yield opened
    finally:
        for each in opened:
            await each.close()


async def test_racing_schedulers_move_a_plan_back_and_fire_it_once(
    three_storages: list[Storage],
) -> None:
    first = three_storages[0]
    await first.migrate()
    for name in "abcd":
        await save(first, name, EVERY_TWO_SECONDS, T + HOUR)
    schedulers = [RecurringScheduler(each) for each in three_storages]

    looked = await asyncio.gather(*(s.schedule_due(T) for s in schedulers))
    later = T + timedelta(seconds=4)
    fired = await asyncio.gather(*(s.schedule_due(later) for s in schedulers))

    assert sum(looked) == 0
    assert sum(fired) == 4 * 2
    jobs = await first.list_jobs(limit=1000)
    keys = set()
    for job in jobs:
        parameters = await first.get_parameters(job.id)
        keys.add((parameters["recurring_job"], parameters["occurrence"]))
    assert len(jobs) == len(keys) == 4 * 2
