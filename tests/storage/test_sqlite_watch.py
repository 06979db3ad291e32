"""SQLite listeners hear jobs enqueued by other processes.

Another process's commit changes ``PRAGMA data_version``; the watcher
thread of the listening process turns it into :class:`JobsEnqueued`.
The other process here is a real one (a fresh interpreter enqueuing
through its own storage), since within one process the storages on a
file share their notifications anyway.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from backburner.storage.base import JobsEnqueued, Notification
from backburner.storage.sqlite import SQLiteStorage

ENQUEUE_ELSEWHERE = """
import asyncio, sys
from datetime import UTC, datetime
from backburner.storage.base import JobState, NewJob
from backburner.storage.sqlite import SQLiteStorage

async def main():
    storage = SQLiteStorage(sys.argv[1])
    now = datetime.now(UTC)
    await storage.create_jobs([NewJob(
        function="os:getpid", arguments='[[], {}]', queue=sys.argv[2],
        state=JobState.ENQUEUED, reason="enqueued", created_at=now,
    )])
    await storage.close()

asyncio.run(main())
"""


def _enqueue_in_another_process(path: Path, queue: str) -> None:
    subprocess.run(
        [sys.executable, "-c", ENQUEUE_ELSEWHERE, str(path), queue],
        check=True,
        timeout=60,
    )


def _watchers() -> list[threading.Thread]:
    return [
        thread
        for thread in threading.enumerate()
        if thread.name == "backburner-sqlite-watch"
    ]


async def test_a_listener_hears_a_job_enqueued_by_another_process(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobs.db"
    storage = SQLiteStorage(str(path))
    await storage.migrate()
    heard = threading.Event()
    notes: list[Notification] = []

    def listener(notification: Notification) -> None:
        notes.append(notification)
        heard.set()

    unsubscribe = storage.subscribe(listener)
    try:
        _enqueue_in_another_process(path, "mail")
        assert heard.wait(30), "no notification within 30 s"
    finally:
        unsubscribe()
        await storage.close()
    assert JobsEnqueued(frozenset({"mail"})) in notes


async def test_the_watcher_stops_with_the_last_listener(
    tmp_path: Path,
) -> None:
    storage = SQLiteStorage(str(tmp_path / "jobs.db"))
    await storage.migrate()
    before = set(_watchers())
    first = storage.subscribe(lambda notification: None)
    second = storage.subscribe(lambda notification: None)
    (watcher,) = set(_watchers()) - before
    first()
    assert watcher.is_alive()
    second()
    watcher.join(30)
    await storage.close()
    assert not watcher.is_alive()


@pytest.mark.parametrize("path", [":memory:", "file::memory:"])
async def test_an_in_memory_storage_starts_no_watcher(path: str) -> None:
    storage = SQLiteStorage(path)
    await storage.migrate()
    before = set(_watchers())
    unsubscribe = storage.subscribe(lambda notification: None)
    try:
        assert set(_watchers()) == before
    finally:
        unsubscribe()
        await storage.close()
