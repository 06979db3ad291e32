"""A search abandoned by its client stops in the database.

The app runs on real uvicorn on 127.0.0.1; the client is a raw socket,
closed while a deliberately slow search (30 s of database work) runs.
The server-side record shows the handler was cancelled and the SQLite
statement interrupted: the search ends long before its 30 s, which it
could not do while the statement still ran.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import httpx
import pytest

from catalogue import Settings, create_app

from .conftest import running
from .serving import serve

pytestmark = pytest.mark.timeout(60)

SLOW = 30.0


async def test_closing_the_client_interrupts_the_slow_search(
    settings: Settings,
) -> None:
    app = create_app(settings, start_smtp_sink=False)
    async with running(app) as api, serve(app) as url:
        activity = api.state.activity
        address = urlsplit(url)
        reader, writer = await asyncio.open_connection(
            address.hostname, address.port
        )
        writer.write(
            f"GET /api/products?q=lamp&slow={SLOW:g} HTTP/1.1\r\n"
            f"Host: {address.netloc}\r\n\r\n".encode()
        )
        await writer.drain()
        await activity.wait_for("search.started", slow=SLOW)

        writer.close()  # the browser went away
        await writer.wait_closed()
        cancelled = await asyncio.wait_for(
            activity.wait_for("search.cancelled", slow=SLOW), SLOW / 2
        )
        request = await activity.wait_for(
            "request.cancelled", path="/api/products"
        )

        assert cancelled.facts["reason"] == "client disconnected"
        assert cancelled.facts["elapsed"] < SLOW / 2
        assert request.facts["interrupted"] is True
        assert await reader.read() == b""  # no response was sent

        # The connection went back to the pool, usable at once.
        async with httpx.AsyncClient(base_url=url) as client:
            answer = await client.get("/api/products?q=lamp")
        assert answer.status_code == 200
        assert answer.json()["total"] == 24


async def test_a_search_left_alone_finishes(settings: Settings) -> None:
    app = create_app(settings, start_smtp_sink=False)
    async with running(app) as api, serve(app) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            answer = await client.get("/api/products?q=lamp&slow=0.2")
        assert answer.status_code == 200
        assert answer.json()["total"] == 24
        kinds = [e.kind for e in api.state.activity.events]
        assert kinds == ["search.started", "search.finished"]


async def test_slow_searches_do_not_exist_in_production(
    settings: Settings,
) -> None:
    production = Settings(
        development=False,
        data_dir=settings.data_dir,
        secret_key=settings.secret_key,
        run_worker=False,
    )
    app = create_app(production)
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t"
        ) as client:
            answer = await client.get("/api/products?slow=5")
            assert answer.status_code == 400
            assert (await client.get("/api/outbox")).status_code == 404
