"""SQLAlchemy 2: database work stops when its token fires.

- :func:`install_cancellation` makes an interrupted ``await`` stop in the
  database as well. Call it once per engine, before its first connection.
- :func:`cancellable_session` ties an ``AsyncSession`` to a cancellation
  token: the block is interrupted when the token fires, its statement
  stops in the database, the session rolls back and returns its
  connection to the pool, and the block ends with
  :class:`~backburner.cancellation.OperationCancelled` carrying the
  token's reason. It installs the engine hook itself.
- :func:`cancellable_sync_session` is its blocking twin for code in a
  worker thread (pysqlite, psycopg): the running statement is stopped
  from outside, the thread carries on to the block's end.

::

    Session = async_sessionmaker(engine)

    @app.get("/products")
    async def products(token: RequestCancellation) -> list[str]:
        async with cancellable_session(Session, token) as session:
            rows = await session.scalars(select(Product.name))
            return list(rows)

A request cancelled by :class:`~backburner.web.CancellationMiddleware`
and a job function holding a token use the same helper.

What happens to a statement whose task is cancelled, per driver
(measured with ``pg_stat_activity``, see ``docs/database.md``):

- asyncpg and psycopg 3 send PostgreSQL a cancel request by themselves,
  and SQLAlchemy then discards the connection (its protocol state is
  unknown after a cancelled ``await``), so the backend ends too. The
  hook adds a backstop: each connection asks the server to check its
  client every :data:`CLIENT_CHECK_INTERVAL_MS` during long statements
  (``client_connection_check_interval``, PostgreSQL 14+), for a cancel
  request that arrived before its statement and was ignored. Inside a
  cancellable session psycopg's cancel request is also repeated until
  the statement has stopped.
- aiosqlite runs the statement in a thread that a task cancellation does
  not reach: the statement runs to its end, and so does the cancelled
  task, since SQLAlchemy's cleanup queues behind it. The hook calls
  SQLite's ``interrupt()`` (thread-safe) at once and keeps the
  connection, which aiosqlite leaves in a known state.

Known limits:

- A cancelled PostgreSQL statement costs its connection (SQLAlchemy's
  choice for any cancelled ``await``; the blocking twin discards it too,
  as a repeated cancel request could still be on its way): the next
  checkout reconnects.
- With asyncpg, or outside a cancellable session, a cancel request that
  beats its statement to the server leaves the cancelled task waiting
  for the driver to give up on the connection (asyncpg 2 s, psycopg 5 s
  with a warning from psycopg); the statement then runs until the
  server's next client check.
- The interruption is a task cancellation, so the rules of
  :func:`~backburner.cancellation.cancellable` apply: an outside
  ``task.cancel()`` (a server shutting down) wins and surfaces as
  :class:`asyncio.CancelledError`. The middleware's own interruption of
  the request is recognised when it is the only one: the session turns
  it into :class:`OperationCancelled` for the request's token, which the
  middleware accepts as its interruption.
- Other drivers get no hook: their statements stop only as far as the
  driver itself reacts to a cancelled ``await``.
- A task cancelled twice while SQLAlchemy closes a connection it gave up
  on (a checkout interrupted in the engine's ``connect`` listeners)
  makes SQLAlchemy abandon that close and stop the driver; with
  aiosqlite the abandoned close then waits forever, a task that never
  ends. A cancellable session never cancels a task a second
  time (its scope is a :func:`~backburner.cancellation.cancellable`,
  which holds its interruption back while another is in flight), but
  two outside cancellations at that moment (a server shutting down as
  the client leaves) still do it.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sqlite3
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, TypeVar, overload

from sqlalchemy import Connection, Engine, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
)
from sqlalchemy.orm import Session, sessionmaker

from backburner.cancellation import (
    CancellationToken,
    OperationCancelled,
    cancellable,
)
from backburner.web._statement_watch import FIRST_RETRY, StatementWatch
from backburner.web.request import (
    current_request_state,
    current_request_token,
)

_log = logging.getLogger("backburner.web")

S = TypeVar("S", bound=AsyncSession)
SyncS = TypeVar("SyncS", bound=Session)


def install_cancellation(engine: AsyncEngine | Engine) -> None:
    """Make a cancelled ``await`` stop the statement in the database.

    Calling it again for the same engine does nothing. Install it before
    the engine's first connection: the PostgreSQL part applies to new
    connections only.

    Args:
        engine: the engine (async, or its ``sync_engine``).
    """
    sync_engine = (
        engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    )
    dialect = sync_engine.dialect
    listeners = _LISTENERS.get((dialect.driver, dialect.is_async), ())
    for name, listener in listeners:
        if not event.contains(sync_engine, name, listener):
            event.listen(sync_engine, name, listener)


def _aiosqlite_statement_cancelled(context: ExceptionContext) -> None:
    """A statement's ``await`` was cancelled: stop it, keep the connection.

    aiosqlite runs the statement in its own thread, which goes on after
    the ``await`` is cancelled, and queues every later call on the same
    connection behind it: closing the cursor, the rollback, the close.
    """
    if isinstance(context.original_exception, Exception):
        return  # a database error, not an interrupted await
    if context.connection is None:
        return
    dbapi_connection = context.connection.connection.dbapi_connection
    _interrupt(dbapi_connection)
    # SQLAlchemy would discard the connection, as for any cancelled
    # ``await``. Here nothing is lost: aiosqlite keeps its calls in
    # order, so the connection is in a known state once the statement
    # stops. Keeping it lets SQLAlchemy close the cursor, which resets
    # the interrupted statement; a discarded connection whose statement
    # was never reset stays open (holding its locks) until the garbage
    # collector finds the cursor.
    context.is_disconnect = False
    # ExceptionContext documents ``cursor``, but SQLAlchemy 2.1 does not
    # set it; the execution context has it.
    cursor = getattr(context.execution_context, "cursor", None)
    if cursor is None:
        return
    # SQLite ignores an interrupt that comes before the statement has
    # started in aiosqlite's thread. Closing the cursor is queued behind
    # the statement, so until it returns the statement may still be
    # running, and is interrupted again now and then.
    again = _Reinterrupter(dbapi_connection)
    try:
        cursor.close()
    finally:
        again.stop()


def _aiosqlite_invalidated(
    dbapi_connection: Any, record: Any, exception: BaseException | None
) -> None:
    # Discarded for another reason: the close waits behind a running
    # statement unless it stops first.
    _interrupt(dbapi_connection)


class _Reinterrupter:
    """Interrupts a connection at growing intervals until stopped."""

    __slots__ = ("_connection", "_delay", "_handle", "_loop")

    def __init__(self, dbapi_connection: Any) -> None:
        self._connection = dbapi_connection
        self._delay = 0.001
        self._loop = asyncio.get_running_loop()
        self._handle = self._loop.call_later(self._delay, self._fire)

    def _fire(self) -> None:
        _interrupt(self._connection)
        self._delay = min(self._delay * 4, 0.25)
        self._handle = self._loop.call_later(self._delay, self._fire)

    def stop(self) -> None:
        self._handle.cancel()


def _interrupt(dbapi_connection: Any) -> None:
    connection = getattr(dbapi_connection, "driver_connection", None)
    if connection is None:
        return
    # aiosqlite's interrupt() is a coroutine that never suspends: it
    # calls sqlite3's interrupt(), which is thread-safe, in the caller's
    # thread. Run it to its end here, synchronously, so that it lands
    # before anything else is queued on the connection.
    coroutine = connection.interrupt()
    try:
        coroutine.send(None)
    except StopIteration:
        return
    except (ValueError, sqlite3.ProgrammingError):
        # Already closed (aiosqlite says ValueError, sqlite3
        # ProgrammingError): nothing runs any more.
        return
    coroutine.close()
    raise RuntimeError("aiosqlite's interrupt() suspended")


# Milliseconds between the PostgreSQL server's checks, during a long
# statement, that the client is still connected.
CLIENT_CHECK_INTERVAL_MS = 250


def _postgres_connected(dbapi_connection: Any, record: Any) -> None:
    """Have the server stop a statement whose client has gone.

    The drivers' cancel request can arrive before the statement it is
    meant for has started (the server then ignores it); the driver gives
    up after a while and closes the connection, and without this
    setting the server would run the statement to its end regardless.
    """
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(
            "SET client_connection_check_interval = "
            f"{CLIENT_CHECK_INTERVAL_MS}"
        )
    except Exception:  # noqa: BLE001 - a backstop only
        # PostgreSQL before 14 does not have the setting; cancellation
        # still works, only without this backstop.
        dbapi_connection.rollback()
        return
    finally:
        cursor.close()
    dbapi_connection.commit()


# -- statements run under a token (cancellable_session blocks) ----------

_statement_token: contextvars.ContextVar[CancellationToken | None] = (
    contextvars.ContextVar("backburner_statement_token", default=None)
)

_WATCH_KEY = "backburner.statement_watch"

# Seconds a PostgreSQL cancel request may take to be delivered.
_CANCEL_TIMEOUT = 5.0

# Cancel requests in flight; the loop only keeps weak references.
_cancelling: set[asyncio.Task[None]] = set()


def _start_watch(
    conn: Connection,
    stop: Callable[[], object],
    loop: asyncio.AbstractEventLoop | None,
    first_delay: float = 0.0,
) -> None:
    _end_watch(conn)  # a watch left over from a statement that vanished
    token = _statement_token.get()
    if token is None or not token.can_be_cancelled:
        return
    conn.info[_WATCH_KEY] = StatementWatch(token, stop, loop, first_delay)


def _end_watch(conn: Connection | None) -> StatementWatch | None:
    if conn is None:
        return None
    watch: StatementWatch | None = conn.info.pop(_WATCH_KEY, None)
    if watch is not None:
        watch.finish()
    return watch


def _driver(conn: Connection) -> Any:
    raw = conn.connection.driver_connection
    if raw is None:  # pragma: no cover - executing means connected
        raise RuntimeError("the connection has no driver connection")
    return raw


def _watch_pysqlite(conn: Connection, *args: Any) -> None:
    # sqlite3's interrupt() is thread-safe and immediate.
    _start_watch(conn, _driver(conn).interrupt, None)


def _watch_psycopg(conn: Connection, *args: Any) -> None:
    raw = _driver(conn)
    _start_watch(conn, lambda: raw.cancel_safe(timeout=_CANCEL_TIMEOUT), None)


def _watch_psycopg_async(conn: Connection, *args: Any) -> None:
    # The task cancellation makes psycopg send a cancel request of its
    # own; these are the retries, for one that came too early.
    raw = _driver(conn)
    loop = asyncio.get_running_loop()

    def cancel() -> None:
        task = loop.create_task(raw.cancel_safe(timeout=_CANCEL_TIMEOUT))
        _cancelling.add(task)
        task.add_done_callback(_cancel_sent)

    _start_watch(conn, cancel, loop, FIRST_RETRY)


def _cancel_sent(task: asyncio.Task[None]) -> None:
    _cancelling.discard(task)
    if not task.cancelled() and task.exception() is not None:
        # The statement ended, or the connection closed, meanwhile.
        _log.debug("cancel request failed", exc_info=task.exception())


def _statement_done(conn: Connection, *args: Any) -> None:
    _end_watch(conn)


def _statement_failed(context: ExceptionContext) -> None:
    watch = _end_watch(context.connection)
    if watch is not None and watch.fired:
        # A cancel request of ours may still be on its way to the server
        # and would cancel whatever this connection runs next: it must
        # not go back to the pool. Only this connection is affected.
        context.is_disconnect = True
        context.invalidate_pool_on_disconnect = False


def _pysqlite_statement_failed(context: ExceptionContext) -> None:
    # interrupt() acts at once, so the connection stays usable.
    _end_watch(context.connection)


_LISTENERS: dict[
    tuple[str, bool], tuple[tuple[str, Callable[..., None]], ...]
] = {
    ("aiosqlite", True): (
        ("handle_error", _aiosqlite_statement_cancelled),
        ("invalidate", _aiosqlite_invalidated),
    ),
    ("asyncpg", True): (("connect", _postgres_connected),),
    ("psycopg", True): (
        ("connect", _postgres_connected),
        ("before_cursor_execute", _watch_psycopg_async),
        ("after_cursor_execute", _statement_done),
        ("handle_error", _statement_failed),
    ),
    ("psycopg", False): (
        ("connect", _postgres_connected),
        ("before_cursor_execute", _watch_psycopg),
        ("after_cursor_execute", _statement_done),
        ("handle_error", _statement_failed),
    ),
    ("pysqlite", False): (
        ("before_cursor_execute", _watch_pysqlite),
        ("after_cursor_execute", _statement_done),
        ("handle_error", _pysqlite_statement_failed),
    ),
}


class _CancellableSession(Generic[S]):
    """The context manager behind :func:`cancellable_session`."""

    __slots__ = (
        "_cancelling",
        "_factory",
        "_reset",
        "_scope",
        "_session",
        "_token",
    )

    def __init__(
        self, factory: Callable[[], S], token: CancellationToken
    ) -> None:
        self._factory = factory
        self._token = token
        self._scope: cancellable | None = None
        self._session: S | None = None
        self._reset: contextvars.Token[CancellationToken | None] | None = None
        self._cancelling = 0

    async def __aenter__(self) -> S:
        self._token.raise_if_cancellation_requested()
        session = self._factory()
        if isinstance(session.bind, AsyncEngine):
            install_cancellation(session.bind)
        # The scope never cancels the task a second time while the
        # middleware's interruption unwinds it: that second cancellation
        # would cut short SQLAlchemy's shielded close of a connection it
        # gave up on (a checkout interrupted in the engine's connect
        # listeners), and aiosqlite then waits forever.
        scope = cancellable(self._token)
        await scope.__aenter__()
        task = asyncio.current_task()
        self._cancelling = 0 if task is None else task.cancelling()
        self._scope = scope
        self._session = session
        self._reset = _statement_token.set(self._token)
        return session

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        session, self._session = self._session, None
        scope, self._scope = self._scope, None
        if session is None or scope is None or self._reset is None:
            raise RuntimeError("cancellable_session exited but never entered")
        _statement_token.reset(self._reset)
        self._reset = None
        try:
            # The scope ends first, so that the cleanup below cannot be
            # interrupted by the token any more.
            suppressed = await scope.__aexit__(exc_type, exc, tb)
        finally:
            # Rolls back and returns the connection; SQLAlchemy runs it
            # in a task of its own, so a second cancellation of this task
            # cannot cut it short.
            await session.__aexit__(exc_type, exc, tb)
        _raise_if_caused_by(self._token, exc)
        if isinstance(exc, asyncio.CancelledError) and self._by_middleware():
            # The middleware interrupted the handler because this very
            # token fired: say so, with the reason. The middleware takes
            # OperationCancelled for its token as its own interruption
            # and still undoes its task cancellation.
            reason = self._token.reason or "cancelled"
            raise OperationCancelled(reason, self._token) from exc
        return suppressed

    def _by_middleware(self) -> bool:
        """Whether the one outside cancellation is the request's own."""
        state = current_request_state()
        task = asyncio.current_task()
        return (
            state is not None
            and task is not None
            and state.token is self._token
            and self._token.is_cancellation_requested
            and task.cancelling() == self._cancelling + 1
        )


