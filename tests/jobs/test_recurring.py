"""Recurring jobs: the client API and the scheduler's decisions.

The scheduler is driven with a fixed ``now`` here, so each test states
exactly which occurrences are due; ``test_recurring_servers.py`` runs it
in real servers against the clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import recurring_samples
from server_helpers import client, storage

from backburner.jobs import (
    Call,
    Client,
    InvalidCronError,
    JobArgumentError,
    JobFunctionError,
    JobState,
    MissedRunPolicy,
    RecurringJobNotFoundError,
    RecurringStatus,
    SyncClient,
)
from backburner.jobs.recurring_scheduler import RecurringScheduler
from backburner.storage import RecurringDefinition, Storage, open_storage

__all__ = ["client", "storage"]

pytestmark = pytest.mark.timeout(60)

T = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)
TICK = "recurring_samples:tick"


@pytest.fixture(autouse=True)
def fresh_samples() -> None:
    recurring_samples.reset()


async def save(
    storage: Storage,
    recurring_id: str,
    cron: str,
    next_run_at: datetime,
    *,
    missed: MissedRunPolicy = MissedRunPolicy.RUN_ONCE,
    function: str = TICK,
    time_zone: str = "UTC",
) -> None:
    """Store a recurring job whose next occurrence is ``next_run_at``."""
    await storage.save_recurring(
        RecurringDefinition(
            id=recurring_id,
            function=function,
            arguments='{"args":["x"],"kwargs":{}}',
            queue="default",
            cron=cron,
            time_zone=time_zone,
            missed=missed.value,
        ),
        next_run_at,
        next_run_at,
    )


async def occurrences(client: Client) -> list[str]:
    """The occurrence parameter of every job, oldest job first."""
    page = await client.list_jobs(limit=1000)
    found = []
    for job in reversed(page.jobs):
        found.append(await client.get_parameter(job.id, "occurrence"))
    return found


# -- the client API ------------------------------------------------------


async def test_a_recurring_job_is_listed_with_its_next_run(
    client: Client,
) -> None:
    before = datetime.now(UTC)

    added = await client.recurring.add_or_update(
        "nightly",
        "30 2 * * *",
        Call(recurring_samples.tick, "nightly"),
        time_zone="Europe/Berlin",
        queue="reports",
        job_timeout=60,
    )

    assert added.status is RecurringStatus.ACTIVE
    assert added.function == TICK
    assert added.arguments() == (("nightly",), {})
    assert (added.cron, added.time_zone, added.queue) == (
        "30 2 * * *",
        "Europe/Berlin",
        "reports",
    )
    assert (added.missed, added.timeout) == (MissedRunPolicy.RUN_ONCE, 60)
    assert added.next_run_at is not None
    assert before < added.next_run_at <= before + timedelta(days=1, hours=1)
    assert added.last_run_at is None
    assert await client.recurring.list() == [added]


async def test_bad_definitions_are_refused_and_nothing_is_written(
    client: Client,
) -> None:
    tick = Call(recurring_samples.tick, "x")
    with pytest.raises(InvalidCronError):
        await client.recurring.add_or_update("a", "* * *", tick)
    with pytest.raises(InvalidCronError):
        await client.recurring.add_or_update(
            "a", "* * * * *", tick, time_zone="Moon/Base"
        )
    with pytest.raises(ValueError, match="recurring job id"):
        await client.recurring.add_or_update("a b", "* * * * *", tick)
    with pytest.raises(ValueError, match="queue"):
        await client.recurring.add_or_update(
            "a", "* * * * *", tick, queue="no queue"
        )
    with pytest.raises(ValueError, match="sometimes"):
        await client.recurring.add_or_update(
            "a", "* * * * *", tick, missed="sometimes"
        )
    with pytest.raises(JobFunctionError):
        await client.recurring.add_or_update("a", "* * * * *", lambda: None)
    with pytest.raises(JobArgumentError):
        await client.recurring.add_or_update(
            "a", "* * * * *", Call(recurring_samples.tick, object())
        )

    assert await client.recurring.list() == []


async def test_an_update_keeps_the_next_occurrence_unless_the_cron_changes(
    client: Client,
) -> None:
    tick = Call(recurring_samples.tick, "x")
    first = await client.recurring.add_or_update("a", "0 3 * * *", tick)

    same = await client.recurring.add_or_update(
        "a", "0 3 * * *", Call(recurring_samples.async_tick, "y")
    )
    other = await client.recurring.add_or_update("a", "0 4 * * *", tick)

    assert same.next_run_at == first.next_run_at
    assert same.function == "recurring_samples:async_tick"
    assert other.next_run_at is not None
    assert first.next_run_at is not None
    assert other.next_run_at.hour == 4


async def test_pause_keeps_the_definition_and_resume_starts_from_now(
    client: Client,
) -> None:
    await client.recurring.add_or_update(
        "a", "* * * * * *", Call(recurring_samples.tick, "x")
    )

    await client.recurring.pause("a")
    paused = await client.recurring.get("a")
    await client.recurring.resume("a")
    resumed = await client.recurring.get("a")

    assert paused.status is RecurringStatus.PAUSED
    assert paused.paused
    assert paused.next_run_at is None
    assert paused.cron == "* * * * * *"
    assert resumed.status is RecurringStatus.ACTIVE
    assert resumed.next_run_at is not None
    assert resumed.next_run_at > paused.updated_at


async def test_trigger_creates_a_job_now_without_moving_the_schedule(
    client: Client,
) -> None:
    added = await client.recurring.add_or_update(
        "a", "0 3 * * *", Call(recurring_samples.tick, "x"), queue="mail"
    )

    job_id = await client.recurring.trigger("a")

    job = await client.get(job_id)
    assert (job.state, job.queue, job.function) == (
        JobState.ENQUEUED,
        "mail",
        TICK,
    )
    assert job.arguments() == (("x",), {})
    assert job.parameters["recurring_job"] == "a"
    after = await client.recurring.get("a")
    assert after.next_run_at == added.next_run_at
    assert (after.last_job_id, after.last_job_state) == (
        job_id,
        JobState.ENQUEUED,
    )
    assert after.last_run_at == job.created_at


async def test_the_listing_shows_the_last_jobs_outcome(
    client: Client,
) -> None:
    await client.recurring.add_or_update(
        "a", "0 3 * * *", Call(recurring_samples.tick, "x")
    )
    job_id = await client.recurring.trigger("a")

    await client.delete(job_id)

    (listed,) = await client.recurring.list()
    assert listed.last_job_state is JobState.DELETED


async def test_unknown_recurring_jobs_are_reported(client: Client) -> None:
    for operation in (
        client.recurring.get,
        client.recurring.remove,
        client.recurring.pause,
        client.recurring.resume,
        client.recurring.trigger,
    ):
        with pytest.raises(RecurringJobNotFoundError, match="'ghost'"):
            await operation("ghost")


async def test_removing_keeps_the_jobs_it_created(client: Client) -> None:
    await client.recurring.add_or_update(
        "a", "0 3 * * *", Call(recurring_samples.tick, "x")
    )
    job_id = await client.recurring.trigger("a")

    await client.recurring.remove("a")

    assert await client.recurring.list() == []
    assert (await client.get(job_id)).state is JobState.ENQUEUED


def test_the_blocking_client_has_recurring_jobs_too(tmp_path: Path) -> None:
    with SyncClient(f"sqlite:///{tmp_path / 'jobs.db'}") as sync:
        sync.recurring.add_or_update(
            "a", "0 3 * * *", Call(recurring_samples.tick, "x")
        )
        sync.recurring.pause("a")
        job_id = sync.recurring.trigger("a")

        listed = sync.recurring.list()
        assert [r.status for r in listed] == [RecurringStatus.PAUSED]
        assert sync.recurring.get("a").last_job_id == job_id
        sync.recurring.resume("a")
        sync.recurring.remove("a")
        assert sync.recurring.list() == []


# -- the scheduler -----------------------------------------------------------


async def test_a_due_occurrence_creates_one_job_and_moves_on(
    storage: Storage, client: Client
) -> None:
    await save(storage, "a", "* * * * *", T - timedelta(seconds=30))
    scheduler = RecurringScheduler(storage)

    created = await scheduler.schedule_due(T)
    again = await scheduler.schedule_due(T)

    assert (created, again) == (1, 0)
    assert await occurrences(client) == ["2026-06-01T12:00:00+00:00"]
    record = await client.recurring.get("a")
    assert record.next_run_at == T + timedelta(seconds=30)
    assert record.last_run_at == T - timedelta(seconds=30)


async def test_occurrences_take_the_mutex_their_function_declares(
    storage: Storage, client: Client
) -> None:
    # No client builds an occurrence: the scheduler and a trigger read
    # the declaration themselves.
    await save(
        storage,
        "a",
        "* * * * *",
        T - timedelta(seconds=30),
        function="recurring_samples:guarded_import",
    )
    await RecurringScheduler(storage).schedule_due(T)
    triggered = await client.recurring.trigger("a")

    page = await client.list_jobs()
    records = [await storage.get_job(job.id) for job in page.jobs]
    assert [(r.mutex, r.mutex_limit) for r in records if r] == [
        ("import:x", 2),
        ("import:x", 2),
    ]
    assert page.jobs[0].id == triggered


async def test_a_time_skipped_by_daylight_saving_runs_once_at_the_jump(
    storage: Storage, client: Client
) -> None:
    jump = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 02:00 CET -> 03:00
    await save(storage, "a", "30 2 * * *", jump, time_zone="Europe/Berlin")
    scheduler = RecurringScheduler(storage)

    created = [
        await scheduler.schedule_due(jump + timedelta(minutes=minutes))
        for minutes in (0, 30, 60)
    ]

    assert created == [1, 0, 0]
    record = await client.recurring.get("a")
    assert record.next_run_at == datetime(2026, 3, 30, 0, 30, tzinfo=UTC)


async def test_paused_recurring_jobs_create_nothing(
    storage: Storage, client: Client
) -> None:
    await save(storage, "a", "* * * * *", T - timedelta(seconds=30))
    await client.recurring.pause("a")

    assert await RecurringScheduler(storage).schedule_due(T) == 0


async def test_late_occurrences_within_the_grace_each_get_a_job(
    storage: Storage, client: Client
) -> None:
    await save(storage, "a", "*/10 * * * * *", T - timedelta(seconds=30))

    created = await RecurringScheduler(storage, grace=60).schedule_due(T)

    assert created == 4
    assert await occurrences(client) == [
        "2026-06-01T12:00:00+00:00",
        "2026-06-01T12:00:10+00:00",
        "2026-06-01T12:00:20+00:00",
        "2026-06-01T12:00:30+00:00",
    ]


async def test_missed_occurrences_run_once_by_default(
    storage: Storage, client: Client
) -> None:
    await save(
        storage, "a", "* * * * *", T - timedelta(minutes=10, seconds=30)
    )

    created = await RecurringScheduler(storage, grace=60).schedule_due(T)

    assert created == 1
    assert await occurrences(client) == [T.isoformat()]
    record = await client.recurring.get("a")
    assert record.next_run_at == T + timedelta(seconds=30)


async def test_missed_occurrences_can_all_run(
    storage: Storage, client: Client
) -> None:
    await save(
        storage,
        "a",
        "* * * * *",
        T - timedelta(minutes=10, seconds=30),
        missed=MissedRunPolicy.RUN_ALL,
    )

    created = await RecurringScheduler(storage, grace=60).schedule_due(T)

    assert created == 11
    found = await occurrences(client)
    assert found[0] == "2026-06-01T11:50:00+00:00"
    assert found[-1] == "2026-06-01T12:00:00+00:00"
    assert len(set(found)) == 11


async def test_many_missed_occurrences_are_created_in_batches(
    storage: Storage, client: Client
) -> None:
    await save(
        storage,
        "a",
        "* * * * * *",
        T - timedelta(seconds=250),
        missed=MissedRunPolicy.RUN_ALL,
    )

    created = await RecurringScheduler(storage).schedule_due(T)

    assert created == 251
    assert len(set(await occurrences(client))) == 251


async def test_missed_occurrences_can_be_skipped(
    storage: Storage, client: Client
) -> None:
    await save(
        storage,
        "a",
        "* * * * *",
        T - timedelta(minutes=10, seconds=30),
        missed=MissedRunPolicy.SKIP,
    )

    created = await RecurringScheduler(storage, grace=10).schedule_due(T)

    assert created == 0
    record = await client.recurring.get("a")
    assert record.next_run_at == T + timedelta(seconds=30)
    assert record.status is RecurringStatus.ACTIVE


async def test_a_function_that_no_longer_imports_stops_after_a_few_tries(
    storage: Storage, client: Client
) -> None:
    await save(storage, "a", "* * * * *", T, function="gone_module:job")
    scheduler = RecurringScheduler(storage, attempts=3, retry_delay=5)

    tries = []
    for attempt in range(4):
        now = T + timedelta(seconds=5 * attempt)
        tries.append(await scheduler.schedule_due(now))
        tries.append((await client.recurring.get("a")).status)

    assert tries == [
        0,
        RecurringStatus.ACTIVE,
        0,
        RecurringStatus.ACTIVE,
        0,
        RecurringStatus.STOPPED,
        0,
        RecurringStatus.STOPPED,
    ]
    stopped = await client.recurring.get("a")
    assert stopped.error is not None
    assert "cannot import job function gone_module:job" in stopped.error
    assert "attempt 3 of 3" in stopped.error
    assert stopped.failures == 3
    assert (await client.list_jobs()).jobs == []


async def test_a_stopped_recurring_job_starts_again_when_fixed(
    storage: Storage, client: Client
) -> None:
    await save(storage, "a", "* * * * *", T, function="gone_module:job")
    await RecurringScheduler(storage, attempts=1).schedule_due(T)

    fixed = await client.recurring.add_or_update(
        "a", "* * * * *", Call(recurring_samples.tick, "x")
    )

    assert fixed.status is RecurringStatus.ACTIVE
    assert (fixed.error, fixed.failures) == (None, 0)


@pytest.fixture
async def three_storages(tmp_path: Path) -> AsyncIterator[list[Storage]]:
    """Three storages (three connections) on one SQLite file."""
    opened = [open_storage(f"sqlite:///{tmp_path / 'jobs.db'}") for _ in "abc"]
    try:
        yield opened
    finally:
        for each in opened:
            await each.close()


async def test_racing_schedulers_create_each_occurrence_once(
    three_storages: list[Storage],
) -> None:
    first = three_storages[0]
    await first.migrate()
    for name in "abcdefgh":
        await save(first, name, "*/5 * * * * *", T - timedelta(seconds=30))
    schedulers = [RecurringScheduler(each) for each in three_storages]

    created = await asyncio.gather(*(s.schedule_due(T) for s in schedulers))

    assert sum(created) == 8 * 7
    jobs = await first.list_jobs(limit=1000)
    keys = set()
    for job in jobs:
        parameters = await first.get_parameters(job.id)
        keys.add((parameters["recurring_job"], parameters["occurrence"]))
    assert len(jobs) == len(keys) == 8 * 7
