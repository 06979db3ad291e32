"""The PostgreSQL implementation of :class:`~backburner.storage.base.Storage`.

Connections come from a psycopg pool opened on first use; each pooled
connection has its ``search_path`` set to the storage's schema and its
time zone to UTC, so the statements in ``queries.sql`` use bare names.
Every method is one transaction. Statements that move many jobs at once
(fetch, promotion, recovery, expiry) are single statements whose
common table expressions lock, update, log, queue and count together.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import (
    Awaitable,
    Callable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias, TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from backburner.storage.base import (
    ACTIVE_STATES,
    FINAL_STATES,
    ChangeOutcome,
    ContinuationLink,
    CorruptedJobError,
    HistoryEntry,
    JobId,
    JobRecord,
    JobsAborted,
    JobsEnqueued,
    JobState,
    Listener,
    MissingParentError,
    NewContinuation,
    NewJob,
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
from backburner.storage.postgres import notifications, schema, upkeep
from backburner.storage.postgres.config import PostgresSettings
from backburner.storage.postgres.fetch_connection import (
    FetchConnection,
    FetchConnectionLostError,
)
from backburner.storage.postgres.handoffs import (
    KEPT_PER_SERVER,
    HandedJobs,
    handed_record,
)
from backburner.storage.postgres.queries import positional, query
from backburner.storage.postgres.spare_ids import SpareIds

logger = logging.getLogger(__name__)

T = TypeVar("T")
Connection: TypeAlias = psycopg.AsyncConnection[TupleRow]
RawCursor: TypeAlias = psycopg.AsyncRawCursor[TupleRow]

# Counter rows per (state, queue): a transaction adds its deltas to one
# shard picked at random, so concurrent transactions rarely share a row.
_COUNTER_SHARDS = 16
_OUTCOMES = frozenset({JobState.SUCCEEDED.value, JobState.FAILED.value})
_JOB_COLUMNS = sql.SQL(
    "id, function, arguments, queue, state, reason, version, attempt, "
    "created_at, state_changed_at, scheduled_at, server, expires_at, "
    "timeout, unique_key, mutex, mutex_limit, keep_result"
)
# First keys of the two-key advisory locks taken per unique key and per
# mutex ("bu" and "bm" in ASCII; see schema.LOCK_CLASS).
_UNIQUE_LOCK = 0x6275
_MUTEX_LOCK = 0x626D
# Queue entries with a mutex looked at per queue and fetch.
_MUTEX_SCAN = 200
_CREATABLE = frozenset(
    {JobState.ENQUEUED, JobState.SCHEDULED, JobState.AWAITING}
)
_ENQUEUED = JobState.ENQUEUED.value
# A state's value without the enum's attribute machinery (per job in bulk).
_STATE_TEXT = {state: state.value for state in JobState}
_PROCESSING = JobState.PROCESSING.value
# Jobs per create_jobs statement of a pipelined bulk create.
_CREATE_CHUNK = 250
# NOTIFY payloads of one-queue enqueues kept at most (per storage).
_PAYLOADS_KEPT = 256
# The parameters of create_job_once and create_job_handoff, in the order
# _create_one passes them.
_CREATE_ONE_PARAMETERS = (
    "id",
    "function",
    "arguments",
    "queue",
    "state",
    "reason",
    "created_at",
    "scheduled_at",
    "timeout",
    "mutex",
    "mutex_limit",
    "keep_result",
    "parameters",
    "shard",
    "channel",
    "payload",
)
_CREATE_ONE = positional("create_job_once", _CREATE_ONE_PARAMETERS)
_CREATE_HANDOFF = positional("create_job_handoff", _CREATE_ONE_PARAMETERS)
# Seconds an enqueue that handed nothing off makes the next ones skip
# looking for an idle worker (see create_job_handoff): while no worker
# is idle, only one enqueue in this long pays for the look.
_HANDOFF_PAUSE = 0.1
# Seconds a server's first fetch waits for the listening connection.
_FIRST_LISTEN_WAIT = 2.0


def _record(row: Sequence[Any]) -> JobRecord:
    try:
        return JobRecord(
            id=int(row[0]),
            function=str(row[1]),
            arguments=str(row[2]),
            queue=str(row[3]),
            state=JobState(row[4]),
            reason=str(row[5]),
            version=int(row[6]),
            attempt=int(row[7]),
            created_at=row[8],
            state_changed_at=row[9],
            scheduled_at=row[10],
            server=row[11],
            expires_at=row[12],
            timeout=None if row[13] is None else float(row[13]),
            unique_key=row[14],
            mutex=row[15],
            mutex_limit=None if row[16] is None else int(row[16]),
            keep_result=row[17],
        )
    except (TypeError, ValueError) as error:
        raise CorruptedJobError(row[0], str(error)) from error


def _refuse_unstorable(text: str, what: str) -> None:
    """Raise when PostgreSQL's ``text`` type cannot hold ``text``."""
    if "\x00" in text:
        raise StorageError(
            f"{what} contains a NUL character (\\x00), which PostgreSQL "
            "cannot store; nothing was written"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise StorageError(
            f"{what} contains a lone surrogate (not valid UTF-8); "
            "nothing was written"
        ) from None


def _storable(text: str) -> str:
    """Return ``text`` with what PostgreSQL cannot store replaced.

    Used for reasons of state changes: they often quote an exception
    message, and refusing the change would strand the job in its old
    state, which is worse than a replaced character.
    """
    text = text.replace("\x00", "\ufffd")
    return text.encode("utf-8", "replace").decode("utf-8")


class _Pending:
    """Counter deltas and notifications gathered in one transaction."""

    def __init__(self) -> None:
        self.counters: Counter[tuple[str, str]] = Counter()
        self.outcomes: Counter[tuple[str, datetime]] = Counter()
        self.enqueued: set[str] = set()
        self.aborted: set[JobId] = set()

    def finish(self, state: str, at: datetime) -> None:
        if state in _OUTCOMES:
            moment = at.astimezone(UTC)
            hour = moment.replace(minute=0, second=0, microsecond=0)
            self.outcomes[(state, hour)] += 1

    def move(
        self, queue: str, old: str | None, new: str | None, jobs: int = 1
    ) -> None:
        if old is not None:
            self.counters[(old, queue)] -= jobs
        if new is not None:
            self.counters[(new, queue)] += jobs
        if new == _ENQUEUED:
            self.enqueued.add(queue)

    def notifications(self) -> list[JobsEnqueued | JobsAborted]:
        found: list[JobsEnqueued | JobsAborted] = []
        if self.enqueued:
            found.append(JobsEnqueued(frozenset(self.enqueued)))
        if self.aborted:
            found.append(JobsAborted(frozenset(self.aborted)))
        return found


@dataclass(slots=True)
class _Current:
    """A job locked by :meth:`PostgresStorage.apply_changes`.

    Starts as read from the database; each applied change of the batch
    moves it on, and the final values are written once.
    """

    state: str
    queue: str
    version: int
    initial_state: str
    steps: int = 0
    last_change: int = -1
    reason: str = ""
    at: datetime | None = None
    scheduled_at: datetime | None = None
    expires_at: datetime | None = None
    reset_attempt: bool = False
    unique_holder: JobId | None = None


class PostgresStorage(Storage):
    """Jobs in a PostgreSQL schema shared by any number of servers.

    Args:
        settings: where to connect, which schema, how many connections.
        auto_migrate: bring the schema up to date on first use (under
            the migration lock, so any number of processes may do it).
    """

    def __init__(
        self, settings: PostgresSettings, *, auto_migrate: bool = True
    ) -> None:
        self.settings = settings
        self._auto_migrate = auto_migrate
        self._pool: AsyncConnectionPool[Connection] | None = None
        self._opening = asyncio.Lock()
        self._migrated = False
        self._closed = False
        self._handed = HandedJobs()
        self._hub = notifications.Hub(
            settings.conninfo,
            settings.channel,
            uuid.uuid4().hex[:16],
            self._heard_handoff,
            self._heard_aborted,
        )
        self._spare_ids = SpareIds()
        self._payloads: dict[str, str] = {}
        self._raw_cursors: dict[Connection, RawCursor] = {}
        self._upkeep_log = upkeep.Reporter(settings.schema)
        self._handoff_after = 0.0  # monotonic; see _HANDOFF_PAUSE
        # The servers announced here, whose locks the fetch connection
        # holds (see server_lock).
        self._servers: set[str] = set()
        self._fetcher = FetchConnection(
            settings.conninfo, self._configure_fetch
        )

    def __repr__(self) -> str:
        url = self.settings.shown
        return f"PostgresStorage({url!r}, schema={self.settings.schema!r})"

    # -- plumbing -------------------------------------------------------

    async def _configure(self, conn: Connection) -> None:
        await conn.execute(
            sql.SQL("SET search_path TO {}").format(
                sql.Identifier(self.settings.schema)
            )
        )
        await conn.execute("SET TIME ZONE 'UTC'")

    async def _configure_fetch(self, conn: Connection) -> None:
        await self._configure(conn)
        for server in sorted(self._servers):
            await conn.execute(query("server_lock"), {"server": server})

    async def _ready(self) -> AsyncConnectionPool[Connection]:
        if self._closed:
            raise StorageError("storage is closed")
        if self._hub.has_listeners:
            self._hub.start()
        if self._pool is not None:
            return self._pool
        async with self._opening:
            if self._pool is None:
                await self._check_reachable()
                pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
                    self.settings.conninfo,
                    min_size=self.settings.pool_min_size,
                    max_size=self.settings.pool_max_size,
                    open=False,
                    # Reads are one statement each; writes open their
                    # transaction explicitly (see _write).
                    kwargs={"autocommit": True},
                    configure=self._configure,
                    timeout=self.settings.pool_timeout,
                    name=f"backburner-{self.settings.schema}",
                )
                # Open with min_size connections in: a first call made
                # while they still connected was queued, and the pool grew
                # one connection past min_size. The pool lends its idle
                # connections in turn, so one caller's calls then took
                # two backends by turns, each colder (measured: a fifth
                # fewer single enqueues a second, see docs/benchmarks.md).
                try:
                    await pool.open(
                        wait=True, timeout=self.settings.pool_timeout
                    )
                except PoolTimeout as error:
                    # wait() closed the pool.
                    raise StorageError(
                        f"cannot connect to PostgreSQL at "
                        f"{self.settings.shown}: {error}"
                    ) from error
                except BaseException:
                    # Cancelled while it connected: a pool left open here
                    # is no one's to close, and it keeps connecting.
                    await pool.close()
                    raise
                if self._closed_meanwhile():
                    # close() ran while it connected, and found no pool.
                    await pool.close()
                    raise StorageError("storage is closed")
                self._pool = pool
        assert self._pool is not None
        return self._pool

    def _closed_meanwhile(self) -> bool:
        """Whether close() ran (asked after an await, where mypy still
        holds ``_closed`` to what it was before)."""
        return self._closed

    async def _check_reachable(self) -> None:
        """Connect once, directly, before the pool opens.

        The pool retries failed connections in the background until a
        call's ``pool_timeout`` runs out, and then says only that no
        connection came. One direct attempt (bounded by libpq's
        ``connect_timeout``) fails at once with libpq's reason instead:
        a mistyped host, a refused port or a wrong password is reported
        in seconds, by the first call.

        Raises:
            StorageError: the database cannot be reached.
        """
        try:
            conn = await psycopg.AsyncConnection.connect(
                self.settings.conninfo
            )
        except psycopg.Error as error:
            url = self.settings.shown
            reason = str(error).strip() or type(error).__name__
            raise StorageError(
                f"cannot connect to PostgreSQL at {url}: {reason}"
            ) from error
        await conn.close()

    async def _run(
        self,
        work: Callable[[Connection], Awaitable[T]],
        *,
        write: bool,
        pipelined: bool = False,
    ) -> T:
        """Run ``work`` on a pooled connection (in a transaction if
        ``write``); database errors become :class:`StorageError`.

        ``pipelined``: the transaction runs in pipeline mode, so BEGIN
        travels with the first statement and COMMIT with the last ones
        whose results nobody reads (see :meth:`_write`).

        A connection that the server dropped while it sat in the pool
        (restart, failover, ``pg_terminate_backend``) fails on its first
        statement. Such a failure, or any before COMMIT was sent, rolled
        the transaction back, so the work is run once more on a fresh
        connection after the pool has weeded out its other dead ones.
        Checking every connection as it leaves the pool would cost a
        round trip on every call instead.
        """
        pool = await self._ready()
        if self._auto_migrate and not self._migrated:
            await self._migrate_if_behind(pool)
        for retry in (True, False):
            committing = False
            conn: Connection | None = None
            try:
                # getconn and putconn rather than pool.connection(): the
                # connections are in autocommit and every write opens its
                # own transaction, so the commit-on-exit of the pooled
                # connection's context had nothing to do but cost a few
                # microseconds per call. putconn still weeds out broken
                # connections and rolls back one left in a transaction.
                conn = await pool.getconn()
                try:
                    if not write:
                        return await work(conn)
                    async with contextlib.AsyncExitStack() as stack:
                        if pipelined:
                            await stack.enter_async_context(conn.pipeline())
                        async with conn.transaction():
                            result = await work(conn)
                            committing = True
                    return result
                except asyncio.CancelledError:
                    if pipelined:
                        # Cancelled mid-pipeline, psycopg reports the
                        # connection idle while the server still holds
                        # its transaction open: the pool's next caller
                        # would run inside it, and its enqueue vanish
                        # with that transaction's rollback.
                        await conn.close()
                    raise
                finally:
                    await pool.putconn(conn)
            except psycopg.OperationalError as error:
                lost = conn is not None and conn.broken
                if retry and lost and not committing:
                    logger.debug(
                        "connection lost, running the call again",
                        extra={"event": "storage.connection_lost"},
                    )
                    await pool.check()
                    continue
                raise self._storage_error(error, committing) from error
            except psycopg.Error as error:
                raise self._storage_error(error, committing) from error
            except UnicodeEncodeError as error:
                raise StorageError(
                    f"text is not valid UTF-8: {error}"
                ) from error
        raise AssertionError("unreachable: the last attempt raises")

    def _storage_error(
        self, error: psycopg.Error, committing: bool
    ) -> StorageError:
        if isinstance(error, psycopg.errors.UndefinedTable):
            return SchemaError(
                f"schema {self.settings.schema!r} is not installed; "
                "run migrate() (or `backburner migrate`)"
            )
        detail = f"{type(error).__name__}: {error}".strip()
        if committing and isinstance(error, psycopg.OperationalError):
            return StorageError(
                f"PostgreSQL connection lost during COMMIT; the change "
                f"may or may not have been saved ({detail})"
            )
        return StorageError(f"PostgreSQL error: {detail}")

    async def _read(
        self, statement: bytes | sql.Composed, params: Mapping[str, object]
    ) -> list[TupleRow]:
        async def work(conn: Connection) -> list[TupleRow]:
            cursor = await conn.execute(statement, params)
            return await cursor.fetchall() if cursor.description else []

        return await self._run(work, write=False)

    async def _write(
        self,
        work: Callable[[Connection, _Pending], Awaitable[T]],
        *,
        pipelined: bool = False,
    ) -> T:
        """Run ``work`` in one transaction, then notify listeners.

        Counters are written and NOTIFY sent last in the transaction, so
        that PostgreSQL delivers the notifications only once the change
        is committed.

        ``pipelined``: statements are sent without waiting for the
        previous one's result; a round trip happens only where ``work``
        reads a result, and at COMMIT (which carries the counters and
        NOTIFY along). ``work`` must read a result before it returns: a
        connection the server dropped while it sat in the pool then
        fails there, before COMMIT was sent, and the call runs again.
        """

        async def attempt(conn: Connection) -> tuple[T, _Pending]:
            pending = _Pending()
            result = await work(conn, pending)
            await self._finish(conn, pending, pipelined)
            return result, pending

        result, pending = await self._run(
            attempt, write=True, pipelined=pipelined
        )
        for notification in pending.notifications():
            if isinstance(notification, JobsAborted):
                self._heard_aborted(notification)
            self._hub.publish(notification)
        return result

    async def _finish(
        self, conn: Connection, pending: _Pending, pipelined: bool
    ) -> None:
        """Write the counter deltas and send the notifications.

        In a pipelined transaction they are only queued, to travel with
        COMMIT.
        """
        statements: list[tuple[bytes, dict[str, object]]] = []
        rows = sorted(
            (state, queue, delta)
            for (state, queue), delta in pending.counters.items()
            if delta
        )
        if rows:
            states, queues, deltas = zip(*rows, strict=True)
            counts = {
                "shard": random.randrange(_COUNTER_SHARDS),
                "states": list(states),
                "queues": list(queues),
                "deltas": list(deltas),
            }
            statements.append((query("add_counts"), counts))
        if pending.outcomes:
            # After the counters, rows in (state, hour) order: every
            # transaction takes these row locks in the same order.
            finished = sorted(pending.outcomes.items())
            statements.append(
                (
                    query("add_outcomes"),
                    {
                        "shard": random.randrange(_COUNTER_SHARDS),
                        "states": [state for (state, _), _ in finished],
                        "hours": [hour for (_, hour), _ in finished],
                        "deltas": [count for _, count in finished],
                    },
                )
            )
        payloads = [
            payload
            for notification in pending.notifications()
            for payload in notifications.encode(self._hub.origin, notification)
        ]
        if payloads:
            notify: dict[str, object] = {
                "channel": self.settings.channel,
                "payloads": payloads,
            }
            statements.append((query("notify"), notify))
        if not statements:
            return
        # None needs an answer: one round trip for all.
        async with contextlib.AsyncExitStack() as stack:
            if not pipelined:
                await stack.enter_async_context(conn.pipeline())
            for statement, params in statements:
                await conn.execute(statement, params)

    async def _migrate_if_behind(
        self, pool: AsyncConnectionPool[Connection]
    ) -> None:
        async with self._opening:
            if self._migrated:
                return
            try:
                async with pool.connection() as conn:
                    current = await schema.current_version(
                        conn, self.settings.schema
                    )
                if current < schema.latest():
                    await schema.migrate(
                        self.settings.conninfo, self.settings.schema
                    )
            except SchemaError:
                # A newer release migrated between our look and our
                # migration: fine (see below).
                pass
            except psycopg.Error as error:
                raise StorageError(
                    f"cannot migrate schema {self.settings.schema!r}: {error}"
                ) from error
            # A newer schema is fine here: migrations are additive, so
            # this server keeps working while a newer release rolls out.
            self._migrated = True

    # -- Storage ----------------------------------------------------------

    async def migrate(self) -> list[int]:
        """Install or upgrade the schema; return the versions applied.

        Safe to call from any number of processes at once: they take
        turns on an advisory lock, and the later ones find nothing to do.

        Raises:
            SchemaError: the schema was migrated by a newer backburner.
            StorageError: the database refused a migration (it was rolled
                back; earlier ones stay applied).
        """
        if self._closed:
            raise StorageError("storage is closed")
        try:
            applied = await schema.migrate(
                self.settings.conninfo, self.settings.schema
            )
        except psycopg.Error as error:
            raise StorageError(
                f"cannot migrate schema {self.settings.schema!r}: {error}"
            ) from error
        self._migrated = True
        return applied

    async def maintain(self) -> None:
        """Analyze the tables, and vacuum the small busy ones, where
        autovacuum has not (see :mod:`.upkeep`).

        Does nothing with ``upkeep=false`` in the storage URL, or while
        another process tends the same schema.

        Raises:
            StorageError: the database could not be reached or refused.
        """
        if not self.settings.upkeep:
            return
        started = time.monotonic()

        async def work(conn: Connection) -> upkeep.Tended:
            return await upkeep.tend(conn, self.settings.schema)

        done = await self._run(work, write=False)
        self._upkeep_log.round(done, time.monotonic() - started)

    async def close(self) -> None:
        """Stop listening and close every connection."""
        if self._closed:
            return
        self._closed = True
        await self._hub.stop()
        await self._fetcher.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def wait_listening(self) -> None:
        """Return once notifications from other processes are heard.

        The listening connection opens by itself when a listener
        subscribes; this waits for it (tests, and servers that want to
        be reachable before they announce themselves).

        Raises:
            StorageError: the storage is closed.
        """
        if self._closed:
            raise StorageError("storage is closed")
        await self._hub.wait_listening()

    async def create_job(self, job: NewJob) -> JobId:
        """Store one job; see :meth:`Storage.create_job`.

        Raises:
            StorageError: as :meth:`create_jobs`.
        """
        if job.unique_key is not None:
            (job_id,) = await self.create_jobs([job])
            return job_id
        _check_new_jobs((job,))
        return await self._create_one(job)

    async def create_jobs(self, jobs: Sequence[NewJob]) -> list[JobId]:
        """Store jobs in one transaction; see :meth:`Storage.create_jobs`.

        Raises:
            StorageError: a job is invalid or holds text PostgreSQL
                cannot store (the error names the job and the field);
                nothing was written.
        """
        _check_new_jobs(jobs)
        if not jobs:
            return []
        if len(jobs) == 1 and jobs[0].unique_key is None:
            return [await self._create_one(jobs[0])]

        # Without unique keys, pipelined: BEGIN travels with create_jobs,
        # the counters and NOTIFY with COMMIT (two round trips, not
        # five), and a big batch goes in chunks (see _insert_jobs).
        # Creators of a unique key keep the plain transaction: they take
        # turns on the key's lock, and pipelined they held it for a round
        # trip longer each (see docs/benchmarks.md).
        keyed = any(job.unique_key is not None for job in jobs)
        chunk = None if keyed else _CREATE_CHUNK

        async def work(conn: Connection, pending: _Pending) -> list[JobId]:
            return await _create(conn, pending, jobs, chunk)

        return await self._write(work, pipelined=not keyed)

    async def _create_one(self, job: NewJob) -> JobId:
        """Create one job in one statement, outside a transaction.

        The statement is written so that running it twice writes the job
        once (see create_job_once and :mod:`.spare_ids`): a call whose
        connection drops is run again like a read.
        """
        job_id = self._spare_ids.take()
        if job_id is None:
            (row,) = await self._read(query("reserve_job_id"), {})
            job_id = int(row[0])
        enqueued = job.state is JobState.ENQUEUED
        handoff = (
            enqueued
            and job.mutex is None
            and time.monotonic() >= self._handoff_after
        )
        statement = _CREATE_HANDOFF if handoff else _CREATE_ONE
        # In the order of _CREATE_ONE_PARAMETERS.
        params = (
            job_id,
            job.function,
            job.arguments,
            job.queue,
            _STATE_TEXT[job.state],
            job.reason,
            job.created_at,
            job.scheduled_at,
            job.timeout,
            job.mutex,
            None if job.mutex is None else job.mutex_limit,
            job.keep_result,
            json.dumps(list(job.parameters.items()))
            if job.parameters
            else "[]",
            random.randrange(_COUNTER_SHARDS),
            self.settings.channel,
            self._enqueued_payload(job.queue) if enqueued else None,
        )

        async def work(conn: Connection) -> TupleRow | None:
            cursor = self._raw_cursor(conn)
            await cursor.execute(statement, params, prepare=True)
            return await cursor.fetchone()

        try:
            created = await self._run(work, write=False)
        except StorageError as error:
            lost = error.__cause__
            if not isinstance(lost, psycopg.OperationalError):
                raise
            # The statement is its own COMMIT: as with a lost COMMIT,
            # the caller cannot tell whether the job was saved.
            raise StorageError(
                f"PostgreSQL connection lost while enqueuing; job {job_id} "
                f"may or may not have been saved ({lost})"
            ) from lost
        assert created is not None  # the statement returns one row
        inserted, spare, handed_to = (
            int(created[0]),
            int(created[1]),
            created[3],
        )
        if not inserted and not await self._own_job(job_id, job):
            # The id is another job's: the jobs sequence is behind the
            # table. Its next ids would clash too; nothing was written.
            raise StorageError(
                f"job id {job_id} from the jobs sequence is already taken "
                "by another job; nothing was saved. The sequence is behind "
                "the table (as after a restore or a replica switchover): "
                "move it past MAX(id) with setval"
            )
        self._spare_ids.keep(spare)
        if handoff and handed_to is None:
            self._handoff_after = time.monotonic() + _HANDOFF_PAUSE
        if handed_to in self._servers:
            # The server fetches through this very storage: its own
            # NOTIFY is ignored when it comes back (see notifications).
            record = handed_record(
                str(handed_to),
                job_id,
                job.queue,
                job.function,
                job.arguments,
                job.created_at,
                job.timeout,
                job.keep_result,
            )
            self._handed.add(str(handed_to), job_id, record)
        if enqueued:
            self._hub.publish(JobsEnqueued(frozenset((job.queue,))))
        return job_id

    def _heard_handoff(self, handoff: notifications.JobHandedOff) -> None:
        """Keep a job another process handed to a server for that
        server's next fetch, if the server runs on this storage: every
        process hears every hand-off, and nothing would take those of
        other processes' servers out."""
        if handoff.server in self._servers:
            self._handed.add(handoff.server, handoff.job_id, handoff.record)

    def _heard_aborted(self, aborted: JobsAborted) -> None:
        """Drop jobs deleted or requeued before their servers took them:
        the server would start them, and stop them only at its next
        check for aborted jobs."""
        self._handed.drop(aborted.job_ids)

    def _raw_cursor(self, conn: Connection) -> RawCursor:
        """The raw cursor that runs enqueues on ``conn``.

        One per pooled connection, made once: a cursor made per call
        cost the enqueue more than the statement's parameters did.
        """
        cursor = self._raw_cursors.get(conn)
        if cursor is None:
            if len(self._raw_cursors) >= 2 * self.settings.pool_max_size:
                # Drop those of connections the pool closed since
                # (broken, or past their lifetime).
                self._raw_cursors = {
                    c: k for c, k in self._raw_cursors.items() if not c.closed
                }
            cursor = self._raw_cursors[conn] = psycopg.AsyncRawCursor(conn)
        return cursor

    def _enqueued_payload(self, queue: str) -> str:
        """The NOTIFY payload saying that ``queue`` got a job.

        The same few queues come back on every enqueue: each payload is
        encoded once.
        """
        payload = self._payloads.get(queue)
        if payload is None:
            (payload,) = notifications.encode(
                self._hub.origin, JobsEnqueued(frozenset((queue,)))
            )
            if len(self._payloads) >= _PAYLOADS_KEPT:
                self._payloads.clear()
            self._payloads[queue] = payload
        return payload

    async def _own_job(self, job_id: JobId, job: NewJob) -> bool:
        """Whether the job holding ``job_id`` is ``job`` (see own_job)."""
        rows = await self._read(
            query("own_job"),
            {
                "id": job_id,
                "function": job.function,
                "arguments": job.arguments,
                "queue": job.queue,
                "created_at": job.created_at,
            },
        )
        return bool(rows[0][0])

    async def create_continuations(
        self, continuations: Sequence[NewContinuation]
    ) -> list[JobId]:
        """Store continuations (see :meth:`Storage.create_continuations`).

        The parent's row is locked first: a parent finishing at the same
        moment either sees the new continuation, or is seen finished.

        Raises:
            MissingParentError: a parent does not exist; nothing written.
            StorageError: a continuation is invalid; nothing written.
        """
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
        if not continuations:
            return []

        async def work(conn: Connection, pending: _Pending) -> list[JobId]:
            parents = {}
            for parent_id in sorted({c.parent_id for c in continuations}):
                cursor = await conn.execute(
                    query("lock_parent"), {"id": parent_id}
                )
                row = await cursor.fetchone()
                if row is None:
                    raise MissingParentError(parent_id)
                parents[parent_id] = row
            ids = await _create(conn, pending, [c.job for c in continuations])
            await conn.execute(
                query("add_continuations"),
                {
                    "parents": [c.parent_id for c in continuations],
                    "jobs": ids,
                    "on_states": [
                        encode_states(c.on_states) for c in continuations
                    ],
                },
            )
            # Parents that finished already: their continuations react
            # now, as if the parent finished at this moment.
            changes = []
            for job_id, continuation in zip(ids, continuations, strict=True):
                state, expires_at = parents[continuation.parent_id]
                parent_state = JobState(state)
                if parent_state not in FINAL_STATES:
                    continue
                parent = StateChange(
                    job_id=continuation.parent_id,
                    to_state=parent_state,
                    from_states=frozenset({parent_state}),
                    reason="",
                    at=continuation.job.created_at,
                    expires_at=expires_at,
                )
                encoded = encode_states(continuation.on_states)
                change = _continuation_change(parent, job_id, encoded)
                if change is not None:
                    changes.append(change)
            await _apply(conn, pending, changes)
            return ids

        return await self._write(work)

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
        if not changes:
            return []

        async def work(
            conn: Connection, pending: _Pending
        ) -> list[ChangeOutcome]:
            return await _apply(conn, pending, changes)

        return await self._write(work, pipelined=True)

    async def continuation_links(
        self, job_id: JobId
    ) -> list[ContinuationLink]:
        """Return the job's parent and continuation links (see base)."""
        rows = await self._read(query("continuation_links"), {"id": job_id})
        return [
            ContinuationLink(int(parent), int(child), decode_states(states))
            for parent, child, states in rows
        ]

    async def fetch(
        self,
        server: str,
        queues: Sequence[str],
        limit: int,
        now: datetime,
    ) -> list[JobRecord]:
        """Hand up to ``limit`` enqueued jobs to ``server``.

        One statement per queue, in the order given, until ``limit`` jobs
        are taken, each run on its own outside a transaction (one round
        trip; see the fetch statement). Returns nothing when ``server``
        is not registered; otherwise also counts as a heartbeat, unless
        the queues are empty: then nothing is written.

        A reply lost after its statement committed leaves its jobs held
        by ``server`` unseen; so does a retry of the statement on a
        fresh connection. The server's reconcile loop puts such jobs
        back on their queues, as it does after a lost COMMIT.
        """
        if limit < 1 or not queues:
            return []
        handed = self._handed.take(server, limit)
        if handed:
            records = await self._fetch_handed(server, handed)
            # None when every one was deleted or requeued meanwhile:
            # then the queues are looked at, or a server stopping once
            # a fetch finds nothing would stop with jobs waiting.
            if records:
                return records
        if self._hub.has_listeners and not self._hub.listened:
            # A server's first fetch, its listening connection still
            # opening: wait a moment, so that the fetch may mark its
            # workers idle (see _hears_handoffs) rather than the poll
            # after it.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_FIRST_LISTEN_WAIT):
                    await self._hub.wait_listening()
        params = _fetch_params(server, now, self._hears_handoffs())
        rows: list[TupleRow] = []
        for queue in dict.fromkeys(queues):
            if len(rows) >= limit:
                break
            taken = await self._fetch_queue(
                {
                    **params,
                    "queue": queue,
                    "limit": limit - len(rows),
                    "count": True,
                    "shard": random.randrange(_COUNTER_SHARDS),
                },
            )
            if taken and taken[-1][0] is None:
                # The marker row: jobs with a mutex wait on this queue.
                taken.pop()
                room = limit - len(rows) - len(taken)
                taken += await self._fetch_mutex(params, queue, room)
            rows.extend(taken)
        return [_record(row) for row in rows]

    def _hears_handoffs(self) -> bool:
        """Whether a server fetching through this storage would hear of
        jobs handed to it: not while the listening connection of a
        storage with listeners is down."""
        return self._hub.listening or not self._hub.has_listeners

    def take_handed_jobs(self, server: str, limit: int) -> list[JobRecord]:
        """Jobs handed to ``server`` whose NOTIFY carried them whole (see
        :mod:`.handoffs`); those to be read are left to the next fetch."""
        return self._handed.take_whole(server, limit)

    async def end_handoffs(self, server: str) -> list[JobRecord]:
        """Mark every worker of ``server`` busy, then return the jobs
        handed to it that it has not taken (see the base class)."""
        # Waits for an enqueue handing it a job right now: that job's
        # NOTIFY is then on its way (it usually arrives before the
        # server puts back what this returns).
        await self._read(query("end_handoffs"), {"server": server})
        handed = self._handed.take(server, KEPT_PER_SERVER)
        if not handed:
            return []
        return await self._fetch_handed(server, handed)

    async def _fetch_handed(
        self, server: str, handed: list[tuple[JobId, JobRecord | None]]
    ) -> list[JobRecord]:
        """The jobs handed to ``server`` (see :mod:`.handoffs`).

        Those whose NOTIFY carried them as they are; the others read, no
        commit: the enqueue wrote them in processing already (on the
        fetch connection when it is free). Jobs whose read failed are
        kept for the next fetch.
        """
        unread = [job_id for job_id, record in handed if record is None]
        if not unread:
            return [record for _, record in handed if record is not None]
        params = {"ids": unread, "server": server}

        async def work(conn: Connection) -> list[TupleRow]:
            cursor = await conn.execute(query("handed_jobs"), params)
            return await cursor.fetchall()

        try:
            rows = await self._on_fetch_connection(work)
            if rows is None:
                rows = await self._run(work, write=False)
        except BaseException:
            self._handed.give_back(server, handed)
            raise
        read = {record.id: record for record in map(_record, rows)}
        return [
            found
            for job_id, record in handed
            if (found := record or read.get(job_id)) is not None
        ]

    async def _fetch_queue(
        self, params: Mapping[str, object]
    ) -> list[TupleRow]:
        """Run the fetch statement on its own, in queue order.

        On the fetch connection when it is free: its session holds the
        planner settings of walk_queue_in_order, so the fetch goes alone
        (see :mod:`~backburner.storage.postgres.fetch_connection`).
        Otherwise on a pooled connection, pipelined: the settings and the
        fetch share one round trip and one implicit transaction, which
        commits (and ends the settings) at the pipeline's end.
        """

        async def alone(conn: Connection) -> list[TupleRow]:
            cursor = await conn.execute(query("fetch"), params)
            return await cursor.fetchall()

        taken = await self._on_fetch_connection(alone)
        if taken is not None:
            return taken

        async def work(conn: Connection) -> list[TupleRow]:
            async with conn.pipeline():
                await conn.execute(query("walk_queue_in_order"))
                cursor = await conn.execute(query("fetch"), params)
            return await cursor.fetchall()

        return await self._run(work, write=False)

    async def _on_fetch_connection(
        self, work: Callable[[Connection], Awaitable[list[TupleRow]]]
    ) -> list[TupleRow] | None:
        """Run a fetch's ``work`` on the fetch connection; ``None`` when
        that connection is busy, cannot open or was lost (the caller runs
        it on a pooled connection then).

        Raises:
            StorageError: the storage is closed, or the fetch failed on a
                live connection.
        """
        if not self._fetcher.available:
            return None
        pool = await self._ready()
        if self._auto_migrate and not self._migrated:
            await self._migrate_if_behind(pool)
        try:
            return await self._fetcher.run(work)
        except FetchConnectionLostError:
            logger.debug(
                "fetch connection lost, fetching on a pooled connection",
                extra={"event": "storage.connection_lost"},
            )
            return None
        except psycopg.Error as error:
            raise self._storage_error(error, False) from error
        except UnicodeEncodeError as error:
            raise StorageError(f"text is not valid UTF-8: {error}") from error

    async def _fetch_mutex(
        self, params: Mapping[str, object], queue: str, room: int
    ) -> list[TupleRow]:
        """Run :func:`_fetch_mutex` in a transaction of its own."""
        if room < 1:
            return []

        async def work(conn: Connection, pending: _Pending) -> list[TupleRow]:
            taken = await _fetch_mutex(conn, params, queue, room)
            pending.counters[(_ENQUEUED, queue)] -= len(taken)
            pending.counters[(_PROCESSING, queue)] += len(taken)
            return taken

        return await self._write(work)

    async def apply_changes_and_fetch(
        self,
        changes: Sequence[StateChange],
        server: str,
        queues: Sequence[str],
        limit: int,
        now: datetime,
    ) -> tuple[list[ChangeOutcome], list[JobRecord]]:
        """Apply changes, then fetch, in one transaction (see the base).

        A job the changes put back on its queue can be fetched by the
        same call: the transaction sees its own queue entries, and row
        locks it holds itself are not skipped.

        Raises:
            StorageError: a change is invalid or the transaction failed;
                nothing was written and nothing fetched.
        """
        for change in changes:
            _check_change(change)
        if not changes:
            return [], await self.fetch(server, queues, limit, now)

        handed = self._handed.take(server, limit) if queues else []

        async def work(
            conn: Connection, pending: _Pending
        ) -> tuple[list[ChangeOutcome], list[TupleRow]]:
            outcomes = await _apply(conn, pending, changes)
            if limit < 1 or not queues:
                return outcomes, []
            if handed:
                # Held by the server already: read, not fetched.
                return outcomes, []
            rows = await _fetch(
                conn,
                pending,
                _fetch_params(server, now, self._hears_handoffs()),
                queues,
                limit,
            )
            return outcomes, rows

        try:
            outcomes, rows = await self._write(work, pipelined=True)
        except BaseException:
            self._handed.give_back(server, handed)
            raise
        if handed:
            try:
                records = await self._fetch_handed(server, handed)
            except StorageError:
                # The outcomes are written; the jobs were kept for the
                # next fetch.
                records = []
            return outcomes, records
        return outcomes, [_record(row) for row in rows]

    async def promote_scheduled(self, now: datetime, limit: int) -> int:
        """Enqueue due scheduled jobs (see the base class)."""
        if limit < 1:
            return 0

        async def work(conn: Connection, pending: _Pending) -> int:
            cursor = await conn.execute(
                query("promote"),
                {
                    "now": now,
                    "limit": limit,
                    "reason": "scheduled time reached",
                },
            )
            moved = 0
            for queue, count in await cursor.fetchall():
                pending.counters[(JobState.SCHEDULED.value, queue)] -= count
                pending.counters[(_ENQUEUED, queue)] += count
                pending.enqueued.add(queue)
                moved += count
            return moved

        return await self._write(work)

    async def get_job(self, job_id: JobId) -> JobRecord | None:
        """Return the job or ``None``; see :meth:`Storage.get_job`."""
        rows = await self._read(query("get_job"), {"id": job_id})
        return _record(rows[0]) if rows else None

    async def get_history(self, job_id: JobId) -> list[HistoryEntry]:
        """Return the job's history, oldest first."""
        rows = await self._read(query("get_history"), {"id": job_id})
        entries = []
        for state, reason, at, data in rows:
            try:
                entries.append(
                    HistoryEntry(JobState(state), reason, at, json.loads(data))
                )
            except (TypeError, ValueError) as error:
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
        """Return a page of jobs, newest first (see the base class).

        The filters are spelled out rather than made optional inside one
        statement, so that each combination is planned on its index.
        The function has no index: every enqueue and expiry would pay
        for one, for an admin listing that reads at most the jobs of
        one state (or queue) and continues where its last page stopped.
        """
        conditions: list[sql.Composable] = []
        params: dict[str, object] = {"limit": limit}
        if state is not None:
            conditions.append(sql.SQL("state = %(state)s"))
            params["state"] = state.value
        if queue is not None:
            conditions.append(sql.SQL("queue = %(queue)s"))
            params["queue"] = queue
        if function is not None:
            conditions.append(sql.SQL("function = %(function)s"))
            params["function"] = function
        if before is not None:
            conditions.append(sql.SQL("id < %(before)s"))
            params["before"] = before
        where = (
            sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions)
            if conditions
            else sql.SQL("")
        )
        statement = sql.SQL(
            "SELECT {} FROM jobs{} ORDER BY id DESC LIMIT %(limit)s"
        ).format(_JOB_COLUMNS, where)
        return [_record(row) for row in await self._read(statement, params)]

    async def counts(self) -> list[StateCount]:
        """Return the counters per state and queue (no zero rows)."""
        counts = []
        for state, queue, count in await self._read(query("counts"), {}):
            try:
                counts.append(StateCount(JobState(state), queue, int(count)))
            except ValueError as error:
                raise StorageError(f"corrupted counter: {error}") from error
        return counts

    async def outcome_counts(self, since: datetime) -> list[OutcomeCount]:
        """Return the succeeded and failed totals per hour (see the base).

        Raises:
            StorageError: a stored total names an unknown state.
        """
        rows = await self._read(query("outcome_counts"), {"since": since})
        try:
            return [
                OutcomeCount(JobState(state), hour, int(count))
                for state, hour, count in rows
            ]
        except ValueError as error:
            raise StorageError(f"corrupted outcome total: {error}") from error

    async def job_states(
        self, job_ids: Sequence[JobId]
    ) -> dict[JobId, tuple[JobState, int]]:
        """Return the state and version of each existing job."""
        if not job_ids:
            return {}
        rows = await self._read(query("job_states"), {"ids": list(job_ids)})
        found = {}
        for job_id, state, version in rows:
            try:
                found[int(job_id)] = (JobState(state), int(version))
            except ValueError as error:
                raise CorruptedJobError(job_id, str(error)) from error
        return found

    async def expire(self, now: datetime, limit: int) -> int:
        """Remove up to ``limit`` expired jobs; see :meth:`Storage.expire`.

        One batch per call, so that a backlog of millions of expired jobs
        is removed in short transactions rather than one long one.
        """
        if limit < 1:
            return 0

        async def work(conn: Connection, pending: _Pending) -> int:
            cursor = await conn.execute(
                query("expire"), {"now": now, "limit": limit}
            )
            removed = 0
            for state, queue, count in await cursor.fetchall():
                pending.counters[(state, queue)] -= count
                removed += count
            return removed

        return await self._write(work)

    async def set_parameter(
        self, job_id: JobId, name: str, value: str
    ) -> bool:
        """Set a job parameter; ``False`` if there is no such job.

        Raises:
            StorageError: the name or value holds text PostgreSQL cannot
                store; nothing was written.
        """
        _refuse_unstorable(name, "parameter name")
        _refuse_unstorable(value, f"parameter {name!r}")

        async def work(conn: Connection, pending: _Pending) -> bool:
            cursor = await conn.execute(
                query("set_parameter"),
                {"id": job_id, "name": name, "value": value},
            )
            return await cursor.fetchone() is not None

        return await self._write(work)

    async def get_parameters(self, job_id: JobId) -> dict[str, str]:
        """Return the job's parameters."""
        rows = await self._read(query("get_parameters"), {"id": job_id})
        return {name: value for name, value in rows}

    async def set_parameters(
        self, values: Mapping[JobId, Mapping[str, str]]
    ) -> set[JobId]:
        """Set parameters of many jobs at once (see the base class).

        Raises:
            StorageError: a name or value holds text PostgreSQL cannot
                store; nothing was written.
        """
        rows = [
            (job_id, name, value)
            for job_id, named in values.items()
            for name, value in named.items()
        ]
        for _, name, value in rows:
            _refuse_unstorable(name, "parameter name")
            _refuse_unstorable(value, f"parameter {name!r}")
        if not rows:
            return set()
        params = {
            "ids": [row[0] for row in rows],
            "names": [row[1] for row in rows],
            "values": [row[2] for row in rows],
        }

        async def work(conn: Connection, pending: _Pending) -> set[JobId]:
            cursor = await conn.execute(query("set_parameters"), params)
            return {int(row[0]) for row in await cursor.fetchall()}

        return await self._write(work)

    async def announce_server(self, info: ServerInfo) -> None:
        """Register (or re-register) a server as alive."""
        _refuse_unstorable(info.name, "server name")
        params = {
            "name": info.name,
            "queues": list(info.queues),
            "workers": info.workers,
            "started": info.started_at,
            "heartbeat": info.heartbeat_at,
        }

        async def work(conn: Connection, pending: _Pending) -> None:
            await conn.execute(query("announce_server"), params)
            await conn.execute(query("announce_idle"), params)

        await self._write(work)
        await self._hold_server_lock(info.name)

    async def _hold_server_lock(self, server: str) -> None:
        """Take ``server``'s lock on the fetch connection, now if it is
        open, and whenever it opens (at the server's first fetch, and
        when it is replaced).

        Without it the server is handed no job at enqueue; it still
        fetches them. So a failure here is no error.
        """
        if server in self._servers:
            return  # held, or taken when the connection opens
        self._servers.add(server)
        if not self._fetcher.opened:
            return

        async def work(conn: Connection) -> None:
            await conn.execute(query("server_lock"), {"server": server})

        try:
            await self._fetcher.run(work)
        except (FetchConnectionLostError, psycopg.Error) as error:
            logger.debug(
                "server lock not taken: %s",
                error,
                extra={"event": "storage.server_lock_failed"},
            )

    async def heartbeat(self, name: str, now: datetime) -> bool:
        """Record a heartbeat; ``False`` if the server was declared dead."""
        rows = await self._read(query("heartbeat"), {"name": name, "now": now})
        return bool(rows)

    async def remove_server(self, name: str) -> None:
        """Unregister a server (its jobs stay as they are)."""
        await self._read(query("remove_server"), {"name": name})
        # Jobs handed to it and heard of only since it ended its
        # hand-offs are recovered with its other jobs: a run of the
        # server under the same name must not start them too.
        self._servers.discard(name)
        self._handed.take(name, KEPT_PER_SERVER)

    async def list_servers(self) -> list[ServerInfo]:
        """Return the registered servers, by name."""
        rows = await self._read(query("list_servers"), {})
        return [
            ServerInfo(
                name=name,
                queues=tuple(queues),
                workers=workers,
                started_at=started,
                heartbeat_at=beat,
            )
            for name, queues, workers, started, beat in rows
        ]

    async def recover_dead_servers(
        self, now: datetime, silence: float, reason: str
    ) -> list[JobId]:
        """Requeue jobs of silent servers; see the base class.

        Any number of servers may run this at once: a silent server is
        deleted by one of them, and each orphaned job is locked (SKIP
        LOCKED) and requeued by exactly one.
        """
        cutoff = now - timedelta(seconds=silence)
        params = {"now": now, "reason": _storable(reason)}

        async def work(conn: Connection, pending: _Pending) -> list[JobId]:
            await conn.execute(
                query("delete_silent_servers"), {"limit": cutoff}
            )
            cursor = await conn.execute(query("recover"), params)
            recovered = []
            for job_id, queue in await cursor.fetchall():
                pending.move(queue, _PROCESSING, _ENQUEUED)
                pending.aborted.add(int(job_id))
                recovered.append(int(job_id))
            return recovered

        return await self._write(work)

    async def held_jobs(
        self, server: str
    ) -> dict[JobId, tuple[int, datetime]]:
        """Return a server's jobs in processing (see the base class)."""
        rows = await self._read(query("held_jobs"), {"server": server})
        return {
            int(job_id): (int(version), fetched)
            for job_id, version, fetched in rows
        }

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Hear about changes made by any process on this schema.

        Changes made through this storage are told at once after commit;
        those of other processes arrive through LISTEN/NOTIFY on a
        dedicated connection, opened now if an event loop is running (or
        on the storage's next call otherwise).
        """
        remove = self._hub.add(listener)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return remove
        if not self._closed:
            self._hub.start()
        return remove

    # -- recurring jobs -------------------------------------------------

    async def save_recurring(
        self,
        definition: RecurringDefinition,
        next_run_at: datetime | None,
        now: datetime,
    ) -> RecurringRecord:
        """Create or update a recurring job (see the base class).

        Raises:
            StorageError: a field holds text PostgreSQL cannot store;
                nothing was written.
        """
        d = definition
        for name in ("id", "function", "arguments", "queue", "cron"):
            _refuse_unstorable(getattr(d, name), f"recurring job {name}")
        _refuse_unstorable(d.time_zone, "recurring job time zone")
        _refuse_unstorable(d.missed, "recurring job policy")
        params = {
            "id": d.id,
            "function": d.function,
            "arguments": d.arguments,
            "queue": d.queue,
            "cron": d.cron,
            "time_zone": d.time_zone,
            "missed": d.missed,
            "timeout": d.timeout,
            "next_run_at": next_run_at,
            "now": now,
        }

        async def work(conn: Connection, pending: _Pending) -> TupleRow:
            await conn.execute(query("save_recurring"), params)
            cursor = await conn.execute(query("get_recurring"), {"id": d.id})
            row = await cursor.fetchone()
            assert row is not None  # Written just above.
            return row

        return _recurring(await self._write(work))

    async def get_recurring(self, recurring_id: str) -> RecurringRecord | None:
        """Return the recurring job, or ``None``."""
        rows = await self._read(query("get_recurring"), {"id": recurring_id})
        return _recurring(rows[0]) if rows else None

    async def list_recurring(self) -> list[RecurringRecord]:
        """Return every recurring job, by id."""
        rows = await self._read(query("list_recurring"), {})
        return [_recurring(row) for row in rows]

    async def remove_recurring(self, recurring_id: str) -> bool:
        """Remove a recurring job; ``False`` if there is none."""
        rows = await self._read(
            query("remove_recurring"), {"id": recurring_id}
        )
        return bool(rows)

    async def pause_recurring(self, recurring_id: str, now: datetime) -> bool:
        """Mark a recurring job paused; ``False`` if there is none."""
        rows = await self._read(
            query("pause_recurring"), {"id": recurring_id, "now": now}
        )
        return bool(rows)

    async def resume_recurring(
        self, recurring_id: str, next_run_at: datetime | None, now: datetime
    ) -> bool:
        """Unpause or restart a recurring job (see the base class)."""
        params = {"id": recurring_id, "next_run_at": next_run_at, "now": now}

        async def work(conn: Connection, pending: _Pending) -> bool:
            cursor = await conn.execute(
                query("recurring_exists"), {"id": recurring_id}
            )
            if await cursor.fetchone() is None:
                return False
            await conn.execute(query("resume_recurring"), params)
            return True

        return await self._write(work)

    async def next_recurring_due(self) -> datetime | None:
        """Return the earliest next occurrence of an active job."""
        rows = await self._read(query("next_recurring_due"), {})
        due: datetime | None = rows[0][0] if rows else None
        return due

    async def due_recurring(
        self, now: datetime, limit: int
    ) -> list[RecurringRecord]:
        """Return active recurring jobs due at ``now``, earliest first."""
        rows = await self._read(
            query("due_recurring"), {"now": now, "limit": limit}
        )
        return [_recurring(row) for row in rows]

    async def fire_recurring(
        self, firing: RecurringFiring
    ) -> list[JobId] | None:
        """Create an occurrence's jobs under a compare-and-set (see base).

        The compare-and-set comes first, so a losing server waits on the
        row lock only, then creates nothing.
        """
        _check_new_jobs(firing.jobs)
        if firing.jobs and firing.last_run_at is None:
            raise StorageError("a firing that creates jobs needs last_run_at")
        params = {
            "id": firing.recurring_id,
            "version": firing.expected_version,
            "next_run_at": firing.next_run_at,
            "error": None if firing.error is None else _storable(firing.error),
            "failures": firing.failures,
            "at": firing.at,
            "last_run_at": firing.last_run_at if firing.jobs else None,
        }
        jobs = firing.jobs

        async def work(
            conn: Connection, pending: _Pending
        ) -> list[JobId] | None:
            cursor = await conn.execute(query("claim_recurring"), params)
            if await cursor.fetchone() is None:
                return None
            if not jobs:
                return []
            cursor = await conn.execute(
                query("create_jobs"), _new_job_params(jobs)
            )
            ids = [int(row[0]) for row in await cursor.fetchall()]
            for job in jobs:
                pending.move(job.queue, None, job.state.value)
            await conn.execute(
                query("set_recurring_last_job"),
                {"id": firing.recurring_id, "job_id": ids[-1]},
            )
            return ids

        return await self._write(work)


def _check_new_jobs(jobs: Sequence[NewJob]) -> None:
    for index, job in enumerate(jobs):
        if not _plainly_creatable(job):
            _refuse_new_job(index, job)


def _plainly_creatable(job: NewJob) -> bool:
    """A quick look that passes the common job, with no message built.

    True only if every check of :func:`_refuse_new_job` passes; a job it
    is unsure of goes through those checks. ASCII text can neither hold a
    lone surrogate nor fail to encode.
    """
    if job.parameters or job.unique_key is not None or job.mutex is not None:
        return False
    if job.state is not JobState.ENQUEUED and (
        job.state is not JobState.SCHEDULED or job.scheduled_at is None
    ):
        return False
    return (
        job.mutex_limit >= 1
        and _plain_text(job.function)
        and _plain_text(job.arguments)
        and _plain_text(job.queue)
        and _plain_text(job.reason)
    )


def _plain_text(text: str) -> bool:
    return text.isascii() and "\x00" not in text


def _refuse_new_job(index: int, job: NewJob) -> None:
    """Raise :class:`StorageError` naming what is wrong with ``job``,
    if anything is."""
    where = f"job #{index} ({job.function})"
    if job.state not in _CREATABLE:
        raise StorageError(f"{where}: cannot create a job in {job.state}")
    if job.state is JobState.SCHEDULED and job.scheduled_at is None:
        raise StorageError(f"{where}: a scheduled job needs scheduled_at")
    if job.unique_key is not None and job.state is JobState.AWAITING:
        raise StorageError(
            f"{where}: an awaiting job cannot have a unique key"
        )
    if job.mutex_limit < 1:
        raise StorageError(f"{where}: a mutex limit is at least 1")
    if job.unique_key is not None:
        _refuse_unstorable(job.unique_key, f"{where}: unique key")
    if job.mutex is not None:
        _refuse_unstorable(job.mutex, f"{where}: mutex")
    _refuse_unstorable(job.function, f"job #{index}: function")
    _refuse_unstorable(job.arguments, f"{where}: arguments")
    _refuse_unstorable(job.queue, f"{where}: queue")
    _refuse_unstorable(job.reason, f"{where}: reason")
    for name, value in job.parameters.items():
        _refuse_unstorable(name, f"{where}: parameter name")
        _refuse_unstorable(value, f"{where}: parameter {name!r}")


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
            next_run_at=row[9],
            last_run_at=row[10],
            last_job_id=None if row[11] is None else int(row[11]),
            last_job_state=None if row[12] is None else JobState(row[12]),
            error=row[13],
            failures=int(row[14]),
            version=int(row[15]),
            created_at=row[16],
            updated_at=row[17],
        )
    except (TypeError, ValueError) as error:
        raise StorageError(
            f"recurring job {row[0]!r} is corrupted in storage: {error}"
        ) from error


def _new_job_params(jobs: Sequence[NewJob]) -> dict[str, object]:
    """The ``jobs``, ``created`` and ``parameters`` parameters of
    create_jobs.

    Parameters refer to their job by its 1-based position in ``jobs``.
    """
    # The jobs of one call mostly share their creation time: it goes
    # once, as created, and a job created then carries null in its row
    # (no text to write, nor for PostgreSQL to parse, per job); any
    # other moment's text is made once per distinct moment.
    created = jobs[0].created_at
    stamps: dict[datetime, str | None] = {created: None}
    rows = []
    for job in jobs:
        try:
            stamp = stamps[job.created_at]
        except KeyError:
            stamp = stamps[job.created_at] = job.created_at.isoformat()
        rows.append(
            [
                job.function,
                job.arguments,
                job.queue,
                _STATE_TEXT[job.state],
                job.reason,
                stamp,
                None
                if job.scheduled_at is None
                else job.scheduled_at.isoformat(),
                job.timeout,
                job.unique_key,
                job.mutex,
                None if job.mutex is None else job.mutex_limit,
                job.keep_result,
            ]
        )
    parameters = [
        [position, name, value]
        for position, job in enumerate(jobs, start=1)
        for name, value in job.parameters.items()
    ]
    return {
        "jobs": json.dumps(rows),
        "created": created,
        "parameters": json.dumps(parameters),
    }


async def _apply(
    conn: Connection, pending: _Pending, changes: Sequence[StateChange]
) -> list[ChangeOutcome]:
    """Apply checked changes inside the caller's transaction."""
    if not changes:
        return []
    # Only a change that may make an inactive job active can clash with
    # a unique key: a worker's outcome never does.
    unique = any(
        change.to_state in ACTIVE_STATES
        and not change.from_states <= ACTIVE_STATES
        for change in changes
    )
    if not unique and _one_step(changes):
        outcomes, continuations = await _change_at_once(conn, pending, changes)
    else:
        outcomes, continuations = await _lock_and_change(
            conn, pending, changes, unique
        )
    if continuations:
        await _apply(
            conn,
            pending,
            _continuation_changes(changes, outcomes, continuations),
        )
    return outcomes


def _one_step(changes: Sequence[StateChange]) -> bool:
    """Whether ``change_jobs`` can apply the batch: each job changed
    once, and none from enqueued (whose queue entry would go)."""
    ids = {change.job_id for change in changes}
    return len(ids) == len(changes) and not any(
        JobState.ENQUEUED in change.from_states for change in changes
    )


async def _change_at_once(
    conn: Connection, pending: _Pending, changes: Sequence[StateChange]
) -> tuple[list[ChangeOutcome], dict[JobId, list[tuple[JobId, str]]]]:
    """Apply a :func:`_one_step` batch with one compare-and-set
    statement; returns the outcomes and the continuations by parent."""
    ids = [change.job_id for change in changes]
    # In a pipelined transaction both statements go out together.
    changed = await conn.execute(
        query("change_jobs"),
        {
            "ids": ids,
            "from_states": [encode_states(c.from_states) for c in changes],
            "versions": [c.expected_version for c in changes],
            "states": [c.to_state.value for c in changes],
            "reasons": [_storable(c.reason) for c in changes],
            "at": [c.at for c in changes],
            "scheduled": [c.scheduled_at for c in changes],
            "expires": [c.expires_at for c in changes],
            "resets": [c.reset_attempt for c in changes],
            "data": [json.dumps(c.data) for c in changes],
        },
    )
    links = await conn.execute(query("continuations_of"), {"ids": ids})
    found = {
        int(job_id): (state, queue, bool(applied))
        for job_id, state, queue, applied in await changed.fetchall()
    }
    outcomes = []
    for change in changes:
        if change.job_id not in found:
            outcomes.append(ChangeOutcome(change.job_id, False, None))
            continue
        state, queue, applied = found[change.job_id]
        try:
            previous = JobState(state)
        except ValueError as error:
            raise CorruptedJobError(change.job_id, str(error)) from error
        if applied:
            target = change.to_state.value
            pending.move(queue, state, target)
            pending.finish(target, change.at)
            if previous is JobState.PROCESSING and not change.from_worker:
                pending.aborted.add(change.job_id)
        outcomes.append(ChangeOutcome(change.job_id, applied, previous))
    continuations: dict[JobId, list[tuple[JobId, str]]] = {}
    for parent_id, job_id, on_states in await links.fetchall():
        continuations.setdefault(int(parent_id), []).append(
            (int(job_id), on_states)
        )
    return outcomes, continuations


async def _lock_and_change(
    conn: Connection,
    pending: _Pending,
    changes: Sequence[StateChange],
    unique: bool,
) -> tuple[list[ChangeOutcome], dict[JobId, list[tuple[JobId, str]]]]:
    """Lock the jobs, settle the changes in memory, write the result;
    any batch (a job changed several times, unique keys)."""
    ids = sorted({change.job_id for change in changes})
    if unique:
        async with conn.pipeline():
            locked = await conn.execute(query("lock_jobs"), {"ids": ids})
            held = await conn.execute(query("unique_holders"), {"ids": ids})
        holders = await held.fetchall()
    else:
        locked = await conn.execute(query("lock_jobs"), {"ids": ids})
        holders = []
    jobs = {
        int(job_id): _Current(state, queue, version, state)
        for job_id, state, queue, version in await locked.fetchall()
    }
    for job_id, holder in holders:
        jobs[int(job_id)].unique_holder = int(holder)
    outcomes = [
        _decide(jobs, index, change, pending)
        for index, change in enumerate(changes)
    ]
    continuations = await _write_changes(conn, jobs, changes, outcomes)
    return outcomes, continuations


def _continuation_changes(
    changes: Sequence[StateChange],
    outcomes: Sequence[ChangeOutcome],
    continuations: Mapping[JobId, Sequence[tuple[JobId, str]]],
) -> list[StateChange]:
    """What the applied ``changes`` do to the parents' continuations."""
    found = []
    for change, outcome in zip(changes, outcomes, strict=True):
        if not outcome.applied:
            continue
        for job_id, on_states in continuations.get(change.job_id, ()):
            if change.to_state in FINAL_STATES:
                fired = _continuation_change(change, job_id, on_states)
                if fired is not None:
                    found.append(fired)
            elif outcome.previous_state in FINAL_STATES:
                found.append(
                    StateChange(
                        job_id=job_id,
                        to_state=JobState.AWAITING,
                        from_states=FINAL_STATES,
                        reason=f"re-armed: parent job {change.job_id} left"
                        " its final state",
                        at=change.at,
                        data={"parent": change.job_id},
                        reset_attempt=True,
                    )
                )
    return found


def _continuation_change(
    parent: StateChange, job_id: JobId, on_states: str
) -> StateChange | None:
    """Where an awaiting continuation goes as ``parent`` finishes."""
    waited = decode_states(on_states)
    target = continuation_target(parent.to_state, waited)
    if target is None:
        return None
    state = parent.to_state.value
    reason = f"parent job {parent.job_id} {state}"
    if target is JobState.DELETED:
        waits = " or ".join(sorted(s.value for s in waited))
        reason += f"; this continuation waited for {waits}"
    return StateChange(
        job_id=job_id,
        to_state=target,
        from_states=frozenset({JobState.AWAITING}),
        reason=reason,
        at=parent.at,
        data={"parent": parent.job_id},
        expires_at=parent.expires_at if target is JobState.DELETED else None,
    )


async def _create(
    conn: Connection,
    pending: _Pending,
    jobs: Sequence[NewJob],
    chunk: int | None = None,
) -> list[JobId]:
    """Create ``jobs`` inside the caller's transaction; see create_jobs.

    ``chunk``: see :func:`_insert_jobs`.

    Creators of the same unique key take turns on an advisory lock, then
    look for an active holder: the second one finds the first's job.
    """
    keys = sorted({job.unique_key for job in jobs if job.unique_key})
    holders: dict[str, JobId] = {}
    if keys:
        async with conn.pipeline():
            for each in keys:
                await conn.execute(
                    query("lock_unique_key"),
                    {"class": _UNIQUE_LOCK, "key": each},
                )
            cursor = await conn.execute(
                query("active_unique_keys"), {"keys": keys}
            )
        holders = {k: int(job_id) for k, job_id in await cursor.fetchall()}
    # The first job of the call with a key not held yet is created;
    # later ones with that key get its id.
    fresh = []
    seen: set[str] = set()
    for job in jobs:
        key = job.unique_key
        if key is None or (key not in holders and key not in seen):
            fresh.append(job)
            if key is not None:
                seen.add(key)
    created: list[JobId] = []
    if fresh:
        created = await _insert_jobs(conn, fresh, chunk)
        moved = Counter((job.queue, _STATE_TEXT[job.state]) for job in fresh)
        for (queue, state), count in moved.items():
            pending.move(queue, None, state, count)
    ids: list[JobId] = []
    made = iter(created)
    for job in jobs:
        key = job.unique_key
        if key is not None and key in holders:
            ids.append(holders[key])
            continue
        job_id = next(made) if key is None or key in seen else 0
        if key is not None:
            seen.discard(key)
            holders[key] = job_id
        ids.append(job_id)
    return ids


async def _insert_jobs(
    conn: Connection, jobs: Sequence[NewJob], chunk: int | None
) -> list[JobId]:
    """Run create_jobs for ``jobs``; return their ids in order.

    ``chunk``: in a pipelined transaction, this many jobs per statement,
    all sent before the first result is read, so that PostgreSQL writes
    one chunk while this process encodes the next (on another core).
    """
    size = chunk or len(jobs)
    # Prepared from the first run: a bulk enqueue is rarely repeated the
    # five times after which psycopg would prepare it.
    cursors = [
        await conn.execute(
            query("create_jobs"),
            _new_job_params(jobs[start : start + size]),
            prepare=True,
        )
        for start in range(0, len(jobs), size)
    ]
    return [
        int(row[0]) for cursor in cursors for row in await cursor.fetchall()
    ]


async def _fetch(
    conn: Connection,
    pending: _Pending,
    params: Mapping[str, object],
    queues: Sequence[str],
    limit: int,
) -> list[TupleRow]:
    """Move up to ``limit`` jobs to processing inside the caller's
    transaction, queue by queue in the order given (``params`` from
    :func:`_fetch_params`)."""
    rows: list[TupleRow] = []
    # Until the transaction ends; pipelined, no round trip of its own.
    await conn.execute(query("walk_queue_in_order"))
    for queue in dict.fromkeys(queues):
        if len(rows) >= limit:
            break
        cursor = await conn.execute(
            query("fetch"),
            {
                **params,
                "queue": queue,
                "limit": limit - len(rows),
                # The transaction's counter deltas are written at its end.
                "count": False,
                "shard": 0,
            },
        )
        taken = await cursor.fetchall()
        if taken and taken[-1][0] is None:
            # The marker row: jobs with a mutex wait on this queue.
            taken.pop()
            room = limit - len(rows) - len(taken)
            taken += await _fetch_mutex(conn, params, queue, room)
        pending.counters[(_ENQUEUED, queue)] -= len(taken)
        pending.counters[(_PROCESSING, queue)] += len(taken)
        rows.extend(taken)
    return rows


def _fetch_params(
    server: str, now: datetime, heard: bool
) -> dict[str, object]:
    return {
        "server": server,
        "now": now,
        # Whether the fetch may mark workers idle (see advertised).
        "heard": heard,
        "reason": _storable(f"fetched by {server}"),
        "data": json.dumps({"server": server}),
    }


async def _fetch_mutex(
    conn: Connection, params: Mapping[str, object], queue: str, room: int
) -> list[TupleRow]:
    """Fetch up to ``room`` jobs with a mutex from ``queue``.

    Fetchers lock each mutex (advisory, until commit, in key order so
    they cannot deadlock), then count its processing holders: a slot
    taken by another server's committed fetch is seen. Known limits:
    jobs with a mutex are taken after those without one on the same
    queue, and only the oldest 200 waiting on a queue are looked at per
    fetch.
    """
    cursor = await conn.execute(
        query("mutex_candidates"), {"queue": queue, "limit": _MUTEX_SCAN}
    )
    candidates = await cursor.fetchall()
    keys = sorted({str(mutex) for _, mutex, _ in candidates})
    if not keys:
        return []
    async with conn.pipeline():
        for key in keys:
            await conn.execute(
                query("lock_mutex"), {"class": _MUTEX_LOCK, "key": key}
            )
        cursor = await conn.execute(query("mutex_holders"), {"keys": keys})
    held = {str(key): int(count) for key, count in await cursor.fetchall()}
    chosen = []
    for job_id, mutex, mutex_limit in candidates:
        count = held.get(mutex, 0)
        if count >= (mutex_limit or 1):
            continue
        held[mutex] = count + 1
        chosen.append(int(job_id))
        if len(chosen) >= room:
            break
    if not chosen:
        return []
    cursor = await conn.execute(
        query("fetch_ids"), {**params, "ids": chosen, "room": room}
    )
    return await cursor.fetchall()


def _check_change(change: StateChange) -> None:
    if change.to_state is JobState.PROCESSING:
        raise StorageError("only fetch() moves a job to processing")
    if change.to_state is JobState.SCHEDULED and change.scheduled_at is None:
        raise StorageError("a change to scheduled needs scheduled_at")


def _decide(
    jobs: dict[JobId, _Current],
    index: int,
    change: StateChange,
    pending: _Pending,
) -> ChangeOutcome:
    """Apply ``change`` to the locked job in memory (compare-and-set).

    A batch may change one job several times; each change sees the
    state the previous ones left.
    """
    current = jobs.get(change.job_id)
    if current is None:
        return ChangeOutcome(change.job_id, False, None)
    try:
        previous = JobState(current.state)
    except ValueError as error:
        raise CorruptedJobError(change.job_id, str(error)) from error
    if previous not in change.from_states or (
        change.expected_version is not None
        and current.version != change.expected_version
    ):
        return ChangeOutcome(change.job_id, False, previous)
    if (
        current.unique_holder is not None
        and change.to_state in ACTIVE_STATES
        and previous not in ACTIVE_STATES
    ):
        holder = current.unique_holder
        return ChangeOutcome(change.job_id, False, previous, holder)

    target = change.to_state.value
    pending.move(current.queue, current.state, target)
    pending.finish(target, change.at)
    if previous is JobState.PROCESSING and not change.from_worker:
        pending.aborted.add(change.job_id)
    current.state = target
    current.version += 1
    current.steps += 1
    current.last_change = index
    current.reason = _storable(change.reason)
    current.at = change.at
    current.scheduled_at = change.scheduled_at
    current.expires_at = change.expires_at
    current.reset_attempt = current.reset_attempt or change.reset_attempt
    return ChangeOutcome(change.job_id, True, previous)


async def _write_changes(
    conn: Connection,
    jobs: Mapping[JobId, _Current],
    changes: Sequence[StateChange],
    outcomes: Sequence[ChangeOutcome],
) -> dict[JobId, list[tuple[JobId, str]]]:
    """Write what :func:`_decide` settled: rows, history, queue entries.

    Returns the continuations of the jobs moved, by parent.
    """
    continuations: dict[JobId, list[tuple[JobId, str]]] = {}
    applied = [c for c, o in zip(changes, outcomes, strict=True) if o.applied]
    if not applied:
        return continuations
    moved = {
        job_id: current for job_id, current in jobs.items() if current.steps
    }
    # In a pipelined transaction these statements go out together: the
    # result of the first is read once the others are sent.
    updated = await conn.execute(
        query("update_jobs"),
        {
            "ids": list(moved),
            "states": [c.state for c in moved.values()],
            "reasons": [c.reason for c in moved.values()],
            "steps": [c.steps for c in moved.values()],
            "at": [c.at for c in moved.values()],
            "scheduled": [c.scheduled_at for c in moved.values()],
            "expires": [c.expires_at for c in moved.values()],
            "resets": [c.reset_attempt for c in moved.values()],
        },
    )
    await conn.execute(
        query("add_history"),
        {
            "ids": [c.job_id for c in applied],
            "states": [c.to_state.value for c in applied],
            "reasons": [_storable(c.reason) for c in applied],
            "at": [c.at for c in applied],
            "data": [json.dumps(c.data) for c in applied],
        },
    )
    # The old queue entry goes whenever the job was enqueued; a job that
    # ends the batch enqueued gets a new one at the back of its queue.
    dequeued = [
        job_id
        for job_id, current in moved.items()
        if current.initial_state == _ENQUEUED
    ]
    if dequeued:
        await conn.execute(query("dequeue"), {"ids": dequeued})
    requeued = sorted(
        (current.last_change, job_id, current.queue)
        for job_id, current in moved.items()
        if current.state == _ENQUEUED
    )
    if requeued:
        await conn.execute(
            query("enqueue"),
            {
                "ids": [job_id for _, job_id, _ in requeued],
                "queues": [queue for _, _, queue in requeued],
            },
        )
    for parent_id, job_id, on_states in await updated.fetchall():
        continuations.setdefault(int(parent_id), []).append(
            (int(job_id), on_states)
        )
    return continuations
