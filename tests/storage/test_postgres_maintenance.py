"""PostgreSQL only: maintenance run by many servers at once."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
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

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
S = JobState


def new_job(
    state: JobState = S.ENQUEUED, scheduled_at: datetime | None = None
) -> NewJob:
    return NewJob(
        function="app.jobs:send",
        arguments='{"args":[],"kwargs":{}}',
        queue="default",
        state=state,
        reason=state.value,
        created_at=T0,
        scheduled_at=scheduled_at,
    )


@pytest.fixture
async def servers(
    postgres_storage_url: str,
) -> AsyncIterator[list[PostgresStorage]]:
    """Four storages on one schema, each as one server would open it."""
    opened = [open_storage(postgres_storage_url) for _ in range(4)]
    typed = [s for s in opened if isinstance(s, PostgresStorage)]
    assert len(typed) == 4
    await typed[0].migrate()
    try:
        yield typed
    finally:
        for storage in typed:
            await storage.close()


async def counts(storage: PostgresStorage) -> dict[JobState, int]:
    found: dict[JobState, int] = {}
    for row in await storage.counts():
        found[row.state] = found.get(row.state, 0) + row.count
    return found


async def test_every_server_promoting_at_once_moves_each_job_once(
    servers: list[PostgresStorage],
) -> None:
    ids = await servers[0].create_jobs(
        [new_job(S.SCHEDULED, T0) for _ in range(300)]
    )

    async def promote_all(storage: PostgresStorage) -> int:
        moved = 0
        while step := await storage.promote_scheduled(T0, 7):
            moved += step
        return moved

    moved = await asyncio.gather(*(promote_all(s) for s in servers))

    assert sum(moved) == len(ids)
    assert await counts(servers[0]) == {S.ENQUEUED: len(ids)}
    history = await servers[1].get_history(ids[-1])
    assert [h.state for h in history] == [S.SCHEDULED, S.ENQUEUED]


async def test_every_server_recovering_at_once_requeues_each_job_once(
    servers: list[PostgresStorage],
) -> None:
    dead = ServerInfo("dead:1", ("default",), 4, T0, T0)
    await servers[0].announce_server(dead)
    ids = await servers[0].create_jobs([new_job() for _ in range(120)])
    await servers[0].fetch("dead:1", ["default"], 120, T0)
    later = T0 + timedelta(minutes=5)

    recovered = await asyncio.gather(
        *(s.recover_dead_servers(later, 60, "server died") for s in servers)
    )

    everything = [job_id for batch in recovered for job_id in batch]
    assert sorted(everything) == ids
    assert await counts(servers[0]) == {S.ENQUEUED: len(ids)}
    assert await servers[0].list_servers() == []


async def test_expiry_removes_a_backlog_in_bounded_batches(
    servers: list[PostgresStorage],
) -> None:
    ids = await servers[0].create_jobs([new_job() for _ in range(250)])
    for start in range(0, len(ids), 50):
        await servers[0].apply_changes(
            [
                StateChange(
                    job_id=job_id,
                    to_state=S.DELETED,
                    from_states=frozenset({S.ENQUEUED}),
                    reason="deleted",
                    at=T0,
                    expires_at=T0,
                )
                for job_id in ids[start : start + 50]
            ]
        )

    batches = [await servers[0].expire(T0, 100) for _ in range(4)]

    assert batches == [100, 100, 50, 0]
    assert await servers[0].counts() == []
    assert await servers[0].list_jobs() == []


async def test_counters_stay_exact_under_concurrent_changes(
    servers: list[PostgresStorage],
) -> None:
    for index, storage in enumerate(servers):
        await storage.announce_server(
            ServerInfo(f"s:{index}", ("default",), 4, T0, T0)
        )
    ids = await servers[0].create_jobs([new_job() for _ in range(200)])

    async def churn(index: int) -> None:
        rng = random.Random(index)
        storage = servers[index]
        for _ in range(40):
            if rng.random() < 0.4:
                await storage.fetch(f"s:{index}", ["default"], 5, T0)
                continue
            targets = [S.ENQUEUED, S.DELETED, S.SUCCEEDED, S.FAILED]
            await storage.apply_changes(
                [
                    StateChange(
                        job_id=rng.choice(ids),
                        to_state=rng.choice(targets),
                        from_states=frozenset(JobState),
                        reason="churn",
                        at=T0,
                    )
                    for _ in range(rng.randint(1, 6))
                ]
            )

    await asyncio.gather(*(churn(index) for index in range(4)))

    actual: dict[JobState, int] = {}
    for record in await servers[0].list_jobs(limit=1000):
        actual[record.state] = actual.get(record.state, 0) + 1
    assert await counts(servers[0]) == actual
