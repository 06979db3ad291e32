"""The fetch connection: an idle server's fetch is one statement.

See :mod:`backburner.storage.postgres.fetch_connection`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from postgres_samples import NOW, SERVER, Admin, new_job

from backburner.storage import (
    ServerInfo,
    open_storage,
)
from backburner.storage.postgres import PostgresStorage
from backburner.storage.postgres.fetch_connection import (
    MAX_LIFETIME,
    REOPEN_AFTER,
    FetchConnection,
)
from backburner.storage.postgres.queries import query

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(60)]


@pytest.fixture
async def storage(postgres_storage_url: str) -> AsyncIterator[PostgresStorage]:
    opened = open_storage(postgres_storage_url)
    assert isinstance(opened, PostgresStorage)
    await opened.migrate()
    await opened.announce_server(ServerInfo(SERVER, ("default",), 4, NOW, NOW))
    try:
        yield opened
    finally:
        await opened.close()


async def backends_gone(admin: Admin, application_name: str) -> bool:
    """Whether every backend of ``application_name`` exits within 10 s."""
    async with asyncio.timeout(10):
        # A backend exits a moment after its client closed the socket,
        # and PostgreSQL offers no event for it: poll pg_stat_activity.
        while True:
            rows = admin(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name = %s",
                application_name,
            )
            if rows[0][0] == 0:
                return True
            await asyncio.sleep(0.02)


async def test_an_idle_servers_fetch_is_one_statement_off_the_pool(
    storage: PostgresStorage,
    monkeypatch: pytest.MonkeyPatch,
    admin: Admin,
    postgres_schema: str,
) -> None:
    await storage.create_jobs([new_job()])
    await storage.fetch(SERVER, ["default"], 4, NOW)  # the pool opens
    sent: list[tuple[int, bytes]] = []
    execute = psycopg.AsyncConnection.execute

    async def spy(
        conn: psycopg.AsyncConnection[Any], statement: bytes, *args: Any
    ) -> Any:
        sent.append((id(conn), statement))
        return await execute(conn, statement, *args)

    taken_from_pool = 0
    assert storage._pool is not None
    getconn = storage._pool.getconn

    async def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal taken_from_pool
        taken_from_pool += 1
        return await getconn(*args, **kwargs)

    monkeypatch.setattr(psycopg.AsyncConnection, "execute", spy)
    monkeypatch.setattr(storage._pool, "getconn", counting)
    fetched = []
    for _ in range(3):
        await storage.create_jobs([new_job()])
        fetched += await storage.fetch(SERVER, ["default"], 4, NOW)
    taken_while_fetching = taken_from_pool - 3  # one per create_jobs
    monkeypatch.undo()

    assert len(fetched) == 3
    fetches = [(conn, text) for conn, text in sent if text == query("fetch")]
    assert len(fetches) == 3
    assert len({conn for conn, _ in fetches}) == 1
    assert query("walk_queue_in_order") not in [text for _, text in sent]
    assert taken_while_fetching == 0
    await storage.close()
    assert await backends_gone(admin, postgres_schema)


async def test_a_fetch_whose_connection_was_killed_runs_on_the_pool(
    storage: PostgresStorage, admin: Admin, postgres_schema: str
) -> None:
    await storage.create_jobs([new_job()])
    (first,) = await storage.fetch(SERVER, ["default"], 4, NOW)
    killed = admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = %s AND query NOT LIKE 'LISTEN%%'",
        postgres_schema,
    )
    assert killed
    await storage.create_jobs([new_job()])

    (second,) = await storage.fetch(SERVER, ["default"], 4, NOW)
    await storage.create_jobs([new_job()])
    (third,) = await storage.fetch(SERVER, ["default"], 4, NOW)

    assert len({first.id, second.id, third.id}) == 3
    assert await storage.fetch(SERVER, ["default"], 4, NOW) == []


async def test_fetches_at_once_from_one_storage_hand_out_each_job_once(
    storage: PostgresStorage,
) -> None:
    # Only one of them gets the fetch connection; the others take the
    # pooled way.
    await storage.create_jobs([new_job() for _ in range(40)])

    batches = await asyncio.gather(
        *(storage.fetch(SERVER, ["default"], 5, NOW) for _ in range(8))
    )

    ids = [job.id for batch in batches for job in batch]
    assert len(ids) == 40
    assert len(set(ids)) == 40


async def test_while_the_fetch_connection_cannot_open_the_pool_fetches(
    storage: PostgresStorage,
) -> None:
    now = 0.0
    # A socket directory that does not exist: refused at once, no traffic.
    storage._fetcher = FetchConnection(
        "host=/nonexistent-backburner-test dbname=none",
        storage._configure,
        clock=lambda: now,
    )
    await storage.create_jobs([new_job(), new_job()])

    (first,) = await storage.fetch(SERVER, ["default"], 1, NOW)
    waiting = storage._fetcher.available
    now += REOPEN_AFTER
    (second,) = await storage.fetch(SERVER, ["default"], 1, NOW)

    assert first.id != second.id
    assert not waiting
    assert not storage._fetcher.available  # tried again, failed again


async def test_the_fetch_connection_is_replaced_after_its_lifetime(
    storage: PostgresStorage,
) -> None:
    now = 0.0
    storage._fetcher = FetchConnection(
        storage.settings.conninfo, storage._configure, clock=lambda: now
    )

    async def backend(conn: Any) -> int:
        cursor = await conn.execute("SELECT pg_backend_pid()")
        (row,) = await cursor.fetchall()
        return int(row[0])

    first = await storage._fetcher.run(backend)
    now += MAX_LIFETIME - 1
    same = await storage._fetcher.run(backend)
    now += 1
    replaced = await storage._fetcher.run(backend)
    again = await storage._fetcher.run(backend)

    assert first == same
    assert replaced != first
    assert again == replaced
