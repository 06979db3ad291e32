"""The catalogue's database: engine, sessions under a token, migrations.

Database work goes through :meth:`Database.session`, which is
backburner's ``cancellable_session``: when the token fires (the browser
left, the job was deleted, the server shuts down) the running statement
stops in the database and the block ends with ``OperationCancelled``.
A write that should finish once begun goes through
:meth:`Database.writing` instead.

:meth:`Database.slow_statement` exists for the demonstration: a
statement that keeps the database busy for a given time (SQLite: a
recursive query watching a clock; PostgreSQL: ``pg_sleep``), so that a
search can be made slow enough to leave it on purpose.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from backburner import CancellationToken
from backburner.web import shielded
from backburner.web.sqlalchemy import cancellable_session, install_cancellation

__all__ = ["Database"]

_log = logging.getLogger("catalogue.database")
_MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class Database:
    """The engine and session factory of one database URL.

    Args:
        url: a SQLAlchemy async URL; a SQLite file's folder is created.
    """

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite and parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        self.engine: AsyncEngine = create_async_engine(url)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_setup)
        install_cancellation(self.engine)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    def session(
        self, token: CancellationToken
    ) -> AbstractAsyncContextManager[AsyncSession]:
        """``async with db.session(token) as session:``, obeying ``token``.

        Raises:
            OperationCancelled: the token fired before or during the block.
        """
        return cancellable_session(self.sessions, token)

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncSession]:
        """A session for a write that finishes once it has begun.

        ``async with db.writing() as session:`` obeys no token, and the
        request's cancellation waits for the block (``shielded``): a
        browser that leaves while its save is being written still gets
        the save, and the request then ends as cancelled. A session
        bound to the request's token could not do this, as the token
        would interrupt the commit itself. Keep these blocks short:
        checks and reads belong in :meth:`session` before.

        Raises:
            OperationCancelled: on exit, after the block, if the client
                left meanwhile.
        """
        async with shielded(), self.session(CancellationToken.NONE) as session:
            yield session

    async def migrate(self) -> None:
        """Bring the schema up to the newest migration."""
        async with self.engine.begin() as connection:
            await connection.run_sync(_upgrade)

    async def slow_statement(
        self, session: AsyncSession, seconds: float
    ) -> None:
        """Keep the database busy for ``seconds`` in one statement."""
        if self.is_sqlite:
            deadline = time.monotonic() + seconds
            statement = text(
                "WITH RECURSIVE busy(n) AS (SELECT 0 UNION ALL "
                "SELECT n + 1 FROM busy WHERE catalogue_clock() < :until) "
                "SELECT count(*) FROM busy"
            )
            await session.execute(statement, {"until": deadline})
        else:
            await session.execute(text("SELECT pg_sleep(:s)"), {"s": seconds})

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _sqlite_setup(dbapi_connection: Any, record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: the web process and a separate worker read and write the same
    # file; readers do not wait for a writer.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
    # A clock the slow statement can watch; SQLite's own 'now' is fixed
    # for the length of a statement.
    dbapi_connection.create_function(
        "catalogue_clock", 0, time.monotonic, deterministic=False
    )
