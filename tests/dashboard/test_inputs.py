"""Malformed requests get a 4xx answer, never a 500."""

from __future__ import annotations

import httpx
import pytest

from backburner.jobs import Client

from . import samples
from .conftest import csrf_token


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/job/abc", 404),
        ("/job/0", 404),
        ("/job/-1", 404),
        ("/job/99999999999999999999999", 404),
        ("/job/9223372036854775808", 404),
        ("/job/9223372036854775807", 404),
        ("/job/１２", 404),
        ("/jobs/finished", 404),
        ("/jobs/ENQUEUED", 404),
        ("/jobs/enqueued?before=abc", 400),
        ("/jobs/enqueued?before=-5", 400),
        ("/jobs/enqueued?before=99999999999999999999", 400),
        ("/jobs/enqueued?queue=no%20spaces", 400),
        ("/jobs/enqueued?function=" + "x" * 300, 400),
        ("/retries?before=1.5", 400),
        ("/api/progress?id=abc", 400),
        ("/api/progress?" + "&".join(["id=1"] * 101), 400),
        ("/nowhere", 404),
        ("/static/../app.py", 404),
    ],
)
async def test_malformed_reads_are_4xx(
    http: httpx.AsyncClient, path: str, status: int
) -> None:
    answer = await http.get(path)

    assert answer.status_code == status


async def test_a_cursor_past_the_end_is_an_empty_page(
    client: Client, http: httpx.AsyncClient
) -> None:
    await client.enqueue(samples.send_sms, "+44", "x")

    answer = await http.get("/jobs/enqueued", params={"before": "1"})

    assert answer.status_code == 200
    assert "No enqueued jobs below job 1" in answer.text


@pytest.mark.parametrize(
    ("path", "form", "status"),
    [
        ("/job/abc/requeue", {}, 404),
        ("/job/1/explode", {}, 404),
        ("/job/99999999999999999999/delete", {}, 404),
        ("/actions", {"action": "explode", "job": "1"}, 400),
        ("/actions", {"action": "delete", "job": "x"}, 400),
        ("/actions", {"action": "delete", "job": "0"}, 400),
        ("/actions", {"job": "1"}, 400),
        ("/actions", {"action": "delete", "job": ["1"] * 501}, 400),
    ],
)
async def test_malformed_actions_are_4xx(
    client: Client,
    http: httpx.AsyncClient,
    path: str,
    form: dict[str, object],
    status: int,
) -> None:
    await client.enqueue(samples.send_sms, "+44", "x")
    token = await csrf_token(http)

    answer = await http.post(path, data={"csrf": token, **form})

    assert answer.status_code == status


async def test_a_missing_job_is_404(http: httpx.AsyncClient) -> None:
    assert (await http.get("/job/424242")).status_code == 404


async def test_reads_do_not_accept_post_nor_actions_get(
    client: Client, http: httpx.AsyncClient
) -> None:
    job_id = await client.enqueue(samples.send_sms, "+44", "x")

    assert (await http.post("/jobs/enqueued")).status_code == 405
    assert (await http.get(f"/job/{job_id}/delete")).status_code == 405
