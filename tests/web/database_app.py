"""A FastAPI app whose routes run slow statements, and report on them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, FastAPI
from sqlalchemy import Engine, event, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
)
from sqlalchemy.orm import sessionmaker

from backburner.cancellation import OperationCancelled
from backburner.web import (
    CancellationMiddleware,
    CancelledRequest,
    keep_running,
)
from backburner.web.fastapi import RequestCancellation
from backburner.web.sqlalchemy import (
    cancellable_session,
    cancellable_sync_session,
    install_cancellation,
)

# Long enough (minutes) that a test sees the difference between an
# interrupted statement and one that ran to its end; bounded, so that a
# failing test does not leave a thread spinning forever.
SQLITE_SLOW = (
    "WITH RECURSIVE c(x) AS ("
    " SELECT started() UNION ALL SELECT x + 1 FROM c WHERE x < 300000000"
    ") SELECT count(*) FROM c"
)
POSTGRES_SLOW = "SELECT pg_sleep(30)"


class DatabaseProbe:
    """What the routes saw, and events the test waits on."""

    def __init__(self) -> None:
        self.statement_started = asyncio.Event()
        self.request_ended = asyncio.Event()
        self.outcomes: list[str] = []
        self.cancelled_requests: list[CancelledRequest] = []

    def on_cancelled(self, info: CancelledRequest) -> None:
        self.cancelled_requests.append(info)
        self.request_ended.set()

    def reset(self) -> None:
        self.statement_started.clear()
        self.request_ended.clear()


def watch_slow_statement(engine: AsyncEngine, probe: DatabaseProbe) -> str:
    """Arrange for ``probe.statement_started``; return the slow SQL."""
    loop = asyncio.get_running_loop()
    sync_engine = engine.sync_engine
    if sync_engine.dialect.name == "sqlite":

        def started() -> int:
            # Runs in aiosqlite's thread, once the statement is running.
            loop.call_soon_threadsafe(probe.statement_started.set)
            return 1

        def on_connect(dbapi_connection: Any, record: Any) -> None:
            dbapi_connection.create_function("started", 0, started)

        # The engine must not have connected yet: "connect" is for new
        # connections only.
        event.listen(sync_engine, "connect", on_connect)
        return SQLITE_SLOW

    def before_execute(
        conn: Any, cursor: Any, statement: str, *args: Any
    ) -> None:
        if statement == POSTGRES_SLOW:
            probe.statement_started.set()

    event.listen(sync_engine, "before_cursor_execute", before_execute)
    return POSTGRES_SLOW


def build_app(
    engine: AsyncEngine, probe: DatabaseProbe, table: str
) -> CancellationMiddleware:
    """The app; ``table`` has an ``id`` column the routes insert into."""
    slow_sql = watch_slow_statement(engine, probe)
    install_cancellation(engine)
    sessions = async_sessionmaker(engine)
    insert = text(f"INSERT INTO {table} (id) VALUES (:id)")
    app = FastAPI()

    @app.get("/slow")
    async def slow(row: int, helper: bool = True) -> dict[str, Any]:
        # The row is written in the same transaction: a cancelled
        # request must leave nothing behind.
        try:
            if helper:
                async with cancellable_session(sessions) as session:
                    await session.execute(insert, {"id": row})
                    result = await session.execute(text(slow_sql))
            else:
                async with sessions() as session:
                    await session.execute(insert, {"id": row})
                    result = await session.execute(text(slow_sql))
        except BaseException as exc:
            probe.outcomes.append(_describe(exc))
            raise
        probe.outcomes.append("completed")
        return {"result": str(result.scalar())}

    async def session_dependency(
        token: RequestCancellation,
    ) -> AsyncIterator[AsyncSession]:
        async with cancellable_session(sessions, token) as session:
            yield session

    # A default, not Annotated: the dependency is local to this function,
    # where postponed annotations cannot see it.
    request_session = Depends(session_dependency)

    @app.get("/slow-dependency")
    async def slow_dependency(
        row: int,
        session: AsyncSession = request_session,
    ) -> dict[str, str]:
        try:
            await session.execute(insert, {"id": row})
            result = await session.execute(text(slow_sql))
        except BaseException as exc:
            probe.outcomes.append(_describe(exc))
            raise
        probe.outcomes.append("completed")
        return {"result": str(result.scalar())}

    @app.get("/kept")
    @keep_running
    async def kept(row: int, token: RequestCancellation) -> dict[str, str]:
        # The middleware leaves this handler running; the session obeys
        # the token on its own, as a job function holding a token would.
        try:
            async with cancellable_session(sessions, token) as session:
                await session.execute(insert, {"id": row})
                await session.execute(text(slow_sql))
        except OperationCancelled as exc:
            probe.outcomes.append(_describe(exc))
            return {"stopped": exc.reason}
        probe.outcomes.append("completed")
        return {"stopped": "no"}

    @app.get("/count")
    async def count() -> dict[str, int]:
        async with cancellable_session(sessions) as session:
            rows = await session.execute(text(f"SELECT count(*) FROM {table}"))
            return {"rows": int(rows.scalar_one())}

    return CancellationMiddleware(app, on_request_cancelled=probe.on_cancelled)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OperationCancelled):
        return f"OperationCancelled: {exc.reason}"
    return type(exc).__name__


def build_sync_app(
    engine: Engine, probe: DatabaseProbe, table: str
) -> CancellationMiddleware:
    """The same slow route as a ``def`` route, on a blocking engine."""
    loop = asyncio.get_running_loop()
    if engine.dialect.name == "sqlite":

        def started() -> int:
            loop.call_soon_threadsafe(probe.statement_started.set)
            return 1

        def on_connect(dbapi_connection: Any, record: Any) -> None:
            dbapi_connection.create_function("started", 0, started)

        event.listen(engine, "connect", on_connect)
        slow_sql = SQLITE_SLOW
    else:
        slow_sql = POSTGRES_SLOW
    sessions = sessionmaker(engine)
    insert = text(f"INSERT INTO {table} (id) VALUES (:id)")
    app = FastAPI()

    @app.get("/sync-slow")
    def sync_slow(row: int) -> dict[str, str]:
        # No token passed: the request's, from the context Starlette
        # copies into its thread pool.
        try:
            with cancellable_sync_session(sessions) as session:
                session.execute(insert, {"id": row})
                session.execute(text(slow_sql))
        except OperationCancelled as exc:
            loop.call_soon_threadsafe(probe.outcomes.append, _describe(exc))
            return {"stopped": exc.reason}
        loop.call_soon_threadsafe(probe.outcomes.append, "completed")
        return {"stopped": "no"}

    return CancellationMiddleware(app, on_request_cancelled=probe.on_cancelled)
