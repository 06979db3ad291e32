"""Jobs handed straight to idle servers, until their servers fetch them.

An enqueue that finds an idle server taking its queue writes the job in
*processing*, held by that server (see create_job_handoff in
``queries.sql`` and the ``idle_workers`` table). The server learns of
the job from the NOTIFY, or at once when the enqueue ran through the
same storage; the job waits here until that server's next fetch, which
returns it instead of taking one from a queue: no second durable commit
between the enqueue and the job's start, and no round trip either when
the NOTIFY carried the whole job (:func:`handed_record`). A job whose
arguments were too long for a NOTIFY comes as its id alone, and the
fetch reads it.

Should the server never hear of the job (its listening connection was
down), its reconcile loop finds the job held but not running and puts
it back on its queue; should the server be gone, the recovery of dead
servers' jobs does. Either way the job is late, never lost. A job
deleted or requeued before its server takes it from here is dropped
when this storage hears of that; once taken, it is stopped as one that
was running (its token fires at the server's next check for aborted
jobs).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime

from backburner.storage.base import JobId, JobRecord, JobState

__all__ = ["HandedJobs", "handed_record"]

KEPT_PER_SERVER = 10_000
"""Jobs kept for one server at most (the storage keeps only those of
servers that run on it); jobs dropped are recovered as above."""
# Ids of jobs dropped lately, whose hand-off notices are refused if they
# come only afterwards.
DROPPED_REMEMBERED = 10_000


def handed_record(
    server: str,
    job_id: JobId,
    queue: str,
    function: str,
    arguments: str,
    created_at: datetime,
    timeout: float | None,
    keep_result: bool | None = None,
) -> JobRecord:
    """The job as create_job_handoff wrote it when it handed it off."""
    created = created_at.astimezone(UTC)
    return JobRecord(
        id=job_id,
        function=function,
        arguments=arguments,
        queue=queue,
        state=JobState.PROCESSING,
        reason=f"handed to {server}",
        version=2,
        attempt=1,
        created_at=created,
        state_changed_at=created,
        scheduled_at=None,
        server=server,
        expires_at=None,
        timeout=timeout,
        keep_result=keep_result,
    )


class HandedJobs:
    """The jobs handed to each server and not fetched yet: each id with
    its record, or ``None`` when the record is to be read.

    Thread-safe: jobs arrive from the listening connection and from
    enqueues, which may run on other threads than the fetch.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Dicts keep the order jobs were handed in, and drop repeats.
        self._jobs: dict[str, dict[JobId, JobRecord | None]] = {}
        # A job is handed off only by the enqueue that creates it, so a
        # hand-off heard after the job was dropped (a put-back made in
        # this process, before another process's notice came in) is
        # stale: started, it would run beside the job's next run.
        self._dropped: set[JobId] = set()
        self._dropped_order: deque[JobId] = deque()

    def add(
        self, server: str, job_id: JobId, record: JobRecord | None = None
    ) -> None:
        """Keep a job for ``server``'s next fetch."""
        with self._lock:
            if job_id in self._dropped:
                return
            jobs = self._jobs.setdefault(server, {})
            if len(jobs) < KEPT_PER_SERVER:
                jobs[job_id] = record

    def take(
        self, server: str, limit: int
    ) -> list[tuple[JobId, JobRecord | None]]:
        """Remove and return up to ``limit`` of ``server``'s jobs, oldest
        first."""
        with self._lock:
            jobs = self._jobs.get(server)
            if not jobs or limit < 1:
                return []
            taken = list(jobs.items())[:limit]
            for job_id, _ in taken:
                del jobs[job_id]
            if not jobs:
                del self._jobs[server]
            return taken

    def take_whole(self, server: str, limit: int) -> list[JobRecord]:
        """Remove and return up to ``limit`` of ``server``'s jobs whose
        records are known, oldest first."""
        with self._lock:
            jobs = self._jobs.get(server)
            if not jobs or limit < 1:
                return []
            taken: list[JobRecord] = []
            for record in jobs.values():
                if len(taken) == limit:
                    break
                if record is not None:
                    taken.append(record)
            for record in taken:
                del jobs[record.id]
            if not jobs:
                del self._jobs[server]
            return taken

    def drop(self, job_ids: Iterable[JobId]) -> None:
        """Forget the jobs of ``job_ids`` (deleted or requeued since they
        were handed over), whichever server they were handed to, and
        refuse their hand-offs heard from now on."""
        dropped = frozenset(job_ids)
        with self._lock:
            for job_id in dropped - self._dropped:
                self._dropped.add(job_id)
                self._dropped_order.append(job_id)
            while len(self._dropped_order) > DROPPED_REMEMBERED:
                self._dropped.discard(self._dropped_order.popleft())
            for server, jobs in list(self._jobs.items()):
                for job_id in dropped.intersection(jobs):
                    del jobs[job_id]
                if not jobs:
                    del self._jobs[server]

    def give_back(
        self, server: str, jobs: Iterable[tuple[JobId, JobRecord | None]]
    ) -> None:
        """Put back jobs whose read failed, ahead of those kept since."""
        with self._lock:
            kept = self._jobs.get(server, {})
            merged = dict(jobs)
            merged.update(kept)
            if merged:
                self._jobs[server] = merged
