"""The reconcile loop: jobs this server holds but does not run go back.

A fetch moves jobs to *processing* under the server's name and hands
their records back. When the records never arrive (PostgreSQL lost the
connection during COMMIT: the fetch may or may not have been saved, and
the server only hears that it failed), storage holds the jobs for a
live, heartbeating server that never heard of them, and the recovery of
dead servers' jobs never looks at them. A server restarted under the
same name before it was declared dead finds the previous process's jobs
held the same way.

Every ``interval`` seconds the server lists the jobs storage says it
holds and puts back on their queues those it does not run (nor write an
outcome for) and that entered *processing* more than ``grace`` seconds
ago. Each is a compare-and-set on the version listed, so a job that
moved on meanwhile is left alone. The lock passed in is the one the
server's fetch holds, and the server takes the jobs handed to it at
enqueue under it too: while it is held here no fetch of this server is
in flight and no hand-off is started, so every job listed was either
handed to a worker or lost, and a job put back here is not started from
a hand-off notice that came meanwhile (storage forgets the hand-off
when the put-back is written). The grace guards against a COMMIT that
the database completes just after the client saw the connection fail,
and against a hand-off notice still on its way.

Limit: a job handed over at enqueue entered *processing* at the time
the enqueuing process's clock gave it. Behind the server's clock by more
than ``grace``, such a job whose notice is still on its way when the
reconciler looks is put back and fetched again: it runs once, a round
trip later (storage refuses a hand-off notice heard after the job was
put back).

Limit: server names must be unique among live servers. Two servers
sharing a name each take the other's jobs that run longer than
``grace`` for lost, put them back on their queue, and they run again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta

from backburner.jobs import states
from backburner.storage.base import JobId, Storage, StorageError

_log = logging.getLogger("backburner.server")

RECONCILE_REASON = "recovered: held by this server but not running"

Held = Callable[[], Collection[tuple[JobId, int]]]
"""Returns the (job id, version) of every job the server deals with."""


class Reconciler:
    """Puts back the jobs storage says a server holds but it does not run.

    Args:
        storage: the shared storage.
        name: this server's name.
        interval: seconds between two looks.
        grace: seconds a job may be held without running before it
            counts as lost.
        held: the jobs the server runs or writes an outcome for.
        fetching: the lock the server's fetch holds.
        stopping: whether the server is stopping (then nothing is done:
            it puts its jobs back itself).
    """

    def __init__(
        self,
        storage: Storage,
        name: str,
        interval: float,
        grace: float,
        held: Held,
        fetching: asyncio.Lock,
        stopping: Callable[[], bool],
    ) -> None:
        self._storage = storage
        self._name = name
        self._interval = interval
        self._grace = timedelta(seconds=grace)
        self._held = held
        self._fetching = fetching
        self._stopping = stopping

    async def run(self) -> None:
        """Look every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(self._interval)
            await self.reconcile()

    async def reconcile(self) -> list[JobId]:
        """Put back this server's lost jobs; return their ids."""
        try:
            async with self._fetching:
                if self._stopping():
                    return []
                return await self._put_back_lost()
        except StorageError as error:
            _log.warning(
                "reconciling the jobs of server %s failed: %s",
                self._name,
                error,
                extra={"event": "server.reconcile_failed"},
            )
            return []

    async def _put_back_lost(self) -> list[JobId]:
        now = datetime.now(UTC)
        listed = await self._storage.held_jobs(self._name)
        running = set(self._held())
        lost = [
            (job_id, version)
            for job_id, (version, fetched_at) in listed.items()
            if (job_id, version) not in running
            and fetched_at < now - self._grace
        ]
        if not lost:
            return []
        data = {"server": self._name}
        outcomes = await self._storage.apply_changes(
            [
                states.recovered(job_id, version, now, RECONCILE_REASON, data)
                for job_id, version in lost
            ]
        )
        recovered = [o.job_id for o in outcomes if o.applied]
        if recovered:
            _log.warning(
                "server %s put back %d jobs it held but did not run: %s",
                self._name,
                len(recovered),
                ", ".join(map(str, recovered[:20])),
                extra={
                    "event": "server.jobs_reconciled",
                    "server": self._name,
                    "job_ids": recovered,
                },
            )
        return recovered
