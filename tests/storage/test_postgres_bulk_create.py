"""PostgreSQL only: a bulk create as create_jobs sends it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from backburner.storage import (
    JobState,
    NewJob,
    ServerInfo,
    StorageError,
    open_storage,
)
from backburner.storage.postgres import PostgresStorage
from backburner.storage.postgres import storage as postgres_storage

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)


def new_job(created_at: datetime, name: str) -> NewJob:
    return NewJob(
        function=f"app.jobs:{name}",
        arguments='{"args":[],"kwargs":{}}',
        queue="default",
        state=JobState.ENQUEUED,
        reason="enqueued",
        created_at=created_at,
    )


@pytest.fixture
async def storage(postgres_storage_url: str) -> AsyncIterator[PostgresStorage]:
    opened = open_storage(postgres_storage_url)
    assert isinstance(opened, PostgresStorage)
    await opened.migrate()
    try:
        yield opened
    finally:
        await opened.close()


async def test_each_job_of_a_call_keeps_its_own_creation_time(
    storage: PostgresStorage,
) -> None:
    # The moment of the first job goes once for the call; the others
    # go with their own job.
    later = T0 + timedelta(microseconds=1)
    moments = [T0, later, T0, T0 + timedelta(days=400), later]
    jobs = [new_job(at, f"job{n}") for n, at in enumerate(moments)]

    ids = await storage.create_jobs(jobs)

    for job_id, job in zip(ids, jobs, strict=True):
        record = await storage.get_job(job_id)
        assert record is not None
        assert (record.function, record.created_at) == (
            job.function,
            job.created_at,
        )
        history = await storage.get_history(job_id)
        assert [h.at for h in history] == [job.created_at]


async def test_a_call_whose_first_job_was_created_last_keeps_every_time(
    storage: PostgresStorage,
) -> None:
    jobs = [
        new_job(T0 + timedelta(seconds=5 - n), f"job{n}") for n in range(6)
    ]

    ids = await storage.create_jobs(jobs)

    assert ids == sorted(ids)
    found = [await storage.get_job(job_id) for job_id in ids]
    assert [r.created_at for r in found if r is not None] == [
        job.created_at for job in jobs
    ]


async def test_a_bulk_create_of_several_chunks_keeps_the_order_given(
    storage: PostgresStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres_storage, "_CREATE_CHUNK", 3)
    jobs = [new_job(T0, f"job{n}") for n in range(8)]

    ids = await storage.create_jobs(jobs)

    assert ids == sorted(ids)
    assert len(set(ids)) == 8
    found = [await storage.get_job(job_id) for job_id in ids]
    assert [r.function for r in found if r is not None] == [
        job.function for job in jobs
    ]
    (count,) = await storage.counts()
    assert (count.state, count.count) == (JobState.ENQUEUED, 8)
    await storage.announce_server(ServerInfo("s:1", ("default",), 9, T0, T0))
    fetched = await storage.fetch("s:1", ("default",), 9, T0)
    assert [job.id for job in fetched] == ids


async def test_a_chunk_that_fails_writes_none_of_the_call(
    storage: PostgresStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres_storage, "_CREATE_CHUNK", 2)
    before = await storage.create_jobs([new_job(T0, "first")])
    jobs = [new_job(T0, f"job{n}") for n in range(5)]
    # A NaN timeout is written as NaN, which is not JSON: the third
    # chunk fails at the server, after the first two were sent (and
    # ran) in the same transaction.
    jobs[4] = NewJob(
        function="app.jobs:bad",
        arguments="{}",
        queue="default",
        state=JobState.ENQUEUED,
        reason="enqueued",
        created_at=T0,
        timeout=float("nan"),
    )

    with pytest.raises(StorageError):
        await storage.create_jobs(jobs)

    assert [job.id for job in await storage.list_jobs()] == before
    (count,) = await storage.counts()
    assert count.count == 1
