"""A search abandoned by its client stops in the database.

The app runs on real uvicorn on 127.0.0.1; the client is a raw socket,
closed while a deliberately slow search (30 s of database work) runs.
The server-side record shows the handler was cancelled and the SQLite
statement interrupted: the search ends long before its 30 s, which it
could not do while the statement still ran.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import event

from catalogue import Settings, create_app

from .conftest import running, services_of, sign_up
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


async def test_a_save_that_has_begun_finishes_for_a_client_that_left(
    api_client: httpx.AsyncClient,
) -> None:
    api = api_client.app  # type: ignore[attr-defined]
    token = (await sign_up(api_client))["token"]
    app = api_client._transport.app  # type: ignore[attr-defined]
    services = services_of(api)
    left = asyncio.Event()

    def client_leaves(
        connection: Any, cursor: Any, statement: str, *_: Any
    ) -> None:
        if statement.startswith("INSERT INTO categories"):
            left.set()  # the disconnect arrives while the write runs

    engine = services.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", client_leaves)
    body = json.dumps({"name": "Toys", "colour": "#aabbcc"}).encode()
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body}
        await left.wait()
        return {"type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/categories",
        "raw_path": b"/api/categories",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"catalogue.test"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {token}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("catalogue.test", 80),
    }
    try:
        await app(scope, receive, send)
    finally:
        event.remove(engine, "before_cursor_execute", client_leaves)

    cancelled = await api.state.activity.wait_for(
        "request.cancelled", path="/api/categories"
    )
    assert cancelled.facts["reason"] == "client disconnected"
    assert not any(m["type"] == "http.response.start" for m in sent)
    found = (await api_client.get("/api/categories?q=Toys")).json()
    assert [c["name"] for c in found["items"]] == ["Toys"]  # saved
