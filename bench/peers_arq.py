"""arq on Redis, for ``bench.jobs_postgres``.

Its recommended setup: ``async def`` functions taking ``ctx``, a
``WorkerSettings`` class, and the ``arq`` command. arq runs jobs
concurrently on one event loop (``max_jobs``, default 10) and polls
Redis every ``poll_delay`` (default 0.5 s) when idle. Two processes of
50 jobs for no-op jobs, one of 50 for 10 ms jobs, defaults for latency.
Enqueue: ``enqueue_job`` one call each; arq has no batch call, so bulk
runs a thousand ``enqueue_job`` calls at once (``asyncio.gather``).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any, ClassVar

from arq import create_pool
from arq.connections import RedisSettings

from bench.jobs_record import record

KIND = "redis"
BULK_BATCH = 1000
_SETTINGS = RedisSettings.from_dsn(
    os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/11")
)


async def noop(ctx: dict[str, Any]) -> None:
    """Do nothing but say so."""
    record()


async def sleep_10ms(ctx: dict[str, Any]) -> None:
    """Wait 10 ms."""
    await asyncio.sleep(0.01)
    record()


async def probe(ctx: dict[str, Any], number: int) -> None:
    """Record the moment this job started, under ``number``."""
    record(number)


class WorkerSettings:
    """No-op and latency workers: arq's defaults, but for ``max_jobs``."""

    functions: ClassVar[list[Any]] = [noop, sleep_10ms, probe]
    redis_settings = _SETTINGS
    max_jobs = int(os.environ.get("BENCH_ARQ_MAX_JOBS", "10"))


def consumer_argvs(workload: str, url: str) -> list[list[str]]:
    """``arq`` processes; ``max_jobs`` through the environment."""
    processes, max_jobs = {
        "noop": (2, 50),
        "sleep": (1, 50),
        "latency": (1, 10),
    }[workload]
    argv = [
        "env",
        f"BENCH_ARQ_MAX_JOBS={max_jobs}",
        sys.executable,
        "-m",
        "arq",
        "bench.peers_arq.WorkerSettings",
    ]
    return [argv] * processes


class Peer:
    """The client side, in a process of its own."""

    def __init__(self) -> None:
        self._runner = asyncio.Runner()
        self._pool = self._runner.run(create_pool(_SETTINGS))

    def enqueue_single(self, count: int) -> float:
        """Enqueue ``count`` no-op jobs one call each; return the seconds."""

        async def work() -> float:
            started = time.perf_counter()
            for _ in range(count):
                await self._pool.enqueue_job("noop")
            return time.perf_counter() - started

        return self._runner.run(work())

    def enqueue_bulk(self, count: int) -> float:
        """A thousand ``enqueue_job`` calls at once, batch after batch."""

        async def work() -> float:
            started = time.perf_counter()
            await self._many("noop", count)
            return time.perf_counter() - started

        return self._runner.run(work())

    async def _many(self, name: str, count: int) -> None:
        for start in range(0, count, BULK_BATCH):
            size = min(BULK_BATCH, count - start)
            await asyncio.gather(
                *(self._pool.enqueue_job(name) for _ in range(size))
            )

    def fill(self, workload: str, count: int) -> None:
        """Put ``count`` jobs of ``workload`` on the queue."""
        name = "sleep_10ms" if workload == "sleep" else "noop"
        self._runner.run(self._many(name, count))

    def send_probe(self, number: int) -> None:
        """Enqueue one probe job."""
        self._runner.run(self._pool.enqueue_job("probe", number))

    def close(self) -> None:
        """Close the pool and the event loop."""
        self._runner.run(self._pool.aclose())
        self._runner.close()
