"""The dashboard at /jobs (who may open it) and the CSV export job."""

from __future__ import annotations

import asyncio
import csv
import io
import socket
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
from sqlalchemy import update

from backburner.jobs import JobId, JobState
from catalogue import Settings, create_app
from catalogue.models import User

from .conftest import PASSWORD, running, services_of, sign_up

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
def pace() -> float:
    return 0.0


@pytest.fixture
async def worker_client(
    settings: Settings, pace: float
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        replace(settings, run_worker=True, export_pace=pace),
        server_options={
            "poll_interval": 0.05,
            "progress_interval": 0.05,
            "concurrency": 2,
        },
        start_smtp_sink=False,
    )
    async with running(app) as api:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t"
        ) as client:
            client.app = api  # type: ignore[attr-defined]
            yield client


@pytest.mark.parametrize("pace", [0.2])
async def test_an_export_reports_progress_and_offers_its_file(
    worker_client: httpx.AsyncClient,
) -> None:
    await sign_up(worker_client)
    started = await worker_client.post("/api/exports")
    assert started.status_code == 202
    export = started.json()
    seen = []
    while export["status"] != "done":
        await asyncio.sleep(0.05)
        export = (
            await worker_client.get(f"/api/exports/{export['id']}")
        ).json()
        assert export["status"] in ("queued", "running", "done")
        seen.append((export["progress"], export["message"]))
    # Six batches of 50, a pause after each: the page saw it move.
    assert any(0 < percent < 100 for percent, _ in seen), seen
    assert any(m.endswith("of 288 products") for _, m in seen), seen
    assert export["progress"] == 100
    assert export["rows"] == 288

    services = services_of(worker_client.app)  # type: ignore[attr-defined]
    job_id = JobId(int(export["job_id"]))
    # The export says "done" from inside the job, just before it returns:
    # the server writes the job's outcome a moment later.
    state = (await services.client.get(job_id)).state
    for _ in range(200):
        if state == JobState.SUCCEEDED:
            break
        await asyncio.sleep(0.05)
        state = (await services.client.get(job_id)).state
    assert state == JobState.SUCCEEDED
    # The last report is written just after the outcome.
    progress = await services.client.get_progress(job_id)
    for _ in range(200):
        if progress is not None and progress.fraction == 1:
            break
        await asyncio.sleep(0.05)
        progress = await services.client.get_progress(job_id)
    assert progress is not None
    assert progress.message == "288 of 288 products"

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


async def _export_in(
    client: httpx.AsyncClient, export_id: str, *statuses: str
) -> dict[str, object]:
    while True:
        export = (await client.get(f"/api/exports/{export_id}")).json()
        if export["status"] in statuses:
            found: dict[str, object] = export
            return found
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("pace", [30.0])
async def test_deleting_the_export_job_stops_the_export(
    worker_client: httpx.AsyncClient,
) -> None:
    await sign_up(worker_client)
    export = (await worker_client.post("/api/exports")).json()
    await _export_in(worker_client, export["id"], "running")

    services = services_of(worker_client.app)  # type: ignore[attr-defined]
    await services.client.delete(JobId(int(export["job_id"])))
    stopped = await _export_in(worker_client, export["id"], "cancelled")
    assert stopped["download"] is None
    assert not list(services.settings.exports_dir.iterdir())


async def test_a_job_manager_hands_the_permission_on(
    api_client: httpx.AsyncClient,
) -> None:
    bob = (await sign_up(api_client, email="bob@example.com"))["user"]
    grant = {"can_manage_jobs": True}
    refused = await api_client.put(
        f"/api/users/{bob['id']}/permissions", json=grant
    )
    assert refused.status_code == 403  # bob may not grant himself

    api_client.cookies.clear()
    await sign_up(api_client)
    await _grant_jobs(api_client, "ann@example.com")
    granted = await api_client.put(
        f"/api/users/{bob['id']}/permissions", json=grant
    )
    assert granted.json() == {"id": bob["id"], "can_manage_jobs": True}
    missing = await api_client.put("/api/users/999/permissions", json=grant)
    assert missing.status_code == 404

    api_client.cookies.clear()
    await api_client.post(
        "/api/auth/signin",
        json={"email": "bob@example.com", "password": PASSWORD},
    )
    assert (await api_client.get("/jobs/")).status_code == 200


async def test_a_busy_smtp_port_does_not_stop_the_app(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        app = create_app(replace(settings, smtp_port=port))
        async with running(app):
            pass
    assert "SMTP sink cannot listen" in caplog.text
