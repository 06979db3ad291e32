"""A blocking twin of :class:`~backburner.jobs.client.Client`.

For synchronous code (a Django view, a script, a management command).
It runs a private event loop on a daemon thread and hands each call to
it, so it works the same over every storage. Do not call it from inside
a running event loop's thread: use :class:`Client` there.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine, Iterable
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar

from backburner.cancellation import CancellationToken
from backburner.jobs.client import (
    DEFAULT_MAX_ARGUMENT_BYTES,
    Call,
    Client,
    Counts,
    Job,
    JobOptions,
    JobPage,
)
from backburner.jobs.continuations import ContinuationLinks, ContinueOn
from backburner.jobs.progress import Progress
from backburner.jobs.recurring import SyncRecurringJobs
from backburner.jobs.states import DEFAULT_RETENTION
from backburner.storage.base import JobId, JobState, ServerInfo, Storage

T = TypeVar("T")


class SyncClient:
    """The client API, blocking. Same arguments and errors as ``Client``.

    Args:
        storage: a storage URL (the client owns and closes it) or a
            :class:`~backburner.storage.Storage`.
        retention: how long deleted jobs are kept before they expire.
        max_argument_bytes: the most a job's arguments may take once
            serialised; a job over it is refused at enqueue.
    """

    def __init__(
        self,
        storage: Storage | str,
        *,
        retention: timedelta = DEFAULT_RETENTION,
        max_argument_bytes: int = DEFAULT_MAX_ARGUMENT_BYTES,
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever,
            name="backburner-sync-client",
            daemon=True,
        )
        self._thread.start()
        self._client = Client(
            storage,
            retention=retention,
            max_argument_bytes=max_argument_bytes,
        )
        # Serialises close(); _state_lock guards _closed, so that no call
        # is handed to the loop once close() has begun.
        self._lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._closed = False

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        with self._state_lock:
            if self._closed:
                coroutine.close()
                raise RuntimeError("the client is closed")
            future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            # Only close() cancels a call: say so rather than CancelledError.
            if self._closed:
                raise RuntimeError(
                    "the client was closed during the call"
                ) from None
            raise

    def close(self) -> None:
        """Close the storage (if owned) and stop the client's thread.

        Calls pending in other threads end with ``RuntimeError``: a
        :meth:`wait` at once, any other call once cancelled.
        """
        with self._lock:
            with self._state_lock:
                if self._closed:
                    return
                self._closed = True
            asyncio.run_coroutine_threadsafe(
                self._shut_down(), self._loop
            ).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    async def _shut_down(self) -> None:
        try:
            await self._client.close()
        finally:
            # Left pending, a call would block its thread forever once
            # the loop stops.
            current = asyncio.current_task()
            pending = [t for t in asyncio.all_tasks() if t is not current]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    @property
    def recurring(self) -> SyncRecurringJobs:
        """Define, trigger, pause and list recurring jobs (blocking)."""
        return SyncRecurringJobs(self._call, self._client.recurring)

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def enqueue(
        self, func: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> JobId:
        """Create a job that is ready now (see :meth:`Client.enqueue`)."""
        return self._call(self._client.enqueue(func, *args, **kwargs))

    def enqueue_with(
        self,
        options: JobOptions,
        func: Callable[..., Any],
        /,
        *args: Any,
        **kwargs: Any,
    ) -> JobId:
        """Create a job with options (see :meth:`Client.enqueue_with`)."""
        return self._call(
            self._client.enqueue_with(options, func, *args, **kwargs)
        )

    def schedule(
        self,
        when: datetime | timedelta | float,
        func: Callable[..., Any],
        /,
        *args: Any,
        **kwargs: Any,
    ) -> JobId:
        """Create a job ready later (see :meth:`Client.schedule`)."""
        return self._call(self._client.schedule(when, func, *args, **kwargs))

    def enqueue_many(
        self, calls: Iterable[Call], options: JobOptions | None = None
    ) -> list[JobId]:
        """Create jobs in one transaction (see :meth:`Client.enqueue_many`)."""
        return self._call(self._client.enqueue_many(list(calls), options))

    def continue_with(
        self,
        parent_id: JobId,
        func: Callable[..., Any],
        /,
        *args: Any,
        **kwargs: Any,
    ) -> JobId:
        """Continue a job with another (see :meth:`Client.continue_with`)."""
        return self._call(
            self._client.continue_with(parent_id, func, *args, **kwargs)
        )

    def continue_with_options(
        self,
        parent_id: JobId,
        on: ContinueOn | str,
        options: JobOptions | None,
        func: Callable[..., Any],
        /,
        *args: Any,
        **kwargs: Any,
    ) -> JobId:
        """Continue a job on ``on`` (see
        :meth:`Client.continue_with_options`)."""
        return self._call(
            self._client.continue_with_options(
                parent_id, on, options, func, *args, **kwargs
            )
        )

    def continuation_links(self, job_id: JobId) -> ContinuationLinks:
        """Return a job's continuation links (see
        :meth:`Client.continuation_links`)."""
        return self._call(self._client.continuation_links(job_id))

    def requeue(
        self,
        job_id: JobId,
        *,
        expected_state: JobState | None = None,
        reason: str = "requeued",
    ) -> None:
        """Put a job back on its queue (see :meth:`Client.requeue`)."""
        self._call(
            self._client.requeue(
                job_id, expected_state=expected_state, reason=reason
            )
        )

    def delete(
        self,
        job_id: JobId,
        *,
        expected_state: JobState | None = None,
        reason: str = "deleted",
    ) -> None:
        """Delete a job (see :meth:`Client.delete`)."""
        self._call(
            self._client.delete(
                job_id, expected_state=expected_state, reason=reason
            )
        )

    def get(self, job_id: JobId) -> Job:
        """Return a job with its history (see :meth:`Client.get`)."""
        return self._call(self._client.get(job_id))

    def wait(
        self,
        job_id: JobId,
        *,
        timeout: float | None = None,
        token: CancellationToken = CancellationToken.NONE,
    ) -> Any:
        """Wait for a job's result (see :meth:`Client.wait`)."""
        return self._call(
            self._client.wait(job_id, timeout=timeout, token=token)
        )

    def list_jobs(
        self,
        *,
        state: JobState | None = None,
        queue: str | None = None,
        function: str | None = None,
        before: JobId | None = None,
        limit: int = 50,
    ) -> JobPage:
        """Return a page of jobs (see :meth:`Client.list_jobs`)."""
        return self._call(
            self._client.list_jobs(
                state=state,
                queue=queue,
                function=function,
                before=before,
                limit=limit,
            )
        )

    def counts(self) -> Counts:
        """Return counts per state and queue (see :meth:`Client.counts`)."""
        return self._call(self._client.counts())

    def servers(self) -> list[ServerInfo]:
        """Return the live servers (see :meth:`Client.servers`)."""
        return self._call(self._client.servers())

    def set_parameter(self, job_id: JobId, name: str, value: object) -> None:
        """Set a job parameter (see :meth:`Client.set_parameter`)."""
        self._call(self._client.set_parameter(job_id, name, value))

    def get_parameter(
        self, job_id: JobId, name: str, default: object = None
    ) -> Any:
        """Return a job parameter (see :meth:`Client.get_parameter`)."""
        return self._call(self._client.get_parameter(job_id, name, default))

    def get_progress(self, job_id: JobId) -> Progress | None:
        """Return a job's latest progress (see :meth:`Client.get_progress`)."""
        return self._call(self._client.get_progress(job_id))

    def get_parameters(self, job_id: JobId) -> dict[str, Any]:
        """Return all parameters (see :meth:`Client.get_parameters`)."""
        return self._call(self._client.get_parameters(job_id))
