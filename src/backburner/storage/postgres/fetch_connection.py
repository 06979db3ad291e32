"""The fetch connection: one connection kept for a server's fetches.

An idle server that hears of a new job fetches it outside a transaction.
On a pooled connection that fetch is two statements in a pipeline: the
planner settings of ``walk_queue_in_order``, which last until the
pipeline's implicit transaction ends, then the fetch. On the fetch
connection the settings are made once for the whole session, so the
fetch is one statement; and the connection is the same every time, with
its prepared statement ready and no pool to go through. Side by side on
the PostgreSQL benchmark's latency row this took about 0.3 ms off the
3 ms median (see ``docs/benchmarks.md``).

Nothing else runs on it: its session settings would steer other
statements' plans. A fetch that finds it busy (several servers sharing
one storage object) takes the pooled way, as does every fetch while the
connection cannot be opened (retried after :data:`REOPEN_AFTER`
seconds). A lost connection is dropped and the fetch is run again on a
pooled connection, as :meth:`PostgresStorage._run` runs a call again
after a pooled connection was lost.

Known cost: one more connection per storage object that fetches (every
job server), beside its pool and its listening connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import psycopg
from psycopg.rows import TupleRow

from backburner.storage.postgres.queries import query

__all__ = [
    "MAX_LIFETIME",
    "REOPEN_AFTER",
    "FetchConnection",
    "FetchConnectionLostError",
]

T = TypeVar("T")
Connection = psycopg.AsyncConnection[TupleRow]

REOPEN_AFTER = 5.0
"""Seconds to use the pool only after the connection could not open."""

MAX_LIFETIME = 3600.0
"""Seconds after which the connection is replaced, at its next fetch, as
the pool replaces its own (psycopg_pool's default ``max_lifetime``): a
server's session does not grow its caches for ever, and a connection
balanced onto one database host by a proxy moves on in time."""


class FetchConnectionLostError(Exception):
    """The fetch connection broke (or never opened): use the pool."""


class FetchConnection:
    """A connection of its own for fetches, opened on first use.

    Args:
        conninfo: where to connect.
        configure: the pool's own per-connection set-up (schema, time
            zone), run on the connection when it opens.
        clock: where the time comes from (seconds, monotonic).
        max_lifetime: seconds after which the connection is replaced at
            its next fetch.
    """

    def __init__(
        self,
        conninfo: str,
        configure: Callable[[Connection], Awaitable[None]],
        clock: Callable[[], float] = time.monotonic,
        max_lifetime: float = MAX_LIFETIME,
    ) -> None:
        self._conninfo = conninfo
        self._configure = configure
        self._clock = clock
        self._max_lifetime = max_lifetime
        self._conn: Connection | None = None
        self._opened_at = 0.0
        self._lock = asyncio.Lock()
        self._failed_at: float | None = None
        self._closed = False

    @property
    def available(self) -> bool:
        """Whether a fetch can run here now (not busy, not failing)."""
        if self._closed or self._lock.locked():
            return False
        failed = self._failed_at
        return failed is None or self._clock() - failed >= REOPEN_AFTER

    @property
    def opened(self) -> bool:
        """Whether the connection is open now."""
        return self._conn is not None and not self._conn.closed

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    async def run(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """Run ``work`` on the connection, opening it first if needed.

        Raises:
            FetchConnectionLostError: the connection could not open, or broke
                during ``work``; it is dropped, and ``work`` may have
                committed or not.
            psycopg.Error: ``work`` failed on a live connection.
        """
        async with self._lock:
            if self._closed:
                raise FetchConnectionLostError(
                    "the fetch connection is closed"
                )
            conn = self._conn
            if conn is not None and (
                self._clock() - self._opened_at >= self._max_lifetime
            ):
                await self._drop(conn)
                conn = None
            if conn is None or conn.closed:
                conn = await self._open()
                if self.closed:
                    # close() ran while it opened, and found nothing.
                    await conn.close()
                    raise FetchConnectionLostError(
                        "the fetch connection is closed"
                    )
                self._conn = conn
            try:
                return await work(conn)
            except BaseException as error:
                idle = psycopg.pq.TransactionStatus.IDLE
                if conn.broken or conn.info.transaction_status != idle:
                    # Broken, closed, or left mid-statement by a
                    # cancellation: the next fetch opens a fresh one.
                    await self._drop(conn)
                    if isinstance(error, psycopg.OperationalError):
                        raise FetchConnectionLostError(str(error)) from error
                raise

    async def close(self) -> None:
        """Close the connection, if open (a fetch running on it fails),
        and open no other."""
        self._closed = True
        if self._conn is not None:
            await self._drop(self._conn)

    async def _open(self) -> Connection:
        try:
            conn = await Connection.connect(self._conninfo, autocommit=True)
        except psycopg.Error as error:
            self._failed_at = self._clock()
            raise FetchConnectionLostError(str(error)) from error
        try:
            await self._configure(conn)
            await conn.execute(query("fetch_connection_settings"))
        except psycopg.Error as error:
            self._failed_at = self._clock()
            await conn.close()
            raise FetchConnectionLostError(str(error)) from error
        except BaseException:
            await conn.close()  # cancelled while it was set up
            raise
        self._failed_at = None
        self._opened_at = self._clock()
        return conn

    async def _drop(self, conn: Connection) -> None:
        if self._conn is conn:
            self._conn = None
        with contextlib.suppress(psycopg.Error, OSError):
            await conn.close()
