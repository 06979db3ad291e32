"""The SQLite implementation of :class:`~backburner.storage.base.Storage`.

All database work runs on one dedicated thread per storage, which owns
the connection; coroutines hand it work and await the result, so the
event loop never blocks on SQLite. Writes use ``BEGIN IMMEDIATE`` so a
transaction takes the write lock up front instead of failing half-way
when another process wrote first.

Enqueuing is one transaction per call, so its cost follows the pages it
writes: the job row, its state indexes, its queue entry (an entry of
the partial index ``jobs_queued``) and the counter. A job's creation
history entry is not among them: the job row implies it until the
first state change writes it (see :func:`_write_creation`).

A small enqueue skips the storage thread when it can do so without
waiting: if the thread has nothing queued or running, it runs on the
calling thread (the event loop's) through a second connection that
never waits for a lock (``busy_timeout`` 0). If another connection
holds the write lock, it goes to the storage thread as any other write
does. The loop is blocked for one short transaction (tens of
microseconds), never for a lock or a checkpoint: that connection does
not checkpoint the WAL itself; after every
:data:`_INLINE_CHECKPOINT_EVERY` of its commits the storage thread runs
a passive checkpoint alongside. Enqueues that keep coming never let such
a checkpoint finish the WAL, so past :data:`_WAL_FRAMES_LIMIT` frames
the thread checkpoints once more with inline enqueues held off (they
take the thread meanwhile), and the WAL starts over. The WAL grows to
about 16 MB between two such moments, four times what SQLite's own
automatic checkpoint allows. ``inline_enqueue=False`` turns this off.

Enqueues share transactions where they can: those of one turn of the
event loop are written inline together (:meth:`_create_inline`), and
those waiting for the storage thread are committed together there
(:meth:`_create_together`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import json
import logging
import math
import os
import pathlib
import sqlite3
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

from backburner.storage.base import (
    ACTIVE_STATES,
    FINAL_STATES,
    ChangeOutcome,
    ContinuationLink,
    CorruptedJobError,
    HistoryEntry,
    InvalidStorageURLError,
    JobId,
    JobRecord,
    JobsAborted,
    JobsEnqueued,
    JobState,
    JSONValue,
    Listener,
    MissingParentError,
    NewContinuation,
    NewJob,
    Notification,
    OutcomeCount,
    RecurringDefinition,
    RecurringFiring,
    RecurringRecord,
    SchemaError,
    ServerInfo,
    StateChange,
    StateCount,
    Storage,
    StorageError,
    continuation_target,
    decode_states,
    encode_states,
)

T = TypeVar("T")

_JOB_COLUMNS = (
    "id, function, arguments, queue, state, reason, version, attempt, "
    "created_at, state_changed_at, scheduled_at, server, expires_at, "
    "timeout, unique_key, mutex, mutex_limit, keep_result"
)
# SQLite's default limit on host parameters is far above this; chunks
# keep every IN (...) list well inside it.
_CHUNK = 500
_PROCESSING = JobState.PROCESSING.value
_ENQUEUED = JobState.ENQUEUED.value
_OUTCOMES = frozenset({JobState.SUCCEEDED.value, JobState.FAILED.value})
# An enqueue of at most this many jobs may run on the calling thread: a
# few hundred microseconds at most, where a bulk enqueue takes
# milliseconds.
_INLINE_MAX_JOBS = 10
# Commits on the inline connection between two checkpoints: at about
# five pages each, the 1,000 pages at which SQLite's automatic
# checkpoint would run.
_INLINE_CHECKPOINT_EVERY = 200
# WAL frames (pages) beyond which the storage thread's checkpoint holds
# inline enqueues off until it has copied them all (see _checkpoint):
# about 16 MB of WAL at 4 KiB pages.
_WAL_FRAMES_LIMIT = 4000

_log = logging.getLogger(__name__)


def _ts(moment: datetime) -> float:
    return moment.timestamp()


def _dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _opt_ts(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _opt_dt(value: float | None) -> datetime | None:
    return None if value is None else _dt(value)


def _chunks(items: Sequence[T]) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _marks(count: int) -> str:
    return ",".join("?" * count)


def _record(row: Sequence[Any]) -> JobRecord:
    try:
        return JobRecord(
            id=row[0],
            function=str(row[1]),
            arguments=str(row[2]),
            queue=str(row[3]),
            state=_state(row[0], row[4]),
            reason=str(row[5]),
            version=int(row[6]),
            attempt=int(row[7]),
            created_at=_dt(row[8]),
            state_changed_at=_dt(row[9]),
            scheduled_at=_opt_dt(row[10]),
            server=row[11],
            expires_at=_opt_dt(row[12]),
            timeout=None if row[13] is None else float(row[13]),
            unique_key=None if row[14] is None else str(row[14]),
            mutex=None if row[15] is None else str(row[15]),
            mutex_limit=None if row[16] is None else int(row[16]),
            keep_result=None if row[17] is None else bool(row[17]),
        )
    except (TypeError, ValueError, OverflowError, OSError) as error:
        raise CorruptedJobError(row[0], str(error)) from error


# How often a server's process looks for commits made by other processes
# (see _Watcher): a cheap read of a counter in shared memory, a hundred
# times a second, against half a second of polling otherwise.
WATCH_INTERVAL = 0.01


class _Watcher:
    """Hears commits that other processes make to one database file.

    SQLite has no notifications between processes, but every connection
    can read ``PRAGMA data_version``, which changes when another
    connection commits. A thread of its own reads it every
    :data:`WATCH_INTERVAL` seconds on a connection of its own; when it
    changed and jobs are enqueued, the hub's listeners hear
    :class:`JobsEnqueued` for those queues (from the counters, a table of
    a few rows). Aborts are not heard this way: the server's abort check
    finds them.
    """

    def __init__(self, path: str, hub: _Hub) -> None:
        self._uri = f"{pathlib.Path(path).absolute().as_uri()}?mode=rw"
        self._hub = hub
        self.pid = os.getpid()
        self._stopped = threading.Event()
        self.thread = threading.Thread(
            target=self._run, name="backburner-sqlite-watch", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        seen: int | None = None
        try:
            while not self._stopped.wait(WATCH_INTERVAL):
                try:
                    if conn is None:
                        # mode=rw: never create the file if it is gone.
                        conn = sqlite3.connect(
                            self._uri, uri=True, isolation_level=None
                        )
                        seen = None  # data_version is per connection
                    (version,) = conn.execute("PRAGMA data_version").fetchone()
                    if seen is not None and version != seen:
                        self._publish(conn)
                    seen = version
                except sqlite3.Error:
                    # Locked, not migrated yet, or the file was replaced:
                    # start over on a new connection next tick. Meanwhile
                    # the server's polling still finds the jobs.
                    if conn is not None:
                        conn.close()
                        conn = None
        finally:
            if conn is not None:
                conn.close()

    def _publish(self, conn: sqlite3.Connection) -> None:
        queues = frozenset(
            queue
            for (queue,) in conn.execute(
                "SELECT queue FROM job_counters WHERE state = ? AND count > 0",
                (_ENQUEUED,),
            )
        )
        if queues:
            self._hub.publish(JobsEnqueued(queues))


class _Hub:
    """Listeners of every storage on one database file in this process.

    For a file (not ``:memory:``) a :class:`_Watcher` runs while anyone
    listens, so that listeners also hear jobs enqueued by other
    processes.
    """

    def __init__(self, path: str | None = None) -> None:
        self._lock = threading.Lock()
        self._listeners: dict[int, Listener] = {}
        self._next = 0
        self._path = path
        self._watcher: _Watcher | None = None

    def add(self, listener: Listener) -> Callable[[], None]:
        with self._lock:
            key = self._next
            self._next += 1
            self._listeners[key] = listener
            watcher = self._watcher
            # After a fork the watcher's thread stayed in the parent.
            if self._path is not None and (
                watcher is None or watcher.pid != os.getpid()
            ):
                self._watcher = _Watcher(self._path, self)
                self._watcher.start()

        def remove() -> None:
            with self._lock:
                self._listeners.pop(key, None)
                if not self._listeners and self._watcher is not None:
                    self._watcher.stop()
                    self._watcher = None

        return remove

    def publish(self, notification: Notification) -> None:
        """Tell every listener; one that raises is logged and skipped.

        Publishing follows a commit: an error here must neither reach
        the caller, whose jobs are stored, nor make a group commit write
        them again call by call.
        """
        with self._lock:
            listeners = list(self._listeners.values())
        for listener in listeners:
            try:
                listener(notification)
            except Exception:  # noqa: BLE001 - logged, the rest still hear
                _log.exception(
                    "notification listener failed",
                    extra={"event": "storage.listener_failed"},
                )


_hubs: dict[str, _Hub] = {}
_hubs_lock = threading.Lock()


def _hub_for(key: str, path: str | None) -> _Hub:
    with _hubs_lock:
        hub = _hubs.get(key)
        if hub is None:
            hub = _hubs[key] = _Hub(path)
        return hub


def _rollback(conn: sqlite3.Connection) -> None:
    # SQLite rolls back by itself on some errors (SQLITE_FULL, IOERR);
    # a second ROLLBACK would hide the real error behind "cannot
    # rollback - no transaction is active".
    if conn.in_transaction:
        conn.execute("ROLLBACK")


# Found next to this module rather than through importlib.resources,
# whose imports (zipfile, tempfile, shutil, bz2, lzma) would add some
# milliseconds to every worker's start for the same folder.
_MIGRATIONS = pathlib.Path(__file__).with_name("migrations")


def _migrations() -> list[tuple[int, str]]:
    found = []
    for entry in _MIGRATIONS.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), entry.read_text("utf-8")))
    return sorted(found)


class _Changes:
    """Counter deltas and notifications gathered during one transaction."""

    def __init__(self) -> None:
        self.counters: Counter[tuple[str, str]] = Counter()
        self.outcomes: Counter[tuple[str, float]] = Counter()
        self.enqueued: set[str] = set()
        self.aborted: set[JobId] = set()
        # Whether any continuation exists, looked up once per
        # transaction (the write lock keeps it true for all of it).
        self.continuations: bool | None = None

    def any_continuations(self, conn: sqlite3.Connection) -> bool:
        if self.continuations is None:
            self.continuations = bool(
                conn.execute(
                    "SELECT 1 FROM job_continuations LIMIT 1"
                ).fetchone()
            )
        return self.continuations

    def move(self, queue: str, old: str | None, new: str | None) -> None:
        if old is not None:
            self.counters[(old, queue)] -= 1
        if new is not None:
            self.counters[(new, queue)] += 1
        if new == _ENQUEUED:
            self.enqueued.add(queue)

    def finish(self, state: str, at: float) -> None:
        if state in _OUTCOMES:
            self.outcomes[(state, at - at % 3600)] += 1

    def write_counters(self, conn: sqlite3.Connection) -> None:
        rows = [(s, q, n) for (s, q), n in self.counters.items() if n]
        conn.executemany(
            "INSERT INTO job_counters (state, queue, count) VALUES (?, ?, ?)"
            " ON CONFLICT (state, queue)"
            " DO UPDATE SET count = count + excluded.count",
            rows,
        )
        if not self.outcomes:
            return  # an empty executemany still costs a statement
        conn.executemany(
            "INSERT INTO job_outcomes (state, hour, count) VALUES (?, ?, ?)"
            " ON CONFLICT (state, hour)"
            " DO UPDATE SET count = count + excluded.count",
            [(s, h, n) for (s, h), n in self.outcomes.items()],
        )


class SQLiteStorage(Storage):
    """Jobs in one SQLite file (see the package docstring for limits).

    Args:
        path: the database file, or ``":memory:"`` (one process, tests).
        busy_timeout: seconds a transaction waits for another process's
            write lock before failing with :class:`StorageError`.
        auto_migrate: install or upgrade the schema on first use.
        inline_enqueue: let a small enqueue run on the calling thread
            when that needs no waiting (see the module docstring);
            ``False`` sends every call to the storage thread.
    """

    def __init__(
        self,
        path: str,
        *,
        busy_timeout: float = 10.0,
        auto_migrate: bool = True,
        inline_enqueue: bool = True,
    ) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        self._auto_migrate = auto_migrate
        self._conn: sqlite3.Connection | None = None
        memory = path == ":memory:" or path.startswith("file::memory:")
        # A second connection to a file would open a second, empty
        # in-memory database: in memory everything takes the thread.
        self._inline_enqueue = inline_enqueue and not memory
        # The inline connection, opened by the storage thread next to
        # the main one; None while closed or turned off.
        self._inline: sqlite3.Connection | None = None
        # One user at a time: held while a transaction runs on it.
        self._inline_lock = threading.Lock()
        # Calls handed to the storage thread and not yet answered.
        self._pending = 0
        # Enqueues waiting for the storage thread (see _create_together).
        self._group_lock = threading.Lock()
        self._group: list[
            tuple[Sequence[NewJob], concurrent.futures.Future[list[JobId]]]
        ] = []
        # Inline enqueues of this turn of each event loop.
        self._batches: dict[
            asyncio.AbstractEventLoop,
            list[tuple[Sequence[NewJob], asyncio.Future[list[JobId]]]],
        ] = {}
        self._inline_commits = 0
        self._checkpointing = False
        # Versions applied when the connection opened, until migrate()
        # reports them.
        self._unreported: list[int] = []
        # close() has begun: no new call is taken from here on.
        self._closing = False
        # The storage thread closed the connections: calls it still
        # finds in its hands fail rather than open them again.
        self._shut = False
        self._closed = False
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="backburner-sqlite"
        )
        hub_key = f"memory:{id(self)}" if memory else os.path.abspath(path)
        self._hub = _hub_for(hub_key, None if memory else hub_key)

    # -- plumbing -------------------------------------------------------

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._closing:
            raise StorageError("storage is closed")
        loop = asyncio.get_running_loop()
        call = functools.partial(self._call, work)
        self._pending += 1
        try:
            try:
                running = loop.run_in_executor(self._executor, call)
            except RuntimeError:  # closed meanwhile by another thread
                raise StorageError("storage is closed") from None
            return await running
        finally:
            self._pending -= 1

    def _call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return work(self._connection())
        except sqlite3.Error as error:
            raise StorageError(f"SQLite error: {error}") from error

    def _connection(self) -> sqlite3.Connection:
        if self._shut:
            # Opening again would leak the connection past close().
            raise StorageError("storage is closed")
        if self._conn is None:
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            _use_wal(conn, self._busy_timeout)
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(
                f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}"
            )
            self._conn = conn
            if self._auto_migrate:
                self._unreported = self._migrate(conn)
            if self._inline_enqueue:
                self._inline = self._open_inline()
        return self._conn

    def _open_inline(self) -> sqlite3.Connection:
        # timeout=0: a busy file answers SQLITE_BUSY at once, and the
        # write goes to the storage thread, which may wait.
        conn = sqlite3.connect(
            self.path,
            timeout=0,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.execute("PRAGMA synchronous = NORMAL")
        # The checkpoint's fsync would land on the event loop: the
        # storage thread checkpoints instead (_inline_committed).
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        return conn

    def _write(
        self,
        conn: sqlite3.Connection,
        work: Callable[[sqlite3.Connection, _Changes], T],
    ) -> T:
        conn.execute("BEGIN IMMEDIATE")
        return self._commit(conn, work)

    def _commit(
        self,
        conn: sqlite3.Connection,
        work: Callable[[sqlite3.Connection, _Changes], T],
    ) -> T:
        """Run ``work`` in the transaction begun on ``conn``; commit it."""
        changes = _Changes()
        try:
            result = work(conn, changes)
            changes.write_counters(conn)
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        if changes.enqueued:
            self._hub.publish(JobsEnqueued(frozenset(changes.enqueued)))
        if changes.aborted:
            self._hub.publish(JobsAborted(frozenset(changes.aborted)))
        return result

    def _write_inline(
        self, work: Callable[[sqlite3.Connection, _Changes], T]
    ) -> tuple[T] | None:
        """Run a write on the calling thread if that needs no waiting.

        Returns ``(result,)``, or ``None`` before writing anything when
        the write should go to the storage thread: the inline connection
        is not open (yet, or any more), the storage thread has calls in
        hand or holds the connection (:meth:`_checkpoint`), or another
        connection holds the write lock.

        Raises:
            StorageError: the transaction failed; nothing was written.
        """
        conn = self._inline
        if conn is None or self._pending or self._closing:
            return None
        if not self._inline_lock.acquire(blocking=False):
            return None
        try:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error:
                # Busy, most likely. Whatever it is, the storage thread
                # tries again, waits if it must, and reports what stays.
                return None
            try:
                result = self._commit(conn, work)
            except sqlite3.Error as error:
                raise StorageError(f"SQLite error: {error}") from error
        finally:
            self._inline_lock.release()
        self._inline_committed()
        return (result,)

    def _inline_committed(self) -> None:
        self._inline_commits += 1
        if (
            self._inline_commits < _INLINE_CHECKPOINT_EVERY
            or self._checkpointing
        ):
            return
        self._inline_commits = 0
        self._checkpointing = True
        # Closed meanwhile from another thread: the WAL stays as it is.
        with contextlib.suppress(RuntimeError):
            self._executor.submit(self._checkpoint)

    def _checkpoint(self) -> None:
        # On the storage thread, without waiting for readers (PASSIVE),
        # while inline enqueues go on. But a checkpoint overtaken by new
        # frames never completes, and only after a completed one does
        # the next write start the WAL over instead of growing it: once
        # the WAL holds _WAL_FRAMES_LIMIT frames, one more checkpoint
        # runs with the inline connection held, enqueues taking the
        # storage thread (behind it) meanwhile.
        conn = self._conn
        try:
            if conn is None:
                return
            (_, frames, _) = conn.execute(
                "PRAGMA wal_checkpoint(PASSIVE)"
            ).fetchone()
            if frames >= _WAL_FRAMES_LIMIT:
                with self._inline_lock:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as error:
            _log.debug(
                "WAL checkpoint failed: %s",
                error,
                extra={"event": "sqlite.checkpoint_failed"},
            )
        finally:
            self._checkpointing = False

    def _migrate(self, conn: sqlite3.Connection) -> list[int]:
        migrations = _migrations()
        latest = migrations[-1][0] if migrations else 0
        (current,) = conn.execute("PRAGMA user_version").fetchone()
        if current > latest:
            raise SchemaError(
                f"database schema version {current} is newer than this "
                f"backburner knows ({latest}); upgrade backburner"
            )
        if current == latest:
            return []
        applied = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the
            # lock: read the version again under it.
            (current,) = conn.execute("PRAGMA user_version").fetchone()
            for version, script in migrations:
                if version <= current:
                    continue
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                applied.append(version)
            conn.execute(f"PRAGMA user_version = {latest}")
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        return applied

    # -- the core state change --------------------------------------------

    def _history(
        self,
        conn: sqlite3.Connection,
        job_id: JobId,
        state: str,
        reason: str,
        at: float,
        data: Mapping[str, JSONValue],
    ) -> None:
        conn.execute(
            "INSERT INTO job_history (job_id, state, reason, created_at,"
            " data) VALUES (?, ?, ?, ?, ?)",
            (job_id, state, reason, at, json.dumps(data)),
        )

    def _change(
        self,
        conn: sqlite3.Connection,
        changes: _Changes,
        change: StateChange,
        *,
        from_worker: bool,
    ) -> ChangeOutcome:
        row = conn.execute(
            "SELECT state, queue, version, unique_key FROM jobs WHERE id = ?",
            (change.job_id,),
        ).fetchone()
        if row is None:
            return ChangeOutcome(change.job_id, False, None)
        state, queue, version, unique_key = row
        try:
            previous = JobState(state)
        except ValueError as error:
            raise CorruptedJobError(change.job_id, str(error)) from error
        if previous not in change.from_states or (
            change.expected_version is not None
            and version != change.expected_version
        ):
            return ChangeOutcome(change.job_id, False, previous)
        if (
            unique_key is not None
            and change.to_state in ACTIVE_STATES
            and previous not in ACTIVE_STATES
        ):
            holder = _unique_holder(conn, unique_key, change.job_id)
            if holder is not None:
                return ChangeOutcome(change.job_id, False, previous, holder)

        target = change.to_state.value
        at = _ts(change.at)
        if version == 1:
            _write_creation(conn, [change.job_id], at)
        self._history(
            conn, change.job_id, target, change.reason, at, change.data
        )
        conn.execute(
            _UPDATE_STATE,
            (
                target,
                change.reason,
                at,
                _opt_ts(change.scheduled_at),
                _opt_ts(change.expires_at),
                change.reset_attempt,
                change.to_state is JobState.ENQUEUED,
                change.job_id,
            ),
        )
        if previous is JobState.PROCESSING and not from_worker:
            changes.aborted.add(change.job_id)
        changes.move(queue, state, target)
        changes.finish(target, at)
        if not changes.any_continuations(conn):
            pass
        elif change.to_state in FINAL_STATES:
            self._fire_continuations(conn, changes, change)
        elif previous in FINAL_STATES:
            self._rearm_continuations(conn, changes, change)
        return ChangeOutcome(change.job_id, True, previous)

    def _apply(
        self,
        conn: sqlite3.Connection,
        changes: _Changes,
        batch: Sequence[StateChange],
    ) -> list[ChangeOutcome]:
        """Apply a batch of changes, each as :meth:`_change` would.

        A server's outcomes come in batches of distinct jobs that need
        neither a unique-key check nor continuations; those take a few
        statements for the whole batch instead of three per change (each
        statement is a trip through SQLite and its lock on the
        interpreter). Anything else goes through :meth:`_change`, one by
        one, in order.
        """
        if len(batch) > 1 and not changes.any_continuations(conn):
            outcomes = self._apply_together(conn, changes, batch)
            if outcomes is not None:
                return outcomes
        return [
            self._change(conn, changes, change, from_worker=change.from_worker)
            for change in batch
        ]

    def _apply_together(
        self,
        conn: sqlite3.Connection,
        changes: _Changes,
        batch: Sequence[StateChange],
    ) -> list[ChangeOutcome] | None:
        """The batched path of :meth:`_apply`; ``None`` if it does not fit.

        Returns ``None`` before writing anything.
        """
        ids = [change.job_id for change in batch]
        if len(set(ids)) != len(ids):
            return None
        found: dict[JobId, tuple[JobState, str, int]] = {}
        for chunk in _chunks(ids):
            rows = conn.execute(
                "SELECT id, state, queue, version, unique_key FROM jobs"
                f" WHERE id IN ({_marks(len(chunk))})",
                chunk,
            ).fetchall()
            for job_id, state, queue, version, unique_key in rows:
                found[job_id] = (_state(job_id, state), queue, version)
                if unique_key is not None:
                    # A key may have to be checked against the changes
                    # before it, in order.
                    return None

        outcomes = []
        applied: list[tuple[StateChange, JobState, str]] = []
        for change in batch:
            row = found.get(change.job_id)
            if row is None:
                outcomes.append(ChangeOutcome(change.job_id, False, None))
                continue
            previous, queue, version = row
            if previous not in change.from_states or (
                change.expected_version is not None
                and version != change.expected_version
            ):
                outcomes.append(ChangeOutcome(change.job_id, False, previous))
                continue
            outcomes.append(ChangeOutcome(change.job_id, True, previous))
            applied.append((change, previous, queue))
        if applied:
            self._write_together(conn, changes, applied, found)
        return outcomes

    def _write_together(
        self,
        conn: sqlite3.Connection,
        changes: _Changes,
        applied: Sequence[tuple[StateChange, JobState, str]],
        found: Mapping[JobId, tuple[JobState, str, int]],
    ) -> None:
        first = [
            change.job_id
            for change, _, _ in applied
            if found[change.job_id][2] == 1
        ]
        for chunk in _chunks(first):
            _write_creation(conn, chunk, _ts(applied[0][0].at))
        conn.executemany(
            "INSERT INTO job_history (job_id, state, reason, created_at,"
            " data) VALUES (?, ?, ?, ?, ?)",
            [
                (
                    change.job_id,
                    change.to_state.value,
                    change.reason,
                    _ts(change.at),
                    json.dumps(change.data) if change.data else "{}",
                )
                for change, _, _ in applied
            ],
        )
        conn.executemany(
            _UPDATE_STATE,
            [
                (
                    change.to_state.value,
                    change.reason,
                    _ts(change.at),
                    _opt_ts(change.scheduled_at),
                    _opt_ts(change.expires_at),
                    change.reset_attempt,
                    change.to_state is JobState.ENQUEUED,
                    change.job_id,
                )
                for change, _, _ in applied
            ],
        )
        for change, previous, queue in applied:
            if previous is JobState.PROCESSING and not change.from_worker:
                changes.aborted.add(change.job_id)
            target = change.to_state.value
            changes.move(queue, previous.value, target)
            changes.finish(target, _ts(change.at))

    def _fire_continuations(
        self,
        conn: sqlite3.Connection,
        changes: _Changes,
        parent: StateChange,
        only: JobId | None = None,
    ) -> None:
        """Move the parent's awaiting continuations (see the base class)."""
        rows = conn.execute(
            "SELECT job_id, on_states FROM job_continuations"
            " WHERE parent_id = ? AND (? IS NULL OR job_id = ?)",
            (parent.job_id, only, only),
        ).fetchall()
        for job_id, on_states in rows:
            target = continuation_target(
                parent.to_state, decode_states(on_states)
            )
            if target is None:
                continue
            # Recursive: a continuation deleted here passes it on to its
            # own continuations.
            self._change(
                conn,
                changes,
                StateChange(
                    job_id=job_id,
                    to_state=target,
                    from_states=frozenset({JobState.AWAITING}),
                    reason=_continuation_reason(parent, on_states),
                    at=parent.at,
                    data={"parent": parent.job_id},
                    expires_at=(
                        parent.expires_at
                        if target is JobState.DELETED
                        else None
                    ),
                ),
                from_worker=False,
            )

    def _rearm_continuations(
        self,
        conn: sqlite3.Connection,
        changes: _Changes,
        parent: StateChange,
    ) -> None:
        """Put the parent's finished continuations back to *awaiting*."""
        rows = conn.execute(
            "SELECT job_id FROM job_continuations WHERE parent_id = ?",
            (parent.job_id,),
        ).fetchall()
        for (job_id,) in rows:
            self._change(
                conn,
                changes,
                StateChange(
                    job_id=job_id,
                    to_state=JobState.AWAITING,
                    from_states=FINAL_STATES,
                    reason=f"re-armed: parent job {parent.job_id} left"
                    f" its final state",
                    at=parent.at,
                    data={"parent": parent.job_id},
                    reset_attempt=True,
                ),
                from_worker=False,
            )

    # -- Storage ----------------------------------------------------------

    async def migrate(self) -> list[int]:
        """Install or upgrade the schema; return the versions applied.

        The versions include those this storage applied on its own when
        it opened the file (``auto_migrate``), the first time it is
        asked.

        Raises:
            SchemaError: the file was migrated by a newer backburner.
        """

        def work(conn: sqlite3.Connection) -> list[int]:
            applied = self._unreported + self._migrate(conn)
            self._unreported = []
            return applied

        return await self._run(work)

    async def close(self) -> None:
        """Close the connection and stop the storage thread.

        Returns once the storage thread has ended. Calls handed to the
        storage thread before close() complete before it returns; calls
        made from then on, and any still in hand once the connections
        are closed, raise :class:`StorageError` ("storage is closed").
        """
        if self._closed:
            return

        # No inline write and no new call start from here on.
        self._closing = True

        def work() -> None:
            self._shut = True
            if self._inline is not None:
                with self._inline_lock:  # one may run on another thread
                    self._inline.close()
                    self._inline = None
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, work)
        self._closed = True
        self._executor.shutdown(wait=False)
        # Wait for the thread to end (it may still finish a checkpoint),
        # off the event loop: a process that forks right after close,
        # as `worker --processes` does, must be left with no thread of
        # ours. (RuntimeError: the loop is ending and its executor is
        # shut down already; the thread is left to end on its own.)
        with contextlib.suppress(RuntimeError):
            await asyncio.to_thread(self._executor.shutdown)

    async def create_jobs(self, jobs: Sequence[NewJob]) -> list[JobId]:
        """Store jobs in one transaction; see :meth:`Storage.create_jobs`."""
        _check_new_jobs(jobs)

        if len(jobs) <= _INLINE_MAX_JOBS and self._inline is not None:
            return await self._create_inline(jobs)
        return await self._create_together(jobs)

    async def _create_inline(self, jobs: Sequence[NewJob]) -> list[JobId]:
        """Store jobs on the loop's thread with the other enqueues of the
        same turn of the loop (see :meth:`_flush_inline`).

        Every call waits for the loop's next turn, as a trip to the
        storage thread would: a loop of enqueues does not starve the
        other tasks, and a timeout or cancellation finds a point to land
        before anything is written.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[JobId]] = loop.create_future()
        batch = self._batches.get(loop)
        if batch is None:
            batch = self._batches[loop] = []
            loop.call_soon(self._flush_inline, loop)
        batch.append((jobs, future))
        return await future

    def _flush_inline(self, loop: asyncio.AbstractEventLoop) -> None:
        # Cancelled callers are left out: they wrote nothing.
        batch = [
            (jobs, future)
            for jobs, future in self._batches.pop(loop, [])
            if not future.done()
        ]
        while batch:
            size = len(batch[0][0])
            taken = 1
            while taken < len(batch) and (
                size + len(batch[taken][0]) <= _INLINE_MAX_JOBS
            ):
                size += len(batch[taken][0])
                taken += 1
            self._flush_some(loop, batch[:taken])
            batch = batch[taken:]

    def _flush_some(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: Sequence[tuple[Sequence[NewJob], asyncio.Future[list[JobId]]]],
    ) -> None:
        def work(conn: sqlite3.Connection, changes: _Changes) -> list[Any]:
            return [
                self._insert_jobs(conn, changes, jobs) for jobs, _ in batch
            ]

        try:
            done = self._write_inline(work)
        except Exception as error:  # noqa: BLE001 - each caller gets its own
            if len(batch) == 1:
                batch[0][1].set_exception(error)
                return
            # As in _write_group: each call alone, its error its own.
            for member in batch:
                self._flush_some(loop, [member])
            return
        if done is None:
            for jobs, future in batch:
                self._hand_over(loop, jobs, future)
            return
        for (_, future), ids in zip(batch, done[0], strict=True):
            future.set_result(ids)

    def _hand_over(
        self,
        loop: asyncio.AbstractEventLoop,
        jobs: Sequence[NewJob],
        future: asyncio.Future[list[JobId]],
    ) -> None:
        """Let the storage thread answer ``future`` (see _flush_some)."""
        task = loop.create_task(self._create_together(jobs))

        def answer(task: asyncio.Task[list[JobId]]) -> None:
            if task.cancelled():
                if not future.done():
                    future.cancel()
                return
            error = task.exception()  # retrieved even if no one waits
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(task.result())

        def forward_cancel(future: asyncio.Future[list[JobId]]) -> None:
            if future.cancelled():
                task.cancel()

        task.add_done_callback(answer)
        future.add_done_callback(forward_cancel)

    async def _create_together(self, jobs: Sequence[NewJob]) -> list[JobId]:
        """Store jobs on the storage thread, in one transaction with the
        other calls waiting for it (group commit).

        Concurrent enqueuers that find the thread busy would otherwise
        queue a transaction each behind it; the first one hands the
        thread :meth:`_write_group`, which takes every call waiting by
        the time it runs.
        """
        if self._closing:
            raise StorageError("storage is closed")
        future: concurrent.futures.Future[list[JobId]]
        future = concurrent.futures.Future()
        with self._group_lock:
            self._group.append((jobs, future))
            first = len(self._group) == 1
        if first:
            try:
                self._executor.submit(self._write_group)
            except RuntimeError:  # closed meanwhile by another thread
                raise StorageError("storage is closed") from None
        self._pending += 1
        try:
            return await asyncio.wrap_future(future)
        finally:
            self._pending -= 1

    def _write_group(self) -> None:
        with self._group_lock:
            group, self._group = self._group, []
        # A call cancelled before its turn is written by no one.
        group = [
            (jobs, future)
            for jobs, future in group
            if future.set_running_or_notify_cancel()
        ]
        if not group:
            return

        def work(conn: sqlite3.Connection, changes: _Changes) -> list[Any]:
            return [
                self._insert_jobs(conn, changes, jobs) for jobs, _ in group
            ]

        try:
            results = self._call(lambda conn: self._write(conn, work))
        except Exception as error:  # noqa: BLE001 - each caller gets its own
            if len(group) == 1:
                group[0][1].set_exception(error)
                return
            # Which call failed, and why, as if each had been alone: one
            # transaction each, errors only to their own callers.
            for jobs, future in group:
                self._write_alone(jobs, future)
            return
        for (_, future), ids in zip(group, results, strict=True):
            future.set_result(ids)

    def _write_alone(
        self,
        jobs: Sequence[NewJob],
        future: concurrent.futures.Future[list[JobId]],
    ) -> None:
        def work(conn: sqlite3.Connection, changes: _Changes) -> list[int]:
            return self._insert_jobs(conn, changes, jobs)

        try:
            future.set_result(self._call(lambda conn: self._write(conn, work)))
        except Exception as error:  # noqa: BLE001 - raised in the caller
            future.set_exception(error)

    async def create_continuations(
        self, continuations: Sequence[NewContinuation]
    ) -> list[JobId]:
        """Store continuations (see :meth:`Storage.create_continuations`).

        Raises:
            MissingParentError: a parent does not exist; nothing written.
            StorageError: a continuation is invalid; nothing written.
        """
        _check_continuations(continuations)

        def work(conn: sqlite3.Connection, changes: _Changes) -> list[int]:
            ids = []
            for continuation in continuations:
                ids.append(self._continue(conn, changes, continuation))
            return ids

        if not continuations:
            return []
        return await self._run(lambda conn: self._write(conn, work))

    async def continuation_links(
        self, job_id: JobId
    ) -> list[ContinuationLink]:
        """Return the job's parent and continuation links (see base)."""

        def work(conn: sqlite3.Connection) -> list[Any]:
            return conn.execute(
                "SELECT parent_id, job_id, on_states FROM job_continuations"
                " WHERE parent_id = ? OR job_id = ? ORDER BY job_id",
                (job_id, job_id),
            ).fetchall()

        return [
            ContinuationLink(parent, child, decode_states(on_states))
            for parent, child, on_states in await self._run(work)
        ]

    def _continue(
        self,
        conn: sqlite3.Connection,
        changes: _Changes,
        continuation: NewContinuation,
    ) -> JobId:
        parent = conn.execute(
            "SELECT state, expires_at FROM jobs WHERE id = ?",
            (continuation.parent_id,),
        ).fetchone()
        if parent is None:
            raise MissingParentError(continuation.parent_id)
        (job_id,) = self._insert_jobs(conn, changes, [continuation.job])
        on_states = encode_states(continuation.on_states)
        conn.execute(
            "INSERT INTO job_continuations (parent_id, job_id, on_states)"
            " VALUES (?, ?, ?)",
            (continuation.parent_id, job_id, on_states),
        )
        changes.continuations = True
        try:
            parent_state = JobState(parent[0])
        except ValueError as error:
            raise CorruptedJobError(
                continuation.parent_id, str(error)
            ) from error
        if parent_state in FINAL_STATES:
            # The parent finished before its continuation was created:
            # react now, as if it finished at this moment.
            self._fire_continuations(
                conn,
                changes,
                StateChange(
                    job_id=continuation.parent_id,
                    to_state=parent_state,
                    from_states=frozenset({parent_state}),
                    reason="",
                    at=continuation.job.created_at,
                    expires_at=_opt_dt(parent[1]),
                ),
                only=job_id,
            )
        return job_id

    def _insert_jobs(
        self,
        conn: sqlite3.Connection,
        changes: _Changes,
        jobs: Sequence[NewJob],
    ) -> list[int]:
        ids = []
        for job in jobs:
            if job.unique_key is not None:
                # The write lock (BEGIN IMMEDIATE) is held: no other
                # process can create or activate a holder meanwhile.
                holder = _unique_holder(conn, job.unique_key, None)
                if holder is not None:
                    ids.append(holder)
                    continue
            at = _ts(job.created_at)
            row = (
                job.function,
                job.arguments,
                job.queue,
                job.state.value,
                job.reason,
                at,
                at,
                _opt_ts(job.scheduled_at),
                job.timeout,
            )
            if (
                job.unique_key is None
                and job.mutex is None
                and job.keep_result is None
            ):
                cursor = conn.execute(_INSERT_JOB, (*row, job.queue))
            else:
                cursor = conn.execute(
                    _INSERT_COORDINATED_JOB,
                    (
                        *row,
                        job.unique_key,
                        job.mutex,
                        None if job.mutex is None else job.mutex_limit,
                        job.keep_result,
                        job.queue,
                    ),
                )
            job_id = cursor.lastrowid
            assert job_id is not None
            # No history row yet: the job row implies its creation entry
            # until the first state change writes it (_write_creation).
            if job.parameters:
                conn.executemany(
                    "INSERT INTO job_parameters (job_id, name, value)"
                    " VALUES (?, ?, ?)",
                    [(job_id, k, v) for k, v in job.parameters.items()],
                )
            changes.move(job.queue, None, job.state.value)
            ids.append(job_id)
        return ids

    async def apply_changes(
        self, changes: Sequence[StateChange]
    ) -> list[ChangeOutcome]:
        """Apply state changes; see :meth:`Storage.apply_changes`.

        Raises:
            StorageError: a change targets *processing*, or *scheduled*
                without ``scheduled_at``; nothing was written.
        """
        for change in changes:
            _check_change(change)

        def work(
            conn: sqlite3.Connection, gathered: _Changes
        ) -> list[ChangeOutcome]:
            return self._apply(conn, gathered, changes)

        return await self._run(lambda conn: self._write(conn, work))

    async def fetch(
        self,
        server: str,
        queues: Sequence[str],
        limit: int,
        now: datetime,
    ) -> list[JobRecord]:
        """Hand up to ``limit`` enqueued jobs to ``server``.

        Returns nothing when ``server`` is not registered (it was declared
        dead and must announce itself again); otherwise also counts as a
        heartbeat.
        """

        def run(conn: sqlite3.Connection) -> list[JobRecord]:
            # A read first: polling an empty queue must not take the
            # write lock that every other process is waiting for.
            found = any(
                conn.execute(
                    "SELECT 1 FROM jobs WHERE state = 'enqueued'"
                    " AND queue = ? LIMIT 1",
                    (q,),
                ).fetchone()
                for q in queues
            )
            if not found:
                return []
            return self._write(
                conn,
                lambda conn, changes: self._fetch_rows(
                    conn, changes, server, queues, limit, now
                ),
            )

        return await self._run(run)

    async def apply_changes_and_fetch(
        self,
        changes: Sequence[StateChange],
        server: str,
        queues: Sequence[str],
        limit: int,
        now: datetime,
    ) -> tuple[list[ChangeOutcome], list[JobRecord]]:
        """Apply changes, then fetch, in one transaction (see the base).

        Raises:
            StorageError: as :meth:`apply_changes`; nothing was written.
        """
        if not changes:
            return [], await self.fetch(server, queues, limit, now)
        for change in changes:
            _check_change(change)

        def work(
            conn: sqlite3.Connection, gathered: _Changes
        ) -> tuple[list[ChangeOutcome], list[JobRecord]]:
            outcomes = self._apply(conn, gathered, changes)
            rows = self._fetch_rows(conn, gathered, server, queues, limit, now)
            return outcomes, rows

        return await self._run(lambda conn: self._write(conn, work))

    def _fetch_rows(
        self,
        conn: sqlite3.Connection,
        changes: _Changes,
        server: str,
        queues: Sequence[str],
        limit: int,
        now: datetime,
    ) -> list[JobRecord]:
        at = _ts(now)
        reason = f"fetched by {server}"
        data = json.dumps({"server": server})
        alive = conn.execute(
            "UPDATE servers SET heartbeat_at = ? WHERE name = ?",
            (at, server),
        ).rowcount
        if not alive or limit <= 0:
            return []
        picked = _pick(conn, queues, limit)
        rows: list[Any] = []
        for chunk in _chunks(picked):
            marks = _marks(len(chunk))
            _write_creation(conn, chunk, at)
            rows.extend(
                conn.execute(
                    "UPDATE jobs SET state = ?, reason = ?,"
                    " version = version + 1, attempt = attempt + 1,"
                    " state_changed_at = ?, scheduled_at = NULL,"
                    " server = ?, expires_at = NULL"
                    f" WHERE id IN ({marks}) RETURNING {_JOB_COLUMNS}",
                    (_PROCESSING, reason, at, server, *chunk),
                )
            )
        conn.executemany(
            "INSERT INTO job_history (job_id, state, reason,"
            " created_at, data) VALUES (?, ?, ?, ?, ?)",
            [(row[0], _PROCESSING, reason, at, data) for row in rows],
        )
        for row in rows:
            changes.move(row[3], _ENQUEUED, _PROCESSING)
        position = {job_id: index for index, job_id in enumerate(picked)}
        rows.sort(key=lambda row: position[row[0]])
        # Decoded here, inside the transaction: a damaged row fails its
        # own job now, instead of raising after the whole batch was
        # committed to processing with nobody to run it.
        records = []
        for row in rows:
            try:
                records.append(_record(row))
            except CorruptedJobError as error:
                self._change(
                    conn,
                    changes,
                    StateChange(
                        job_id=row[0],
                        to_state=JobState.FAILED,
                        from_states=frozenset({JobState.PROCESSING}),
                        reason=f"cannot run: {error}",
                        at=now,
                        data={"server": server, "corrupted": True},
                    ),
                    from_worker=True,
                )
        return records

    async def promote_scheduled(self, now: datetime, limit: int) -> int:
        """Enqueue due scheduled jobs (see the base class)."""
        at = _ts(now)

        def work(conn: sqlite3.Connection, changes: _Changes) -> int:
            due = conn.execute(
                "SELECT id FROM jobs WHERE state = 'scheduled'"
                " AND scheduled_at <= ? ORDER BY scheduled_at LIMIT ?",
                (at, limit),
            ).fetchall()
            moved = 0
            for (job_id,) in due:
                change = StateChange(
                    job_id=job_id,
                    to_state=JobState.ENQUEUED,
                    from_states=frozenset({JobState.SCHEDULED}),
                    reason="scheduled time reached",
                    at=now,
                )
                outcome = self._change(
                    conn, changes, change, from_worker=False
                )
                moved += outcome.applied
            return moved

        def run(conn: sqlite3.Connection) -> int:
            if not conn.execute(
                "SELECT 1 FROM jobs WHERE state = 'scheduled'"
                " AND scheduled_at <= ? LIMIT 1",
                (at,),
            ).fetchone():
                return 0
            return self._write(conn, work)

        return await self._run(run)

    async def get_job(self, job_id: JobId) -> JobRecord | None:
        """Return the job or ``None``; see :meth:`Storage.get_job`."""

        def work(conn: sqlite3.Connection) -> Any:
            return conn.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()

        row = await self._run(work)
        return None if row is None else _record(row)

    async def get_history(self, job_id: JobId) -> list[HistoryEntry]:
        """Return the job's history, oldest first."""

        def work(conn: sqlite3.Connection) -> list[Any]:
            rows = conn.execute(
                "SELECT state, reason, created_at, data FROM job_history"
                " WHERE job_id = ? ORDER BY id",
                (job_id,),
            ).fetchall()
            if rows:
                return rows
            # Not changed since it was created: the job row is its
            # history (see _write_creation).
            return conn.execute(
                "SELECT state, reason, created_at, '{}' FROM jobs"
                " WHERE id = ? AND version = 1",
                (job_id,),
            ).fetchall()

        entries = []
        for state, reason, at, data in await self._run(work):
            try:
                entries.append(
                    HistoryEntry(
                        JobState(state), reason, _dt(at), json.loads(data)
                    )
                )
            except (TypeError, ValueError, OverflowError) as error:
                raise CorruptedJobError(job_id, f"history: {error}") from error
        return entries

    async def list_jobs(
        self,
        *,
        state: JobState | None = None,
        queue: str | None = None,
        function: str | None = None,
        before: JobId | None = None,
        limit: int = 50,
    ) -> list[JobRecord]:
        """Return a page of jobs, newest first (see the base class)."""
        if state is None and queue is not None:
            sql, params = _queue_page(queue, function, before, limit)
        else:
            sql, params = _page(state, queue, function, before, limit)

        def work(conn: sqlite3.Connection) -> list[Any]:
            return conn.execute(sql, params).fetchall()

        return [_record(row) for row in await self._run(work)]

    async def counts(self) -> list[StateCount]:
        """Return the counters per state and queue (no zero rows)."""

        def work(conn: sqlite3.Connection) -> list[Any]:
            return conn.execute(
                "SELECT state, queue, count FROM job_counters"
                " WHERE count != 0 ORDER BY state, queue"
            ).fetchall()

        counts = []
        for state, queue, count in await self._run(work):
            try:
                counts.append(StateCount(JobState(state), queue, count))
            except ValueError as error:
                raise StorageError(f"corrupted counter: {error}") from error
        return counts

    async def outcome_counts(self, since: datetime) -> list[OutcomeCount]:
        """Return the succeeded and failed totals per hour (see the base).

        Raises:
            StorageError: a stored total names an unknown state.
        """

        def work(conn: sqlite3.Connection) -> list[Any]:
            return conn.execute(
                "SELECT state, hour, count FROM job_outcomes"
                " WHERE hour >= ? AND count != 0 ORDER BY hour, state",
                (_ts(since),),
            ).fetchall()

        try:
            return [
                OutcomeCount(JobState(state), _dt(hour), count)
                for state, hour, count in await self._run(work)
            ]
        except ValueError as error:
            raise StorageError(f"corrupted outcome total: {error}") from error

    async def job_states(
        self, job_ids: Sequence[JobId]
    ) -> dict[JobId, tuple[JobState, int]]:
        """Return the state and version of each existing job."""
        ids = list(job_ids)

        def work(conn: sqlite3.Connection) -> list[Any]:
            rows: list[Any] = []
            for chunk in _chunks(ids):
                rows.extend(
                    conn.execute(
                        "SELECT id, state, version FROM jobs"
                        f" WHERE id IN ({_marks(len(chunk))})",
                        chunk,
                    )
                )
            return rows

        found = {}
        for job_id, state, version in await self._run(work):
            try:
                found[job_id] = (JobState(state), version)
            except ValueError as error:
                raise CorruptedJobError(job_id, str(error)) from error
        return found

    async def expire(self, now: datetime, limit: int) -> int:
        """Remove expired jobs; see :meth:`Storage.expire`."""
        at = _ts(now)

        def work(conn: sqlite3.Connection, changes: _Changes) -> int:
            rows = conn.execute(
                "SELECT id, state, queue FROM jobs WHERE expires_at <= ?"
                " ORDER BY expires_at LIMIT ?",
                (at, limit),
            ).fetchall()
            ids = [row[0] for row in rows]
            for chunk in _chunks(ids):
                marks = _marks(len(chunk))
                for table, column in _JOB_TABLES:
                    conn.execute(
                        f"DELETE FROM {table} WHERE {column} IN ({marks})",
                        chunk,
                    )
            for _, state, queue in rows:
                changes.move(queue, state, None)
            return len(ids)

        return await self._run(lambda conn: self._write(conn, work))

    async def set_parameter(
        self, job_id: JobId, name: str, value: str
    ) -> bool:
        """Set a job parameter; ``False`` if there is no such job."""

        def work(conn: sqlite3.Connection, changes: _Changes) -> bool:
            if not conn.execute(
                "SELECT 1 FROM jobs WHERE id = ?", (job_id,)
            ).fetchone():
                return False
            conn.execute(
                "INSERT INTO job_parameters (job_id, name, value)"
                " VALUES (?, ?, ?) ON CONFLICT (job_id, name)"
                " DO UPDATE SET value = excluded.value",
                (job_id, name, value),
            )
            return True

        return await self._run(lambda conn: self._write(conn, work))

    async def get_parameters(self, job_id: JobId) -> dict[str, str]:
        """Return the job's parameters."""

        def work(conn: sqlite3.Connection) -> list[Any]:
            return conn.execute(
                "SELECT name, value FROM job_parameters WHERE job_id = ?"
                " ORDER BY name",
                (job_id,),
            ).fetchall()

        return {name: value for name, value in await self._run(work)}

    async def set_parameters(
        self, values: Mapping[JobId, Mapping[str, str]]
    ) -> set[JobId]:
        """Set parameters of many jobs at once (see the base class)."""
        ids = list(values)

        def work(conn: sqlite3.Connection, changes: _Changes) -> set[JobId]:
            found: set[JobId] = set()
            for chunk in _chunks(ids):
                found.update(
                    job_id
                    for (job_id,) in conn.execute(
                        "SELECT id FROM jobs"
                        f" WHERE id IN ({_marks(len(chunk))})",
                        chunk,
                    )
                )
            conn.executemany(
                "INSERT INTO job_parameters (job_id, name, value)"
                " VALUES (?, ?, ?) ON CONFLICT (job_id, name)"
                " DO UPDATE SET value = excluded.value",
                [
                    (job_id, name, value)
                    for job_id in ids
                    if job_id in found
                    for name, value in values[job_id].items()
                ],
            )
            return found

        if not ids:
            return set()
        return await self._run(lambda conn: self._write(conn, work))

    async def announce_server(self, info: ServerInfo) -> None:
        """Register a server as alive."""
        row = (
            info.name,
            json.dumps(list(info.queues)),
            info.workers,
            _ts(info.started_at),
            _ts(info.heartbeat_at),
        )

        def work(conn: sqlite3.Connection, changes: _Changes) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO servers (name, queues, workers,"
                " started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?)",
                row,
            )

        await self._run(lambda conn: self._write(conn, work))

    async def heartbeat(self, name: str, now: datetime) -> bool:
        """Record a heartbeat; ``False`` if the server was declared dead."""

        def work(conn: sqlite3.Connection, changes: _Changes) -> bool:
            return bool(
                conn.execute(
                    "UPDATE servers SET heartbeat_at = ? WHERE name = ?",
                    (_ts(now), name),
                ).rowcount
            )

        return await self._run(lambda conn: self._write(conn, work))

    async def remove_server(self, name: str) -> None:
        """Unregister a server."""

        def work(conn: sqlite3.Connection, changes: _Changes) -> None:
            conn.execute("DELETE FROM servers WHERE name = ?", (name,))

        await self._run(lambda conn: self._write(conn, work))

    async def list_servers(self) -> list[ServerInfo]:
        """Return the registered servers, by name."""

        def work(conn: sqlite3.Connection) -> list[Any]:
            return conn.execute(
                "SELECT name, queues, workers, started_at, heartbeat_at"
                " FROM servers ORDER BY name"
            ).fetchall()

        return [
            ServerInfo(
                name=name,
                queues=tuple(json.loads(queues)),
                workers=workers,
                started_at=_dt(started),
                heartbeat_at=_dt(beat),
            )
            for name, queues, workers, started, beat in await self._run(work)
        ]

    async def recover_dead_servers(
        self, now: datetime, silence: float, reason: str
    ) -> list[JobId]:
        """Requeue jobs of silent servers; see the base class."""
        limit = _ts(now) - silence

        def work(conn: sqlite3.Connection, changes: _Changes) -> list[int]:
            conn.execute(
                "DELETE FROM servers WHERE heartbeat_at < ?", (limit,)
            )
            # Highest id first: each goes ahead of its queue's head, so
            # they end up in id order.
            orphans = conn.execute(
                "SELECT id, server FROM jobs WHERE state = 'processing'"
                " AND (server IS NULL OR server NOT IN"
                " (SELECT name FROM servers)) ORDER BY id DESC"
            ).fetchall()
            recovered = []
            for job_id, server in orphans:
                change = StateChange(
                    job_id=job_id,
                    to_state=JobState.ENQUEUED,
                    from_states=frozenset({JobState.PROCESSING}),
                    reason=reason,
                    at=now,
                    data={"server": server},
                )
                if self._change(
                    conn, changes, change, from_worker=False
                ).applied:
                    conn.execute(_TO_QUEUE_HEAD, (job_id,))
                    recovered.append(job_id)
            recovered.reverse()
            return recovered

        return await self._run(lambda conn: self._write(conn, work))

    async def held_jobs(
        self, server: str
    ) -> dict[JobId, tuple[int, datetime]]:
        """Return a server's jobs in processing (see the base class)."""

        def work(conn: sqlite3.Connection) -> list[Any]:
            # The literal state lets SQLite use the partial index
            # jobs_processing (server) WHERE state = 'processing'.
            return conn.execute(
                "SELECT id, version, state_changed_at FROM jobs"
                " WHERE state = 'processing' AND server = ?",
                (server,),
            ).fetchall()

        return {
            job_id: (version, _dt(fetched))
            for job_id, version, fetched in await self._run(work)
        }

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Hear about changes made through any storage on this file here."""
        return self._hub.add(listener)

    # -- recurring jobs -------------------------------------------------

    async def save_recurring(
        self,
        definition: RecurringDefinition,
        next_run_at: datetime | None,
        now: datetime,
    ) -> RecurringRecord:
        """Create or update a recurring job (see the base class)."""
        d = definition
        at = _ts(now)
        row = (
            d.id,
            d.function,
            d.arguments,
            d.queue,
            d.cron,
            d.time_zone,
            d.missed,
            d.timeout,
            _opt_ts(next_run_at),
            at,
            at,
        )

        def work(conn: sqlite3.Connection, changes: _Changes) -> Any:
            conn.execute(
                "INSERT INTO recurring_jobs (id, function, arguments, queue,"
                " cron, time_zone, missed, timeout, next_run_at, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET"
                " next_run_at = CASE WHEN cron = excluded.cron"
                " AND time_zone = excluded.time_zone"
                " AND next_run_at IS NOT NULL THEN next_run_at"
                " ELSE excluded.next_run_at END,"
                " function = excluded.function,"
                " arguments = excluded.arguments, queue = excluded.queue,"
                " cron = excluded.cron, time_zone = excluded.time_zone,"
                " missed = excluded.missed, timeout = excluded.timeout,"
                " error = NULL, failures = 0, version = version + 1,"
                " updated_at = excluded.updated_at",
                row,
            )
            return _recurring_rows(conn, "WHERE r.id = ?", (d.id,))[0]

        found = await self._run(lambda conn: self._write(conn, work))
        return _recurring(found)

    async def get_recurring(self, recurring_id: str) -> RecurringRecord | None:
        """Return the recurring job, or ``None``."""

        def work(conn: sqlite3.Connection) -> list[Any]:
            return _recurring_rows(conn, "WHERE r.id = ?", (recurring_id,))

        rows = await self._run(work)
        return _recurring(rows[0]) if rows else None

    async def list_recurring(self) -> list[RecurringRecord]:
        """Return every recurring job, by id."""

        def work(conn: sqlite3.Connection) -> list[Any]:
            return _recurring_rows(conn, "ORDER BY r.id", ())

        return [_recurring(row) for row in await self._run(work)]

    async def remove_recurring(self, recurring_id: str) -> bool:
        """Remove a recurring job; ``False`` if there is none."""

        def work(conn: sqlite3.Connection, changes: _Changes) -> bool:
            return bool(
                conn.execute(
                    "DELETE FROM recurring_jobs WHERE id = ?", (recurring_id,)
                ).rowcount
            )

        return await self._run(lambda conn: self._write(conn, work))

    async def pause_recurring(self, recurring_id: str, now: datetime) -> bool:
        """Mark a recurring job paused; ``False`` if there is none."""

        def work(conn: sqlite3.Connection, changes: _Changes) -> bool:
            return bool(
                conn.execute(
                    "UPDATE recurring_jobs SET paused = 1,"
                    " version = version + 1, updated_at = ? WHERE id = ?",
                    (_ts(now), recurring_id),
                ).rowcount
            )

        return await self._run(lambda conn: self._write(conn, work))

    async def resume_recurring(
        self, recurring_id: str, next_run_at: datetime | None, now: datetime
    ) -> bool:
        """Unpause or restart a recurring job (see the base class)."""

        def work(conn: sqlite3.Connection, changes: _Changes) -> bool:
            if not conn.execute(
                "SELECT 1 FROM recurring_jobs WHERE id = ?", (recurring_id,)
            ).fetchone():
                return False
            conn.execute(
                "UPDATE recurring_jobs SET paused = 0, next_run_at = ?,"
                " error = NULL, failures = 0, version = version + 1,"
                " updated_at = ? WHERE id = ?"
                " AND (paused = 1 OR next_run_at IS NULL)",
                (_opt_ts(next_run_at), _ts(now), recurring_id),
            )
            return True

        return await self._run(lambda conn: self._write(conn, work))

    async def next_recurring_due(self) -> datetime | None:
        """Return the earliest next occurrence of an active job."""

        def work(conn: sqlite3.Connection) -> Any:
            return conn.execute(
                "SELECT min(next_run_at) FROM recurring_jobs"
                " WHERE paused = 0 AND next_run_at IS NOT NULL"
            ).fetchone()[0]

        return _opt_dt(await self._run(work))

    async def due_recurring(
        self, now: datetime, limit: int
    ) -> list[RecurringRecord]:
        """Return active recurring jobs due at ``now``, earliest first."""

        def work(conn: sqlite3.Connection) -> list[Any]:
            return _recurring_rows(
                conn,
                "WHERE r.paused = 0 AND r.next_run_at <= ?"
                " ORDER BY r.next_run_at LIMIT ?",
                (_ts(now), limit),
            )

        return [_recurring(row) for row in await self._run(work)]

    async def fire_recurring(
        self, firing: RecurringFiring
    ) -> list[JobId] | None:
        """Create an occurrence's jobs under a compare-and-set (see base)."""
        _check_new_jobs(firing.jobs)
        if firing.jobs and firing.last_run_at is None:
            raise StorageError("a firing that creates jobs needs last_run_at")

        def work(
            conn: sqlite3.Connection, changes: _Changes
        ) -> list[int] | None:
            found = conn.execute(
                "SELECT version FROM recurring_jobs WHERE id = ?",
                (firing.recurring_id,),
            ).fetchone()
            if found is None or found[0] != firing.expected_version:
                return None
            ids = self._insert_jobs(conn, changes, firing.jobs)
            conn.execute(
                "UPDATE recurring_jobs SET next_run_at = ?, error = ?,"
                " failures = ?, version = version + 1, updated_at = ?,"
                " last_run_at = coalesce(?, last_run_at),"
                " last_job_id = coalesce(?, last_job_id) WHERE id = ?",
                (
                    _opt_ts(firing.next_run_at),
                    firing.error,
                    firing.failures,
                    _ts(firing.at),
                    _opt_ts(firing.last_run_at) if ids else None,
                    ids[-1] if ids else None,
                    firing.recurring_id,
                ),
            )
            return ids

        return await self._run(lambda conn: self._write(conn, work))


