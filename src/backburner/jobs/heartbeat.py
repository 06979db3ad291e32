"""The heartbeat loop: say this server is alive, rescue dead servers' jobs.

Every ``interval`` seconds a server records a heartbeat, then asks
storage to declare dead every server silent for ``dead_after`` seconds
and to put the jobs they held back on their queues. Every server does
this; storage makes each recovery a compare-and-set, so two servers
recovering the same dead server at once requeue each job once.

A server whose heartbeat is refused was declared dead by another one
(it was paused, or its event loop was blocked longer than
``dead_after``): its jobs are already back on their queues, possibly
running elsewhere, so it stops them and announces itself again.

Limit: a job function that blocks the event loop (CPU-bound work in an
``async def``) blocks the heartbeat too; after ``dead_after`` seconds
its jobs are recovered and run again elsewhere. Run CPU-bound work in a
plain ``def`` job function (it runs on a thread) or in several server
processes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from backburner.storage.base import Storage, StorageError

_log = logging.getLogger("backburner.server")

RECOVERY_REASON = "recovered: its server stopped heartbeating"


class Heartbeat:
    """Keeps one server registered and recovers the jobs of dead ones.

    Args:
        storage: the shared storage.
        name: this server's name.
        interval: seconds between heartbeats.
        dead_after: seconds of silence after which a server is dead.
        declared_dead: awaited when this server finds itself dead.
    """

    def __init__(
        self,
        storage: Storage,
        name: str,
        interval: float,
        dead_after: float,
        declared_dead: Callable[[], Awaitable[None]],
    ) -> None:
        self._storage = storage
        self._name = name
        self._interval = interval
        self._dead_after = dead_after
        self._declared_dead = declared_dead

    async def run(self) -> None:
        """Beat and recover until cancelled."""
        while True:
            await self.beat()
            await asyncio.sleep(self._interval)

    async def beat(self) -> None:
        """Record one heartbeat and recover the jobs of dead servers."""
        now = datetime.now(UTC)
        try:
            alive = await self._storage.heartbeat(self._name, now)
            if not alive:
                await self._declared_dead()
            recovered = await self._storage.recover_dead_servers(
                now, self._dead_after, RECOVERY_REASON
            )
        except StorageError as error:
            _log.warning(
                "heartbeat of server %s failed: %s",
                self._name,
                error,
                extra={"event": "server.heartbeat_failed"},
            )
            return
        if recovered:
            _log.warning(
                "recovered %d jobs of dead servers: %s",
                len(recovered),
                ", ".join(map(str, recovered[:20])),
                extra={
                    "event": "server.jobs_recovered",
                    "job_ids": recovered,
                },
            )
