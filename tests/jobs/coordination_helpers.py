"""Several servers on one storage, for the race tests.

``storage_url`` gives a fresh SQLite file or PostgreSQL schema; every
server (and the client) opens its own storage on it, as separate
processes would.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from server_helpers import FAST

from backburner.jobs import Client, Server
from backburner.storage import Storage, open_storage


def drop_schema(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(schema)
            )
        )


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def storage_url(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[str]:
    """A fresh SQLite file, or a PostgreSQL schema of the test's own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'jobs.db'}"
        return
    postgres_url = request.getfixturevalue("postgres_url")
    schema = f"test_{uuid.uuid4().hex[:12]}"
    yield f"{postgres_url}?schema={schema}"
    drop_schema(postgres_url, schema)


@pytest.fixture
async def shared(storage_url: str) -> AsyncIterator[Client]:
    """A client on the test's storage (migrated)."""
    storage = open_storage(storage_url)
    await storage.migrate()
    try:
        yield Client(storage)
    finally:
        await storage.close()


@contextlib.asynccontextmanager
async def servers(
    url: str, count: int, **options: Any
) -> AsyncIterator[list[Server]]:
    """``count`` running servers, each on a storage of its own."""
    storages: list[Storage] = [open_storage(url) for _ in range(count)]
    started: list[Server] = []
    try:
        async with contextlib.AsyncExitStack() as stack:
            for index, storage in enumerate(storages):
                server = Server(
                    storage,
                    name=f"server-{index}",
                    **{"concurrency": 4, **FAST, **options},
                )
                await stack.enter_async_context(server)
                started.append(server)
            yield started
    finally:
        for storage in storages:
            await storage.close()