def _raise_if_caused_by(
    token: CancellationToken, exc: BaseException | None
) -> None:
    """A driver error after the token fired is its consequence (a
    statement cancelled on the server, an interrupted SQLite query):
    report the cancellation, not a database failure."""
    if isinstance(exc, DBAPIError) and token.is_cancellation_requested:
        reason = token.reason or "cancelled"
        raise OperationCancelled(reason, token) from exc


@overload
def cancellable_session(
    factory: async_sessionmaker[S],
    token: CancellationToken | None = None,
) -> _CancellableSession[S]: ...


@overload
def cancellable_session(
    factory: AsyncEngine,
    token: CancellationToken | None = None,
) -> _CancellableSession[AsyncSession]: ...


def cancellable_session(
    factory: async_sessionmaker[Any] | AsyncEngine,
    token: CancellationToken | None = None,
) -> _CancellableSession[Any]:
    """A session whose work stops when ``token`` fires.

    Use it as ``async with cancellable_session(Session, token) as s:``.
    When the token fires the block is interrupted at the ``await`` it is
    blocked on and the running statement stops in the database; the
    session then rolls back and returns its connection to the pool, even
    if the task is cancelled again meanwhile.

    The engine hook (:func:`install_cancellation`) is installed on the
    session's ``bind``; a session spread over several engines needs it
    installed on each.

    Args:
        factory: an ``async_sessionmaker`` or an ``AsyncEngine`` (a plain
            ``AsyncSession`` bound to it is made).
        token: the token to obey; by default the current request's
            (:func:`~backburner.web.current_request_token`), which
            outside a request never fires.

    Raises:
        OperationCancelled: on entry if the token has already fired; on
            exit if it fired during the block, also when the block ended
            with a driver error caused by the cancellation.
    """
    if token is None:
        token = current_request_token()
    if isinstance(factory, AsyncEngine):
        engine = factory
        return _CancellableSession(lambda: AsyncSession(engine), token)
    return _CancellableSession(factory, token)


