"""A damaged job row fails its own job at fetch, not its whole batch."""

from __future__ import annotations

import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backburner.jobs import JobState, Server
from backburner.storage import NewJob, ServerInfo, open_storage

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
pytestmark = pytest.mark.timeout(60)


def job(function: str = "app.jobs:send") -> NewJob:
    return NewJob(
        function=function,
        arguments='{"args":[],"kwargs":{}}',
        queue="default",
        state=JobState.ENQUEUED,
        reason="enqueued",
        created_at=T0,
    )


def damage(path: Path, job_id: int) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE jobs SET created_at = 'not a time' WHERE id = ?",
            (job_id,),
        )


async def test_fetch_fails_the_damaged_job_and_hands_out_the_others(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobs.db"
    storage = open_storage(f"sqlite:///{path}")
    try:
        ids = await storage.create_jobs([job(), job(), job()])
        damage(path, ids[1])
        await storage.announce_server(
            ServerInfo("s1", ("default",), 4, T0, T0)
        )

        fetched = await storage.fetch("s1", ["default"], 10, T0)

        assert [record.id for record in fetched] == [ids[0], ids[2]]
        history = await storage.get_history(ids[1])
        assert [entry.state for entry in history] == [
            JobState.ENQUEUED,
            JobState.PROCESSING,
            JobState.FAILED,
        ]
        assert "corrupted in storage" in history[-1].reason
        assert history[-1].data["corrupted"] is True
        counts = {(c.state, c.queue): c.count for c in await storage.counts()}
        assert counts == {
            (JobState.PROCESSING, "default"): 2,
            (JobState.FAILED, "default"): 1,
        }
    finally:
        await storage.close()


async def test_a_server_runs_the_rest_of_a_batch_with_a_damaged_job(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobs.db"
    storage = open_storage(f"sqlite:///{path}")
    function = f"{__name__}:noop"
    assert sys.modules[__name__].noop is noop
    try:
        ids = await storage.create_jobs([job(function) for _ in range(5)])
        damage(path, ids[2])

        await Server(storage, concurrency=8, poll_interval=0.05).run(
            until_empty=True
        )

        # The damaged row still cannot be read back whole (get() raises
        # CorruptedJobError); its state can.
        found = await storage.job_states(ids)
        assert [found[job_id][0] for job_id in ids] == [
            JobState.SUCCEEDED,
            JobState.SUCCEEDED,
            JobState.FAILED,
            JobState.SUCCEEDED,
            JobState.SUCCEEDED,
        ]
    finally:
        await storage.close()


async def noop() -> None:
    """A job that does nothing."""
