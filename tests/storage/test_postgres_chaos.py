"""PostgreSQL only, slow: servers keep working while connections die.

Connections are killed at random moments, mid-statement and mid-commit
included. Delivery is at least once, so a job whose fetch committed just
as its connection died may wait in *processing* for recovery; what must
hold whatever the timing is that every transaction was all or nothing:
counters match the rows, no job has two queue entries, and after
recovery every job gets done.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from postgres_samples import new_job

from backburner.storage import (
    JobState,
    ServerInfo,
    StateChange,
    StorageError,
    open_storage,
)
from backburner.storage.postgres import PostgresStorage

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

Admin = Callable[..., list[tuple[object, ...]]]
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
JOBS = 600


def succeeded(job_id: int, version: int) -> StateChange:
    return StateChange(
        job_id=job_id,
        to_state=JobState.SUCCEEDED,
        from_states=frozenset({JobState.PROCESSING}),
        reason="succeeded",
        at=T0,
        expected_version=version,
        from_worker=True,
    )


async def test_killed_connections_never_leave_half_a_change(
    postgres_storage_url: str, admin: Admin, postgres_schema: str
) -> None:
    storages = [open_storage(postgres_storage_url) for _ in range(3)]
    servers = [s for s in storages if isinstance(s, PostgresStorage)]
    await servers[0].migrate()
    ids = await servers[0].create_jobs([new_job() for _ in range(JOBS)])
    for index, storage in enumerate(servers):
        await storage.announce_server(
            ServerInfo(f"s:{index}", ("default",), 4, T0, T0)
        )
    stop = asyncio.Event()
    failures = 0

    async def serve(index: int) -> None:
        nonlocal failures
        storage = servers[index]
        finished: list[StateChange] = []
        while not stop.is_set():
            try:
                _, fetched = await storage.apply_changes_and_fetch(
                    finished, f"s:{index}", ["default"], 5, T0
                )
            except StorageError:
                failures += 1
                continue
            finished = [succeeded(r.id, r.version) for r in fetched]
            if not fetched:
                await asyncio.sleep(0.01)

    async def killer() -> None:
        rng = random.Random(3)
        while not stop.is_set():
            await asyncio.sleep(rng.uniform(0.005, 0.05))
            admin(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s AND random() < 0.5",
                postgres_schema,
            )

    async def all_done() -> None:
        while True:
            counts = await servers[0].counts()
            done = sum(
                c.count for c in counts if c.state is JobState.SUCCEEDED
            )
            if done == JOBS:
                return
            # Jobs whose fetch committed as the connection died wait for
            # recovery, as they would after a server crash.
            with contextlib.suppress(StorageError):
                await servers[0].recover_dead_servers(
                    T0 + timedelta(days=1), 0, "recovered"
                )
                for index, storage in enumerate(servers):
                    await storage.announce_server(
                        ServerInfo(f"s:{index}", ("default",), 4, T0, T0)
                    )
            await asyncio.sleep(0.2)

    tasks = [asyncio.create_task(serve(i)) for i in range(3)]
    chaos = asyncio.create_task(killer())
    try:
        async with asyncio.timeout(60):
            await asyncio.sleep(3)
            chaos.cancel()
            await all_done()
    finally:
        stop.set()
        chaos.cancel()
        await asyncio.gather(*tasks, chaos, return_exceptions=True)

    try:
        records = await servers[0].list_jobs(limit=JOBS + 1)
        counts = {
            (c.state, c.queue): c.count for c in await servers[0].counts()
        }
        entries = admin(
            "SELECT count(*), count(DISTINCT job_id) FROM job_queue"
        )
        histories = await asyncio.gather(
            *(servers[0].get_history(job_id) for job_id in ids[:50])
        )
    finally:
        for storage in servers:
            await storage.close()

    assert failures > 0, "the chaos never reached a call"
    assert {r.state for r in records} == {JobState.SUCCEEDED}
    assert counts == {(JobState.SUCCEEDED, "default"): JOBS}
    assert entries == [(0, 0)]
    for history in histories:
        assert history[0].state is JobState.ENQUEUED
        assert history[-1].state is JobState.SUCCEEDED
