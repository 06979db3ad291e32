"""The upkeep loop: the storage's own housekeeping, now and then.

Every server runs it; the storage makes one round at a time do the work
(see :meth:`~backburner.storage.Storage.maintain`).
"""

from __future__ import annotations

import asyncio
import logging

from backburner.storage.base import Storage, StorageError

_log = logging.getLogger("backburner.server")


class Upkeep:
    """Calls ``storage.maintain()`` every ``interval`` seconds.

    Args:
        storage: the shared storage.
        interval: seconds between two rounds; the first round waits one
            interval too (at start-up the tables are as they were left).
    """

    def __init__(self, storage: Storage, interval: float) -> None:
        self._storage = storage
        self._interval = interval

    async def run(self) -> None:
        """Tend the storage until cancelled."""
        while True:
            await asyncio.sleep(self._interval)
            await self.round()

    async def round(self) -> None:
        """One round; a failure is logged and the next round tries again."""
        try:
            await self._storage.maintain()
        except StorageError as error:
            _log.warning(
                "storage upkeep failed: %s",
                error,
                extra={"event": "server.upkeep_failed"},
            )
