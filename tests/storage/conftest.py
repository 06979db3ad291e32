"""The ``storage`` fixture: every conformance test runs on each backend.

Adding a backend is one entry in ``_BACKENDS`` plus its name in the
fixture's ``params``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from backburner.storage import Storage, open_storage

Opener = Callable[[pytest.FixtureRequest, Path], Awaitable[Storage]]


async def _sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    return open_storage(f"sqlite:///{tmp_path / 'jobs.db'}")


async def _postgres(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    # Each test gets a schema of its own, dropped when the test ends.
    url: str = request.getfixturevalue("postgres_url")
    schema = f"test_{uuid.uuid4().hex[:12]}"

    def drop() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                    sql.Identifier(schema)
                )
            )

    request.addfinalizer(drop)
    separator = "&" if "?" in url else "?"
    return open_storage(f"{url}{separator}schema={schema}")


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
