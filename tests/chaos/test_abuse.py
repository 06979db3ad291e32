"""The reference app and its dashboard against hostile clients.

Strangers and ordinary users are kept out of the dashboard; a job
manager's form posts without the CSRF token are refused; markup in job
arguments and exception messages is escaped; SQL in every filter and
search field is only text; oversized and malformed requests get a 4xx.
Every answer is counted: a 5xx, or a refusal that should have been
one and was not, is an error surfaced.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import chaos_jobs
import pytest
import requests
from chaos_app import PASSWORD, catalogue_server
from chaos_harness import Record

from backburner.jobs import Client, JobOptions, JobState, Server
from backburner.storage import open_storage

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(120)]

XSS = '<script>alert("bb")</script><img src=x onerror=alert(1)>'
INJECTIONS = [
    "' OR '1'='1",
    "'; DROP TABLE products; --",
    '" OR 1=1 --',
    "1; SELECT pg_sleep(5)",
    "%' UNION SELECT email, password_hash FROM users --",
    "\\'; --",
    "\x00",
    "' AND 1=(SELECT COUNT(*) FROM sqlite_master) --",
]


class App:
    """The running app, its data directory, and a signed-up user."""

    def __init__(self, url: str, data: Path) -> None:
        self.url = url
        self.data = data

    def session(self, email: str, manager: bool = False) -> requests.Session:
        """A signed-up (and optionally job-managing) user's session."""
        session = requests.Session()
        answer = session.post(
            f"{self.url}/api/auth/signup",
            json={"email": email, "password": PASSWORD, "phone": PHONE},
            timeout=30,
        )
        assert answer.status_code == 201, answer.text
        if manager:
            with sqlite3.connect(self.data / "catalogue.db") as db:
                db.execute(
                    "UPDATE users SET can_manage_jobs = 1 WHERE email = ?",
                    (email,),
                )
        return session


PHONE = "+14155550123"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    with catalogue_server(tmp_path) as url:
        yield App(url, tmp_path)


async def hostile_jobs(data: Path) -> tuple[int, int]:
    """A waiting job with markup in its arguments, and a failed one
    whose exception message is markup; return their ids."""
    storage = open_storage(f"sqlite:///{data / 'jobs.db'}")
    try:
        client = Client(storage)
        waiting = await client.enqueue(chaos_jobs.keep, XSS, {XSS: XSS})
        failed = await client.enqueue_with(
            JobOptions(queue="hostile"), chaos_jobs.explode, XSS
        )
        async with asyncio.timeout(60):
            server = Server(storage, queues=["hostile"], poll_interval=0.05)
            await server.run(until_empty=True)
        assert (await client.get(failed)).state is JobState.FAILED
        return waiting, failed
    finally:
        await storage.close()


def escaped(body: str) -> bool:
    return "<script>alert" not in body and "<img src=x" not in body


