"""pgqueuer on PostgreSQL, for ``bench.jobs_postgres``.

Its recommended setup: a factory returning a :class:`~pgqueuer.PgQueuer`
over an asyncpg connection, ``async def`` entrypoints, the schema from
``pgq install``, and its worker (``pgqueuer.run``: LISTEN/NOTIFY plus
polling, jobs fetched ten at a time by default). The same
shape as backburner's: two processes for no-op jobs, one process with up
to 50 jobs at once for 10 ms jobs, defaults for latency. Enqueue:
``Queries.enqueue`` with one job per call, or lists of a thousand.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import asyncpg
import pgqueuer
from pgqueuer import PgQueuer
from pgqueuer.db import AsyncpgDriver
from pgqueuer.models import Job
from pgqueuer.queries import Queries

from bench.jobs_record import record

KIND = "postgres"
BULK_BATCH = 1000
FILL_BATCH = 5000


@contextlib.asynccontextmanager
async def create() -> AsyncIterator[PgQueuer]:
    """The consumer's factory, as pgqueuer's documentation shapes it."""
    connection = await asyncpg.connect(os.environ["BENCH_PG_URL"])
    pgq = PgQueuer(AsyncpgDriver(connection))

    @pgq.entrypoint("noop")
    async def noop(job: Job) -> None:
        record()

    @pgq.entrypoint("sleep_10ms")
    async def sleep_10ms(job: Job) -> None:
        await asyncio.sleep(0.01)
        record()

    @pgq.entrypoint("probe")
    async def probe(job: Job) -> None:
        record(int(job.payload or b"0"))

    try:
        yield pgq
    finally:
        await connection.close()


def consumer_argvs(workload: str, url: str) -> list[list[str]]:
    """One consumer per process of the workload.

    ``pgq run`` of pgqueuer 1.6.0 fails at start with typer 0.29
    (``'str' object has no attribute 'name'`` when setting up its
    logging), so the consumer calls :func:`pgqueuer.run`, which its
    docstring gives as what ``pgq run`` does, without the CLI.
    """
    argv = [sys.executable, "-m", "bench.peers_pgqueuer"]
    if workload == "noop":
        return [argv] * 2
    if workload == "sleep":
        return [[*argv, "50"]]
    return [argv]


def main() -> None:
    """The consumer: ``python -m bench.peers_pgqueuer [MAX_TASKS]``."""
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else None
    asyncio.run(
        pgqueuer.run("bench.peers_pgqueuer:create", max_concurrent_tasks=limit)
    )


class Peer:
    """The client side, in a process of its own."""

    def __init__(self) -> None:
        url = os.environ["BENCH_PG_URL"]
        self._runner = asyncio.Runner()
        self._connection = self._runner.run(asyncpg.connect(url))
        # Each client process of a measurement opens the same database:
        # only the first installs the schema (installing twice fails).
        installed = self._runner.run(
            self._connection.fetchval("SELECT to_regclass('pgqueuer')")
        )
        if installed is None:
            subprocess.run(
                [sys.executable, "-m", "pgqueuer", "--pg-dsn", url, "install"],
                check=True,
                capture_output=True,
            )
        self._queries = Queries(AsyncpgDriver(self._connection))

    def enqueue_single(self, count: int) -> float:
        """Enqueue ``count`` no-op jobs one call each; return the seconds."""

        async def work() -> float:
            started = time.perf_counter()
            for _ in range(count):
                await self._queries.enqueue("noop", None)
            return time.perf_counter() - started

        return self._runner.run(work())

    def enqueue_bulk(self, count: int) -> float:
        """Enqueue lists of a thousand jobs per call."""

        async def work() -> float:
            started = time.perf_counter()
            await self._many("noop", count, BULK_BATCH)
            return time.perf_counter() - started

        return self._runner.run(work())

    async def _many(self, entrypoint: str, count: int, batch: int) -> None:
        for start in range(0, count, batch):
            size = min(batch, count - start)
            await self._queries.enqueue(
                [entrypoint] * size, [None] * size, [0] * size
            )

    def fill(self, workload: str, count: int) -> None:
        """Put ``count`` jobs of ``workload`` on the queue."""
        name = "sleep_10ms" if workload == "sleep" else "noop"
        self._runner.run(self._many(name, count, FILL_BATCH))

    def send_probe(self, number: int) -> None:
        """Enqueue one probe job."""
        self._runner.run(self._queries.enqueue("probe", str(number).encode()))

    def close(self) -> None:
        """Close the connection and the event loop."""
        self._runner.run(self._connection.close())
        self._runner.close()


if __name__ == "__main__":
    main()
