"""A bulk enqueue cut short mid-pipeline must not leave its
connection inside a transaction for the pool's next caller."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from postgres_samples import Admin, new_job

from backburner.storage import StorageError, open_storage
from backburner.storage.postgres import PostgresStorage

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]


@pytest.fixture
async def storage(postgres_storage_url: str) -> AsyncIterator[PostgresStorage]:
    """A storage of one pooled connection: each call gets the previous
    call's connection."""
    opened = open_storage(postgres_storage_url + "&pool_max_size=1")
    assert isinstance(opened, PostgresStorage)
    await opened.migrate()
    try:
        yield opened
    finally:
        await opened.close()


def stored(admin: Admin, job_id: int) -> bool:
    rows = admin("SELECT count(*) FROM jobs WHERE id = %s", job_id)
    return rows == [(1,)]


async def test_an_enqueue_after_a_cancelled_bulk_one_is_committed(
    storage: PostgresStorage, admin: Admin
) -> None:
    jobs = [new_job(f'{{"args":[{n}],"kwargs":{{}}}}') for n in range(1000)]
    await storage.create_jobs(jobs[:1])
    for step in range(10):
        call = asyncio.create_task(storage.create_jobs(jobs))
        await asyncio.sleep(step * 0.003)
        call.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await call

        job_id = await storage.create_job(new_job("{}"))

        assert stored(admin, job_id), f"step {step}"


async def test_an_enqueue_after_a_bulk_one_with_bad_text_is_committed(
    storage: PostgresStorage, admin: Admin
) -> None:
    # The last chunk fails to encode, after the first ones went out.
    jobs = [new_job(f'{{"args":[{n}],"kwargs":{{}}}}') for n in range(999)]
    jobs.append(new_job('{"args":["\ud800"],"kwargs":{}}'))
    with pytest.raises(StorageError):
        await storage.create_jobs(jobs)

    job_id = await storage.create_job(new_job("{}"))

    assert stored(admin, job_id)
    assert admin("SELECT count(*) FROM jobs") == [(1,)]
