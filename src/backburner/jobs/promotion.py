"""The promotion loop: scheduled jobs whose time has come get enqueued.

Every server runs it; storage moves each due job with a compare-and-set,
so a job is promoted once however many servers try. Besides the regular
tick, a server that schedules a retry sooner than the next tick asks for
an early promotion (:meth:`Promoter.due_at`), so that short retry delays
are honoured without a fast tick.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from backburner.storage.base import Storage, StorageError

_log = logging.getLogger("backburner.server")


class Promoter:
    """Enqueues due scheduled jobs, in batches of ``batch``.

    Args:
        storage: the shared storage.
        interval: seconds between regular promotions.
        batch: jobs moved per transaction.
    """

    def __init__(self, storage: Storage, interval: float, batch: int) -> None:
        self._storage = storage
        self._interval = interval
        self._batch = batch
        self._due = asyncio.Event()
        # One pass at a time: a caller that awaits promote() knows that
        # every promotion this server began before has been committed.
        self._lock = asyncio.Lock()

    def due_at(self, at: datetime) -> None:
        """Promote again at ``at`` if that is before the next tick."""
        delay = (at - datetime.now(UTC)).total_seconds()
        if delay >= self._interval:
            return
        if delay <= 0:
            self._due.set()
        else:
            asyncio.get_running_loop().call_later(delay, self._due.set)

    async def run(self) -> None:
        """Promote due jobs until cancelled."""
        while True:
            self._due.clear()
            await self.promote()
            try:
                async with asyncio.timeout(self._interval):
                    await self._due.wait()
            except TimeoutError:
                pass

    async def promote(self) -> int:
        """Enqueue every job due now; return how many were moved."""
        async with self._lock:
            return await self._promote()

    async def _promote(self) -> int:
        moved = 0
        try:
            while True:
                now = datetime.now(UTC)
                count = await self._storage.promote_scheduled(now, self._batch)
                moved += count
                if count < self._batch:
                    return moved
        except StorageError as error:
            _log.warning(
                "promoting scheduled jobs failed: %s",
                error,
                extra={"event": "server.promotion_failed"},
            )
            return moved
