"""PostgreSQL only: a job's creation entry is kept on its row.

An enqueue writes no job_history row: the job row holds the creation
entry (created_state, created_reason, created_at) and get_history puts
it first. Servers of the previous release run alongside while a new one
rolls out: they write creation rows themselves, and their changes to a
job created here must not lose its creation entry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest

from backburner.storage import (
    JobState,
    NewJob,
    ServerInfo,
    StateChange,
    open_storage,
)
from backburner.storage.postgres import PostgresStorage

pytestmark = pytest.mark.postgres

Admin = Callable[..., list[tuple[object, ...]]]

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(seconds=5)
T2 = T0 + timedelta(seconds=9)
SERVER = "host:1"


def new_job(state: JobState = JobState.ENQUEUED) -> NewJob:
    return NewJob(
        function="app.jobs:send",
        arguments='{"args":[],"kwargs":{}}',
        queue="default",
        state=state,
        reason=f"created {state.value}",
        created_at=T0,
        scheduled_at=T1 if state is JobState.SCHEDULED else None,
    )


@pytest.fixture
async def storage(postgres_storage_url: str) -> AsyncIterator[PostgresStorage]:
    opened = open_storage(postgres_storage_url)
    assert isinstance(opened, PostgresStorage)
    await opened.migrate()
    await opened.announce_server(ServerInfo(SERVER, ("default",), 4, T0, T0))
    try:
        yield opened
    finally:
        await opened.close()


async def entries(
    storage: PostgresStorage, job_id: int
) -> list[tuple[JobState, str, datetime, object]]:
    return [
        (h.state, h.reason, h.at, h.data)
        for h in await storage.get_history(job_id)
    ]


async def test_a_new_job_has_no_history_row_but_reads_its_entry(
    storage: PostgresStorage, admin: Admin
) -> None:
    single = await storage.create_job(new_job())
    bulk = await storage.create_jobs(
        [new_job(JobState.SCHEDULED), new_job(JobState.AWAITING)]
    )

    assert admin("SELECT count(*) FROM job_history") == [(0,)]
    assert await entries(storage, single) == [
        (JobState.ENQUEUED, "created enqueued", T0, {})
    ]
    assert [await entries(storage, job_id) for job_id in bulk] == [
        [(JobState.SCHEDULED, "created scheduled", T0, {})],
        [(JobState.AWAITING, "created awaiting", T0, {})],
    ]


async def test_changes_follow_the_creation_entry(
    storage: PostgresStorage,
) -> None:
    job_id = await storage.create_job(new_job())
    (fetched,) = await storage.fetch(SERVER, ["default"], 10, T1)
    await storage.apply_change(
        StateChange(
            job_id=job_id,
            to_state=JobState.SUCCEEDED,
            from_states=frozenset({JobState.PROCESSING}),
            reason="done",
            at=T2,
            data={"duration": 0.5},
        )
    )

    history = await entries(storage, job_id)

    assert fetched.id == job_id
    assert [(state, reason, at) for state, reason, at, _ in history] == [
        (JobState.ENQUEUED, "created enqueued", T0),
        (JobState.PROCESSING, f"fetched by {SERVER}", T1),
        (JobState.SUCCEEDED, "done", T2),
    ]
    assert history[-1][3] == {"duration": 0.5}


async def test_a_change_by_an_older_server_keeps_the_creation_entry(
    storage: PostgresStorage, admin: Admin
) -> None:
    job_id = await storage.create_job(new_job())

    # A change as the previous release writes it: the job row and a
    # history row, nothing about the creation entry.
    admin(
        "UPDATE jobs SET state = 'deleted', reason = 'deleted by old',"
        " version = version + 1, state_changed_at = %s WHERE id = %s",
        T1,
        job_id,
    )
    admin("DELETE FROM job_queue WHERE job_id = %s", job_id)
    admin(
        "INSERT INTO job_history (job_id, state, reason, created_at)"
        " VALUES (%s, 'deleted', 'deleted by old', %s)",
        job_id,
        T1,
    )

    assert await entries(storage, job_id) == [
        (JobState.ENQUEUED, "created enqueued", T0, {}),
        (JobState.DELETED, "deleted by old", T1, {}),
    ]


async def test_a_job_created_by_an_older_server_reads_its_entry_once(
    storage: PostgresStorage, admin: Admin
) -> None:
    # A create as the previous release writes it: no creation columns,
    # a creation row in job_history.
    ((job_id,),) = admin(
        "INSERT INTO jobs (function, arguments, queue, state, reason,"
        " created_at, state_changed_at) VALUES ('app.jobs:send', '{}',"
        " 'default', 'enqueued', 'enqueued by old', %s, %s) RETURNING id",
        T0,
        T0,
    )
    admin(
        "INSERT INTO job_history (job_id, state, reason, created_at)"
        " VALUES (%s, 'enqueued', 'enqueued by old', %s)",
        job_id,
        T0,
    )
    admin(
        "INSERT INTO job_queue (job_id, queue) VALUES (%s, 'default')", job_id
    )

    (fetched,) = await storage.fetch(SERVER, ["default"], 10, T1)
    history = await entries(storage, job_id)

    assert fetched.id == job_id
    assert [(state, reason) for state, reason, _, _ in history] == [
        (JobState.ENQUEUED, "enqueued by old"),
        (JobState.PROCESSING, f"fetched by {SERVER}"),
    ]


async def test_an_expired_job_leaves_no_history(
    storage: PostgresStorage, admin: Admin
) -> None:
    job_id = await storage.create_job(new_job())
    await storage.apply_change(
        StateChange(
            job_id=job_id,
            to_state=JobState.DELETED,
            from_states=frozenset({JobState.ENQUEUED}),
            reason="deleted",
            at=T1,
            expires_at=T1,
        )
    )

    removed = await storage.expire(T2, 100)

    assert removed == 1
    assert await storage.get_history(job_id) == []
    assert admin("SELECT count(*) FROM job_history") == [(0,)]
