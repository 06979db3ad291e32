"""backburner on PostgreSQL, for ``bench.jobs_postgres``.

The job functions are ``async def`` (run on the server's event loop, the
recommended shape for work that waits). The consumer is the
``backburner worker`` command with the storage URL of the run's fresh
database; every other setting is the server's default, including INFO
logging of each job's start and end (to a file). The client enqueues
with :class:`~backburner.jobs.Client`: ``enqueue`` one call each, and
``enqueue_many`` a thousand jobs per call for bulk.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from backburner.jobs.client import Call, Client
from backburner.storage import open_storage
from bench.jobs_record import record

KIND = "postgres"
BULK_BATCH = 1000
# Filling a deep backlog (untimed): bigger transactions.
FILL_BATCH = 5000


async def noop() -> None:
    """Do nothing but say so."""
    record()


async def sleep_10ms() -> None:
    """Wait 10 ms without holding a worker thread."""
    await asyncio.sleep(0.01)
    record()


async def probe(number: int) -> None:
    """Record the moment this job started, under ``number``."""
    record(number)


def consumer_argvs(workload: str, url: str) -> list[list[str]]:
    """The consumer's command line for ``workload`` (one: the command
    starts its own server processes).

    No-op jobs: two processes of 50 workers each (a fetch takes many
    jobs at once); 10 ms jobs: 50 workers in one process; latency: the
    default worker count, one process.
    """
    processes, concurrency = {
        "noop": (2, 50),
        "sleep": (1, 50),
        "latency": (1, None),
    }[workload]
    argv = [
        sys.executable,
        "-m",
        "backburner",
        "worker",
        "--storage",
        url,
        "--import",
        "bench.peers_backburner",
        "--processes",
        str(processes),
    ]
    if concurrency is not None:
        argv += ["--concurrency", str(concurrency)]
    return [argv]


class Peer:
    """The client side, in a process of its own like a web application."""

    def __init__(self) -> None:
        self._runner = asyncio.Runner()
        self._storage = open_storage(os.environ["BENCH_PG_URL"])
        self._client = Client(self._storage)
        # Open the pool and install the schema before any timing.
        self._runner.run(self._storage.migrate())
        self._runner.run(self._client.counts())

    def enqueue_single(self, count: int) -> float:
        """Enqueue ``count`` no-op jobs one call each; return the seconds."""

        async def work() -> float:
            started = time.perf_counter()
            for _ in range(count):
                await self._client.enqueue(noop)
            return time.perf_counter() - started

        return self._runner.run(work())

    def enqueue_bulk(self, count: int) -> float:
        """Enqueue ``count`` no-op jobs, a thousand per call."""

        async def work() -> float:
            started = time.perf_counter()
            await self._many(noop, count, BULK_BATCH)
            return time.perf_counter() - started

        return self._runner.run(work())

    async def _many(self, func: object, count: int, batch: int) -> None:
        for start in range(0, count, batch):
            size = min(batch, count - start)
            await self._client.enqueue_many([Call(func)] * size)  # type: ignore[arg-type]

    def fill(self, workload: str, count: int) -> None:
        """Put ``count`` jobs of ``workload`` on the queue, untimed."""
        func = sleep_10ms if workload == "sleep" else noop
        self._runner.run(self._many(func, count, FILL_BATCH))

    def send_probe(self, number: int) -> None:
        """Enqueue one probe job."""
        self._runner.run(self._client.enqueue(probe, number))

    def close(self) -> None:
        """Close the storage and the event loop."""
        self._runner.run(self._storage.close())
        self._runner.close()