def _use_wal(conn: sqlite3.Connection, patience: float) -> None:
    """Put the file in WAL mode (once per file), retrying while busy.

    A file already in WAL mode needs no change, and asking for one takes
    locks: only a file in another mode is switched. The switch can answer
    "database is locked" at once, without SQLite's busy handler, while
    another process opens or checkpoints the same file (seen with a
    server starting beside a client): it is retried for up to
    ``patience`` seconds, as a busy write would be.
    """
    (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
    if str(mode).lower() == "wal":
        return
    deadline = time.monotonic() + patience
    pause = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


# An enqueued job's queue entry is its entry in the partial index
# jobs_queued (queue, seq) of migration 0005: a job (re)enqueued goes
# behind every job of its queue (a recovered one ahead of them, see
# _TO_QUEUE_HEAD). Its seq means nothing in other states.
_NEXT_SEQ = (
    "(SELECT coalesce(max(q.seq), 0) + 1 FROM jobs AS q"
    " WHERE q.state = 'enqueued' AND q.queue = {queue})"
)
# A recovered job was delivered already: it goes back ahead of its
# queue's head rather than behind a backlog it was fetched before.
_TO_QUEUE_HEAD = (
    "UPDATE jobs SET seq = (SELECT coalesce(min(q.seq), 1) - 1 FROM jobs"
    " AS q WHERE q.state = 'enqueued' AND q.queue = jobs.queue"
    " AND q.id != jobs.id) WHERE id = ?"
)
_UPDATE_STATE = (
    "UPDATE jobs SET state = ?, reason = ?, version = version + 1,"
    " state_changed_at = ?, scheduled_at = ?, server = NULL,"
    " expires_at = ?, attempt = CASE WHEN ? THEN 0 ELSE attempt END,"
    " seq = CASE WHEN ? THEN "
    + _NEXT_SEQ.format(queue="jobs.queue")
    + " ELSE seq END WHERE id = ?"
)
_STATES = {state.value: state for state in JobState}


def _state(job_id: JobId, value: Any) -> JobState:
    """The state stored as ``value`` (a lookup, not an enum call).

    Raises:
        CorruptedJobError: ``value`` names no state.
    """
    state: JobState | None = _STATES.get(value)
    if state is None:
        raise CorruptedJobError(job_id, f"unknown state {value!r}")
    return state


def _write_creation(
    conn: sqlite3.Connection, job_ids: Sequence[JobId], at: float
) -> None:
    """Write the creation history rows that the job rows still imply.

    A new job gets no history row: until its first state change (version
    1) its row holds exactly what that entry would (state, reason,
    ``created_at``, no data), and :meth:`SQLiteStorage.get_history`
    reads it from there. This saves a row and an index entry in every
    job's first transaction. Each change writes the entry just before its
    own, while the row still has its creation values; a job created by an
    older backburner, whose creation row exists, gets no second one.

    A damaged creation time is written as ``at`` (the change's time), so
    that the history of a job failed for that damage stays readable.
    """
    conn.execute(
        "INSERT INTO job_history (job_id, state, reason, created_at, data)"
        " SELECT id, state, reason, CASE typeof(created_at)"
        " WHEN 'real' THEN created_at WHEN 'integer' THEN created_at"
        " ELSE ? END, '{}' FROM jobs"
        f" WHERE id IN ({_marks(len(job_ids))}) AND version = 1"
        " AND NOT EXISTS (SELECT 1 FROM job_history AS h"
        " WHERE h.job_id = jobs.id)",
        (at, *job_ids),
    )


# Every new job takes the next seq of its queue: it is used only if the
# job is created enqueued, and looking it up costs less than a branch.
_INSERT_JOB = (
    "INSERT INTO jobs (function, arguments, queue, state, reason,"
    " created_at, state_changed_at, scheduled_at, timeout, seq)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, " + _NEXT_SEQ.format(queue="?") + ")"
)
# Jobs with a unique key, a mutex or a keep_result option: the columns
# of migrations 0003 and 0007 too.
_INSERT_COORDINATED_JOB = (
    "INSERT INTO jobs (function, arguments, queue, state, reason,"
    " created_at, state_changed_at, scheduled_at, timeout, unique_key,"
    " mutex, mutex_limit, keep_result, seq)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
    + _NEXT_SEQ.format(queue="?")
    + ")"
)
_CREATABLE = frozenset(
    {JobState.ENQUEUED, JobState.SCHEDULED, JobState.AWAITING}
)
_JOB_TABLES = (
    ("job_continuations", "parent_id"),
    ("job_continuations", "job_id"),
    ("job_history", "job_id"),
    ("job_parameters", "job_id"),
    ("jobs", "id"),
)


def _page(
    state: JobState | None,
    queue: str | None,
    function: str | None,
    before: JobId | None,
    limit: int,
) -> tuple[str, list[object]]:
    """A page of jobs, newest first, by state, queue, function if given.

    The function is checked on each row the state's index (or the
    primary key) yields, not looked up in an index of its own: every
    enqueue and expiry would pay for one, for the sake of an admin
    listing that reads at most the jobs of one state, and whose pages
    continue where the last one stopped.
    """
    where = []
    params: list[object] = []
    if state is not None:
        where.append("state = ?")
        params.append(state.value)
    if queue is not None:
        where.append("queue = ?")
        params.append(queue)
    if function is not None:
        where.append("function = ?")
        params.append(function)
    if before is not None:
        where.append("id < ?")
        params.append(before)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    params.append(limit)
    sql = f"SELECT {_JOB_COLUMNS} FROM jobs {clause} ORDER BY id DESC LIMIT ?"
    return sql, params


def _queue_page(
    queue: str, function: str | None, before: JobId | None, limit: int
) -> tuple[str, list[object]]:
    """A page of one queue's jobs in every state, newest first.

    No index leads with the queue alone (one fewer index to write per
    enqueue, see migration 0006): the newest ``limit`` jobs of each state
    come from jobs_by_state_queue, and the page is the newest of those,
    at most seven times ``limit`` rows read whatever the queue holds
    (more with a function, checked on each row as in :func:`_page`).
    """
    arms = []
    params: list[object] = []
    for state in JobState:
        below = "" if before is None else " AND id < ?"
        named = "" if function is None else " AND function = ?"
        arms.append(
            f"SELECT * FROM (SELECT {_JOB_COLUMNS} FROM jobs"
            f" WHERE state = '{state.value}' AND queue = ?{named}{below}"
            " ORDER BY id DESC LIMIT ?)"
        )
        params.append(queue)
        params.extend([] if function is None else [function])
        params.extend([] if before is None else [before])
        params.append(limit)
    params.append(limit)
    sql = (
        f"SELECT * FROM ({' UNION ALL '.join(arms)}) ORDER BY id DESC LIMIT ?"
    )
    return sql, params


def _check_new_jobs(jobs: Sequence[NewJob]) -> None:
    for job in jobs:
        if job.state is JobState.SCHEDULED and job.scheduled_at is None:
            raise StorageError("a scheduled job needs scheduled_at")
        if job.state not in _CREATABLE:
            raise StorageError(f"cannot create a job in {job.state}")
        if job.unique_key is not None and job.state is JobState.AWAITING:
            raise StorageError("an awaiting job cannot have a unique key")
        if job.mutex_limit < 1:
            raise StorageError("a mutex limit is at least 1")


_RECURRING_COLUMNS = (
    "r.id, r.function, r.arguments, r.queue, r.cron, r.time_zone,"
    " r.missed, r.timeout, r.paused, r.next_run_at, r.last_run_at,"
    " r.last_job_id, j.state, r.error, r.failures, r.version,"
    " r.created_at, r.updated_at"
)


def _recurring_rows(
    conn: sqlite3.Connection, clause: str, params: Sequence[object]
) -> list[Any]:
    return conn.execute(
        f"SELECT {_RECURRING_COLUMNS} FROM recurring_jobs r"
        f" LEFT JOIN jobs j ON j.id = r.last_job_id {clause}",
        params,
    ).fetchall()


def _recurring(row: Sequence[Any]) -> RecurringRecord:
    try:
        return RecurringRecord(
            id=str(row[0]),
            function=str(row[1]),
            arguments=str(row[2]),
            queue=str(row[3]),
            cron=str(row[4]),
            time_zone=str(row[5]),
            missed=str(row[6]),
            timeout=None if row[7] is None else float(row[7]),
            paused=bool(row[8]),
            next_run_at=_opt_dt(row[9]),
            last_run_at=_opt_dt(row[10]),
            last_job_id=row[11],
            last_job_state=None if row[12] is None else JobState(row[12]),
            error=row[13],
            failures=int(row[14]),
            version=int(row[15]),
            created_at=_dt(row[16]),
            updated_at=_dt(row[17]),
        )
    except (TypeError, ValueError, OverflowError, OSError) as error:
        raise StorageError(
            f"recurring job {row[0]!r} is corrupted in storage: {error}"
        ) from error


def _pick(
    conn: sqlite3.Connection, queues: Sequence[str], limit: int
) -> list[JobId]:
    """The ids of up to ``limit`` queued jobs to fetch, queue by queue.

    A job whose mutex already has its limit of processing jobs (counting
    those picked here) is passed over and stays queued. Known cost: a
    long run of such jobs at the head of a queue is read on every fetch
    until their mutex frees up.
    """
    picked: list[JobId] = []
    held: dict[str, int] = {}
    for queue in queues:
        if len(picked) >= limit:
            break
        want = limit - len(picked)
        head = conn.execute(
            "SELECT id, mutex FROM jobs WHERE state = 'enqueued'"
            " AND queue = ? ORDER BY seq LIMIT ?",
            (queue, want),
        ).fetchall()
        if all(mutex is None for _, mutex in head):
            # The usual case: no mutex at the head of the queue.
            picked.extend(job_id for job_id, _ in head)
            continue
        # Read lazily: the scan stops as soon as enough jobs are picked.
        cursor = conn.execute(
            "SELECT id, mutex, mutex_limit FROM jobs"
            " WHERE state = 'enqueued' AND queue = ? ORDER BY seq",
            (queue,),
        )
        try:
            for job_id, mutex, mutex_limit in cursor:
                if mutex is not None:
                    count = held.get(mutex)
                    if count is None:
                        count = _mutex_holders(conn, mutex)
                    held[mutex] = count
                    if count >= (mutex_limit or 1):
                        continue
                    held[mutex] = count + 1
                picked.append(job_id)
                if len(picked) >= limit:
                    break
        finally:
            cursor.close()
    return picked


def _mutex_holders(conn: sqlite3.Connection, mutex: str) -> int:
    (count,) = conn.execute(
        "SELECT count(*) FROM jobs WHERE state = 'processing' AND mutex = ?",
        (mutex,),
    ).fetchone()
    return int(count)


def _check_continuations(continuations: Sequence[NewContinuation]) -> None:
    _check_new_jobs([c.job for c in continuations])
    for continuation in continuations:
        if continuation.job.state is not JobState.AWAITING:
            raise StorageError("a continuation is created awaiting")
        if not continuation.on_states or not (
            continuation.on_states <= FINAL_STATES
        ):
            raise StorageError(
                "a continuation waits for one or more final states"
            )


def _unique_holder(
    conn: sqlite3.Connection, key: str, other_than: JobId | None
) -> JobId | None:
    """The active job holding ``key`` (other than ``other_than``)."""
    # The condition repeats the unique index's own, so that SQLite
    # answers from that index.
    found = conn.execute(
        "SELECT id FROM jobs WHERE unique_key = ?"
        " AND state IN ('enqueued', 'scheduled', 'processing')"
        " AND id IS NOT ?",
        (key, other_than),
    ).fetchone()
    return None if found is None else int(found[0])


def _continuation_reason(parent: StateChange, on_states: str) -> str:
    state = parent.to_state.value
    waits = on_states.replace(",", " or ")
    if parent.to_state.value in on_states.split(","):
        return f"parent job {parent.job_id} {state}"
    return (
        f"parent job {parent.job_id} {state}; this continuation "
        f"waited for {waits}"
    )


def _check_change(change: StateChange) -> None:
    if change.to_state is JobState.PROCESSING:
        raise StorageError("only fetch() moves a job to processing")
    if change.to_state is JobState.SCHEDULED and change.scheduled_at is None:
        raise StorageError("a change to scheduled needs scheduled_at")


def open_url(url: str) -> SQLiteStorage:
    """Open ``sqlite:///relative/path`` or ``sqlite:////absolute/path``.

    Query options: ``busy_timeout`` (seconds), ``inline_enqueue``
    (``true`` or ``false``, see :class:`SQLiteStorage`).

    Raises:
        InvalidStorageURLError: the URL has no path, a path with a NUL
            character, an unknown option or a bad option value.
    """
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme != "sqlite":
        raise InvalidStorageURLError(f"not an SQLite URL: {url!r}")
    if parsed.netloc:
        raise InvalidStorageURLError(
            f"SQLite URLs have no host: use sqlite:///relative.db or "
            f"sqlite:////absolute/path.db, not {url!r}"
        )
    path = parsed.path[1:] if parsed.path.startswith("/") else parsed.path
    if not path:
        raise InvalidStorageURLError(f"SQLite URL names no file: {url!r}")
    options = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
    busy_timeout = 10.0
    inline_enqueue = True
    for key, values in options.items():
        if key == "busy_timeout":
            busy_timeout = _seconds(values[-1])
        elif key == "inline_enqueue":
            inline_enqueue = _flag(key, values[-1])
        else:
            raise InvalidStorageURLError(f"unknown SQLite URL option {key!r}")
    path = urllib.parse.unquote(path)
    if "\x00" in path:
        raise InvalidStorageURLError(
            f"SQLite URL names a file with a NUL character (%00): {url!r}"
        )
    return SQLiteStorage(
        path,
        busy_timeout=busy_timeout,
        inline_enqueue=inline_enqueue,
    )


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    # NaN and infinity would pass here and fail as the file is opened,
    # where PRAGMA busy_timeout needs a whole number of milliseconds.
    if not (math.isfinite(seconds) and seconds >= 0):
        raise InvalidStorageURLError(
            f"busy_timeout must be a finite number of seconds >= 0: {value!r}"
        )
    return seconds


_FLAGS = {"true": True, "1": True, "false": False, "0": False}


def _flag(key: str, value: str) -> bool:
    try:
        return _FLAGS[value.lower()]
    except KeyError:
        raise InvalidStorageURLError(
            f"{key} must be true or false: {value!r}"
        ) from None
