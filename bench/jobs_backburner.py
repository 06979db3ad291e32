"""backburner's side of the jobs benchmark: SQLite storage, default setup.

The job functions are ``async def``: backburner runs them on the
server's event loop, which is its recommended shape for work that waits
(the 10 ms job awaits ``asyncio.sleep``). The consumer is the
``backburner worker`` command, as an application runs it, with
``--processes`` and ``--concurrency`` chosen per workload (see
:func:`bench.jobs.consumer_argv`); every other setting is the server's default,
including INFO logging of each job's start and end (sent to a file).

The client side (:class:`Peer`) runs in a process of its own started by
:mod:`bench.jobs_client`, like a web application.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

from backburner.jobs.client import Call, Client
from backburner.storage.sqlite import SQLiteStorage
from bench.jobs_record import record

DB_ENV = "BENCH_BACKBURNER_DB"
BULK_BATCH = 1000


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


class Peer:
    """The client side: enqueue from a process of its own, like a web app."""

    def __init__(self) -> None:
        self._runner = asyncio.Runner()
        self._storage = SQLiteStorage(os.environ[DB_ENV])
        self._client = Client(self._storage)
        # Open the connection and install the schema before any timing.
        self._runner.run(self._storage.migrate())

    def enqueue_single(self, count: int) -> float:
        """Enqueue ``count`` no-op jobs one call each; return the seconds."""

        async def work() -> float:
            started = time.perf_counter()
            for _ in range(count):
                await self._client.enqueue(noop)
            return time.perf_counter() - started

        return self._runner.run(work())

    def enqueue_bulk(self, count: int) -> float:
        """Enqueue ``count`` no-op jobs with ``enqueue_many``, a thousand
        per call (one transaction each); return the seconds."""

        async def work() -> float:
            started = time.perf_counter()
            await self._many(noop, count)
            return time.perf_counter() - started

        return self._runner.run(work())

    async def _many(self, func: Callable[..., Any], count: int) -> None:
        for start in range(0, count, BULK_BATCH):
            size = min(BULK_BATCH, count - start)
            await self._client.enqueue_many([Call(func)] * size)

    def fill(self, workload: str, count: int) -> None:
        """Put ``count`` jobs of ``workload`` on the queue, untimed."""
        func = sleep_10ms if workload == "sleep" else noop
        self._runner.run(self._many(func, count))

    def send_probe(self, number: int) -> None:
        """Enqueue one probe job."""
        self._runner.run(self._client.enqueue(probe, number))

    def close(self) -> None:
        """Close the storage and the event loop."""
        self._runner.run(self._storage.close())
        self._runner.close()
