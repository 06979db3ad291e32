"""No connection is left open by a close() or a cancellation that lands
while a connection (the pool, the fetch connection) is opening."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from postgres_samples import NOW, SERVER, Admin, new_job
from psycopg_pool import AsyncConnectionPool

from backburner.storage import ServerInfo, open_storage
from backburner.storage.postgres import PostgresStorage
from backburner.storage.postgres.fetch_connection import FetchConnection

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(60)]


async def backends(admin: Admin, application_name: str) -> int:
    """Backends of ``application_name`` left after up to 5 s."""
    count = 0
    for _ in range(250):
        (row,) = admin(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = %s",
            application_name,
        )
        count = int(str(row[0]))
        if count == 0:
            break
        await asyncio.sleep(0.02)
    return count


async def test_close_during_the_fetch_connections_opening_closes_it(
    postgres_storage_url: str,
    admin: Admin,
    postgres_schema: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    storage = open_storage(postgres_storage_url)
    assert isinstance(storage, PostgresStorage)
    await storage.migrate()
    await storage.announce_server(
        ServerInfo(SERVER, ("default",), 4, NOW, NOW)
    )
    await storage.create_jobs([new_job()])  # the pool opens

    opening = asyncio.Event()
    open_connection = FetchConnection._open

    async def signalling(self: FetchConnection) -> Any:
        opening.set()
        return await open_connection(self)

    monkeypatch.setattr(FetchConnection, "_open", signalling)
    fetch = asyncio.create_task(storage.fetch(SERVER, ["default"], 4, NOW))
    await opening.wait()  # the fetch connection is opening
    await storage.close()
    await asyncio.gather(fetch, return_exceptions=True)

    assert await backends(admin, postgres_schema) == 0


async def test_a_first_call_cancelled_while_the_pool_opens_leaves_no_pool(
    postgres_storage_url: str,
    admin: Admin,
    postgres_schema: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    storage, opened, call = await first_call_opening_the_pool(
        postgres_storage_url, monkeypatch
    )
    call.cancel()
    await asyncio.gather(call, return_exceptions=True)
    await storage.close()

    assert opened[0].closed
    assert await backends(admin, postgres_schema) == 0


async def test_close_while_the_pool_opens_closes_the_pool(
    postgres_storage_url: str,
    admin: Admin,
    postgres_schema: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    storage, opened, call = await first_call_opening_the_pool(
        postgres_storage_url, monkeypatch
    )
    await storage.close()
    await asyncio.gather(call, return_exceptions=True)

    assert opened[0].closed
    assert await backends(admin, postgres_schema) == 0


async def first_call_opening_the_pool(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[PostgresStorage, list[AsyncConnectionPool[Any]], asyncio.Task[Any]]:
    """A migrated storage whose first call is waiting, right now, for
    its pool's ``min_size`` connections; the pools it opened."""
    storage = open_storage(url)
    assert isinstance(storage, PostgresStorage)
    await storage.migrate()
    opened: list[AsyncConnectionPool[Any]] = []
    opening = asyncio.Event()
    open_pool = AsyncConnectionPool.open

    async def recording(
        self: AsyncConnectionPool[Any], *args: Any, **kwargs: Any
    ) -> None:
        opened.append(self)
        opening.set()
        await open_pool(self, *args, **kwargs)

    monkeypatch.setattr(AsyncConnectionPool, "open", recording)
    call = asyncio.create_task(storage.counts())
    await opening.wait()
    return storage, opened, call
