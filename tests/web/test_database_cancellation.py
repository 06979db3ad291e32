"""Database work stops with its token: real uvicorn, SQLite, PostgreSQL.

The PostgreSQL tests run once per asyncio driver (asyncpg, psycopg 3)
and look at the server side through ``pg_stat_activity``, filtered on an
``application_name`` of their own.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import sessionmaker

from backburner.cancellation import (
    CancellationReason,
    CancellationTokenSource,
    OperationCancelled,
)
from backburner.web import CancellationMiddleware, current_request_token
from backburner.web.sqlalchemy import (
    CLIENT_CHECK_INTERVAL_MS,
    cancellable_session,
    cancellable_sync_session,
    install_cancellation,
)

from .database_app import (
    POSTGRES_SLOW,
    SQLITE_SLOW,
    DatabaseProbe,
    build_app,
    build_sync_app,
    watch_slow_statement,
)
from .scripted import ScriptedServer, http_scope
from .servers import run_uvicorn

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.usefixtures("no_server_errors"),
]

WAIT = 10.0
DRIVERS = ("sqlite", "asyncpg", "psycopg")
POSTGRES_DRIVERS = ("asyncpg", "psycopg")


@dataclass
class Database:
    """An engine, a table of its own, and a way to look at the server."""

    driver: str
    engine: AsyncEngine
    table: str
    application_name: str
    admin_url: str | None = None
    sqlite_path: Path | None = None

    async def server_rows(self) -> list[tuple[str, str]]:
        """``(state, query)`` of this test's PostgreSQL backends."""
        assert self.admin_url is not None
        async with await psycopg.AsyncConnection.connect(
            self.admin_url, autocommit=True
        ) as conn:
            cursor = await conn.execute(
                "SELECT state, query FROM pg_stat_activity"
                " WHERE application_name = %s",
                (self.application_name,),
            )
            return [(str(s), str(q)) for s, q in await cursor.fetchall()]

    async def busy_rows(self) -> list[tuple[str, str]]:
        """Backends running a statement or holding a transaction open."""
        return [row for row in await self.server_rows() if row[0] != "idle"]

    def no_sqlite_lock_is_held(self) -> bool:
        """Whether a writer can take the whole file: nobody reads or
        writes in an open transaction."""
        assert self.sqlite_path is not None
        conn = sqlite3.connect(self.sqlite_path, timeout=0)
        try:
            conn.execute("BEGIN EXCLUSIVE")
            conn.rollback()
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            conn.close()


async def _sqlite(tmp_path: Path) -> Database:
    path = tmp_path / "app.sqlite"
    table = "items"
    # Made without the engine, whose pool must start empty (the test app
    # registers a function on each new connection).
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TABLE {table} (id INTEGER)")
    conn.close()
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    return Database("sqlite", engine, table, "", sqlite_path=path)


async def _postgres(driver: str, url: str) -> Database:
    name = f"bb-dbcancel-{uuid.uuid4().hex[:12]}"
    table = f"bb_dbcancel_{uuid.uuid4().hex[:12]}"
    rest = url.split("://", 1)[1]
    if driver == "asyncpg":
        connect_args: dict[str, object] = {
            "server_settings": {"application_name": name}
        }
    else:
        connect_args = {"application_name": name}
    # Made without the engine, whose pool must start empty: the hooks
    # apply to new connections.
    async with await psycopg.AsyncConnection.connect(
        url, autocommit=True
    ) as conn:
        await conn.execute(f"CREATE TABLE {table} (id INTEGER)")
    engine = create_async_engine(
        f"postgresql+{driver}://{rest}", connect_args=connect_args
    )
    return Database(driver, engine, table, name, admin_url=url)


async def _drop(database: Database) -> None:
    if database.admin_url is not None:
        async with await psycopg.AsyncConnection.connect(
            database.admin_url, autocommit=True
        ) as conn:
            await conn.execute(f"DROP TABLE IF EXISTS {database.table}")
    await database.engine.dispose()


async def _open(
    driver: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Database:
    if driver == "sqlite":
        return await _sqlite(tmp_path)
    url = request.getfixturevalue("postgres_url")
    return await _postgres(driver, url)


@pytest.fixture(params=DRIVERS)
async def database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Database]:
    database = await _open(request.param, request, tmp_path)
    yield database
    await _drop(database)


@pytest.fixture(params=POSTGRES_DRIVERS)
async def postgres(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Database]:
    database = await _open(request.param, request, tmp_path)
    yield database
    await _drop(database)


@pytest.fixture
async def sqlite_database(tmp_path: Path) -> AsyncIterator[Database]:
    database = await _sqlite(tmp_path)
    yield database
    await _drop(database)


