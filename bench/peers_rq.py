"""RQ on Redis, for ``bench.jobs_postgres``.

Its recommended setup: a :class:`~rq.Queue` on a Redis connection, plain
functions, and the ``rq worker-pool`` command with its default worker
class, which forks a work horse per job (RQ's isolation model). Two
workers for no-op jobs (one per core), ten for 10 ms jobs (an RQ worker
runs one job at a time), one for latency. Enqueue: ``Queue.enqueue``
one call each, ``Queue.enqueue_many`` (one pipeline) a thousand per call.
"""

from __future__ import annotations

import os
import sys
import time

from redis import Redis
from rq import Queue

from bench.jobs_record import record

KIND = "redis"
BULK_BATCH = 1000


def noop() -> None:
    """Do nothing but say so."""
    record()


def sleep_10ms() -> None:
    """Wait 10 ms."""
    time.sleep(0.01)
    record()


def probe(number: int) -> None:
    """Record the moment this job started, under ``number``."""
    record(number)


def consumer_argvs(workload: str, url: str) -> list[list[str]]:
    """``rq worker-pool`` with the workload's number of workers."""
    workers = {"noop": 2, "sleep": 10, "latency": 1}[workload]
    return [
        [
            sys.executable,
            "-m",
            "rq.cli",
            "worker-pool",
            "--url",
            url,
            "--num-workers",
            str(workers),
            "--quiet",
            "default",
        ]
    ]


class Peer:
    """The client side, in a process of its own."""

    def __init__(self) -> None:
        self._queue = Queue(
            "default", connection=Redis.from_url(os.environ["BENCH_REDIS"])
        )
        self._queue.connection.ping()

    def enqueue_single(self, count: int) -> float:
        """Enqueue ``count`` no-op jobs one call each; return the seconds."""
        started = time.perf_counter()
        for _ in range(count):
            self._queue.enqueue(noop)
        return time.perf_counter() - started

    def enqueue_bulk(self, count: int) -> float:
        """Enqueue with ``enqueue_many``, a thousand per call."""
        started = time.perf_counter()
        self._many(noop, count)
        return time.perf_counter() - started

    def _many(self, func: object, count: int) -> None:
        for start in range(0, count, BULK_BATCH):
            size = min(BULK_BATCH, count - start)
            self._queue.enqueue_many(
                [Queue.prepare_data(func) for _ in range(size)]  # type: ignore[arg-type]
            )

    def fill(self, workload: str, count: int) -> None:
        """Put ``count`` jobs of ``workload`` on the queue."""
        self._many(sleep_10ms if workload == "sleep" else noop, count)

    def send_probe(self, number: int) -> None:
        """Enqueue one probe job."""
        self._queue.enqueue(probe, number)

    def close(self) -> None:
        """Close the connection."""
        self._queue.connection.close()
