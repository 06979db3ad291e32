"""The dashboard in a real browser: Chromium driven by Playwright
against uvicorn on 127.0.0.1. Few and quick on purpose."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from backburner.dashboard import create_dashboard
from backburner.jobs import Client, JobState

from . import samples
from .conftest import fail, start
from .serving import serve

playwright_api = pytest.importorskip("playwright.async_api")

CHROMIUM = os.environ.get("BACKBURNER_TEST_CHROMIUM", "/usr/bin/chromium")
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
# Collects every CSP violation the page reports, before any script of
# the page runs (an init script is injected by the browser, not by the
# page, so the policy does not block it).
WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  const seen = `${event.violatedDirective} ${event.blockedURI}`;
  window.__cspViolations.push(seen);
  document.documentElement.dataset.cspViolations =
    String(window.__cspViolations.length);
});
"""


HAVE_CHROMIUM = Path(CHROMIUM).exists()


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    """A headless Chromium (missing: skipped locally, failed in CI)."""
    if not HAVE_CHROMIUM:
        message = f"no Chromium at {CHROMIUM} (BACKBURNER_TEST_CHROMIUM)"
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


async def test_overview_chart_and_requeue_of_a_failed_job(
    tmp_path: Path, browser: object
) -> None:
    async with Client(f"sqlite:///{tmp_path / 'jobs.db'}") as client:
        failed = await client.enqueue(samples.send_sms, "+44", "<b>hi</b>")
        await fail(client, failed, RuntimeError("<script>x()</script>"))
        for _ in range(3):
            await client.enqueue(samples.resize_image, "a.png")

        async with serve(create_dashboard(client)) as base:
            context = await browser.new_context()  # type: ignore[attr-defined]
            page = await context.new_page()
            await page.add_init_script(WATCH_CSP)
            console: list[str] = []
            page.on("console", lambda message: console.append(message.text))
            page.on("pageerror", lambda error: console.append(str(error)))

            await page.goto(f"{base}/")
            enqueued = page.locator('#counts [data-state="enqueued"]')
            assert await enqueued.text_content() == "3"
            assert (
                await page.locator(
                    '#counts [data-state="failed"]'
                ).text_content()
                == "1"
            )
            canvas = page.locator("#live-chart canvas").first
            await canvas.wait_for(state="visible", timeout=10_000)
            box = await canvas.bounding_box()
            assert box is not None
            assert box["width"] > 100
            assert box["height"] > 50
            history = page.locator("#history-chart canvas").first
            await history.wait_for(state="visible", timeout=10_000)
            await page.click('button[data-unit="day"]')
            await playwright_api.expect(
                page.locator("#history-status")
            ).to_have_text("Succeeded and failed jobs per day.")
            assert await page.evaluate("window.__cspViolations") == []

            await page.click('a[href="/jobs/failed"]')
            await page.click(f'a[href="/job/{failed}"] >> nth=0')
            assert (
                "RuntimeError" in await page.locator(".failure").inner_text()
            )
            assert await page.locator("script:not([src])").count() == 0
            await page.click("#requeue")
            await page.wait_for_url(f"{base}/job/{failed}?*")
            state = page.locator("h1 .state")
            assert await state.text_content() == "enqueued"
            assert (
                "1 job requeued." in await page.locator(".notice").inner_text()
            )

            violations = await page.evaluate("window.__cspViolations")
            assert violations == []
            assert not [m for m in console if "Refused to" in m], console
            assert not [m for m in console if "Error" in m], console
            assert not [m for m in console if "Failed" in m], console
            # The watch itself works: an inline style is reported.
            await page.evaluate("document.body.setAttribute('style', 'x')")
            await playwright_api.expect(
                page.locator("html")
            ).to_have_attribute("data-csp-violations", "1")
            await context.close()

        assert (await client.get(failed)).state is JobState.ENQUEUED


async def test_processing_page_follows_progress_live(
    tmp_path: Path, browser: object
) -> None:
    async with Client(f"sqlite:///{tmp_path / 'jobs.db'}") as client:
        job_id = await client.enqueue(samples.render_report, 1)
        await start(client, job_id)
        await client.set_parameter(job_id, "progress", 10)

        async with serve(create_dashboard(client)) as base:
            context = await browser.new_context()  # type: ignore[attr-defined]
            page = await context.new_page()
            await page.goto(f"{base}/jobs/processing")
            bar = f'tr[data-job="{job_id}"] progress'
            assert await page.get_attribute(bar, "value") == "10.0"

            await client.set_parameter(job_id, "progress", 75)
            await client.set_parameter(job_id, "progress_message", "almost")
            # expect() polls from Playwright's own script: a predicate
            # string would be eval'd, which the CSP rightly refuses.
            await playwright_api.expect(page.locator(bar)).to_have_js_property(
                "value", 75, timeout=15_000
            )
            message = page.locator(
                f'tr[data-job="{job_id}"] .progress-message'
            )
            await playwright_api.expect(message).to_have_text("almost")
            await client.delete(job_id)
            await page.wait_for_selector(
                f'tr[data-job="{job_id}"].gone', timeout=15_000
            )
            await context.close()
