"""Job data is text: HTML in arguments, exceptions, parameters and
reasons renders inert everywhere it is shown."""

from __future__ import annotations

import re
from typing import Any

import httpx

from backburner.dashboard import HIDDEN, Access
from backburner.jobs import Client, JobOptions

from . import samples
from .conftest import MakeHTTP, fail, succeed

SCRIPT = "<script>alert('pwned')</script>"
IMAGE = '"><img src=x onerror=alert(1)>'


def assert_inert(html: str) -> None:
    assert SCRIPT not in html
    assert "<img" not in html
    assert "onerror=alert" not in html or "&lt;img" in html
    # No markup outside the dashboard's own: every tag is one we wrote.
    tags = set(re.findall(r"<([a-zA-Z][a-zA-Z0-9]*)", html))
    assert tags <= {
        "html",
        "head",
        "meta",
        "title",
        "link",
        "script",
        "body",
        "header",
        "a",
        "span",
        "nav",
        "div",
        "button",
        "main",
        "p",
        "h1",
        "h2",
        "section",
        "table",
        "thead",
        "tr",
        "th",
        "tbody",
        "td",
        "form",
        "input",
        "select",
        "option",
        "label",
        "ol",
        "li",
        "code",
        "details",
        "summary",
        "pre",
        "dl",
        "dt",
        "dd",
        "time",
        "strong",
        "progress",
    }, tags
    assert html.count("<script") == html.count("<script src=")


async def test_html_in_job_data_renders_inert_everywhere(
    client: Client, make_http: MakeHTTP
) -> None:
    options = JobOptions(parameters={"note": SCRIPT})
    job_id = await client.enqueue_with(
        options, samples.send_sms, SCRIPT, text=IMAGE * 20
    )
    await fail(client, job_id, ValueError(f"{SCRIPT} {IMAGE}"))
    http = await make_http(authorize=lambda r: Access(SCRIPT, True))

    pages = [
        f"/job/{job_id}",
        "/jobs/failed",
        "/jobs/failed?function=" + "%3Cscript%3E",
        "/",
    ]
    for path in pages:
        answer = await http.get(path)
        assert answer.status_code == 200, path
        assert_inert(answer.text)

    details = (await http.get(f"/job/{job_id}")).text
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in details
    assert "&lt;img src=x onerror=alert(1)&gt;" in details


async def test_html_in_a_job_result_renders_inert(
    client: Client, make_http: MakeHTTP
) -> None:
    short = await client.enqueue(samples.resize_image, "a.png")
    await succeed(client, short, SCRIPT)
    folded = await client.enqueue(samples.resize_image, "b.png")
    await succeed(client, folded, {IMAGE: [SCRIPT] * 20})
    http = await make_http()

    for job_id in (short, folded):
        page = (await http.get(f"/job/{job_id}")).text
        assert "<h2>Result</h2>" in page
        assert_inert(page)
        assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in page


async def test_a_mask_sees_and_hides_a_job_result(
    client: Client, make_http: MakeHTTP
) -> None:
    job_id = await client.enqueue(samples.resize_image, "a.png")
    await succeed(client, job_id, {"otp": "424242"})
    seen: list[tuple[str, str, Any]] = []

    def mask(function: str, argument: str, value: Any) -> Any:
        seen.append((function, argument, value))
        return HIDDEN if argument == "result" else value

    http = await make_http(mask=mask)
    page = (await http.get(f"/job/{job_id}")).text

    assert "424242" not in page
    assert "‹hidden›" in page
    assert ("dashboard.samples:resize_image", "result", {"otp": "424242"}) in (
        seen
    )


async def test_error_pages_do_not_reflect_markup(
    http: httpx.AsyncClient,
) -> None:
    for path in ("/jobs/%3Cscript%3E", "/job/%3Cscript%3E"):
        answer = await http.get(path)
        assert answer.status_code == 404
        assert_inert(answer.text)


async def test_a_mask_hides_personal_data_in_arguments(
    client: Client, make_http: MakeHTTP
) -> None:
    job_id = await client.enqueue(
        samples.send_sms, "+44 7700 900123", text="Your code is 424242"
    )
    seen: list[tuple[str, str, Any]] = []

    def mask(function: str, argument: str, value: Any) -> Any:
        seen.append((function, argument, value))
        if argument == "args[0]":
            return HIDDEN
        if argument == "text":
            return "Your code is ******"
        return value

    http = await make_http(mask=mask)
    page = (await http.get(f"/job/{job_id}")).text

    assert "7700" not in page
    assert "424242" not in page
    assert "‹hidden›" in page
    assert "Your code is ******" in page
    assert seen == [
        ("dashboard.samples:send_sms", "args[0]", "+44 7700 900123"),
        ("dashboard.samples:send_sms", "text", "Your code is 424242"),
    ]
