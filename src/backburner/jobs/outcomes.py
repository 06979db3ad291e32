"""Batched outcome writes: many finished jobs, one transaction.

Writing each finished job's state change in its own transaction caps a
server at a few hundred jobs a second on SQLite. The writer collects the
changes that arrive within a few milliseconds (and while the previous
batch is being written) and hands them to
:meth:`~backburner.storage.Storage.apply_changes` together, unless the
server's next fetch takes them first
(:meth:`~backburner.storage.Storage.apply_changes_and_fetch`). Each change
is still its own compare-and-set, so one refused change does not affect
the others.

A submitted change is written even if the task that submitted it is
cancelled or has ended: the change waits in the writer, not in the
task, and :meth:`OutcomeWriter.close` writes whatever is still pending.
The job server hands a callback with each job's change
(:meth:`OutcomeWriter.submit_then`) rather than awaiting a future, so a
job's task ends as soon as its outcome is decided.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from backburner.storage.base import (
    ChangeOutcome,
    StateChange,
    Storage,
    StorageError,
)

_log = logging.getLogger("backburner.server")

Written = Callable[[ChangeOutcome | None], None]
"""Told a change's outcome once written (``None``: the write failed)."""
_Pending = tuple[StateChange, "asyncio.Future[ChangeOutcome | None] | Written"]
_MAX_BATCH = 500
_RETRY_DELAYS = (0.05, 0.2, 0.5, 1.0, 2.0, 5.0)
_RETRIES_WHEN_CLOSING = 3


class OutcomeWriter:
    """Writes state changes in batches on a background task.

    Args:
        storage: where to write.
        window: seconds to wait for more changes before writing a batch.
        fetching: the lock the server holds while it fetches; a batch
            whose window ends during a fetch waits for that fetch to end,
            as the server's next fetch usually takes it along.
    """

    def __init__(
        self,
        storage: Storage,
        window: float,
        fetching: asyncio.Lock | None = None,
    ) -> None:
        self._storage = storage
        self._window = window
        self._fetching = fetching
        self._pending: list[_Pending] = []
        self._kick = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the background task (from a running event loop)."""
        self._task = asyncio.get_running_loop().create_task(
            self._write_forever(), name="backburner-outcomes"
        )

    def submit(
        self, change: StateChange
    ) -> asyncio.Future[ChangeOutcome | None]:
        """Queue ``change``; the future gives its outcome once written.

        The outcome is ``None`` when the write failed for good (logged).
        Cancelling the future does not stop the write.
        """
        future: asyncio.Future[ChangeOutcome | None] = (
            asyncio.get_running_loop().create_future()
        )
        self._queue(change, future)
        return future

    def submit_then(self, change: StateChange, written: Written) -> None:
        """Queue ``change``; call ``written`` with its outcome once written.

        ``written`` runs on the event loop, with ``None`` when the write
        failed for good (logged); an error it raises is logged.
        """
        self._queue(change, written)

    def _queue(
        self,
        change: StateChange,
        then: asyncio.Future[ChangeOutcome | None] | Written,
    ) -> None:
        if self._task is None or self._task.done():
            _log.error(
                "outcome of job %s dropped: the writer is stopped",
                change.job_id,
                extra={
                    "event": "job.outcome_dropped",
                    "job_id": change.job_id,
                },
            )
            _tell(then, None)
            return
        self._pending.append((change, then))
        self._kick.set()

    def take(self) -> list[_Pending]:
        """Take pending changes to write them another way (with a fetch).

        Hand them to :meth:`settle` once written, or back to
        :meth:`give_back` if the write failed.
        """
        batch = self._pending[:_MAX_BATCH]
        del self._pending[:_MAX_BATCH]
        return batch

    def settle(
        self, batch: list[_Pending], outcomes: list[ChangeOutcome]
    ) -> None:
        """Report the outcomes of a batch from :meth:`take`."""
        for (_, then), outcome in zip(batch, outcomes, strict=True):
            _tell(then, outcome)

    def give_back(self, batch: list[_Pending]) -> None:
        """Return an unwritten batch from :meth:`take`; it is written next."""
        if batch:
            self._pending[:0] = batch
            self._kick.set()

    async def close(self) -> None:
        """Write what is pending, then stop."""
        self._closing = True
        self._kick.set()
        if self._task is not None:
            await self._task

    async def _write_forever(self) -> None:
        while True:
            await self._kick.wait()
            self._kick.clear()
            if (
                self._window > 0
                and not self._closing
                and len(self._pending) < _MAX_BATCH
            ):
                await asyncio.sleep(self._window)
                if self._fetching is not None and self._fetching.locked():
                    # The server's next fetch takes the pending changes
                    # along (before it queues for the lock behind us);
                    # whatever is left then is written here.
                    async with self._fetching:
                        pass
            while self._pending:
                batch = self._pending[:_MAX_BATCH]
                del self._pending[:_MAX_BATCH]
                await self._write(batch)
            if self._closing:
                return

    async def _write(self, batch: list[_Pending]) -> None:
        changes = [change for change, _ in batch]
        attempt = 0
        while True:
            try:
                outcomes = await self._storage.apply_changes(changes)
                break
            except StorageError as error:
                give_up = self._closing and attempt >= _RETRIES_WHEN_CLOSING
                level = logging.ERROR if give_up else logging.WARNING
                _log.log(
                    level,
                    "writing %d job outcomes failed: %s",
                    len(changes),
                    error,
                    extra={"event": "server.outcome_write_failed"},
                )
                if give_up:
                    # The jobs stay in processing; once this server is
                    # gone the surviving servers put them back on their
                    # queues.
                    for _, then in batch:
                        _tell(then, None)
                    return
            delay = _RETRY_DELAYS[min(attempt, len(_RETRY_DELAYS) - 1)]
            attempt += 1
            await asyncio.sleep(delay)
        self.settle(batch, outcomes)


def _tell(
    then: asyncio.Future[ChangeOutcome | None] | Written,
    outcome: ChangeOutcome | None,
) -> None:
    """Hand ``outcome`` to whoever waits for it: a future or a callback."""
    if isinstance(then, asyncio.Future):
        if not then.done():
            then.set_result(outcome)
        return
    try:
        then(outcome)
    except Exception:  # noqa: BLE001 - one faulty callback, logged
        # The other outcomes of the batch must still be told.
        _log.error(
            "handling a written job outcome failed",
            exc_info=True,
            extra={"event": "server.outcome_callback_failed"},
        )