@pytest.mark.chaos_smoke
def test_hostile_clients_are_refused_cleanly(app: App, record: Record) -> None:
    figures = record("dashboard and app abuse", size="")
    problems: list[str] = []
    checks = 0

    def expect(what: str, answer: requests.Response, *allowed: int) -> None:
        nonlocal checks
        checks += 1
        if answer.status_code not in allowed:
            problems.append(f"{what}: {answer.status_code}")

    base = app.url
    stranger = requests.Session()
    member = app.session("member@example.com")
    manager = app.session("manager@example.com", manager=True)
    waiting, failed = asyncio.run(hostile_jobs(app.data))

    # -- who may open the dashboard --------------------------------------
    for path in ("/jobs/", f"/jobs/job/{waiting}", "/jobs/jobs/failed"):
        expect(f"stranger GET {path}", stranger.get(base + path), 401)
        expect(f"member GET {path}", member.get(base + path), 403)
    for who, session, code in (
        ("stranger", stranger, 401),
        ("member", member, 403),
    ):
        expect(
            f"{who} deletes a job",
            session.post(f"{base}/jobs/job/{waiting}/delete"),
            code,
        )
    expect(
        "bearer junk",
        stranger.get(
            f"{base}/jobs/", headers={"Authorization": "Bearer x.y.z"}
        ),
        401,
    )

    # -- CSRF: a manager's browser posting from another site --------------
    page = manager.get(f"{base}/jobs/job/{waiting}")
    expect("manager opens the job", page, 200)
    forged = manager.post(
        f"{base}/jobs/job/{waiting}/delete",
        data={"csrf": "forged"},
        headers={"Origin": "http://evil.example"},
    )
    expect("forged delete", forged, 403)
    no_token = manager.post(f"{base}/jobs/job/{waiting}/delete")
    expect("delete without token", no_token, 403)
    state = asyncio.run(state_of(app.data, waiting))
    if state is not JobState.ENQUEUED:
        problems.append(f"a forged post changed the job: {state}")

    # -- stored XSS through arguments and exception messages --------------
    for path in (
        f"/jobs/job/{waiting}",
        f"/jobs/job/{failed}",
        "/jobs/jobs/failed",
        "/jobs/jobs/enqueued",
        "/jobs/retries",
    ):
        answer = manager.get(base + path)
        expect(f"manager GET {path}", answer, 200)
        checks += 1
        if not escaped(answer.text):
            problems.append(f"unescaped markup in {path}")
        if "/job/" in path and "alert" not in answer.text:
            problems.append(f"{path} does not show the hostile text")

    # -- SQL injection in every filter and search field -------------------
    before = products(stranger, base, "")
    for text in INJECTIONS:
        for path, params in (
            ("/api/products", {"q": text}),
            ("/api/categories", {"q": text}),
            ("/jobs/jobs/enqueued", {"queue": text}),
            ("/jobs/jobs/enqueued", {"function": text}),
            ("/jobs/jobs/failed", {"before": text}),
            ("/jobs/api/progress", {"ids": text}),
            (f"/jobs/jobs/{text}", {}),
            (f"/jobs/job/{text}", {}),
            (f"/api/products/{text}", {}),
        ):
            answer = manager.get(base + path, params=params)
            expect(f"GET {path} {params}", answer, 200, 400, 404, 422)
            # (A lone NUL is dropped by the search: it matches all.)
            searched = path == "/api/products" and text != "\x00"
            if answer.status_code == 200 and searched:
                checks += 1
                if products(stranger, base, text) >= before > 0:
                    problems.append(f"search {text!r} matched everything")
    if products(stranger, base, "") != before:
        problems.append("an injection changed the products")

    # -- oversized and malformed requests --------------------------------
    huge = "x" * (8 * 1024 * 1024)
    expect(
        "8 MiB category",
        manager.post(f"{base}/api/categories", json={"name": huge}),
        413,
        422,
        400,
    )
    expect(
        "malformed JSON",
        manager.post(
            f"{base}/api/categories",
            data=b'{"name": ',
            headers={"Content-Type": "application/json"},
        ),
        400,
        422,
    )
    expect(
        "JSON of the wrong shape",
        manager.post(f"{base}/api/categories", json=[[[[]]]]),
        400,
        422,
    )
    expect(
        "deep JSON",
        manager.post(
            f"{base}/api/categories",
            data=b"[" * 100_000 + b"]" * 100_000,
            headers={"Content-Type": "application/json"},
        ),
        400,
        413,
        422,
    )
    expect(
        "8 MiB dashboard form",
        manager.post(f"{base}/jobs/actions", data={"ids": huge, "csrf": "x"}),
        400,
        403,
        413,
    )
    expect(
        "binary garbage",
        manager.post(
            f"{base}/api/auth/signin",
            data=bytes(range(256)) * 100,
            headers={"Content-Type": "application/json"},
        ),
        400,
        422,
    )
    expect(
        "huge header",
        stranger.get(
            f"{base}/api/products", headers={"X-Junk": "y" * 100_000}
        ),
        400,
        413,
        431,
        200,
    )

    figures.size = f"{checks} hostile requests"
    figures.errors_surfaced = len(problems)
    if problems:
        figures.note("; ".join(problems[:3]))
    assert problems == [], "\n".join(problems)


def products(session: requests.Session, base: str, q: str) -> int:
    answer = session.get(f"{base}/api/products", params={"q": q})
    if answer.status_code != 200:
        return -1
    found = re.search(r'"total"\s*:\s*(\d+)', answer.text)
    return (
        int(found.group(1)) if found else len(answer.json().get("items", []))
    )


async def state_of(data: Path, job_id: int) -> JobState:
    storage = open_storage(f"sqlite:///{data / 'jobs.db'}")
    try:
        return (await Client(storage).get(job_id)).state
    finally:
        await storage.close()
