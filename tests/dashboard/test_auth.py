"""Who gets in: loopback by default, the hook otherwise; read-only;
CSRF on every action; security headers on every answer."""

from __future__ import annotations

import httpx
import pytest
from starlette.requests import Request

from backburner.dashboard import Access
from backburner.jobs import Client, JobState

from . import samples
from .conftest import MakeHTTP, csrf_token


@pytest.mark.parametrize("peer", ["127.0.0.1", "127.8.9.10", "::1"])
async def test_loopback_is_served_by_default(
    make_http: MakeHTTP, peer: str
) -> None:
    http = await make_http(peer=(peer, 1))

    assert (await http.get("/")).status_code == 200


@pytest.mark.parametrize("peer", ["10.0.0.5", "192.168.1.2", "2001:db8::1"])
async def test_other_addresses_get_401_by_default(
    make_http: MakeHTTP, peer: str
) -> None:
    http = await make_http(peer=(peer, 1))

    for path in ("/", "/jobs/failed", "/api/stats", "/static/dashboard.css"):
        assert (await http.get(path)).status_code == 401


async def test_a_proxied_request_is_refused_even_from_loopback(
    make_http: MakeHTTP,
) -> None:
    http = await make_http()

    answer = await http.get("/", headers={"X-Forwarded-For": "203.0.113.9"})

    assert answer.status_code == 401


async def test_the_hook_decides_401_for_anonymous_and_403_for_a_user(
    make_http: MakeHTTP,
) -> None:
    def authorize(request: Request) -> Access:
        user = request.headers.get("x-user")
        return Access(user, allowed=user == "admin")

    http = await make_http(peer=("203.0.113.9", 1), authorize=authorize)

    anonymous = await http.get("/")
    refused = await http.get("/", headers={"x-user": "bob"})
    admitted = await http.get("/", headers={"x-user": "admin"})

    assert anonymous.status_code == 401
    assert refused.status_code == 403
    assert admitted.status_code == 200
    assert "admin" in admitted.text


async def test_an_async_hook_is_awaited(make_http: MakeHTTP) -> None:
    async def authorize(request: Request) -> Access:
        return Access("carol", allowed=True)

    http = await make_http(authorize=authorize)

    assert (await http.get("/")).status_code == 200


@pytest.mark.parametrize("how", ["option", "hook"])
async def test_read_only_hides_and_refuses_actions(
    client: Client, make_http: MakeHTTP, how: str
) -> None:
    job_id = await client.enqueue(samples.send_sms, "+44", "x")
    if how == "option":
        http = await make_http(read_only=True)
    else:
        http = await make_http(
            authorize=lambda r: Access("viewer", True, read_only=True)
        )

    page = await http.get(f"/job/{job_id}")
    listing = await http.get("/jobs/enqueued")
    token = http.cookies.get("backburner_csrf")
    answer = await http.post(f"/job/{job_id}/delete", data={"csrf": token})
    bulk = await http.post(
        "/actions",
        data={"csrf": token, "action": "delete", "job": str(job_id)},
    )

    assert "read-only" in page.text
    assert "/delete" not in page.text
    assert 'name="action"' not in listing.text
    assert answer.status_code == 403
    assert bulk.status_code == 403
    assert (await client.get(job_id)).state is JobState.ENQUEUED


@pytest.mark.parametrize(
    ("token", "headers"),
    [
        (None, {}),
        ("", {}),
        ("x" * 43, {}),
        ("use-cookie", {"Origin": "https://evil.example"}),
        ("use-cookie", {"Sec-Fetch-Site": "cross-site"}),
    ],
    ids=["missing", "empty", "wrong", "other-origin", "cross-site"],
)
async def test_an_action_without_a_valid_csrf_token_is_refused(
    client: Client,
    http: httpx.AsyncClient,
    token: str | None,
    headers: dict[str, str],
) -> None:
    job_id = await client.enqueue(samples.send_sms, "+44", "x")
    real = await csrf_token(http, f"/job/{job_id}")
    form = {} if token is None else {"csrf": token}
    if token == "use-cookie":
        form["csrf"] = real

    answer = await http.post(
        f"/job/{job_id}/delete", data=form, headers=headers
    )
    bulk = await http.post(
        "/actions",
        data={**form, "action": "delete", "job": str(job_id)},
        headers=headers,
    )

    assert answer.status_code == 403
    assert bulk.status_code == 403
    assert (await client.get(job_id)).state is JobState.ENQUEUED


async def test_an_action_without_the_cookie_is_refused(
    client: Client, http: httpx.AsyncClient
) -> None:
    job_id = await client.enqueue(samples.send_sms, "+44", "x")
    token = await csrf_token(http, f"/job/{job_id}")
    http.cookies.clear()

    answer = await http.post(f"/job/{job_id}/delete", data={"csrf": token})

    assert answer.status_code == 403
    assert (await client.get(job_id)).state is JobState.ENQUEUED


async def test_the_same_origin_is_accepted(
    client: Client, http: httpx.AsyncClient
) -> None:
    job_id = await client.enqueue(samples.send_sms, "+44", "x")
    token = await csrf_token(http, f"/job/{job_id}")

    answer = await http.post(
        f"/job/{job_id}/delete",
        data={"csrf": token},
        headers={"Origin": "http://dash", "Sec-Fetch-Site": "same-origin"},
    )

    assert answer.status_code == 303


async def test_the_csrf_cookie_is_http_only_and_strict(
    http: httpx.AsyncClient,
) -> None:
    page = await http.get("/")

    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/" in cookie


@pytest.mark.parametrize("peer", ["127.0.0.1", "10.0.0.5"])
async def test_every_answer_carries_a_strict_csp(
    make_http: MakeHTTP, peer: str
) -> None:
    http = await make_http(peer=(peer, 1))

    for path in ("/", "/jobs/nope", "/static/dashboard.css", "/api/stats"):
        answer = await http.get(path)
        policy = answer.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "style-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
        assert answer.headers["x-content-type-options"] == "nosniff"


async def test_pages_have_no_inline_script_or_style(
    client: Client, http: httpx.AsyncClient
) -> None:
    job_id = await client.enqueue(samples.send_sms, "+44", "x")

    for path in ("/", "/jobs/enqueued", f"/job/{job_id}", "/servers"):
        html = (await http.get(path)).text
        assert "<style" not in html
        assert " style=" not in html
        assert "<script>" not in html
        assert " on" + "click=" not in html
