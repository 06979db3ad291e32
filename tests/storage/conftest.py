"""The ``storage`` fixture: every conformance test runs on each backend.

Adding a backend is one entry in ``_BACKENDS`` plus its name in the
fixture's ``params``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from backburner.storage import Storage, open_storage

Opener = Callable[[pytest.FixtureRequest, Path], Awaitable[Storage]]


def with_options(url: str, **options: str) -> str:
    """Return ``url`` with query options added."""
    query = "&".join(f"{key}={value}" for key, value in options.items())
    return f"{url}{'&' if '?' in url else '?'}{query}"


def drop_schema(url: str, schema: str) -> None:
    """Drop a test schema and everything in it."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(schema)
            )
        )


@pytest.fixture
def postgres_schema(postgres_url: str) -> Iterator[str]:
    """A schema name of this test's own, dropped when the test ends."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    yield schema
    drop_schema(postgres_url, schema)


@pytest.fixture
def postgres_storage_url(postgres_url: str, postgres_schema: str) -> str:
    """URL of a storage on this test's schema.

    Its connections carry the schema name as ``application_name``, so
    tests can find (and kill) them in ``pg_stat_activity``.
    """
    return with_options(
        postgres_url, schema=postgres_schema, application_name=postgres_schema
    )


Admin = Callable[..., list[tuple[object, ...]]]


@pytest.fixture
def admin(postgres_url: str, postgres_schema: str) -> Iterator[Admin]:
    """Run SQL on the test's schema from a connection of the test's own."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:

        def run(statement: str, *params: object) -> list[tuple[object, ...]]:
            conn.execute(
                sql.SQL("SET search_path TO {}").format(
                    sql.Identifier(postgres_schema)
                )
            )
            cursor = conn.execute(statement.encode(), params or None)
            return cursor.fetchall() if cursor.description else []

        yield run


async def _sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    return open_storage(f"sqlite:///{tmp_path / 'jobs.db'}")


async def _postgres(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    return open_storage(request.getfixturevalue("postgres_storage_url"))


_BACKENDS: dict[str, Opener] = {
    "sqlite": _sqlite,
    "postgres": _postgres,
}


@pytest.fixture(params=["sqlite", "postgres"])
async def storage(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Storage]:
    """A fresh, migrated, empty storage of each backend."""
    opened = await _BACKENDS[request.param](request, tmp_path)
    await opened.migrate()
    try:
        yield opened
    finally:
        await opened.close()
