"""Huey's side of the jobs benchmark: ``SqliteHuey`` in its default setup.

The Huey instance reads its database file from ``BENCH_HUEY_DB`` when
this module is imported, because the consumer (``huey_consumer
bench.jobs_huey.huey``) finds the instance by import path. Every other
setting is Huey's default: WAL journal, SQLite's default ``synchronous``
(FULL: one fsync per commit), results stored only for tasks that return
something (these return nothing), polling from 0.1 s backing off by
1.15 per empty poll. With ``BENCH_HUEY_NO_FSYNC`` set (``python -m
bench.jobs --huey-no-fsync``) Huey runs with ``fsync=False``
(``synchronous=OFF``), for a comparison that does not hinge on fsync.

The consumer's command line is in :func:`bench.jobs.consumer_argv`.
The client side (:class:`Peer`) runs in a process of its
own started by :mod:`bench.jobs_client`, like a web application.
"""

from __future__ import annotations

import os
import time

from huey import SqliteHuey

from bench.jobs_record import record

DB_ENV = "BENCH_HUEY_DB"
NO_FSYNC_ENV = "BENCH_HUEY_NO_FSYNC"

# Set by bench.jobs for both the consumer and the client: an import
# without it fails at once rather than creating a stray file.
huey = SqliteHuey(
    "bench",
    filename=os.environ[DB_ENV],
    # --huey-no-fsync: synchronous=OFF, Huey's only setting below FULL.
    fsync=False if os.environ.get(NO_FSYNC_ENV) else None,
)


@huey.task()
def noop() -> None:
    """Do nothing but say so."""
    record()


@huey.task()
def sleep_10ms() -> None:
    """Wait 10 ms (Huey runs no coroutines: a sleeping thread)."""
    time.sleep(0.01)
    record()


@huey.task()
def probe(number: int) -> None:
    """Record the moment this job started, under ``number``."""
    record(number)


class Peer:
    """The client side: enqueue from a process of its own, like a web app."""

    def __init__(self) -> None:
        # The first call opens the connection and creates the tables, so
        # that no timing includes them.
        huey.storage.flush_queue()

    def enqueue_single(self, count: int) -> float:
        """Enqueue ``count`` no-op jobs one call each; return the seconds."""
        started = time.perf_counter()
        for _ in range(count):
            noop()
        return time.perf_counter() - started

    def enqueue_bulk(self, count: int) -> float:
        """Enqueue ``count`` no-op jobs with ``map``; return the seconds.

        Huey has no batch enqueue: ``map`` is its documented way to
        enqueue many calls, one storage transaction each.
        """
        started = time.perf_counter()
        noop.map([()] * count)
        return time.perf_counter() - started

    def fill(self, workload: str, count: int) -> None:
        """Put ``count`` jobs of ``workload`` on the queue, untimed."""
        task = sleep_10ms if workload == "sleep" else noop
        task.map([()] * count)

    def send_probe(self, number: int) -> None:
        """Enqueue one probe job."""
        probe(number)

    def close(self) -> None:
        """Nothing to release: Huey closes its connection at exit."""
