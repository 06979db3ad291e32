"""The expiry loop: succeeded and deleted jobs go away after retention.

The retention period is set when a job enters *succeeded* or *deleted*
(``expires_at``); failed jobs never expire. Every server runs the loop;
storage removes each expired job once however many servers try.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from backburner.storage.base import Storage, StorageError

_log = logging.getLogger("backburner.server")


class Expirer:
    """Removes expired jobs every ``interval`` seconds, ``batch`` at a time.

    Args:
        storage: the shared storage.
        interval: seconds between two sweeps.
        batch: jobs removed per transaction.
    """

    def __init__(self, storage: Storage, interval: float, batch: int) -> None:
        self._storage = storage
        self._interval = interval
        self._batch = batch

    async def run(self) -> None:
        """Sweep until cancelled."""
        while True:
            await self.expire()
            await asyncio.sleep(self._interval)

    async def expire(self) -> int:
        """Remove every job expired now; return how many were removed."""
        removed = 0
        try:
            while True:
                count = await self._storage.expire(
                    datetime.now(UTC), self._batch
                )
                removed += count
                if count < self._batch:
                    break
        except StorageError as error:
            _log.warning(
                "expiring jobs failed: %s",
                error,
                extra={"event": "server.expiry_failed"},
            )
        if removed:
            _log.info(
                "expired %d jobs",
                removed,
                extra={"event": "server.jobs_expired", "count": removed},
            )
        return removed
