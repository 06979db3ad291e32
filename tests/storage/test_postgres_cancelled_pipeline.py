"""A bulk enqueue cut short mid-pipeline must not leave its
connection inside a transaction for the pool's next caller."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from backburner.storage import JobState, NewJob, StorageError, open_storage
from backburner.storage.postgres import PostgresStorage

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]

Admin = Callable[..., list[tuple[object, ...]]]
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def new_job(arguments: str) -> NewJob:
    return NewJob(
        function="app.jobs:send",
        arguments=arguments,
        queue="default",
        state=JobState.ENQUEUED,
        reason="enqueued",
        created_at=NOW,
    )


def stored(admin: Admin, job_id: int) -> bool:
    rows = admin("SELECT count(*) FROM jobs WHERE id = %s", job_id)
    return rows == [(1,)]


async def test_an_enqueue_after_a_cancelled_bulk_one_is_committed(
    postgres_storage_url: str, admin: Admin
) -> None:
    # One pooled connection: the next call gets the cancelled one's.
    storage = open_storage(postgres_storage_url + "&pool_max_size=1")
    assert isinstance(storage, PostgresStorage)
    await storage.migrate()
    jobs = [new_job(f'{{"args":[{n}],"kwargs":{{}}}}') for n in range(1000)]
    try:
        await storage.create_jobs(jobs[:1])
        for step in range(10):
            call = asyncio.create_task(storage.create_jobs(jobs))
            await asyncio.sleep(step * 0.003)
            call.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await call

            job_id = await storage.create_job(new_job("{}"))

            assert stored(admin, job_id), f"step {step}"
    finally:
        await storage.close()


async def test_an_enqueue_after_a_bulk_one_with_bad_text_is_committed(
    postgres_storage_url: str, admin: Admin
) -> None:
    storage = open_storage(postgres_storage_url + "&pool_max_size=1")
    assert isinstance(storage, PostgresStorage)
    await storage.migrate()
    # The last chunk fails to encode, after the first ones went out.
    jobs = [new_job(f'{{"args":[{n}],"kwargs":{{}}}}') for n in range(999)]
    jobs.append(new_job('{"args":["\ud800"],"kwargs":{}}'))
    try:
        with pytest.raises(StorageError):
            await storage.create_jobs(jobs)

        job_id = await storage.create_job(new_job("{}"))

        assert stored(admin, job_id)
        assert admin("SELECT count(*) FROM jobs") == [(1,)]
    finally:
        await storage.close()
