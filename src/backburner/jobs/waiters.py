"""The jobs a client's ``wait()`` calls wait for, polled together.

Each event loop a client waits on gets one poller: a registry of waited
job ids and one task that reads the state of all of them per tick
(:meth:`Storage.job_states`, in batches of :data:`BATCH`), every 10 ms
at first and then less often, up to every 0.5 s. A new waiter, or a
storage notification about a waited job, brings the interval back to
10 ms. The poller wakes only the waiters whose jobs finished or are
gone, and stops when nobody waits or when the client closes.

So a thousand waiters cost one query per tick rather than a thousand,
and the storage's connection pool stays free for everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Callable

from backburner.cancellation import (
    CancellationReason,
    CancellationToken,
    OperationCancelled,
)
from backburner.storage.base import (
    JobId,
    JobsAborted,
    JobState,
    Notification,
    Storage,
)

__all__ = ["BATCH", "FINISHED", "Waiters"]

FINISHED = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.DELETED})

FIRST_POLL = 0.01
MAX_POLL = 0.5
POLL_GROWTH = 1.5
MIN_GAP = 0.01
"""The least time between two ticks, however often the poller is woken."""
BATCH = 1000
"""The most job ids read in one query."""

_CLOSED = "the client is closed"


class Waiters:
    """The pollers of one client, one per event loop it waits on."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._pollers: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, _Poller
        ] = weakref.WeakKeyDictionary()
        # close() may come from another thread than the waiters' loop.
        self._lock = threading.Lock()
        self._closed = False

    async def until_finished(
        self, job_id: JobId, token: CancellationToken
    ) -> JobState | None:
        """Wait until the job is in a final state; return that state, or
        ``None`` once there is no such job.

        Raises:
            OperationCancelled: ``token`` fired first.
            RuntimeError: the client is closed, or closes meanwhile.
            StorageError: reading the states failed.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._closed:
                raise RuntimeError(_CLOSED)
            poller = self._pollers.get(loop)
            if poller is None:
                poller = self._pollers[loop] = _Poller(self._storage, loop)
        return await poller.until_finished(job_id, token)

    def close(self) -> None:
        """End every pending wait with ``RuntimeError`` and refuse new
        ones; callable from any thread."""
        with self._lock:
            self._closed = True
            pollers = list(self._pollers.values())
            self._pollers.clear()
        for poller in pollers:
            poller.close()


class _Poller:
    def __init__(
        self, storage: Storage, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._storage = storage
        self._loop = loop
        self._wanted: dict[JobId, set[asyncio.Future[JobState | None]]] = {}
        self._poked = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def until_finished(
        self, job_id: JobId, token: CancellationToken
    ) -> JobState | None:
        future: asyncio.Future[JobState | None] = self._loop.create_future()

        def cancel() -> None:
            # Runs on this loop: the token was registered from it.
            if not future.done():
                reason = token.reason or CancellationReason.REQUESTED
                future.set_exception(OperationCancelled(reason, token))

        self._wanted.setdefault(job_id, set()).add(future)
        self._poked.set()
        if self._task is None:
            self._task = self._loop.create_task(
                self._run(), name="backburner-wait-poller"
            )
        try:
            with token.register(cancel):
                return await future
        finally:
            # A waiter that gave up (timeout, cancel) is polled no more.
            waiting = self._wanted.get(job_id)
            if waiting is not None:
                waiting.discard(future)
                if not waiting:
                    del self._wanted[job_id]

    def close(self) -> None:
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if here is self._loop:
            # At once, so that the waiters have their error before the
            # caller goes on (SyncClient then cancels what is left).
            self._end()
            return
        with contextlib.suppress(RuntimeError):  # the loop closed
            self._loop.call_soon_threadsafe(self._end)

    def _end(self, why: str = _CLOSED) -> None:
        wanted = list(self._wanted.values())
        self._wanted.clear()
        for waiting in wanted:
            for future in waiting:
                if not future.done():
                    future.set_exception(RuntimeError(why))
        if self._task is not None:
            self._task.cancel()

    def _hear(self, notification: Notification) -> None:
        # Called from any thread (the storage's, another client's).
        if isinstance(notification, JobsAborted) and any(
            job_id in self._wanted for job_id in notification.job_ids
        ):
            with contextlib.suppress(RuntimeError):  # the loop closed
                self._loop.call_soon_threadsafe(self._poked.set)

    async def _run(self) -> None:
        unsubscribe: Callable[[], None] | None = None
        try:
            unsubscribe = self._storage.subscribe(self._hear)
            interval = FIRST_POLL
            while self._wanted:
                self._poked.clear()
                await self._poll()
                if not self._wanted:
                    break
                try:
                    async with asyncio.timeout(interval):
                        await self._poked.wait()
                except TimeoutError:
                    interval = min(interval * POLL_GROWTH, MAX_POLL)
                else:
                    # A new waiter, or a waited job changed hands and may
                    # finish soon; still at most one tick per MIN_GAP, so
                    # a stream of new waiters cannot hog a connection.
                    interval = FIRST_POLL
                    await asyncio.sleep(MIN_GAP)
        finally:
            if unsubscribe is not None:
                unsubscribe()
            self._task = None
            # Only a crash or an outside cancel leaves waiters behind:
            # with nobody left to poll for them they would wait forever.
            self._end("waiting stopped: the poller ended unexpectedly")

    async def _poll(self) -> None:
        ids = list(self._wanted)
        found: dict[JobId, tuple[JobState, int]] = {}
        try:
            for start in range(0, len(ids), BATCH):
                batch = ids[start : start + BATCH]
                found.update(await self._storage.job_states(batch))
        except Exception as error:  # noqa: BLE001
            # Each waiter would have met the failure reading on its own;
            # handing it over (rather than retrying) keeps that promise
            # and lets no waiter hang on a storage that stays down.
            for job_id in ids:
                for future in self._wanted.pop(job_id, ()):
                    if not future.done():
                        future.set_exception(error)
            return
        for job_id in ids:
            current = found.get(job_id)
            state = None if current is None else current[0]
            if state is not None and state not in FINISHED:
                continue
            for future in self._wanted.pop(job_id, ()):
                if not future.done():
                    future.set_result(state)
