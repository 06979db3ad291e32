"""The reconcile loop on its own, on a real SQLite file.

The server-level case (a fetch whose reply is lost) is in
``test_server.py``; these pin the rules: which held jobs count as lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

import job_samples
import pytest
from server_helpers import client, fresh_samples, storage

from backburner.jobs import Client, JobState
from backburner.jobs.reconcile import RECONCILE_REASON, Reconciler
from backburner.storage import JobId, JobRecord, ServerInfo, Storage

__all__ = ["client", "fresh_samples", "storage"]

S = JobState
NAME = "host:1"
pytestmark = pytest.mark.timeout(60)


async def fetched(
    storage: Storage, client: Client, count: int, ago: float
) -> list[JobRecord]:
    """Enqueue ``count`` jobs and fetch them for NAME ``ago`` seconds ago."""
    now = datetime.now(UTC)
    await storage.announce_server(ServerInfo(NAME, ("default",), 4, now, now))
    for n in range(count):
        await client.enqueue(job_samples.record, n)
    return await storage.fetch(
        NAME, ["default"], count, now - timedelta(seconds=ago)
    )


def reconciler(
    storage: Storage,
    held: Collection[tuple[JobId, int]] = (),
    *,
    grace: float = 10.0,
    fetching: asyncio.Lock | None = None,
    stopping: bool = False,
) -> Reconciler:
    return Reconciler(
        storage,
        NAME,
        1.0,
        grace,
        lambda: held,
        fetching or asyncio.Lock(),
        lambda: stopping,
    )


async def test_a_held_job_not_running_is_put_back_once(
    storage: Storage, client: Client
) -> None:
    running, lost = await fetched(storage, client, 2, ago=60)
    (recent,) = await fetched(storage, client, 1, ago=0)
    look = reconciler(storage, {(running.id, running.version)})

    first = await look.reconcile()
    second = await look.reconcile()

    assert first == [lost.id]
    assert second == []
    job = await client.get(lost.id)
    assert job.state is S.ENQUEUED
    assert job.reason == RECONCILE_REASON
    assert job.history[-1].data == {"server": NAME}
    # Still held: the one running, and the one fetched within the grace.
    assert set(await storage.held_jobs(NAME)) == {running.id, recent.id}


async def test_an_older_execution_does_not_cover_a_newer_fetch(
    storage: Storage, client: Client
) -> None:
    (job,) = await fetched(storage, client, 1, ago=60)
    stale = {(job.id, job.version - 1)}

    assert await reconciler(storage, stale).reconcile() == [job.id]


async def test_nothing_is_put_back_while_the_server_stops(
    storage: Storage, client: Client
) -> None:
    (job,) = await fetched(storage, client, 1, ago=60)

    assert await reconciler(storage, stopping=True).reconcile() == []
    assert (await client.get(job.id)).state is S.PROCESSING


async def test_reconciling_waits_for_a_fetch_in_flight(
    storage: Storage, client: Client
) -> None:
    (job,) = await fetched(storage, client, 1, ago=60)
    fetching = asyncio.Lock()

    async with fetching:
        looking = asyncio.create_task(
            reconciler(storage, fetching=fetching).reconcile()
        )
        for _ in range(20):
            await asyncio.sleep(0)
        assert not looking.done()
        assert (await client.get(job.id)).state is S.PROCESSING

    assert await asyncio.wait_for(looking, 30) == [job.id]
