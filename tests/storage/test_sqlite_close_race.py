"""SQLite enqueues racing ``close()``.

An enqueue made as close begins either completes before close returns
or fails with "storage is closed"; either way no connection to the
database file stays open, and none is opened again later. Once close
returns, the storage thread has ended too.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from pathlib import Path

import pytest
from sqlite_samples import new_job, stored_jobs

from backburner.storage.base import StorageError
from backburner.storage.sqlite import SQLiteStorage


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
    pending = asyncio.ensure_future(storage.create_jobs([new_job()]))
    await storage.close()

    outcome = await asyncio.wait_for(
        asyncio.gather(pending, return_exceptions=True), 10
    )
    await asyncio.sleep(0.2)  # a late write would have reopened by now
    assert _open_files(path) == []
    if isinstance(outcome[0], BaseException):
        assert isinstance(outcome[0], StorageError)
        assert "closed" in str(outcome[0])
        assert stored_jobs(path) == 0
    else:
        assert stored_jobs(path) == len(outcome[0]) == 1


async def test_close_returns_once_the_storage_thread_has_ended(
    tmp_path: Path,
) -> None:
    # `worker --processes` forks its server processes only when no
    # other thread runs, right after the storage it migrated closed.
    before = set(threading.enumerate())
    storage = SQLiteStorage(str(tmp_path / "jobs.db"))
    await storage.migrate()
    started = set(threading.enumerate()) - before
    # Keep the storage thread off the GIL unless this one waits: without
    # that, whether it has ended by the check below would be a race.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(60)
    try:
        await storage.close()
        alive = [thread for thread in started if thread.is_alive()]
    finally:
        sys.setswitchinterval(interval)

    assert started != set()
    assert alive == []
