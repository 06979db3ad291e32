"""SQLite enqueues that run on the event loop's thread.

A small enqueue skips the storage thread when nothing is in its way;
when something is (another connection's write lock, calls in the
thread's hands), it takes the thread as before, and the event loop
never waits for a lock. Its commits do not checkpoint the WAL; the
storage thread does, so the WAL stays bounded.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backburner.storage import open_storage
from backburner.storage.base import (
    InvalidStorageURLError,
    JobsEnqueued,
    JobState,
    NewJob,
    Notification,
    StorageError,
)
from backburner.storage.sqlite import SQLiteStorage, open_url


def _job(queue: str = "default") -> NewJob:
    return NewJob(
        function="os:getpid",
        arguments="[[], {}]",
        queue=queue,
        state=JobState.ENQUEUED,
        reason="enqueued",
        created_at=datetime.now(UTC),
    )


def _stored(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        (count,) = conn.execute("SELECT count(*) FROM jobs").fetchone()
    return int(count)


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SQLiteStorage]:
    storage = SQLiteStorage(str(tmp_path / "jobs.db"))
    await storage.migrate()  # opens both connections
    yield storage
    await storage.close()


class _BlockedThread:
    """Keeps the storage's thread busy until released."""

    def __init__(self, storage: SQLiteStorage) -> None:
        self.release = threading.Event()
        started = threading.Event()

        def block() -> None:
            started.set()
            self.release.wait(30)

        storage._executor.submit(block)
        assert started.wait(10)


async def test_an_enqueue_commits_without_the_storage_thread(
    storage: SQLiteStorage, tmp_path: Path
) -> None:
    blocked = _BlockedThread(storage)
    try:
        async with asyncio.timeout(10):
            ids = await storage.create_jobs([_job(), _job()])
        # Committed, and visible to any other connection at once.
        assert _stored(tmp_path / "jobs.db") == 2
        assert len(set(ids)) == 2
    finally:
        blocked.release.set()
    record = await storage.get_job(ids[0])
    assert record is not None
    assert record.state is JobState.ENQUEUED


async def test_turned_off_every_enqueue_takes_the_storage_thread(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobs.db"
    storage = open_storage(f"sqlite:///{path}?inline_enqueue=false")
    await storage.migrate()
    assert isinstance(storage, SQLiteStorage)
    blocked = _BlockedThread(storage)
    try:
        task = asyncio.create_task(storage.create_jobs([_job()]))
        await asyncio.sleep(0.05)
        assert not task.done()
    finally:
        blocked.release.set()
    async with asyncio.timeout(10):
        await task
    assert _stored(path) == 1
    await storage.close()


async def test_a_locked_file_sends_the_enqueue_to_the_thread_not_the_loop(
    storage: SQLiteStorage, tmp_path: Path
) -> None:
    other = sqlite3.connect(tmp_path / "jobs.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        task = asyncio.create_task(storage.create_jobs([_job()]))
        # Had the loop waited for the lock (10 s busy timeout), the
        # sleep would return only after the enqueue had failed.
        await asyncio.sleep(0.05)
        assert not task.done()
    finally:
        other.execute("COMMIT")
        other.close()
    async with asyncio.timeout(10):
        (job_id,) = await task
    assert await storage.get_job(job_id) is not None


async def test_a_failed_inline_transaction_writes_nothing(
    storage: SQLiteStorage, tmp_path: Path
) -> None:
    path = tmp_path / "jobs.db"
    with sqlite3.connect(path) as conn:
        # Fails after the job row is in: the counter comes last.
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON job_counters"
            " BEGIN SELECT RAISE(ABORT, 'counters refused'); END"
        )
    with pytest.raises(StorageError, match="counters refused"):
        await storage.create_jobs([_job(queue="new")])
    assert _stored(path) == 0

    with sqlite3.connect(path) as conn:
        conn.execute("DROP TRIGGER refuse")
    await storage.create_jobs([_job(queue="new")])
    assert _stored(path) == 1


async def test_listeners_hear_an_inline_enqueue(
    storage: SQLiteStorage,
) -> None:
    heard: list[Notification] = []
    unsubscribe = storage.subscribe(heard.append)
    try:
        await storage.create_jobs([_job(queue="mail")])
    finally:
        unsubscribe()
    assert JobsEnqueued(frozenset({"mail"})) in heard


async def test_the_wal_stays_bounded_under_inline_enqueues(
    storage: SQLiteStorage, tmp_path: Path
) -> None:
    wal = tmp_path / "jobs.db-wal"
    largest = 0
    async with asyncio.timeout(60):
        for _ in range(6000):
            await storage.create_jobs([_job()])
            largest = max(largest, wal.stat().st_size)
            # Let the storage thread's checkpoint finish now and then,
            # as the awaits of a real application would.
            await asyncio.sleep(0)
    assert _stored(tmp_path / "jobs.db") == 6000
    # Unchecked, 6,000 commits of about five 4 KiB pages each would
    # grow it past 120 MB; the storage holds it near 16 MB.
    assert largest < 32 * 1024 * 1024


def test_the_url_option_must_be_true_or_false() -> None:
    with pytest.raises(InvalidStorageURLError, match="inline_enqueue"):
        open_url("sqlite:///jobs.db?inline_enqueue=maybe")


@pytest.fixture
async def threaded(tmp_path: Path) -> AsyncIterator[SQLiteStorage]:
    """A storage whose enqueues all take the storage thread."""
    storage = SQLiteStorage(str(tmp_path / "jobs.db"), inline_enqueue=False)
    await storage.migrate()
    yield storage
    await storage.close()


async def test_enqueues_waiting_for_the_thread_commit_together(
    threaded: SQLiteStorage, tmp_path: Path
) -> None:
    statements: list[str] = []
    assert threaded._conn is not None
    threaded._conn.set_trace_callback(statements.append)
    blocked = _BlockedThread(threaded)
    try:
        tasks = [
            asyncio.create_task(threaded.create_jobs([_job()]))
            for _ in range(5)
        ]
        await asyncio.sleep(0)  # every task is waiting for the thread
    finally:
        blocked.release.set()
    async with asyncio.timeout(10):
        ids = await asyncio.gather(*tasks)
    assert statements.count("BEGIN IMMEDIATE") == 1
    assert len({job_id for (job_id,) in ids}) == 5
    assert _stored(tmp_path / "jobs.db") == 5


async def test_a_refused_enqueue_in_a_group_fails_alone(
    threaded: SQLiteStorage, tmp_path: Path
) -> None:
    with sqlite3.connect(tmp_path / "jobs.db") as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON jobs"
            " WHEN NEW.queue = 'refused'"
            " BEGIN SELECT RAISE(ABORT, 'queue refused'); END"
        )
    blocked = _BlockedThread(threaded)
    try:
        tasks = [
            asyncio.create_task(threaded.create_jobs([_job(queue)]))
            for queue in ("default", "refused", "default")
        ]
        await asyncio.sleep(0)
    finally:
        blocked.release.set()
    async with asyncio.timeout(10):
        first, refused, last = await asyncio.gather(
            *tasks, return_exceptions=True
        )
    assert isinstance(refused, StorageError)
    assert "queue refused" in str(refused)
    assert isinstance(first, list)
    assert isinstance(last, list)
    assert _stored(tmp_path / "jobs.db") == 2