# -- a raw HTTP client, so that closing the socket is the disconnect ------


async def start_request(
    port: int, path: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nhost: test\r\n\r\n".encode())
    await writer.drain()
    return reader, writer


async def hang_up(writer: asyncio.StreamWriter) -> None:
    writer.close()
    await writer.wait_closed()


async def get_json(port: int, path: str) -> str:
    reader, writer = await start_request(port, path)
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    body = await reader.readexactly(length)
    await hang_up(writer)
    assert head.startswith(b"HTTP/1.1 200"), head
    return body.decode()


async def within(awaitable: object, seconds: float = WAIT) -> None:
    await asyncio.wait_for(awaitable, seconds)  # type: ignore[arg-type]


async def until(condition: object, seconds: float = WAIT) -> float:
    """Poll an async predicate (a database's view of itself, which has no
    event to wait on); return how long it took to hold."""
    started = time.monotonic()
    while not await condition():  # type: ignore[operator]
        if time.monotonic() - started > seconds:
            raise AssertionError(f"still false after {seconds} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def cancel_one(port: int, probe: DatabaseProbe, path: str) -> None:
    """Start a request, hang up once its slow statement runs, and wait
    until the server has finished with it."""
    probe.reset()
    _, writer = await start_request(port, path)
    await within(probe.statement_started.wait())
    await hang_up(writer)
    await within(probe.request_ended.wait())


def expected_outcome(helper: bool) -> str:
    """What a route interrupted by the middleware sees: a cancellable
    session names the reason, a plain session leaves the middleware's
    task cancellation as it is."""
    if helper:
        return "OperationCancelled: client disconnected"
    return "CancelledError"


# -- PostgreSQL: the server stops the statement --------------------------


@pytest.mark.parametrize("helper", [True, False], ids=["session", "plain"])
async def test_a_cancelled_pg_sleep_leaves_pg_stat_activity_within_1_s(
    postgres: Database, helper: bool
) -> None:
    probe = DatabaseProbe()
    app = build_app(postgres.engine, probe, postgres.table)

    async def sleeping() -> bool:
        rows = await postgres.server_rows()
        return ("active", "SELECT pg_sleep(30)") in rows

    async def gone() -> bool:
        return await postgres.busy_rows() == []

    async with run_uvicorn(app) as (_, port):
        path = f"/slow?row=1&helper={str(helper).lower()}"
        _, writer = await start_request(port, path)
        await until(sleeping)

        await hang_up(writer)
        took = await until(gone)
        await within(probe.request_ended.wait())
        rows = await get_json(port, "/count")

    assert took < 1.0, f"pg_sleep still on the server after {took:.2f} s"
    assert probe.outcomes == [expected_outcome(helper)]
    [info] = probe.cancelled_requests
    assert (info.reason, info.interrupted) == ("client disconnected", True)
    assert rows == '{"rows":0}'
    assert postgres.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


# -- SQLite: the statement is interrupted --------------------------------


@pytest.mark.parametrize("helper", [True, False], ids=["session", "plain"])
async def test_a_long_sqlite_query_is_interrupted(
    sqlite_database: Database, helper: bool
) -> None:
    probe = DatabaseProbe()
    app = build_app(sqlite_database.engine, probe, sqlite_database.table)

    async with run_uvicorn(app) as (_, port):
        # Uninterrupted, the query runs for minutes: the request could
        # not end within WAIT, and its cleanup would wait behind it.
        path = f"/slow?row=1&helper={str(helper).lower()}"
        await cancel_one(port, probe, path)
        rows = await get_json(port, "/count")

    assert probe.outcomes == [expected_outcome(helper)]
    assert probe.cancelled_requests[0].reason == "client disconnected"
    assert rows == '{"rows":0}'
    assert sqlite_database.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert sqlite_database.no_sqlite_lock_is_held()


async def test_a_session_from_a_dependency_is_rolled_back_and_returned(
    database: Database,
) -> None:
    probe = DatabaseProbe()
    app = build_app(database.engine, probe, database.table)

    async with run_uvicorn(app) as (_, port):
        await cancel_one(port, probe, "/slow-dependency?row=1")
        rows = await get_json(port, "/count")

    assert probe.outcomes == ["CancelledError"]
    assert probe.cancelled_requests[0].reason == "client disconnected"
    assert rows == '{"rows":0}'
    assert database.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    if database.admin_url is not None:
        await until(idle(database))


# -- a handler the middleware leaves running, obeying its token ----------


async def test_a_kept_handler_sees_operation_cancelled_with_the_reason(
    database: Database,
) -> None:
    probe = DatabaseProbe()
    app = build_app(database.engine, probe, database.table)

    async with run_uvicorn(app) as (_, port):
        await cancel_one(port, probe, "/kept?row=1")
        rows = await get_json(port, "/count")

    assert probe.outcomes == ["OperationCancelled: client disconnected"]
    assert probe.cancelled_requests[0].interrupted is False
    assert rows == '{"rows":0}'
    assert database.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    if database.admin_url is not None:
        assert await database.busy_rows() == []


# -- a job function holding a token, no web server -----------------------


async def test_a_token_holder_stops_its_statement_with_the_reason(
    database: Database,
) -> None:
    probe = DatabaseProbe()
    slow = watch_slow_statement(database.engine, probe)
    source = CancellationTokenSource()
    sessions = async_sessionmaker(database.engine)

    async def job() -> None:
        async with cancellable_session(sessions, source.token) as session:
            await session.execute(
                text(f"INSERT INTO {database.table} (id) VALUES (7)")
            )
            await session.execute(text(slow))

    task = asyncio.create_task(job())
    await within(probe.statement_started.wait())
    source.cancel(CancellationReason.JOB_DELETED)

    with pytest.raises(OperationCancelled) as caught:
        await asyncio.wait_for(task, WAIT)

    assert caught.value.reason == "job deleted"
    assert caught.value.token is source.token
    assert database.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    async with sessions() as session:
        count = await session.scalar(
            text(f"SELECT count(*) FROM {database.table}")
        )
    assert count == 0
    if database.admin_url is not None:
        assert await database.busy_rows() == []


async def test_a_fired_token_opens_no_session(database: Database) -> None:
    source = CancellationTokenSource()
    source.cancel(CancellationReason.SHUTDOWN)

    with pytest.raises(OperationCancelled) as caught:
        async with cancellable_session(database.engine, source.token):
            pytest.fail("the block must not run")

    assert caught.value.reason == "shutdown"
    assert database.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_driver_error_after_the_token_fired_is_a_cancellation(
    database: Database,
) -> None:
    source = CancellationTokenSource()

    with pytest.raises(OperationCancelled) as caught:
        async with cancellable_session(database.engine, source.token) as s:
            try:
                await s.execute(text("SELECT * FROM no_such_table"))
            except DBAPIError:
                # The error and the cancellation arrive together, as a
                # statement cancelled on the server does.
                source.cancel(CancellationReason.TIMEOUT)
                raise

    assert caught.value.reason == "timeout"
    assert isinstance(caught.value.__cause__, DBAPIError)
    assert database.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_driver_error_without_cancellation_stays_an_error(
    database: Database,
) -> None:
    source = CancellationTokenSource()

    with pytest.raises(DBAPIError):
        async with cancellable_session(database.engine, source.token) as s:
            await s.execute(text("SELECT * FROM no_such_table"))

    assert database.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_postgres_connections_check_their_client(
    postgres: Database,
) -> None:
    install_cancellation(postgres.engine)

    async with cancellable_session(postgres.engine) as session:
        interval = await session.scalar(
            text("SHOW client_connection_check_interval")
        )

    assert interval == f"{CLIENT_CHECK_INTERVAL_MS}ms"


async def test_outside_a_request_the_session_works_without_a_token(
    database: Database,
) -> None:
    async with cancellable_session(database.engine) as session:
        value = await session.scalar(text("SELECT 41 + 1"))

    assert value == 42


# -- leaks after many cancelled requests ---------------------------------


def idle(database: Database) -> object:
    async def no_busy_rows() -> bool:
        return await database.busy_rows() == []

    return no_busy_rows


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _cancel_many(database: Database, count: int) -> None:
    probe = DatabaseProbe()
    app = build_app(database.engine, probe, database.table)
    pool = database.engine.pool

    async with run_uvicorn(app) as (_, port):
        # One request first, so that lazily created things (the pool's
        # first connection, the server's tasks) are in the baseline.
        await cancel_one(port, probe, "/slow?row=0")
        tasks_before = len(asyncio.all_tasks())
        fds_before = open_fds()

        for row in range(1, count + 1):
            helper = "true" if row % 2 else "false"
            await cancel_one(port, probe, f"/slow?row={row}&helper={helper}")

        async def tasks_settled() -> bool:
            return len(asyncio.all_tasks()) <= tasks_before

        await until(tasks_settled)
        fds_after = open_fds()
        rows = await get_json(port, "/count")

    assert len(probe.cancelled_requests) == count + 1
    assert set(probe.outcomes) == {
        expected_outcome(helper=True),
        expected_outcome(helper=False),
    }
    assert pool.checkedout() == 0  # type: ignore[attr-defined]
    # A connection leaked per request would show as `count` more.
    assert fds_after - fds_before < 10, (fds_before, fds_after)
    assert rows == '{"rows":0}'
    if database.admin_url is not None:
        # A cancel request that reached the server before its statement
        # did is ignored; the driver then gives up on the connection
        # (asyncpg after 2 s, psycopg after 5 s) and the server, told to
        # check its clients, stops the statement soon after.
        await until(idle(database), seconds=15)
        # The pool's size plus its overflow, at most.
        assert len(await database.server_rows()) <= 15
    else:
        assert database.no_sqlite_lock_is_held()


async def test_100_cancelled_requests_leak_nothing(
    database: Database,
) -> None:
    await _cancel_many(database, 100)


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_1000_cancelled_requests_leak_nothing(
    database: Database,
) -> None:
    await _cancel_many(database, 1000)


# -- blocking sessions in a worker thread (a sync job function) ----------


def _sync_engine(database: Database) -> Engine:
    if database.sqlite_path is not None:
        return create_engine(f"sqlite:///{database.sqlite_path}")
    assert database.admin_url is not None
    rest = database.admin_url.split("://", 1)[1]
    return create_engine(
        f"postgresql+psycopg://{rest}",
        connect_args={"application_name": database.application_name},
    )


async def test_a_blocking_session_in_a_thread_stops_its_statement(
    database: Database,
) -> None:
    engine = _sync_engine(database)
    started = threading.Event()
    if database.sqlite_path is not None:

        @event.listens_for(engine, "connect")
        def on_connect(dbapi_connection: Any, record: Any) -> None:
            dbapi_connection.create_function(
                "started", 0, lambda: started.set() or 1
            )

        slow = SQLITE_SLOW
    else:
        slow = POSTGRES_SLOW
    source = CancellationTokenSource()
    sessions = sessionmaker(engine)

    def job() -> None:
        with cancellable_sync_session(sessions, source.token) as session:
            session.execute(
                text(f"INSERT INTO {database.table} (id) VALUES (3)")
            )
            session.execute(text(slow))

    running = asyncio.ensure_future(asyncio.to_thread(job))
    if database.admin_url is not None:

        async def sleeping() -> bool:
            rows = await database.server_rows()
            return ("active", POSTGRES_SLOW) in rows

        await until(sleeping)
    else:
        await within(asyncio.to_thread(started.wait, WAIT))
    source.cancel(CancellationReason.JOB_DELETED)

    with pytest.raises(OperationCancelled) as caught:
        await asyncio.wait_for(running, WAIT)
    if database.admin_url is not None:
        took = await until(idle(database))
        assert took < 1.0

    assert caught.value.reason == "job deleted"
    assert isinstance(caught.value.__cause__, DBAPIError)
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    with sessions() as session:
        count = session.scalar(text(f"SELECT count(*) FROM {database.table}"))
    assert count == 0
    engine.dispose()


async def test_a_def_route_stops_its_statement_with_the_requests_token(
    database: Database,
) -> None:
    engine = _sync_engine(database)
    probe = DatabaseProbe()
    app = build_sync_app(engine, probe, database.table)

    async with run_uvicorn(app) as (_, port):
        _, writer = await start_request(port, "/sync-slow?row=1")
        if database.admin_url is not None:

            async def sleeping() -> bool:
                rows = await database.server_rows()
                return ("active", POSTGRES_SLOW) in rows

            await until(sleeping)
        else:
            await within(probe.statement_started.wait())
        await hang_up(writer)
        await within(probe.request_ended.wait())

        async def answered() -> bool:
            return probe.outcomes != []

        # The thread reports after the request has ended.
        await until(answered)

    assert probe.outcomes == ["OperationCancelled: client disconnected"]
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    with sessionmaker(engine)() as session:
        count = session.scalar(text(f"SELECT count(*) FROM {database.table}"))
    assert count == 0
    if database.admin_url is not None:
        await until(idle(database))
    engine.dispose()


async def test_a_shutdown_with_the_disconnect_stays_a_task_cancellation(
    sqlite_database: Database,
) -> None:
    probe = DatabaseProbe()
    slow = watch_slow_statement(sqlite_database.engine, probe)
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        task = asyncio.current_task()
        assert task is not None
        # A server shutting down at the moment the client leaves.
        current_request_token().register(task.cancel)
        try:
            async with cancellable_session(sqlite_database.engine) as s:
                await s.execute(text(slow))
        except BaseException as exc:
            seen.append(type(exc).__name__)
            raise

    server = ScriptedServer()
    running = asyncio.create_task(
        CancellationMiddleware(app)(http_scope(), server.receive, server.send)
    )
    await within(probe.statement_started.wait())
    server.disconnect()

    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(running, WAIT)
    assert seen == ["CancelledError"]
    assert sqlite_database.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
