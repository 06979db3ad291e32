"""Dramatiq on Redis, for ``bench.jobs_postgres``.

Its recommended setup: a ``RedisBroker`` set as the global broker,
plain functions as actors, and the ``dramatiq`` command (worker
processes of worker threads, default: one process per core, 8 threads
each). Two processes of 8 threads for no-op jobs, one of 50 threads for
10 ms jobs, one of 8 for latency. Enqueue: ``send`` one call each; a
``group`` of a thousand messages per ``run()`` for bulk.
"""

from __future__ import annotations

import os
import sys
import time

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from bench.jobs_record import record

KIND = "redis"
BULK_BATCH = 1000

broker = RedisBroker(
    url=os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/11")
)
dramatiq.set_broker(broker)


@dramatiq.actor
def noop() -> None:
    """Do nothing but say so."""
    record()


@dramatiq.actor
def sleep_10ms() -> None:
    """Wait 10 ms."""
    time.sleep(0.01)
    record()


@dramatiq.actor
def probe(number: int) -> None:
    """Record the moment this job started, under ``number``."""
    record(number)


def consumer_argvs(workload: str, url: str) -> list[list[str]]:
    """The ``dramatiq`` command with the workload's processes/threads."""
    processes, threads = {
        "noop": (2, 8),
        "sleep": (1, 50),
        "latency": (1, 8),
    }[workload]
    return [
        [
            sys.executable,
            "-m",
            "dramatiq",
            "bench.peers_dramatiq",
            "--processes",
            str(processes),
            "--threads",
            str(threads),
        ]
    ]


class Peer:
    """The client side, in a process of its own."""

    def __init__(self) -> None:
        broker.client.ping()

    def enqueue_single(self, count: int) -> float:
        """Enqueue ``count`` no-op jobs one call each; return the seconds."""
        started = time.perf_counter()
        for _ in range(count):
            noop.send()
        return time.perf_counter() - started

    def enqueue_bulk(self, count: int) -> float:
        """A ``group`` of a thousand messages per ``run()``."""
        started = time.perf_counter()
        self._many(noop, count)
        return time.perf_counter() - started

    def _many(self, actor: dramatiq.Actor, count: int) -> None:  # type: ignore[type-arg]
        for start in range(0, count, BULK_BATCH):
            size = min(BULK_BATCH, count - start)
            dramatiq.group(actor.message() for _ in range(size)).run()

    def fill(self, workload: str, count: int) -> None:
        """Put ``count`` jobs of ``workload`` on the queue."""
        self._many(sleep_10ms if workload == "sleep" else noop, count)

    def send_probe(self, number: int) -> None:
        """Enqueue one probe job."""
        probe.send(number)

    def close(self) -> None:
        """Close the broker's connections."""
        broker.close()
