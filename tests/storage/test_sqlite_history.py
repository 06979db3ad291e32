"""SQLite writes a job's creation history entry at its first change.

Until then the job row holds everything that entry says; reading the
history must not tell the difference, and a file written by an older
backburner (which wrote the entry at creation) must not get it twice.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backburner.storage.base import JobState, NewJob, ServerInfo, StateChange
from backburner.storage.sqlite import SQLiteStorage

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(seconds=5)
pytestmark = pytest.mark.timeout(60)


def new_job(state: JobState = JobState.ENQUEUED) -> NewJob:
    return NewJob(
        function="app.jobs:send",
        arguments='{"args":[],"kwargs":{}}',
        queue="default",
        state=state,
        reason="created by test",
        created_at=T0,
        scheduled_at=T1 if state is JobState.SCHEDULED else None,
    )


def history_rows(path: Path, job_id: int) -> list[tuple[str, str, float]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT state, reason, created_at FROM job_history"
            " WHERE job_id = ? ORDER BY id",
            (job_id,),
        ).fetchall()


async def test_a_new_job_has_no_history_row_but_reads_its_entry(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobs.db"
    storage = SQLiteStorage(str(path))
    try:
        job_id = await storage.create_job(new_job(JobState.SCHEDULED))

        history = await storage.get_history(job_id)
    finally:
        await storage.close()

    assert history_rows(path, job_id) == []
    assert [(h.state, h.reason, h.at, h.data) for h in history] == [
        (JobState.SCHEDULED, "created by test", T0, {})
    ]


async def test_the_first_change_writes_the_creation_entry_first(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobs.db"
    storage = SQLiteStorage(str(path))
    try:
        job_id = await storage.create_job(new_job())
        await storage.apply_change(
            StateChange(
                job_id=job_id,
                to_state=JobState.DELETED,
                from_states=frozenset({JobState.ENQUEUED}),
                reason="deleted by test",
                at=T1,
            )
        )
    finally:
        await storage.close()

    assert history_rows(path, job_id) == [
        ("enqueued", "created by test", T0.timestamp()),
        ("deleted", "deleted by test", T1.timestamp()),
    ]


async def test_a_job_created_with_its_history_row_gets_no_second_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobs.db"
    storage = SQLiteStorage(str(path))
    try:
        job_id = await storage.create_job(new_job())
        # What an older backburner wrote along with the job row.
        with sqlite3.connect(path) as conn:
            conn.execute(
                "INSERT INTO job_history (job_id, state, reason,"
                " created_at) VALUES (?, 'enqueued', 'created by test', ?)",
                (job_id, T0.timestamp()),
            )
        await storage.announce_server(
            ServerInfo("s1", ("default",), 4, T0, T0)
        )

        (fetched,) = await storage.fetch("s1", ["default"], 10, T1)
        history = await storage.get_history(job_id)
    finally:
        await storage.close()

    assert fetched.id == job_id
    assert [h.state for h in history] == [
        JobState.ENQUEUED,
        JobState.PROCESSING,
    ]
