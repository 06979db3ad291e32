"""Celery on Redis, for ``bench.jobs_postgres``.

Its recommended setup: a :class:`~celery.Celery` app with the Redis
broker, no result backend (``task_ignore_result``: these tasks return
nothing), and the ``celery worker`` command: the prefork pool for no-op
jobs (two processes, one per core), the threads pool of 50 for 10 ms
jobs (Celery's advice for I/O-bound work), the defaults for latency.
Enqueue: ``delay`` one call each; a ``group`` of a thousand signatures
per ``apply_async`` for bulk.
"""

from __future__ import annotations

import os
import sys
import time

from celery import Celery, group

from bench.jobs_record import record

KIND = "redis"
BULK_BATCH = 1000

app = Celery(
    "bench",
    broker=os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/11"),
)
app.conf.task_ignore_result = True
app.conf.broker_connection_retry_on_startup = True


@app.task(name="noop")
def noop() -> None:
    """Do nothing but say so."""
    record()


@app.task(name="sleep_10ms")
def sleep_10ms() -> None:
    """Wait 10 ms."""
    time.sleep(0.01)
    record()


@app.task(name="probe")
def probe(number: int) -> None:
    """Record the moment this job started, under ``number``."""
    record(number)


def consumer_argvs(workload: str, url: str) -> list[list[str]]:
    """``celery worker`` with the workload's pool."""
    pool = {
        "noop": ["--pool", "prefork", "--concurrency", "2"],
        "sleep": ["--pool", "threads", "--concurrency", "50"],
        "latency": [],
    }[workload]
    return [
        [
            sys.executable,
            "-m",
            "celery",
            "--app",
            "bench.peers_celery",
            "worker",
            "--loglevel",
            "WARNING",
            *pool,
        ]
    ]


class Peer:
    """The client side, in a process of its own."""

    def __init__(self) -> None:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=3)

    def enqueue_single(self, count: int) -> float:
        """Enqueue ``count`` no-op jobs one call each; return the seconds."""
        started = time.perf_counter()
        for _ in range(count):
            noop.delay()
        return time.perf_counter() - started

    def enqueue_bulk(self, count: int) -> float:
        """A ``group`` of a thousand signatures per ``apply_async``."""
        started = time.perf_counter()
        self._many(noop, count)
        return time.perf_counter() - started

    def _many(self, task: object, count: int) -> None:
        for start in range(0, count, BULK_BATCH):
            size = min(BULK_BATCH, count - start)
            group(task.s() for _ in range(size)).apply_async()  # type: ignore[attr-defined]

    def fill(self, workload: str, count: int) -> None:
        """Put ``count`` jobs of ``workload`` on the queue."""
        self._many(sleep_10ms if workload == "sleep" else noop, count)

    def send_probe(self, number: int) -> None:
        """Enqueue one probe job."""
        probe.delay(number)

    def close(self) -> None:
        """Nothing to release: Celery's pool closes at exit."""
