"""PostgreSQL only: a batch of outcomes applied as one compare-and-set."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import psycopg
import pytest
from postgres_samples import new_job
from psycopg import sql

from backburner.storage import (
    JobState,
    ServerInfo,
    StateChange,
    open_storage,
)
from backburner.storage.postgres import PostgresStorage

pytestmark = pytest.mark.postgres

Admin = Callable[..., list[tuple[object, ...]]]

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
SERVER = "host:1"


def outcome(
    job_id: int, state: JobState, version: int | None = None
) -> StateChange:
    return StateChange(
        job_id=job_id,
        to_state=state,
        from_states=frozenset({JobState.PROCESSING}),
        reason=f"worker says {state.value}",
        at=T0,
        expected_version=version,
        from_worker=True,
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


async def running(storage: PostgresStorage, count: int) -> list[int]:
    await storage.create_jobs([new_job() for _ in range(count)])
    fetched = await storage.fetch(SERVER, ["default"], count, T0)
    assert len(fetched) == count
    return [record.id for record in fetched]


async def test_a_batch_settles_each_change_on_its_own(
    storage: PostgresStorage, admin: Admin
) -> None:
    done, stale, retried = await running(storage, 3)
    missing = retried + 1000

    outcomes = await storage.apply_changes(
        [
            outcome(done, JobState.SUCCEEDED),
            # Fetched once: version 2, not 1.
            outcome(stale, JobState.FAILED, version=1),
            outcome(missing, JobState.SUCCEEDED),
            outcome(retried, JobState.ENQUEUED, version=2),
        ]
    )

    assert [(o.job_id, o.applied, o.previous_state) for o in outcomes] == [
        (done, True, JobState.PROCESSING),
        (stale, False, JobState.PROCESSING),
        (missing, False, None),
        (retried, True, JobState.PROCESSING),
    ]
    states = await storage.job_states([done, stale, retried])
    assert states[done] == (JobState.SUCCEEDED, 3)
    assert states[stale] == (JobState.PROCESSING, 2)
    assert states[retried] == (JobState.ENQUEUED, 3)
    assert admin("SELECT job_id FROM job_queue") == [(retried,)]
    assert admin(
        "SELECT job_id, state FROM job_history"
        " WHERE state IN ('succeeded', 'failed', 'enqueued') AND reason"
        " LIKE 'worker says %%' ORDER BY id"
    ) == [(done, "succeeded"), (retried, "enqueued")]
    counts = {
        (c.state, c.queue): c.count for c in await storage.counts() if c.count
    }
    assert counts == {
        (JobState.SUCCEEDED, "default"): 1,
        (JobState.PROCESSING, "default"): 1,
        (JobState.ENQUEUED, "default"): 1,
    }


async def test_an_outcome_that_waited_for_a_lock_sees_the_committed_state(
    storage: PostgresStorage,
    postgres_url: str,
    postgres_schema: str,
    admin: Admin,
) -> None:
    (job_id,) = await running(storage, 1)
    rival = await psycopg.AsyncConnection.connect(postgres_url)
    try:
        await rival.execute(
            sql.SQL("SET search_path TO {}").format(
                sql.Identifier(postgres_schema)
            )
        )
        # Another transaction holds the job's row and moves it on.
        await rival.execute(
            b"UPDATE jobs SET state = 'deleted', version = version + 1"
            b" WHERE id = %s",
            (job_id,),
        )
        change = asyncio.create_task(
            storage.apply_changes([outcome(job_id, JobState.SUCCEEDED)])
        )
        for _ in range(500):
            waiting = admin(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name = %s AND wait_event_type = 'Lock'",
                postgres_schema,
            )
            if waiting == [(1,)] or change.done():
                break
            await asyncio.sleep(0.01)
        assert not change.done()
        await rival.commit()
        outcomes = await asyncio.wait_for(change, timeout=10)
    finally:
        await rival.close()

    assert [(o.applied, o.previous_state) for o in outcomes] == [
        (False, JobState.DELETED)
    ]
    states = await storage.job_states([job_id])
    assert states[job_id] == (JobState.DELETED, 3)
    history = await storage.get_history(job_id)
    assert [entry.state for entry in history] == [
        JobState.ENQUEUED,
        JobState.PROCESSING,
    ]
