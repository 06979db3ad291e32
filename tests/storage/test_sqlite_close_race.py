"""SQLite enqueues racing ``close()``.

An enqueue made as close begins either completes before close returns
or fails with "storage is closed"; either way no connection to the
database file stays open, and none is opened again later.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backburner.storage.base import JobState, NewJob, StorageError
from backburner.storage.sqlite import SQLiteStorage


def _job() -> NewJob:
    return NewJob(
        function="os:getpid",
        arguments="[[], {}]",
        queue="default",
        state=JobState.ENQUEUED,
        reason="enqueued",
        created_at=datetime.now(UTC),
    )


def _stored(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        (count,) = conn.execute("SELECT count(*) FROM jobs").fetchone()
    return int(count)


def _open_files(path: Path) -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        target = os.path.realpath(f"/proc/self/fd/{fd}")
        if target.startswith(str(path)):
            found.append(target)
    return found


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
@pytest.mark.parametrize("inline", [True, False])
async def test_an_enqueue_racing_close_leaves_nothing_open(
    tmp_path: Path, inline: bool
) -> None:
    path = tmp_path / "jobs.db"
    storage = SQLiteStorage(str(path), inline_enqueue=inline)
    await storage.migrate()

    # Scheduled first, but starts only once close() has begun.
    pending = asyncio.ensure_future(storage.create_jobs([_job()]))
    await storage.close()

    outcome = await asyncio.wait_for(
        asyncio.gather(pending, return_exceptions=True), 10
    )
    await asyncio.sleep(0.2)  # a late write would have reopened by now
    assert _open_files(path) == []
    if isinstance(outcome[0], BaseException):
        assert isinstance(outcome[0], StorageError)
        assert "closed" in str(outcome[0])
        assert _stored(path) == 0
    else:
        assert _stored(path) == len(outcome[0]) == 1
