"""Shared pieces of the server tests: fixtures, fast tuning, waiting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import job_samples
import pytest
import server_samples

from backburner.jobs import Client, Job, JobState
from backburner.storage import Storage, open_storage

# Short intervals so that tests wait milliseconds, not seconds; every
# wait in the tests is on a condition, these only bound how soon it
# holds.
FAST = {
    "poll_interval": 0.05,
    "heartbeat_interval": 0.2,
    "dead_after": 2.0,
    "abort_check_interval": 0.1,
    "shutdown_grace": 0.1,
    "shutdown_timeout": 10.0,
    "promote_interval": 0.1,
}
TESTS_JOBS = Path(__file__).parent


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    """A migrated SQLite storage in a fresh file."""
    opened = open_storage(f"sqlite:///{tmp_path / 'jobs.db'}")
    await opened.migrate()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def client(storage: Storage) -> Client:
    return Client(storage)


@pytest.fixture(autouse=True)
def fresh_samples() -> None:
    job_samples.calls.clear()
    job_samples.events.clear()
    server_samples.reset()


async def eventually(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool],
    within: float = 30.0,
    what: str = "condition",
) -> None:
    """Wait until ``check()`` holds, looking every 20 ms."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def state_is(client: Client, job_id: int, state: JobState) -> bool:
    return (await client.get(job_id)).state is state


def states_of(job: Job) -> list[str]:
    return [entry.state.value for entry in job.history]
