"""Every page, read through the dashboard from jobs made by the client."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta

import httpx

from backburner.jobs import Client, JobOptions, JobState, states
from backburner.storage.base import ServerInfo

from . import samples
from .conftest import (
    SERVER,
    MakeHTTP,
    announce,
    fail,
    fail_for_retry,
    listed_ids,
    start,
)


def count_on_card(html: str, state: str) -> int:
    found = re.search(rf'data-state="{state}">(\d+)<', html)
    assert found is not None, f"no {state} card"
    return int(found.group(1))


async def test_overview_shows_the_count_of_every_state(
    client: Client, http: httpx.AsyncClient
) -> None:
    failed = await client.enqueue(samples.resize_image, "b.png")
    await fail(client, failed, ValueError("bad image"))
    for n in range(3):
        await client.enqueue(samples.send_sms, "+44", f"code {n}")
    await client.schedule(3600, samples.resize_image, "a.png")

    page = await http.get("/")

    assert page.status_code == 200
    assert count_on_card(page.text, "enqueued") == 3
    assert count_on_card(page.text, "scheduled") == 1
    assert count_on_card(page.text, "failed") == 1
    assert count_on_card(page.text, "succeeded") == 0
    assert 'id="live-chart"' in page.text


async def test_stats_api_returns_the_counters(
    client: Client, http: httpx.AsyncClient
) -> None:
    await client.enqueue(samples.send_sms, "+44", "hi")

    answer = (await http.get("/api/stats")).json()

    assert answer["states"]["enqueued"] == 1
    assert set(answer["states"]) == {s.value for s in JobState}
    assert answer["at"] > 0


async def test_history_api_totals_finished_jobs_per_hour_and_day(
    client: Client, http: httpx.AsyncClient
) -> None:
    done = await client.enqueue(samples.send_sms, "+44", "x")
    broken = await client.enqueue(samples.send_sms, "+44", "y")
    record = await start(client, done)
    succeeded = states.succeed(
        done, record.version, datetime.now(UTC), {}, timedelta(days=1)
    )
    assert (await client.storage.apply_change(succeeded)).applied
    await fail(client, broken, ValueError("no route"))

    hours = (await http.get("/api/history", params={"unit": "hour"})).json()
    days = (await http.get("/api/history", params={"unit": "day"})).json()
    wrong = await http.get("/api/history", params={"unit": "week"})

    for answer, count, step in ((hours, 48, 3600), (days, 30, 86400)):
        assert answer["available"] is True
        buckets = answer["buckets"]
        assert len(buckets) == count
        starts = [bucket["start"] for bucket in buckets]
        gaps = {b - a for a, b in itertools.pairwise(starts)}
        assert gaps == {step}
        assert sum(bucket["succeeded"] for bucket in buckets) == 1
        assert sum(bucket["failed"] for bucket in buckets) == 1
    assert wrong.status_code == 400


async def test_a_state_page_lists_its_jobs_newest_first_in_pages(
    client: Client, make_http: MakeHTTP
) -> None:
    ids = [
        await client.enqueue(samples.send_sms, "+44", "x") for _ in range(5)
    ]
    await client.schedule(3600, samples.send_sms, "+44", "later")
    http = await make_http(page_size=2)

    seen: list[int] = []
    path = "/jobs/enqueued"
    while True:
        page = await http.get(path)
        assert page.status_code == 200
        seen += listed_ids(page.text)
        older = re.search(r'rel="next" href="([^"]+)"', page.text)
        if older is None:
            break
        path = older.group(1).replace("&amp;", "&")

    assert seen == sorted(ids, reverse=True)


async def test_jobs_filter_by_queue_and_by_function(
    client: Client, http: httpx.AsyncClient
) -> None:
    mail = JobOptions(queue="mail")
    sms = await client.enqueue_with(mail, samples.send_sms, "+44", "x")
    report = await client.enqueue_with(mail, samples.render_report, 7)
    other = await client.enqueue(samples.send_sms, "+44", "y")

    by_queue = await http.get("/jobs/enqueued", params={"queue": "mail"})
    by_function = await http.get(
        "/jobs/enqueued", params={"function": "send_SMS"}
    )
    both = await http.get(
        "/jobs/enqueued", params={"queue": "mail", "function": "report"}
    )

    assert listed_ids(by_queue.text) == [report, sms]
    assert listed_ids(by_function.text) == [other, sms]
    assert listed_ids(both.text) == [report]


async def test_a_function_filter_continues_past_its_scan_limit(
    client: Client, make_http: MakeHTTP
) -> None:
    wanted = await client.enqueue(samples.render_report, 1)
    for _ in range(6):
        await client.enqueue(samples.send_sms, "+44", "x")
    http = await make_http(page_size=2, scan_limit=3)

    first = await http.get("/jobs/enqueued", params={"function": "report"})
    assert listed_ids(first.text) == []
    assert "continue searching" in first.text

    path = re.search(r'rel="next" href="([^"]+)"', first.text)
    assert path is not None
    second = await http.get(path.group(1).replace("&amp;", "&"))
    more = re.search(r'rel="next" href="([^"]+)"', second.text)
    if more is not None:
        second = await http.get(more.group(1).replace("&amp;", "&"))
    assert listed_ids(second.text) == [wanted]


async def test_processing_page_shows_server_and_progress(
    client: Client, http: httpx.AsyncClient
) -> None:
    job_id = await client.enqueue(samples.render_report, 3)
    await start(client, job_id)
    await client.set_parameter(job_id, "progress", 40)
    await client.set_parameter(job_id, "progress_message", "page 4 of 10")

    page = await http.get("/jobs/processing")
    details = await http.get(f"/job/{job_id}")
    progress = await http.get("/api/progress", params={"id": str(job_id)})

    assert listed_ids(page.text) == [job_id]
    assert SERVER in page.text
    assert '<progress max="100" value="40.0">' in page.text
    assert "page 4 of 10" in page.text
    assert '<progress max="100" value="40.0">' in details.text
    assert "page 4 of 10" in details.text
    assert "progress_message" not in details.text  # not a plain parameter
    answer = progress.json()["jobs"][str(job_id)]
    assert answer["state"] == "processing"
    assert answer["progress"] == 40.0
    assert answer["message"] == "page 4 of 10"


async def test_retries_page_lists_only_jobs_waiting_for_another_attempt(
    client: Client, http: httpx.AsyncClient
) -> None:
    retrying = await client.enqueue(samples.send_sms, "+44", "x")
    await fail_for_retry(client, retrying)
    await client.schedule(3600, samples.send_sms, "+44", "planned")

    page = await http.get("/retries")

    assert page.status_code == 200
    assert listed_ids(page.text) == [retrying]
    assert "retry 2 of 3" in page.text


async def test_job_page_shows_call_parameters_and_timeline(
    client: Client, http: httpx.AsyncClient
) -> None:
    options = JobOptions(parameters={"tenant": "acme"})
    job_id = await client.enqueue_with(
        options, samples.render_report, 12, options={"pages": list(range(80))}
    )
    await fail(client, job_id, KeyError("missing template"))

    page = (await http.get(f"/job/{job_id}")).text

    assert "dashboard.samples:render_report" in page
    assert "<code>12</code>" in page
    assert '<span class="kw">options</span>=<details>' in page  # folded
    assert "tenant" in page
    assert "&#39;acme&#39;" in page
    steps = re.findall(r'<li class="step state-(\w+)', page)
    assert steps == ["failed", "processing", "enqueued"]
    assert "builtins.KeyError" in page
    assert "Traceback (most recent call last)" in page
    assert re.search(r'class="lasted">[\d.]+ (ms|s)<', page)


async def test_job_page_warns_when_the_server_holding_it_is_gone(
    client: Client, http: httpx.AsyncClient
) -> None:
    job_id = await client.enqueue(samples.render_report, 3)
    await start(client, job_id)

    alive = (await http.get(f"/job/{job_id}")).text
    await client.storage.remove_server(SERVER)
    gone = (await http.get(f"/job/{job_id}")).text

    assert 'role="alert"' not in alive
    assert 'role="alert"' in gone
    assert "no longer registered" in gone


async def test_job_page_warns_when_the_server_is_silent(
    client: Client, http: httpx.AsyncClient
) -> None:
    job_id = await client.enqueue(samples.render_report, 3)
    await start(client, job_id)
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    await client.storage.announce_server(
        ServerInfo(SERVER, ("default",), 4, long_ago, long_ago)
    )

    page = (await http.get(f"/job/{job_id}")).text
    servers = (await http.get("/servers")).text

    assert 'role="alert"' in page
    assert "has not sent a heartbeat for 5 min" in page
    assert '<span class="badge bad">silent</span>' in servers


async def test_servers_page_shows_each_server(
    client: Client, http: httpx.AsyncClient
) -> None:
    empty = (await http.get("/servers")).text
    await announce(client)

    page = (await http.get("/servers")).text

    assert "No server is running" in empty
    assert SERVER in page
    assert '<span class="chip">mail</span>' in page
    assert '<td class="num">4</td>' in page


async def test_static_files_are_served(http: httpx.AsyncClient) -> None:
    script = await http.get("/static/uplot.iife.min.js")
    style = await http.get("/static/dashboard.css")

    assert script.status_code == 200
    assert "uPlot" in script.text
    assert style.status_code == 200


async def test_a_huge_argument_is_shown_cut(
    client: Client, http: httpx.AsyncClient
) -> None:
    rows = [{"sku": f"item-{n}", "qty": n} for n in range(100_000)]
    # 3 MB: over the default limit, as a client with its own may store.
    generous = Client(client.storage, max_argument_bytes=2**23)
    job_id = await generous.enqueue(samples.render_report, 1, options=rows)

    page = await http.get(f"/job/{job_id}")

    assert page.status_code == 200
    assert "more characters not shown" in page.text
    assert len(page.text) < 200_000
    assert "item-99999" not in page.text
