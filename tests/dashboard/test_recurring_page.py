"""The recurring jobs page: listing, and trigger, pause, resume, remove."""

from __future__ import annotations

import re

import httpx
import pytest

from backburner.dashboard import Access
from backburner.jobs import Call, Client, JobState
from backburner.jobs.recurring import RecurringJobNotFoundError

from . import samples
from .conftest import MakeHTTP, csrf_token


async def define(client: Client, recurring_id: str = "nightly-sms") -> None:
    await client.recurring.add_or_update(
        recurring_id,
        "0 3 * * *",
        Call(samples.send_sms, "+44", text="good night"),
        time_zone="Europe/Berlin",
        queue="mail",
    )


def row_of(html: str, recurring_id: str) -> str:
    found = re.search(
        rf'<tr data-recurring="{re.escape(recurring_id)}".*?</tr>',
        html,
        re.DOTALL,
    )
    assert found is not None, f"no row for {recurring_id}"
    return found.group(0)


async def test_the_page_lists_each_recurring_job_with_its_schedule(
    client: Client, http: httpx.AsyncClient
) -> None:
    await define(client)
    job_id = await client.recurring.trigger("nightly-sms")

    page = await http.get("/recurring")

    assert page.status_code == 200
    row = row_of(page.text, "nightly-sms")
    assert "samples:send_sms</code>(" in row
    assert "0 3 * * *" in row
    assert "Europe/Berlin" in row
    assert '<span class="chip">mail</span>' in row
    assert f'href="/job/{job_id}">#{job_id}</a>' in row
    assert "state-enqueued" in row
    assert ">active<" in row
    assert 'action="/recurring/nightly-sms/pause"' in row
    assert 'href="/recurring" aria-current="page"' in page.text


async def test_an_empty_page_says_how_to_define_one(
    http: httpx.AsyncClient,
) -> None:
    page = await http.get("/recurring")

    assert page.status_code == 200
    assert "No recurring job." in page.text


async def test_trigger_now_creates_a_job_and_names_who_did_it(
    client: Client, make_http: MakeHTTP
) -> None:
    await define(client)
    http = await make_http(authorize=lambda request: Access("alice", True))
    token = await csrf_token(http, "/recurring")

    answer = await http.post(
        "/recurring/nightly-sms/trigger", data={"csrf": token}
    )

    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/recurring?")
    recurring = await client.recurring.get("nightly-sms")
    assert recurring.last_job_id is not None
    job = await client.get(recurring.last_job_id)
    assert job.state is JobState.ENQUEUED
    assert job.parameters["triggered_by"] == "alice"
    page = await http.get(answer.headers["location"])
    assert "Recurring job nightly-sms triggered." in page.text


async def test_pause_then_resume(
    client: Client, http: httpx.AsyncClient
) -> None:
    await define(client)
    token = await csrf_token(http, "/recurring")

    paused = await http.post(
        "/recurring/nightly-sms/pause", data={"csrf": token}
    )
    assert paused.status_code == 303
    recurring = await client.recurring.get("nightly-sms")
    assert recurring.paused
    page = await http.get("/recurring")
    row = row_of(page.text, "nightly-sms")
    assert ">paused<" in row
    assert 'action="/recurring/nightly-sms/resume"' in row
    assert 'action="/recurring/nightly-sms/pause"' not in row

    resumed = await http.post(
        "/recurring/nightly-sms/resume", data={"csrf": token}
    )
    assert resumed.status_code == 303
    recurring = await client.recurring.get("nightly-sms")
    assert not recurring.paused
    assert recurring.next_run_at is not None


async def test_remove_deletes_the_definition(
    client: Client, http: httpx.AsyncClient
) -> None:
    await define(client)
    token = await csrf_token(http, "/recurring")

    answer = await http.post(
        "/recurring/nightly-sms/remove", data={"csrf": token}
    )

    assert answer.status_code == 303
    with pytest.raises(RecurringJobNotFoundError):
        await client.recurring.get("nightly-sms")
    again = await http.post(
        "/recurring/nightly-sms/remove", data={"csrf": token}
    )
    page = await http.get(again.headers["location"])
    assert "Recurring job nightly-sms no longer exists." in page.text


@pytest.mark.parametrize("action", ["trigger", "pause", "resume", "remove"])
async def test_an_action_without_the_csrf_token_is_refused(
    client: Client, http: httpx.AsyncClient, action: str
) -> None:
    await define(client)
    await client.recurring.pause("nightly-sms")
    await csrf_token(http, "/recurring")  # the cookie, but no form token

    answer = await http.post(f"/recurring/nightly-sms/{action}", data={})
    forged = await http.post(
        f"/recurring/nightly-sms/{action}", data={"csrf": "x" * 43}
    )

    assert answer.status_code == 403
    assert forged.status_code == 403
    recurring = await client.recurring.get("nightly-sms")
    assert recurring.paused
    assert recurring.last_job_id is None


@pytest.mark.parametrize("action", ["trigger", "pause", "resume", "remove"])
async def test_read_only_hides_and_refuses_every_action(
    client: Client, make_http: MakeHTTP, action: str
) -> None:
    await define(client)
    http = await make_http(read_only=True)
    page = await http.get("/recurring")
    token = http.cookies.get("backburner_csrf")
    assert token

    answer = await http.post(
        f"/recurring/nightly-sms/{action}", data={"csrf": token}
    )

    assert "<form" not in row_of(page.text, "nightly-sms")
    assert answer.status_code == 403
    recurring = await client.recurring.get("nightly-sms")
    assert not recurring.paused
    assert recurring.last_job_id is None


async def test_arguments_holding_markup_are_shown_as_text(
    client: Client, http: httpx.AsyncClient
) -> None:
    await client.recurring.add_or_update(
        "xss",
        "*/5 * * * *",
        Call(samples.send_sms, "<script>alert(1)</script>", text="<b>"),
    )

    page = await http.get("/recurring")

    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<b>" not in page.text


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/recurring/nightly-sms/explode", 404),
        ("/recurring/bad%20id!/pause", 400),
        (f"/recurring/{'a' * 101}/pause", 400),
    ],
)
async def test_malformed_actions_are_4xx(
    client: Client, http: httpx.AsyncClient, path: str, status: int
) -> None:
    await define(client)
    token = await csrf_token(http, "/recurring")

    answer = await http.post(path, data={"csrf": token})

    assert answer.status_code == status
    assert not (await client.recurring.get("nightly-sms")).paused


async def test_a_get_on_an_action_is_not_allowed(
    client: Client, http: httpx.AsyncClient
) -> None:
    await define(client)

    answer = await http.get("/recurring/nightly-sms/remove")

    assert answer.status_code == 405
    assert await client.recurring.get("nightly-sms")
