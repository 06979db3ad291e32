"""The job page shows what a succeeded job returned."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import httpx

from backburner.jobs import Client, Server

from . import samples
from .conftest import succeed


async def test_a_succeeded_job_shows_its_result_as_python(
    client: Client, http: httpx.AsyncClient
) -> None:
    job_id = await client.enqueue(samples.resize_image, "a.png")
    await succeed(
        client,
        job_id,
        (Decimal("1.50"), uuid.UUID(int=1), datetime(2026, 1, 2, tzinfo=UTC)),
    )

    page = (await http.get(f"/job/{job_id}")).text

    panel = page[page.index("<h2>Result</h2>") : page.index("<h2>History")]
    assert "Decimal(&#39;1.50&#39;)" in panel
    assert "UUID(&#39;00000000-0000-0000-0000-000000000001&#39;)" in panel
    assert "datetime(&#39;2026-01-02T00:00:00+00:00&#39;)" in panel
    # In its panel only, not again among the succeeded step's facts.
    history = page[page.index("<h2>History") :]
    assert "1.50" not in history
    assert "worker-host:4242" in history


async def test_the_result_panel_says_nothing_returned_or_why_not_kept(
    client: Client, http: httpx.AsyncClient
) -> None:
    nothing = await client.enqueue(samples.resize_image, "a.png")
    await succeed(client, nothing, None)
    dropped = await client.enqueue(samples.resize_image, "b.png")
    await succeed(client, dropped, {"handle": object()})
    waiting = await client.enqueue(samples.resize_image, "c.png")

    nothing_page = (await http.get(f"/job/{nothing}")).text
    dropped_page = (await http.get(f"/job/{dropped}")).text
    waiting_page = (await http.get(f"/job/{waiting}")).text

    assert "The job returned nothing." in nothing_page
    assert "Not kept:" in dropped_page
    assert "dict is not serialisable" in dropped_page
    assert "<h2>Result</h2>" not in waiting_page


async def test_a_result_not_to_be_kept_never_shows(
    client: Client, http: httpx.AsyncClient
) -> None:
    job_id = await client.enqueue(samples.issue_token, "ann")
    await Server(client.storage, poll_interval=0.05).run(until_empty=True)

    page = (await http.get(f"/job/{job_id}")).text

    panel = page[page.index("<h2>Result</h2>") : page.index("<h2>History")]
    assert "Not kept:" in panel
    assert "keep_result is off for this job" in panel
    assert "tok-s3cret" not in page
