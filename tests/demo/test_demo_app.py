"""The demo app behind a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from backburner.demo.app import build_app
from backburner.demo.events import EventLog

# tests/ is on sys.path (rootdir import mode), so the web tests' server
# harness is importable as the package `web`.
from web.servers import run_uvicorn

pytestmark = pytest.mark.timeout(30)

WAIT = 10.0

Event = dict[str, Any]


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[tuple[str, int]]:
    app = build_app(EventLog(), tmp_path / "demo.db")
    async with run_uvicorn(app) as address:
        yield address


@pytest.fixture
async def client(
    demo: tuple[str, int],
) -> AsyncIterator[httpx.AsyncClient]:
    host, port = demo
    async with httpx.AsyncClient(
        base_url=f"http://{host}:{port}", timeout=WAIT
    ) as client:
        yield client


async def wait_for_event(
    client: httpx.AsyncClient, matches: Callable[[Event], bool]
) -> list[Event]:
    """Follow the live log (long poll) until an event ``matches``.

    Returns every event seen up to and including the matching one.
    """
    seen: list[Event] = []
    after = 0

    async def follow() -> list[Event]:
        nonlocal after
        while True:
            response = await client.get(
                "/api/events", params={"after": after, "wait": 5}
            )
            body = response.json()
            for event in body["events"]:
                seen.append(event)
                if matches(event):
                    return seen
            after = body["last"]

    return await asyncio.wait_for(follow(), WAIT)


def kind_is(kind: str, detail: str | None = None) -> Callable[[Event], bool]:
    def matches(event: Event) -> bool:
        return event["kind"] == kind and (
            detail is None or event["detail"] == detail
        )

    return matches


async def open_request(
    host: str, port: int, target: str
) -> asyncio.StreamWriter:
    _, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {target} HTTP/1.1\r\nhost: demo\r\n\r\n".encode())
    await writer.drain()
    return writer


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    await writer.wait_closed()


def kinds_of(events: list[Event], request: int | None) -> list[str]:
    return [e["kind"] for e in events if e["request"] == request]


async def test_the_page_is_served_as_html_under_a_strict_policy(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/")
    script = await client.get("/demo.js")
    style = await client.get("/demo.css")

    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/demo.js"' in page.text
    assert script.headers["content-type"].startswith("text/javascript")
    assert "AbortController" in script.text
    assert style.headers["content-type"].startswith("text/css")


async def test_closing_the_connection_cancels_the_report(
    demo: tuple[str, int], client: httpx.AsyncClient
) -> None:
    writer = await open_request(*demo, "/api/report?steps=10&step_ms=60000")
    [started] = await wait_for_event(client, kind_is("started"))

    await close(writer)
    events = await wait_for_event(client, kind_is("499"))

    request = started["request"]
    cancelled = [e for e in events if e["kind"] == "cancelled"]
    assert [(e["request"], e["detail"]) for e in cancelled] == [
        (request, "client disconnected")
    ]
    assert "completed" not in kinds_of(events, request)
    assert events[-1]["route"] == "/api/report"
    assert events[-1]["detail"].endswith("handler interrupted")


async def test_closing_the_connection_interrupts_the_sqlite_query(
    demo: tuple[str, int], client: httpx.AsyncClient
) -> None:
    writer = await open_request(*demo, "/api/report?steps=0&query_ms=600000")
    await wait_for_event(client, kind_is("progress", "SQLite query running"))

    await close(writer)
    events = await wait_for_event(client, kind_is("interrupted"))
    [interrupted] = [e for e in events if e["kind"] == "interrupted"]

    assert interrupted["detail"].startswith("SQLite statement interrupted")
    # Far below the 600 s the query would have run.
    assert interrupted["elapsed_ms"] < 60_000
    assert "completed" not in kinds_of(events, interrupted["request"])


async def test_a_report_that_completes_is_not_cancelled(
    client: httpx.AsyncClient,
) -> None:
    params = {"steps": 2, "step_ms": 10, "query_ms": 50}
    response = await client.get("/api/report", params=params)
    body = response.json()
    # A 499 would be recorded as the first request ends; a second
    # request's completion is a point well after that.
    second = (await client.get("/api/report", params=params)).json()
    events = await wait_for_event(
        client,
        lambda e: (
            e["kind"] == "completed" and e["request"] == second["request"]
        ),
    )

    assert response.status_code == 200
    assert body["rows"] > 0
    assert kinds_of(events, body["request"]) == [
        "started",
        "progress",
        "progress",
        "progress",
        "completed",
    ]
    assert [e for e in events if e["kind"] in ("cancelled", "499")] == []


async def test_a_keep_running_export_finishes_after_its_client_left(
    demo: tuple[str, int], client: httpx.AsyncClient
) -> None:
    writer = await open_request(*demo, "/api/export?steps=4&step_ms=250")
    await wait_for_event(client, kind_is("started"))

    await close(writer)
    events = await wait_for_event(client, kind_is("499"))

    kinds = [e["kind"] for e in events if e["kind"] != "progress"]
    assert kinds == ["started", "client left", "completed", "499"]
    completed = next(e for e in events if e["kind"] == "completed")
    assert completed["detail"] == "nobody to send it to"
    assert events[-1]["detail"].endswith("handler ran to its end")


async def test_a_bad_query_parameter_is_a_client_error(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/report", params={"steps": "many"})

    assert response.status_code == 422
