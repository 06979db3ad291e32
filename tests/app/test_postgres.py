"""The app on PostgreSQL, chosen by URL: catalogue and job storage.

Each test gets a database of its own, dropped afterwards, so the
catalogue's tables (and the job storage's ``jobs`` schema) never meet
anyone else's.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest

from catalogue import Settings, create_app

from .conftest import running, sign_up
from .serving import serve

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(90)]


@pytest.fixture
def database(postgres_url: str) -> Iterator[str]:
    name = f"catalogue_test_{secrets.token_hex(4)}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(postgres_url)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def pg_settings(settings: Settings, database: str) -> Settings:
    async_url = database.replace("postgresql://", "postgresql+asyncpg://", 1)
    return replace(settings, database_url=async_url)


@pytest.fixture
async def pg_client(
    pg_settings: Settings,
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(pg_settings, start_smtp_sink=False)
    async with running(app) as api:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t"
        ) as client:
            client.app = api  # type: ignore[attr-defined]
            yield client


async def test_the_api_works_on_postgresql(
    pg_client: httpx.AsyncClient,
) -> None:
    kettles = (await pg_client.get("/api/products?q=KETTLE")).json()
    assert kettles["total"] == 12
    await sign_up(pg_client)
    made = await pg_client.post(
        "/api/categories", json={"name": "Toys", "colour": "#123456"}
    )
    assert made.status_code == 201
    again = await pg_client.post(
        "/api/categories", json={"name": "toys", "colour": "#123456"}
    )
    assert again.status_code == 409
    wildcard = (await pg_client.get("/api/products?q=_")).json()
    assert wildcard["total"] == 0


async def test_a_left_search_is_cancelled_in_postgresql(
    pg_settings: Settings, database: str
) -> None:
    app = create_app(pg_settings, start_smtp_sink=False)
    async with running(app) as api, serve(app) as url:
        activity = api.state.activity
        address = urlsplit(url)
        _, writer = await asyncio.open_connection(
            address.hostname, address.port
        )
        writer.write(
            f"GET /api/products?slow=30 HTTP/1.1\r\n"
            f"Host: {address.netloc}\r\n\r\n".encode()
        )
        await writer.drain()
        await activity.wait_for("search.started", slow=30.0)
        writer.close()
        cancelled = await asyncio.wait_for(
            activity.wait_for("search.cancelled", slow=30.0), 15
        )
        assert cancelled.facts["reason"] == "client disconnected"
        # The server-side statement is gone too.
        async with await psycopg.AsyncConnection.connect(database) as conn:
            while True:
                cursor = await conn.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE query LIKE 'SELECT pg_sleep%' "
                    "AND datname = current_database()"
                )
                row = await cursor.fetchone()
                if row is not None and row[0] == 0:
                    break
                await asyncio.sleep(0.05)


async def test_jobs_run_from_postgresql_storage(
    pg_settings: Settings, database: str
) -> None:
    settings = replace(pg_settings, storage_url=database, run_worker=True)
    app = create_app(
        settings,
        server_options={"poll_interval": 0.05},
        start_smtp_sink=False,
    )
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t"
        ) as client:
            await sign_up(client)
            export = (await client.post("/api/exports")).json()
            while export["status"] != "done":
                await asyncio.sleep(0.05)
                url = f"/api/exports/{export['id']}"
                export = (await client.get(url)).json()
                assert export["status"] in ("queued", "running", "done")
            download = await client.get(export["download"])
    assert download.text.count("\n") == 289
    async with await psycopg.AsyncConnection.connect(database) as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = 'jobs'"
        )
        row = await cursor.fetchone()
    assert row is not None
    assert row[0] > 0
