"""Fixtures of the dashboard tests: a real SQLite file, jobs made by the
client (and moved by the state machine, as a server would), and an HTTP
client talking to the dashboard in process."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from backburner.dashboard import create_dashboard
from backburner.jobs import Client, JobId, states
from backburner.jobs.results import record_result
from backburner.jobs.worker import failure_data
from backburner.storage.base import JobRecord, JSONValue, ServerInfo

LOOPBACK = ("127.0.0.1", 40123)
SERVER = "worker-host:4242"

MakeHTTP = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    """A client on a fresh SQLite file."""
    async with Client(f"sqlite:///{tmp_path / 'jobs.db'}") as opened:
        yield opened


def now() -> datetime:
    return datetime.now(UTC)


async def announce(client: Client, name: str = SERVER) -> None:
    """Register a server, as a starting job server does."""
    moment = now()
    await client.storage.announce_server(
        ServerInfo(name, ("default", "mail"), 4, moment, moment)
    )


async def start(client: Client, job_id: JobId) -> Any:
    """Fetch ``job_id`` into *processing* for :data:`SERVER`.

    The job must be the oldest ready job of its queue.
    """
    await announce(client)
    queue = (await client.get(job_id)).queue
    (record,) = await client.storage.fetch(SERVER, [queue], 1, now())
    assert record.id == job_id, "the job is not first on its queue"
    return record


async def fail(client: Client, job_id: JobId, error: BaseException) -> None:
    """Run ``job_id`` and record ``error`` as its final failure."""
    record = await start(client, job_id)
    try:
        raise error
    except BaseException as raised:
        data = failure_data(raised)
    change = states.fail(
        job_id, record.version, now(), f"failed: {error}", data
    )
    assert (await client.storage.apply_change(change)).applied


async def succeed(client: Client, job_id: JobId, value: object) -> None:
    """Run ``job_id`` and record that it returned ``value``."""
    record: JobRecord = await start(client, job_id)
    data: dict[str, JSONValue] = {"server": SERVER}
    if value is not None:
        record_result(data, value, record)
    change = states.succeed(
        job_id, record.version, now(), data, timedelta(days=1)
    )
    assert (await client.storage.apply_change(change)).applied


async def fail_for_retry(client: Client, job_id: JobId) -> None:
    """Run ``job_id`` and schedule its next attempt after a failure."""
    record = await start(client, job_id)
    try:
        raise TimeoutError("gateway timed out")
    except TimeoutError as raised:
        data = failure_data(raised)
    change = states.retry_later(
        job_id,
        record.version,
        now(),
        datetime(2099, 1, 1, tzinfo=UTC),
        "retry 2 of 3: TimeoutError: gateway timed out",
        data,
    )
    assert (await client.storage.apply_change(change)).applied


def http_for(
    app: Starlette, peer: tuple[str, int] = LOOPBACK
) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=peer)
    return httpx.AsyncClient(transport=transport, base_url="http://dash")


@pytest.fixture
async def make_http(client: Client) -> AsyncIterator[MakeHTTP]:
    """Build a dashboard with options and an HTTP client for it."""
    opened: list[httpx.AsyncClient] = []

    async def make(
        peer: tuple[str, int] = LOOPBACK, **options: Any
    ) -> httpx.AsyncClient:
        http = http_for(create_dashboard(client, **options), peer)
        opened.append(http)
        return http

    yield make
    for http in opened:
        await http.aclose()


@pytest.fixture
async def http(make_http: MakeHTTP) -> httpx.AsyncClient:
    """An HTTP client for a dashboard with default options."""
    return await make_http()


async def csrf_token(http: httpx.AsyncClient, path: str = "/") -> str:
    """Open a page and return the CSRF token its forms carry."""
    page = await http.get(path)
    assert page.status_code == 200
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    if found is not None:
        return found.group(1)
    token = http.cookies.get("backburner_csrf")
    assert token
    return token


def listed_ids(html: str) -> list[int]:
    """The job ids of a listing page, in order."""
    return [int(i) for i in re.findall(r'<tr data-job="(\d+)">', html)]
