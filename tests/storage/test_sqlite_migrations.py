"""SQLite migrations carry the jobs of an older schema over intact."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import pytest

from backburner.storage.base import JobState, NewJob, ServerInfo
from backburner.storage.sqlite import SQLiteStorage

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
pytestmark = pytest.mark.timeout(60)


def install_up_to(path: Path, last: int) -> None:
    """Install the shipped migrations up to ``last``, as a release did."""
    folder = resources.files("backburner.storage.sqlite") / "migrations"
    scripts = sorted(
        (int(entry.name[:4]), entry.read_text("utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    )
    with sqlite3.connect(path) as conn:
        for version, script in scripts:
            if version <= last:
                conn.executescript(script)
        conn.execute(f"PRAGMA user_version = {last}")


def add_job(conn: sqlite3.Connection, state: str, seq: int | None) -> int:
    at = T0.timestamp()
    job_id = conn.execute(
        "INSERT INTO jobs (function, arguments, queue, state, created_at,"
        " state_changed_at) VALUES ('app.jobs:send', '[]', 'default', ?,"
        " ?, ?)",
        (state, at, at),
    ).lastrowid
    assert job_id is not None
    conn.execute(
        "INSERT INTO job_history (job_id, state, reason, created_at)"
        " VALUES (?, ?, '', ?)",
        (job_id, state, at),
    )
    if seq is not None:
        conn.execute(
            "INSERT INTO job_queue (job_id, queue, seq) VALUES (?, ?, ?)",
            (job_id, "default", seq),
        )
    return job_id


async def test_queue_entries_move_into_jobs_in_their_order(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobs.db"
    install_up_to(path, 4)
    with sqlite3.connect(path) as conn:
        # Queue order is by seq, not by id: the first job was requeued.
        requeued = add_job(conn, "enqueued", 30)
        waiting = add_job(conn, "enqueued", 20)
        add_job(conn, "succeeded", None)
    storage = SQLiteStorage(str(path))
    try:
        applied = await storage.migrate()
        await storage.announce_server(
            ServerInfo("s1", ("default",), 4, T0, T0)
        )
        fetched = await storage.fetch("s1", ["default"], 10, T0)
        newest = await storage.create_job(
            NewJob(
                function="app.jobs:send",
                arguments="[]",
                queue="default",
                state=JobState.ENQUEUED,
                reason="",
                created_at=T0,
            )
        )
        again = await storage.fetch("s1", ["default"], 10, T0)
        history = await storage.get_history(waiting)
    finally:
        await storage.close()

    assert applied[0] == 5
    assert [record.id for record in fetched] == [waiting, requeued]
    assert [record.id for record in again] == [newest]
    assert [entry.state for entry in history] == [
        JobState.ENQUEUED,
        JobState.PROCESSING,
    ]