class _CancellableSyncSession(Generic[SyncS]):
    """The context manager behind :func:`cancellable_sync_session`."""

    __slots__ = ("_factory", "_reset", "_session", "_token")

    def __init__(
        self, factory: Callable[[], SyncS], token: CancellationToken
    ) -> None:
        self._factory = factory
        self._token = token
        self._session: SyncS | None = None
        self._reset: contextvars.Token[CancellationToken | None] | None = None

    def __enter__(self) -> SyncS:
        self._token.raise_if_cancellation_requested()
        session = self._factory()
        if isinstance(session.bind, Engine):
            install_cancellation(session.bind)
        self._session = session
        self._reset = _statement_token.set(self._token)
        return session

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session, self._session = self._session, None
        if session is None or self._reset is None:
            raise RuntimeError(
                "cancellable_sync_session exited but never entered"
            )
        _statement_token.reset(self._reset)
        self._reset = None
        session.__exit__(exc_type, exc, tb)
        _raise_if_caused_by(self._token, exc)


@overload
def cancellable_sync_session(
    factory: sessionmaker[SyncS],
    token: CancellationToken | None = None,
) -> _CancellableSyncSession[SyncS]: ...


@overload
def cancellable_sync_session(
    factory: Engine,
    token: CancellationToken | None = None,
) -> _CancellableSyncSession[Session]: ...


def cancellable_sync_session(
    factory: sessionmaker[Any] | Engine,
    token: CancellationToken | None = None,
) -> _CancellableSyncSession[Any]:
    """The blocking twin of :func:`cancellable_session`, for threads.

    For synchronous code in a worker thread (a ``def`` route, a sync job
    function), with the pysqlite or psycopg driver. Nothing can
    interrupt the thread itself, so only the statement stops: when the
    token fires, SQLite's ``interrupt()`` or a PostgreSQL cancel request
    reaches the running statement (again, until it has stopped), which
    then fails, and the block ends with :class:`OperationCancelled`.
    Code between statements should look at the token itself.

    Args:
        factory: a ``sessionmaker`` or an ``Engine``.
        token: the token to obey; by default the current request's.

    Raises:
        OperationCancelled: on entry if the token has already fired; on
            exit if the block ended with a driver error after the token
            fired.
    """
    if token is None:
        token = current_request_token()
    if isinstance(factory, Engine):
        engine = factory
        return _CancellableSyncSession(lambda: Session(engine), token)
    return _CancellableSyncSession(factory, token)


__all__ = [
    "CLIENT_CHECK_INTERVAL_MS",
    "cancellable_session",
    "cancellable_sync_session",
    "install_cancellation",
]
