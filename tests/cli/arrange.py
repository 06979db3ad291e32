"""Put jobs in the states a worker would, through the storage interface.

The command-line tests need failed jobs and live servers without running
a job server: these helpers make the same state changes a worker makes.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from backburner.jobs import states
from backburner.jobs.results import record_result
from backburner.storage import open_storage
from backburner.storage.base import JobId, JSONValue, ServerInfo

TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "job_samples.py", line 1, in flaky\n'
    "RuntimeError: boom 1\n"
)


def announce(url: str, name: str, queues: tuple[str, ...]) -> None:
    """Register a live server called ``name``."""

    async def work() -> None:
        async with open_storage(url) as storage:
            now = datetime.now(UTC)
            await storage.announce_server(
                ServerInfo(name, queues, 3, now, now)
            )

    asyncio.run(work())


def fail(
    url: str,
    job_id: JobId,
    queue: str = "default",
    message: str = "boom 1",
) -> None:
    """Fetch ``job_id`` and record it as failed, as a worker would,
    with ``message`` as the exception's message (and in the reason).

    ``job_id`` must be the oldest enqueued job on ``queue``.
    """

    async def work() -> None:
        async with open_storage(url) as storage:
            now = datetime.now(UTC)
            info = ServerInfo("test:1", (queue,), 1, now, now)
            await storage.announce_server(info)
            (record,) = await storage.fetch("test:1", [queue], 1, now)
            assert record.id == job_id
            data = {
                "exception_type": "builtins.RuntimeError",
                "message": message,
                "traceback": TRACEBACK,
            }
            reason = "failed" if message == "boom 1" else f"failed: {message}"
            change = states.fail(job_id, record.version, now, reason, data)
            outcome = await storage.apply_change(change)
            assert outcome.applied
            await storage.remove_server("test:1")

    asyncio.run(work())


def succeed(url: str, job_id: JobId, value: object) -> None:
    """Fetch ``job_id`` and record that it returned ``value``, as a
    worker would (the oldest enqueued job on the default queue)."""

    async def work() -> None:
        async with open_storage(url) as storage:
            now = datetime.now(UTC)
            info = ServerInfo("test:1", ("default",), 1, now, now)
            await storage.announce_server(info)
            (record,) = await storage.fetch("test:1", ["default"], 1, now)
            assert record.id == job_id
            data: dict[str, JSONValue] = {"server": "test:1"}
            if value is not None:
                record_result(data, value, record)
            change = states.succeed(
                job_id, record.version, now, data, timedelta(days=1)
            )
            outcome = await storage.apply_change(change)
            assert outcome.applied
            await storage.remove_server("test:1")

    asyncio.run(work())
