"""Requeue, delete and run now: one job or a selection, recorded."""

from __future__ import annotations

import httpx

from backburner.dashboard import Access
from backburner.jobs import Client, JobState

from . import samples
from .conftest import MakeHTTP, csrf_token, fail


async def test_requeue_moves_a_failed_job_and_records_who_did_it(
    client: Client, http: httpx.AsyncClient
) -> None:
    job_id = await client.enqueue(samples.send_sms, "+44", "x")
    await fail(client, job_id, RuntimeError("gateway down"))
    token = await csrf_token(http, f"/job/{job_id}")

    answer = await http.post(
        f"/job/{job_id}/requeue",
        data={"csrf": token, "back": f"/job/{job_id}"},
    )

    assert answer.status_code == 303
    assert answer.headers["location"].startswith(f"/job/{job_id}?")
    job = await client.get(job_id)
    assert job.state is JobState.ENQUEUED
    assert job.history[-1].reason == "requeued by anonymous (127.0.0.1)"
    page = await http.get(answer.headers["location"])
    assert "1 job requeued." in page.text


async def test_an_action_names_the_signed_in_user(
    client: Client, make_http: MakeHTTP
) -> None:
    job_id = await client.enqueue(samples.send_sms, "+44", "x")
    http = await make_http(authorize=lambda request: Access("alice", True))
    token = await csrf_token(http, f"/job/{job_id}")

    await http.post(f"/job/{job_id}/delete", data={"csrf": token})

    job = await client.get(job_id)
    assert job.state is JobState.DELETED
    assert job.history[-1].reason == "deleted by alice"


async def test_run_now_enqueues_a_scheduled_job_only(
    client: Client, http: httpx.AsyncClient
) -> None:
    scheduled = await client.schedule(3600, samples.send_sms, "+44", "x")
    ready = await client.enqueue(samples.send_sms, "+44", "y")
    token = await csrf_token(http)

    moved = await http.post(f"/job/{scheduled}/run-now", data={"csrf": token})
    refused = await http.post(f"/job/{ready}/run-now", data={"csrf": token})

    assert (await client.get(scheduled)).state is JobState.ENQUEUED
    assert "ok=1&refused=0" in moved.headers["location"]
    assert (await client.get(ready)).state is JobState.ENQUEUED
    assert "ok=0&refused=1" in refused.headers["location"]
    history = (await client.get(ready)).history
    assert len(history) == 1  # Nothing was written for the refused one.


async def test_a_selection_is_acted_on_together(
    client: Client, http: httpx.AsyncClient
) -> None:
    ids = [
        await client.enqueue(samples.send_sms, "+44", "x") for _ in range(3)
    ]
    kept = await client.enqueue(samples.send_sms, "+44", "kept")
    token = await csrf_token(http, "/jobs/enqueued")

    answer = await http.post(
        "/actions",
        data={
            "csrf": token,
            "action": "delete",
            "job": [str(i) for i in ids],
            "back": "/jobs/enqueued?queue=default",
        },
    )

    assert answer.status_code == 303
    assert answer.headers["location"].startswith(
        "/jobs/enqueued?queue=default&done=delete&ok=3"
    )
    for job_id in ids:
        assert (await client.get(job_id)).state is JobState.DELETED
    assert (await client.get(kept)).state is JobState.ENQUEUED
    page = await http.get(answer.headers["location"])
    assert "3 jobs deleted." in page.text


async def test_a_selection_that_moved_meanwhile_is_partly_refused(
    client: Client, http: httpx.AsyncClient
) -> None:
    deleted = await client.enqueue(samples.send_sms, "+44", "x")
    await client.delete(deleted)
    live = await client.enqueue(samples.send_sms, "+44", "y")
    token = await csrf_token(http)

    answer = await http.post(
        "/actions",
        data={
            "csrf": token,
            "action": "delete",
            "job": [str(deleted), str(live), "999999"],
        },
    )

    assert "ok=1&refused=2" in answer.headers["location"]
    assert (await client.get(live)).state is JobState.DELETED


async def test_back_cannot_leave_the_dashboard(
    client: Client, http: httpx.AsyncClient
) -> None:
    job_id = await client.enqueue(samples.send_sms, "+44", "x")
    token = await csrf_token(http)

    for back in ("//evil.example/x", "https://evil.example/", "\\\\evil"):
        answer = await http.post(
            f"/job/{job_id}/delete", data={"csrf": token, "back": back}
        )
        assert answer.headers["location"].startswith(f"/job/{job_id}?")
