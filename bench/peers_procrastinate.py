"""procrastinate on PostgreSQL, for ``bench.jobs_postgres``.

Its recommended setup: an :class:`~procrastinate.App` over a
``PsycopgConnector`` (psycopg 3, async), ``async def`` tasks, the
schema applied by its schema manager, and the ``procrastinate worker``
command, which LISTENs for new jobs by default. Concurrency is
procrastinate's ``--concurrency`` (async jobs per worker process), in
the same shape as backburner's: two processes of 50 for no-op jobs, one
of 50 for 10 ms jobs, the default (1) for latency. Enqueue:
``defer_async`` one call each, ``batch_defer_async`` a thousand per call.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import procrastinate

from bench.jobs_record import record

KIND = "postgres"
BULK_BATCH = 1000
FILL_BATCH = 5000

app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(
        conninfo=os.environ.get("BENCH_PG_URL", "")
    )
)


@app.task(name="noop")
async def noop() -> None:
    """Do nothing but say so."""
    record()


@app.task(name="sleep_10ms")
async def sleep_10ms() -> None:
    """Wait 10 ms."""
    await asyncio.sleep(0.01)
    record()


@app.task(name="probe")
async def probe(number: int) -> None:
    """Record the moment this job started, under ``number``."""
    record(number)


def consumer_argvs(workload: str, url: str) -> list[list[str]]:
    """One ``procrastinate worker`` per process of the workload."""
    processes, concurrency = {
        "noop": (2, 50),
        "sleep": (1, 50),
        "latency": (1, 1),
    }[workload]
    argv = [
        sys.executable,
        "-m",
        "procrastinate",
        "--app=bench.peers_procrastinate.app",
        "worker",
        f"--concurrency={concurrency}",
    ]
    return [argv] * processes


class Peer:
    """The client side, in a process of its own."""

    def __init__(self) -> None:
        self._runner = asyncio.Runner()
        self._runner.run(self._open())

    async def _open(self) -> None:
        await app.open_async()
        # Each client process of a measurement opens the same database:
        # only the first applies the schema (applying twice fails).
        found = await app.connector.execute_query_one_async(
            "SELECT to_regclass('procrastinate_jobs') IS NOT NULL AS found"
        )
        if not found["found"]:
            await app.schema_manager.apply_schema_async()

    def enqueue_single(self, count: int) -> float:
        """Enqueue ``count`` no-op jobs one call each; return the seconds."""

        async def work() -> float:
            started = time.perf_counter()
            for _ in range(count):
                await noop.defer_async()
            return time.perf_counter() - started

        return self._runner.run(work())

    def enqueue_bulk(self, count: int) -> float:
        """Enqueue with ``batch_defer_async``, a thousand per call."""

        async def work() -> float:
            started = time.perf_counter()
            await self._many(noop, count, BULK_BATCH)
            return time.perf_counter() - started

        return self._runner.run(work())

    async def _many(
        self,
        task: procrastinate.tasks.Task,
        count: int,
        batch: int,  # type: ignore[type-arg]
    ) -> None:
        for start in range(0, count, batch):
            size = min(batch, count - start)
            await task.batch_defer_async(*([{}] * size))

    def fill(self, workload: str, count: int) -> None:
        """Put ``count`` jobs of ``workload`` on the queue."""
        task = sleep_10ms if workload == "sleep" else noop
        self._runner.run(self._many(task, count, FILL_BATCH))

    def send_probe(self, number: int) -> None:
        """Enqueue one probe job."""
        self._runner.run(probe.defer_async(number=number))

    def close(self) -> None:
        """Close the connector and the event loop."""
        self._runner.run(app.close_async())
        self._runner.close()
