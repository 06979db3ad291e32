"""Job functions for the progress, continuation and mutex tests."""

from __future__ import annotations

import asyncio
import threading

from backburner.cancellation import CancellationToken
from backburner.jobs import JobContext, current_job, mutex, retry

# Per key: how many executions run now, the most seen at once, and how
# many ran in all; ``order`` lists finished runs by name.
active: dict[str, int] = {}
most_at_once: dict[str, int] = {}
runs: dict[str, int] = {}
order: list[str] = []
seen: dict[str, object] = {}
release = threading.Event()
reported = threading.Event()


def reset() -> None:
    for found in (active, most_at_once, runs, seen):
        found.clear()
    order.clear()
    release.clear()
    reported.clear()


async def report_then_wait(steps: int, context: JobContext) -> None:
    """Reports progress ``steps`` times, then waits for ``release``."""
    for step in range(1, steps + 1):
        context.report_progress(step / steps, f"step {step} of {steps}")
    reported.set()
    await asyncio.to_thread(release.wait, 30)


def sync_report(token: CancellationToken, context: JobContext) -> None:
    """A thread job: reports through current_job() and its parameter."""
    found = current_job()
    seen["same"] = found is context
    seen["token"] = context.token is token
    seen["attempt"] = context.attempt
    assert found is not None
    found.report_progress(0.25, "a quarter")
    reported.set()
    release.wait(30)


async def note(name: str) -> None:
    """Records that ``name`` ran."""
    runs[name] = runs.get(name, 0) + 1
    order.append(name)


@retry(attempts=1)
async def explode(name: str) -> None:
    """Fails at once; never retried."""
    runs[name] = runs.get(name, 0) + 1
    raise RuntimeError(f"{name} failed")


async def hold(key: str) -> None:
    """Counts overlapping runs of ``key`` while it sleeps a little."""
    active[key] = active.get(key, 0) + 1
    runs[key] = runs.get(key, 0) + 1
    most_at_once[key] = max(most_at_once.get(key, 0), active[key])
    try:
        await asyncio.sleep(0.02)
    finally:
        active[key] -= 1


async def hold_until_released(key: str) -> None:
    """Counts overlapping runs of ``key`` and runs until ``release``."""
    active[key] = active.get(key, 0) + 1
    runs[key] = runs.get(key, 0) + 1
    most_at_once[key] = max(most_at_once.get(key, 0), active[key])
    try:
        await asyncio.to_thread(release.wait, 30)
    finally:
        active[key] -= 1


async def wait_release(name: str) -> None:
    """Runs until ``release`` is set."""
    runs[name] = runs.get(name, 0) + 1
    reported.set()
    await asyncio.to_thread(release.wait, 30)


@mutex("one-at-a-time")
async def exclusive(key: str) -> None:
    """Declared with a mutex of limit 1."""
    await hold(key)


@mutex(lambda tenant, key: f"tenant:{tenant}", limit=2)
async def per_tenant(tenant: str, key: str) -> None:
    """A mutex per tenant, two at a time."""
    await hold(key)


class Reporter:
    """A runner class whose method takes the job's context."""

    async def run(self, label: str, context: JobContext) -> None:
        seen["runner"] = (label, context.job_id, current_job() is context)
        context.report_progress(0.5, label)
