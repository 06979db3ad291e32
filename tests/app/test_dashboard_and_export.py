"""The dashboard at /jobs (who may open it) and the CSV export job."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import update

from backburner.jobs import JobId, JobState
from catalogue import Settings, create_app
from catalogue.models import User

from .conftest import running, services_of, sign_up

pytestmark = pytest.mark.timeout(60)


async def _grant_jobs(client: httpx.AsyncClient, email: str) -> None:
    services = services_of(client.app)  # type: ignore[attr-defined]
    async with services.db.sessions() as session:
        await session.execute(
            update(User)
            .where(User.email == email)
            .values(can_manage_jobs=True)
        )
        await session.commit()


async def test_the_dashboard_is_for_signed_in_job_managers_only(
    api_client: httpx.AsyncClient,
) -> None:
    assert (await api_client.get("/jobs/")).status_code == 401
    await sign_up(api_client)
    assert (await api_client.get("/jobs/")).status_code == 403
    await _grant_jobs(api_client, "ann@example.com")
    page = await api_client.get("/jobs/")
    assert page.status_code == 200
    assert "catalogue jobs" in page.text


@pytest.fixture
async def worker_client(
    settings: Settings,
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        Settings(**{**settings.__dict__, "run_worker": True}),
        server_options={"poll_interval": 0.05, "concurrency": 2},
        start_smtp_sink=False,
    )
    async with running(app) as api:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t"
        ) as client:
            client.app = api  # type: ignore[attr-defined]
            yield client


async def test_an_export_reports_progress_and_offers_its_file(
    worker_client: httpx.AsyncClient,
) -> None:
    await sign_up(worker_client)
    started = await worker_client.post("/api/exports")
    assert started.status_code == 202
    export = started.json()
    while export["status"] != "done":
        await asyncio.sleep(0.05)
        export = (
            await worker_client.get(f"/api/exports/{export['id']}")
        ).json()
        assert export["status"] in ("queued", "running", "done")
    assert export["progress"] == 100
    assert export["rows"] == 288

    services = services_of(worker_client.app)  # type: ignore[attr-defined]
    job = await services.client.get(JobId(int(export["job_id"])))
    assert job.state == JobState.SUCCEEDED
    assert job.parameters["progress"] == 100

    download = await worker_client.get(export["download"])
    assert download.status_code == 200
    rows = list(csv.reader(io.StringIO(download.text)))
    assert rows[0] == ["id", "name", "price", "category", "description"]
    assert len(rows) == 289

    # Another user sees neither the export nor its file.
    worker_client.cookies.clear()
    await sign_up(worker_client, email="eve@example.com")
    assert (
        await worker_client.get(f"/api/exports/{export['id']}")
    ).status_code == 404
    assert (await worker_client.get(export["download"])).status_code == 404