async def test_an_enqueue_cancelled_while_it_waits_writes_nothing(
    threaded: SQLiteStorage, tmp_path: Path
) -> None:
    blocked = _BlockedThread(threaded)
    try:
        cancelled = asyncio.create_task(threaded.create_jobs([_job()]))
        await asyncio.sleep(0)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
    finally:
        blocked.release.set()
    async with asyncio.timeout(10):
        await threaded.create_jobs([_job()])
    assert _stored(tmp_path / "jobs.db") == 1


async def test_an_inline_enqueue_yields_to_the_loop_before_writing(
    storage: SQLiteStorage, tmp_path: Path
) -> None:
    task = asyncio.create_task(storage.create_jobs([_job()]))
    await asyncio.sleep(0)  # the task has started and yielded once
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _stored(tmp_path / "jobs.db") == 0


async def test_a_loop_of_inline_enqueues_lets_other_tasks_run(
    storage: SQLiteStorage,
) -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)
    started = ticks
    for _ in range(20):
        await storage.create_jobs([_job()])
    ticker.cancel()
    assert ticks - started >= 20


async def test_inline_enqueues_of_one_turn_commit_together(
    storage: SQLiteStorage, tmp_path: Path
) -> None:
    statements: list[str] = []
    assert storage._inline is not None
    storage._inline.set_trace_callback(statements.append)
    async with asyncio.timeout(10):
        ids = await asyncio.gather(
            *(storage.create_jobs([_job()]) for _ in range(15))
        )
    # Ten jobs at most per inline transaction: 15 calls take two.
    assert statements.count("BEGIN IMMEDIATE") == 2
    assert len({job_id for (job_id,) in ids}) == 15
    assert _stored(tmp_path / "jobs.db") == 15


async def test_a_refused_enqueue_in_an_inline_batch_fails_alone(
    storage: SQLiteStorage, tmp_path: Path
) -> None:
    with sqlite3.connect(tmp_path / "jobs.db") as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON jobs"
            " WHEN NEW.queue = 'refused'"
            " BEGIN SELECT RAISE(ABORT, 'queue refused'); END"
        )
    async with asyncio.timeout(10):
        first, refused, last = await asyncio.gather(
            *(
                storage.create_jobs([_job(queue)])
                for queue in ("default", "refused", "default")
            ),
            return_exceptions=True,
        )
    assert isinstance(refused, StorageError)
    assert "queue refused" in str(refused)
    assert isinstance(first, list)
    assert isinstance(last, list)
    assert _stored(tmp_path / "jobs.db") == 2
