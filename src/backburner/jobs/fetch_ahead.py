"""Fetching ahead: jobs taken for workers that are about to be free.

A server that fetches only for its free workers leaves each worker idle
for a whole storage round trip (a millisecond or more) after every job,
and longer when it frees up while another fetch is in flight. For jobs
that take a few milliseconds that idle time is a good part of each
worker's cycle. So the server also fetches, beyond its free workers,
about as many jobs as its workers are expected to finish within
``window`` seconds, judged by how many finished over the last
:data:`PERIOD`; a worker that frees up starts the next of them at once,
and the next fetch refills.

Where jobs finish less often than once per ``window`` (long jobs, or a
few workers), the count is zero: nothing is fetched ahead, and a job is
never held in *processing* while it waits for a worker that will only
be free much later. A server whose few short jobs run beside long ones
fetches ahead only as many as its short jobs' pace asks for. Should
the jobs get much longer all at once, the jobs already fetched ahead
would wait: the server puts them back on their queues once the oldest
has waited longer than ``hold``, and fetches ahead again only after a
worker has freed up.

What it costs: a job fetched ahead is in *processing*, held by this
server, for a few milliseconds before it starts, and a job enqueued
meanwhile on a queue listed earlier starts after it. A job deleted or
requeued in those milliseconds is set aside when the server hears of it
(at once when that happened in its own process), and dropped once the
server's check for aborted jobs reads that it changed; otherwise it
starts, and its token fires at that check, as when it is deleted just
after it starts. The notice names the job, not the version: one that
reaches the server late may be about an earlier run of a job fetched
again since (requeued or recovered from another server), and that job
goes back to wait for a worker once the check finds it unchanged.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Collection, Iterable

from backburner.storage.base import JobId, JobRecord

__all__ = ["FetchAhead"]

PERIOD = 0.1
"""Seconds over which finished jobs are counted: several cycles of the
short jobs fetching ahead is for, and short enough that it takes effect
early in a burst of work."""


class FetchAhead:
    """How many jobs to fetch beyond the free workers, and those jobs.

    Args:
        workers: the server's concurrency (at most this many are
            fetched ahead).
        window: seconds of the busy workers' expected work to fetch
            ahead; 0 turns fetching ahead off.
        hold: seconds the oldest job fetched ahead may wait for a worker
            before :meth:`overdue` says so.
        clock: where the time comes from (seconds, monotonic).
    """

    def __init__(
        self,
        workers: int,
        window: float,
        hold: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._workers = workers
        self._window = window
        self._hold = hold
        self._clock = clock
        # When recent jobs finished (monotonic), oldest first.
        self._finished: collections.deque[float] = collections.deque()
        self._paused = False
        # Jobs waiting for a worker, oldest first, each with the
        # (monotonic) moment it was fetched.
        self._jobs: collections.deque[tuple[JobRecord, float]] = (
            collections.deque()
        )

    def __len__(self) -> int:
        return len(self._jobs)

    def finished(self) -> None:
        """A job ended and its worker is free."""
        now = self._clock()
        self._finished.append(now)
        self._forget(now)
        self._paused = False

    def target(self) -> int:
        """How many jobs to keep fetched ahead."""
        if self._paused or self._window <= 0:
            return 0
        self._forget(self._clock())
        expected = len(self._finished) * self._window / PERIOD
        return min(self._workers, int(expected))

    def _forget(self, now: float) -> None:
        finished = self._finished
        while finished and finished[0] < now - PERIOD:
            finished.popleft()

    def limit(self, free: int) -> int:
        """How many jobs to fetch now, with ``free`` free workers.

        Returns 0 when no fetch is due: no worker is free and less than
        half of the target is missing (so that fetches stay large rather
        than one per finished job).
        """
        target = self.target()
        missing = max(target - len(self._jobs), 0)
        if free == 0 and (missing == 0 or 2 * missing < target):
            return 0
        return free + missing

    def keep(self, jobs: Iterable[JobRecord]) -> None:
        """Hold ``jobs`` until workers are free for them."""
        now = self._clock()
        self._jobs.extend((job, now) for job in jobs)

    def take(self) -> JobRecord | None:
        """The oldest job fetched ahead, or None."""
        if not self._jobs:
            return None
        return self._jobs.popleft()[0]

    def drop(self, job_ids: Collection[JobId]) -> list[JobRecord]:
        """Forget the jobs of ``job_ids`` (maybe changed by someone else
        since they were fetched); return those that were held."""
        dropped = [job for job, _ in self._jobs if job.id in job_ids]
        if dropped:
            self._jobs = collections.deque(
                entry for entry in self._jobs if entry[0].id not in job_ids
            )
        return dropped

    def overdue(self) -> bool:
        """Whether the oldest job has waited for a worker too long."""
        if not self._jobs:
            return False
        return self._clock() - self._jobs[0][1] > self._hold

    def seconds_to_overdue(self) -> float | None:
        """Seconds until :meth:`overdue` turns true, or None (no jobs)."""
        if not self._jobs:
            return None
        waited = self._clock() - self._jobs[0][1]
        return max(self._hold - waited, 0.0)

    def give_up(self) -> list[JobRecord]:
        """Hand back every job held, and fetch none ahead for now.

        Fetching ahead resumes once a job finishes (:meth:`finished`).
        """
        jobs = [job for job, _ in self._jobs]
        self._jobs.clear()
        self._paused = True
        return jobs
