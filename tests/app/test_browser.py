"""The browser client, driven by Playwright in Debian's Chromium.

The app runs in one process as with ``make demo``: web app and job
server on real uvicorn on 127.0.0.1, SMS through the app's own Twilio
stand-in, email through the SMTP sink, both into the outbox.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import update

from catalogue import Settings, create_app
from catalogue.activity import Activity
from catalogue.models import User

from .conftest import PASSWORD, running, services_of
from .serving import listening, serve, url_of

playwright_api = pytest.importorskip("playwright.async_api")
# One Chromium for the module: the tests share its event loop.
pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(90),
]

CHROMIUM = os.environ.get("BACKBURNER_TEST_CHROMIUM", "/usr/bin/chromium")
HAS_CHROMIUM = Path(CHROMIUM).exists()
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


FAILED_REQUEST = re.compile(r"^Failed to load resource: .* status of (\d+)")


@dataclass
class Site:
    url: str
    api: Any
    activity: Activity


@pytest_asyncio.fixture(loop_scope="module")
async def site(settings: Settings) -> AsyncIterator[Site]:
    sock = listening()
    url = url_of(sock)
    configured = replace(
        settings,
        run_worker=True,
        twilio_base_url=f"{url}/dev/twilio",
    )
    app = create_app(
        configured,
        server_options={"poll_interval": 0.05, "concurrency": 2},
        start_smtp_sink=True,
    )
    async with running(app) as api, serve(app, sock):
        yield Site(url, api, api.state.activity)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    if not HAS_CHROMIUM:
        message = f"no Chromium at {CHROMIUM}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    async with playwright_api.async_playwright() as driver:
        launched = await driver.chromium.launch(
            executable_path=CHROMIUM, args=ARGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Any, site: Site) -> AsyncIterator[Any]:
    context = await browser.new_context(base_url=site.url)
    opened = await context.new_page()
    problems: list[str] = []
    opened.on(
        "console",
        lambda m: problems.append(m.text) if m.type == "error" else None,
    )
    opened.on("pageerror", lambda e: problems.append(str(e)))
    opened.problems = problems
    try:
        yield opened
    finally:
        await context.close()
    # No script error, no Content-Security-Policy violation, and no
    # failed request but those the test made on purpose.
    statuses = [
        int(found.group(1))
        for found in map(FAILED_REQUEST.search, problems)
        if found
    ]
    others = [p for p in problems if not FAILED_REQUEST.search(p)]
    assert others == []
    assert statuses == getattr(opened, "expected_statuses", [])


async def sign_up_through_the_api(
    page: Any, email: str = "ann@example.com"
) -> None:
    answer = await page.request.post(
        "/api/auth/signup",
        data={"email": email, "password": PASSWORD, "phone": "+14155550123"},
    )
    assert answer.status == 201


async def test_sign_up_read_the_code_in_the_outbox_confirm_the_phone(
    page: Any, site: Site
) -> None:
    expect = playwright_api.expect
    await page.goto("/signup")
    await page.fill("input[name=email]", "ann@example.com")
    page.expected_statuses = [422]
    await page.fill("input[name=password]", "short")
    await page.fill("input[name=phone]", "+1 415 555 0123")
    await page.click("button[type=submit]")
    await expect(page.locator('[data-for="password"]')).to_have_text(
        "use 10 to 128 characters"
    )
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/confirm")

    await page.goto("/outbox")
    sms = page.locator(".message.sms pre")
    await expect(sms).to_have_count(1, timeout=20_000)
    text = await sms.inner_text()
    match = re.search(r"^@127\.0\.0\.1 #(\d{6})$", text, re.MULTILINE)
    assert match, text
    await expect(page.locator(".message.email")).to_have_count(
        1, timeout=20_000
    )

    await page.goto("/confirm")
    await page.fill("#phone-form input[name=code]", match.group(1))
    await page.click("#phone-form button[type=submit]")
    await expect(page.locator("#phone-state")).to_have_text("confirmed")


async def test_leaving_the_product_page_cancels_its_slow_search(
    page: Any, site: Site
) -> None:
    await page.goto("/?slow=30")
    await site.activity.wait_for("search.started", slow=30.0)
    await page.click("nav >> text=Categories")
    await page.wait_for_url("**/categories")
    cancelled = await site.activity.wait_for("search.cancelled", slow=30.0)
    assert cancelled.facts["reason"] == "client disconnected"
    assert cancelled.facts["elapsed"] < 15  # the statement was interrupted


async def test_a_newer_search_aborts_the_older_one(
    page: Any, site: Site
) -> None:
    await page.goto("/?slow=30")
    await site.activity.wait_for("search.started", slow=30.0)
    await page.fill("#slow", "0")
    await page.fill("#search", "lamp")
    cancelled = await site.activity.wait_for("search.cancelled", slow=30.0)
    assert cancelled.facts["reason"] == "client disconnected"
    await playwright_api.expect(page.locator("#rows tr")).to_have_count(20)


async def test_the_category_dialog_warns_only_about_real_changes(
    page: Any, site: Site
) -> None:
    expect = playwright_api.expect
    await sign_up_through_the_api(page)
    await page.goto("/categories")
    leave = page.locator("#leave-dialog")

    # Nothing changed: a link just navigates.
    await page.click("#add")
    await page.click("nav >> text=Products")
    await page.wait_for_url(site.url + "/")

    # A change: the link asks first, and staying keeps the edit.
    await page.goto("/categories")
    await page.click("#add")
    await page.fill("#category-form input[name=name]", "Toys")
    await page.click("nav >> text=Products")
    await expect(leave).to_be_visible()
    assert page.url.endswith("/categories")
    await page.click("#stay")
    await expect(
        page.locator("#category-form input[name=name]")
    ).to_have_value("Toys")

    # Closing the tab asks the browser's own question (beforeunload).
    dialogs: list[str] = []

    async def answer(dialog: Any) -> None:
        dialogs.append(dialog.type)
        await dialog.dismiss()

    page.on("dialog", answer)
    await page.close(run_before_unload=True)
    await expect(page.locator("#category-form")).to_be_visible()
    assert dialogs == ["beforeunload"]


async def test_an_unchanged_dialog_lets_the_tab_close(
    page: Any, site: Site
) -> None:
    await sign_up_through_the_api(page)
    await page.goto("/categories")
    await page.click("#add")
    await page.fill("#category-form input[name=name]", "Toys")
    await page.fill("#category-form input[name=name]", "")  # undone
    dialogs: list[str] = []
    page.on("dialog", lambda d: dialogs.append(d.type))
    closed = page.wait_for_event("close")
    await page.close(run_before_unload=True)
    await closed
    assert dialogs == []


async def test_only_a_job_manager_gets_the_dashboard(
    page: Any, site: Site
) -> None:
    expect = playwright_api.expect
    jobs_link = page.locator("nav >> text=Jobs")
    page.expected_statuses = [401, 403]
    anonymous = await page.goto("/jobs/")
    assert anonymous.status == 401

    await sign_up_through_the_api(page)
    await page.goto("/")
    await expect(page.locator("#who-name")).to_have_text("ann@example.com")
    await expect(jobs_link).to_be_hidden()
    refused = await page.goto("/jobs/")
    assert refused.status == 403

    services = services_of(site.api)
    async with services.db.sessions() as session:
        await session.execute(update(User).values(can_manage_jobs=True))
        await session.commit()
    await page.goto("/")
    await expect(jobs_link).to_be_visible()
    await jobs_link.click()
    await page.wait_for_url("**/jobs/")
    await expect(page).to_have_title(re.compile("Overview"))
    await expect(page.locator("header")).to_contain_text("catalogue jobs")


async def test_the_export_page_offers_the_file_when_the_job_is_done(
    page: Any, site: Site
) -> None:
    expect = playwright_api.expect
    await sign_up_through_the_api(page)
    await page.goto("/export")
    await page.click("#start")
    link = page.locator('#exports li[data-status="done"] a')
    await expect(link).to_have_text("Download (288 products)", timeout=20_000)
    async with page.expect_download() as waiting:
        await link.click()
    download = await waiting.value
    assert download.suggested_filename.endswith(".csv")
