"""The job server: workers that run jobs, plus the maintenance loops.

One :class:`Server` is one process's share of the work. It registers
itself in storage under its name (``host:pid`` unless named), then:

- **fetches** ready jobs from its queues, in the order given, in batches
  sized to its free workers plus the jobs its workers are expected to
  finish within ``fetch_ahead`` seconds
  (:mod:`~backburner.jobs.fetch_ahead`), and runs each on a worker
  (``async def`` job functions on the event loop, plain ones on a job
  thread);
- **wakes up** at once when a job is enqueued in this process (storage
  notifications), and polls every ``poll_interval`` seconds for jobs
  enqueued elsewhere (PostgreSQL storage may notify across processes);
- **writes outcomes** in batches (:mod:`backburner.jobs.outcomes`),
  whatever happens to the job's task afterwards;
- **aborts** a running job whose state changed under it (deleted,
  requeued, recovered): its cancellation token fires within
  ``abort_check_interval`` seconds, at once when the change was made in
  this process; a job's own ``timeout`` fires it with reason
  ``timeout``;
- runs the maintenance loops: heartbeat and recovery of dead servers'
  jobs (:mod:`~backburner.jobs.heartbeat`), the return of jobs it holds
  in storage but never got (:mod:`~backburner.jobs.reconcile`),
  promotion of scheduled jobs
  (:mod:`~backburner.jobs.promotion`), expiry of old jobs
  (:mod:`~backburner.jobs.expiry`) and the recurring jobs' occurrences
  (:mod:`~backburner.jobs.recurring_scheduler`).

Shutdown (:meth:`Server.shutdown`, or SIGTERM/SIGINT under
:func:`run_server`) stops fetching at once, lets running jobs finish for
``shutdown_grace`` seconds, then fires their tokens with reason
``shutdown`` and waits up to ``shutdown_timeout`` seconds. A job that
stops because of its token, or is still running at the end, goes back
to its queue: it is neither succeeded nor failed. A second shutdown
request skips the waiting. A synchronous job that ignores its token
cannot be stopped: the server puts it back on its queue and exits
without it, so it may run twice (see ``docs/guarantees.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import importlib
import logging
import math
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from backburner.cancellation import (
    CancellationReason,
    CancellationTokenSource,
)
from backburner.jobs import states
from backburner.jobs.activator import Activator
from backburner.jobs.context import JobContext
from backburner.jobs.expiry import Expirer
from backburner.jobs.fetch_ahead import FetchAhead
from backburner.jobs.heartbeat import Heartbeat
from backburner.jobs.log_output import log_to
from backburner.jobs.outcomes import OutcomeWriter
from backburner.jobs.progress import ProgressFlusher
from backburner.jobs.promotion import Promoter
from backburner.jobs.queues import check_queue_name
from backburner.jobs.reconcile import Reconciler
from backburner.jobs.recurring_scheduler import RecurringScheduler
from backburner.jobs.results import (
    NOT_WANTED,
    RESULT_ERROR,
    cheap_to_keep,
    record_result,
)
from backburner.jobs.retry import DEFAULT_RETRY
from backburner.jobs.thread_pool import JobThreads
from backburner.jobs.upkeep_loop import Upkeep
from backburner.jobs.worker import Ending, outcome_of, perform
from backburner.storage import open_storage
from backburner.storage.base import (
    ChangeOutcome,
    JobId,
    JobRecord,
    JobsAborted,
    JobsEnqueued,
    JobState,
    JSONValue,
    Notification,
    ServerInfo,
    StateChange,
    Storage,
    StorageError,
)

if TYPE_CHECKING:
    # Imported when used: a single server process needs none of it.
    from multiprocessing.context import BaseContext
    from multiprocessing.process import BaseProcess

__all__ = ["Server", "ServerTuning", "run_server"]

_log = logging.getLogger("backburner.server")

DECLARED_DEAD = "server declared dead"
"""Token reason when the server finds its jobs were recovered."""
_STOPPING = "server stopping"
_NO_WORKER = "fetched ahead, but no worker freed up in time"
_ABORT_REASONS = {
    None: CancellationReason.JOB_DELETED.value,
    JobState.DELETED: CancellationReason.JOB_DELETED.value,
    JobState.ENQUEUED: "job requeued",
    JobState.PROCESSING: "job recovered by another server",
}


# How each outcome is logged: level, event name, words.
_ENDINGS = {
    JobState.SUCCEEDED: (logging.INFO, "job.succeeded", "succeeded"),
    JobState.ENQUEUED: (logging.INFO, "job.interrupted", "was interrupted"),
    JobState.SCHEDULED: (logging.WARNING, "job.retried", "failed"),
    JobState.FAILED: (logging.ERROR, "job.failed", "failed for good"),
    JobState.DELETED: (logging.ERROR, "job.failed", "failed for good"),
}


@dataclass(frozen=True, slots=True)
class ServerTuning:
    """The knobs of a server, all in seconds unless said otherwise.

    Attributes:
        poll_interval: how often to look for jobs when no notification
            says there are any (jobs enqueued by other processes).
        heartbeat_interval: how often to record that the server lives
            and to recover the jobs of dead servers.
        dead_after: silence after which a server is declared dead and
            its jobs go back on their queues; several heartbeats long.
        abort_check_interval: how often to look whether running jobs
            were deleted or requeued by another process.
        shutdown_grace: how long running jobs may finish on their own
            after a shutdown request before their tokens fire.
        shutdown_timeout: how long to wait, after the tokens fired, for
            jobs to stop before putting them back on their queues anyway.
        interrupt_delay: how long an ``async def`` job whose token fired
            may go on before it is interrupted at what it awaits.
        retention: how long succeeded and deleted jobs are kept.
        promote_interval: how often scheduled jobs are promoted.
        expire_interval: how often expired jobs are removed.
        upkeep_interval: how often the storage's housekeeping runs
            (PostgreSQL: statistics and vacuum where autovacuum has not).
        outcome_window: how long outcomes are collected before a write.
        maintenance_batch: jobs per promotion or expiry transaction.
        missed_run_grace: how late a recurring job's occurrence may be
            created before it counts as missed (see ``MissedRunPolicy``).
        progress_interval: how often the progress jobs report is
            written (latest value per job, all jobs in one write).
        fetch_ahead: how much work to fetch beyond the free workers: the
            jobs the workers are expected to finish within this time, at
            the pace jobs finished lately (0 turns it off; see
            :mod:`~backburner.jobs.fetch_ahead`). Jobs fetched ahead that
            wait longer than ``poll_interval`` go back on their queues.
    """

    poll_interval: float = 0.5
    heartbeat_interval: float = 2.0
    dead_after: float = 15.0
    abort_check_interval: float = 0.5
    shutdown_grace: float = 1.0
    shutdown_timeout: float = 20.0
    interrupt_delay: float = 0.5
    retention: timedelta = states.DEFAULT_RETENTION
    promote_interval: float = 1.0
    expire_interval: float = 60.0
    upkeep_interval: float = 30.0
    outcome_window: float = 0.002
    maintenance_batch: int = 1000
    missed_run_grace: float = 60.0
    progress_interval: float = 0.5
    fetch_ahead: float = 0.02

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            seconds = (
                value.total_seconds()
                if isinstance(value, timedelta)
                else value
            )
            # NaN passes "< 0" and would make asyncio.sleep never return.
            if (
                not isinstance(seconds, int | float)
                or math.isnan(seconds)
                or seconds < 0
            ):
                raise ValueError(
                    f"{field.name} must be a non-negative number, "
                    f"got {value!r}"
                )
        if self.dead_after <= self.heartbeat_interval:
            raise ValueError(
                "dead_after must be longer than heartbeat_interval (a few "
                "heartbeats), or live servers would be declared dead"
            )
        for name in (
            "poll_interval",
            "heartbeat_interval",
            "progress_interval",
            "upkeep_interval",
        ):
            if getattr(self, name) == 0:
                raise ValueError(f"{name} must be above zero")
        if self.maintenance_batch < 1:
            raise ValueError("maintenance_batch must be at least 1")


def _running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread, if any."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _tuning(options: dict[str, Any]) -> ServerTuning:
    known = {field.name for field in dataclasses.fields(ServerTuning)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(
            f"unknown server tuning option(s): {', '.join(unknown)} "
            f"(known: {', '.join(sorted(known))})"
        )
    return ServerTuning(**options)


@dataclass(slots=True, eq=False)
class _Execution:
    """A job running on one of this server's workers."""

    job: JobRecord
    source: CancellationTokenSource
    worker: int
    task: asyncio.Task[None] | None = None
    abandoned: bool = False

    @property
    def key(self) -> tuple[JobId, int]:
        # A job may be fetched again (after a requeue) while an older
        # execution of it still winds down: the version tells them apart.
        return (self.job.id, self.job.version)


class Server:
    """Runs jobs from ``queues`` on ``concurrency`` workers.

    Args:
        storage: the storage to take jobs from (not closed by the server).
        queues: queue names, drained in this order.
        concurrency: workers; defaults to twice the CPU count.
        name: the server's name (see :func:`check_server_name`);
            defaults to ``host:pid``.
        activator: builds runner-class instances; defaults to
            :class:`~backburner.jobs.activator.Activator`.
        **tuning: any field of :class:`ServerTuning`.

    Raises:
        ValueError: no queues, an invalid queue name, a concurrency below
            one, or an invalid tuning value.
        TypeError: an unknown tuning option.
    """

    def __init__(
        self,
        storage: Storage,
        *,
        queues: Sequence[str] = ("default",),
        concurrency: int | None = None,
        name: str | None = None,
        activator: Activator | None = None,
        **tuning: Any,
    ) -> None:
        if isinstance(queues, str):
            queues = (queues,)
        if not queues:
            raise ValueError("a server needs at least one queue")
        self.queues = tuple(check_queue_name(q) for q in queues)
        if concurrency is None:
            concurrency = 2 * (os.cpu_count() or 1)
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1: {concurrency}")
        self.concurrency = concurrency
        if name is None:
            name = f"{socket.gethostname()}:{os.getpid()}"
        self.name = check_server_name(name)
        self.storage = storage
        self.activator = activator or Activator()
        self.tuning = _tuning(tuning)

        self._lock = threading.Lock()
        self._stop_requests = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- control ----------------------------------------------------------

    def shutdown(self) -> None:
        """Ask the server to stop; callable from any thread or a signal.

        The first call stops gracefully (see the module docstring); a
        second call stops harder: tokens fire and unfinished jobs go
        back on their queues without waiting.
        """
        with self._lock:
            self._stop_requests += 1
            loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):
            # RuntimeError: the loop closed meanwhile; nothing to stop.
            loop.call_soon_threadsafe(self._stop_requested)

    @property
    def stopping(self) -> bool:
        """Whether a shutdown was requested."""
        return self._stop_requests > 0

    def _stop_level(self) -> int:
        # A call, not an attribute: the value changes across awaits.
        return self._stop_requests

    async def __aenter__(self) -> Server:
        self._task = asyncio.get_running_loop().create_task(
            self.run(), name=f"backburner-server {self.name}"
        )
        started = asyncio.ensure_future(self._started.wait())
        await asyncio.wait(
            {started, self._task}, return_when=asyncio.FIRST_COMPLETED
        )
        started.cancel()
        if self._task.done():
            self._task.result()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()
        if self._task is not None:
            await self._task

    # -- the main loop ------------------------------------------------------

    async def run(self, *, until_empty: bool = False) -> None:
        """Run jobs until :meth:`shutdown` (or until there is no work).

        With ``until_empty`` the server stops once no job is ready on
        its queues (due scheduled jobs count as ready) and none of its
        own is running.

        A shutdown requested before ``run`` stops it at once. Once it
        returned, the server can run again.

        Raises:
            RuntimeError: the server is running already.
            StorageError: the server could not register itself.
        """
        with self._lock:
            if self._loop is not None:
                raise RuntimeError(f"server {self.name} is running already")
            self._loop = asyncio.get_running_loop()
        try:
            await self._serve(until_empty)
        finally:
            with self._lock:
                self._loop = None
                # Shutdown requests are used up: the server can run again.
                self._stop_requests = 0

    async def _serve(self, until_empty: bool) -> None:
        tuning = self.tuning
        self._running: dict[tuple[JobId, int], _Execution] = {}
        self._latest: dict[JobId, _Execution] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Outcomes submitted whose write has not been reported yet.
        self._unwritten = 0
        self._free_workers = list(range(self.concurrency, 0, -1))
        self._saturated = False
        self._ahead = FetchAhead(
            self.concurrency, tuning.fetch_ahead, tuning.poll_interval
        )
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._abort_check = asyncio.Event()
        # Jobs from their fetch until their outcome is written; fetches
        # hold the lock (see backburner.jobs.reconcile).
        self._held: set[tuple[JobId, int]] = set()
        # Jobs fetched ahead that a notification said were changed
        # elsewhere, set aside (still held) until the abort check reads
        # whether the change was to this fetch or to an earlier one.
        self._doubtful: dict[tuple[JobId, int], JobRecord] = {}
        self._fetching = asyncio.Lock()
        self._threads = JobThreads(self.concurrency)
        self._writer = OutcomeWriter(
            self.storage, tuning.outcome_window, self._fetching
        )
        self._progress = ProgressFlusher(
            self.storage, tuning.progress_interval
        )
        self._promoter = Promoter(
            self.storage, tuning.promote_interval, tuning.maintenance_batch
        )
        heartbeat = Heartbeat(
            self.storage,
            self.name,
            tuning.heartbeat_interval,
            tuning.dead_after,
            self._declared_dead,
        )
        expirer = Expirer(
            self.storage, tuning.expire_interval, tuning.maintenance_batch
        )
        reconciler = Reconciler(
            self.storage,
            self.name,
            tuning.dead_after,
            tuning.dead_after,
            lambda: self._held,
            self._fetching,
            lambda: self.stopping,
        )

        await self._announce()
        unsubscribe = self.storage.subscribe(self._hear)
        self._writer.start()
        loops = [
            self._background(heartbeat.run(), "heartbeat"),
            self._background(self._promoter.run(), "promotion"),
            self._background(expirer.run(), "expiry"),
            self._background(
                Upkeep(self.storage, tuning.upkeep_interval).run(), "upkeep"
            ),
            self._background(reconciler.run(), "reconcile"),
            self._background(
                RecurringScheduler(
                    self.storage,
                    poll_interval=tuning.poll_interval,
                    grace=tuning.missed_run_grace,
                    server=self.name,
                ).run(),
                "recurring",
            ),
            self._background(self._watch_aborts(), "abort watch"),
            self._background(self._progress.run(), "progress"),
        ]
        _log.info(
            "server %s started: %d workers on queues %s",
            self.name,
            self.concurrency,
            ", ".join(self.queues),
            extra={"event": "server.started", "server": self.name},
        )
        self._started.set()
        try:
            try:
                await self._fetch_loop(until_empty)
            except asyncio.CancelledError:
                # Cancelled from outside: stop as hard as a second
                # shutdown request, but still put the jobs back.
                with self._lock:
                    self._stop_requests += 2
                await self._put_back(await self._unstarted(), _STOPPING)
                await self._stop_jobs()
                raise
            await self._put_back(await self._unstarted(), _STOPPING)
            await self._stop_jobs()
        finally:
            unsubscribe()
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await self._progress.close()
            await self._writer.close()
            self._threads.close()
            try:
                await self.storage.remove_server(self.name)
            except StorageError as error:
                _log.warning(
                    "could not unregister server %s: %s",
                    self.name,
                    error,
                    extra={"event": "server.remove_failed"},
                )
            self._started.clear()
            _log.info(
                "server %s stopped",
                self.name,
                extra={"event": "server.stopped", "server": self.name},
            )

    async def _announce(self) -> None:
        now = datetime.now(UTC)
        await self.storage.announce_server(
            ServerInfo(
                name=self.name,
                queues=self.queues,
                workers=self.concurrency,
                started_at=now,
                heartbeat_at=now,
            )
        )

    def _background(self, work: Any, what: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(
            work, name=f"backburner-{what}"
        )

        def ended(task: asyncio.Task[None]) -> None:
            if task.cancelled() or task.exception() is None:
                return
            # A maintenance loop died of a bug: without it the server is
            # not safe to keep (no heartbeat, no aborts), so it stops.
            _log.error(
                "server %s: %s loop failed; stopping",
                self.name,
                what,
                exc_info=task.exception(),
                extra={"event": "server.loop_failed"},
            )
            self.shutdown()

        task.add_done_callback(ended)
        return task

    async def _fetch_loop(self, until_empty: bool) -> None:
        # With until_empty: the server may stop once a fetch that began
        # after a promotion pass found nothing while nothing ran.
        promoted_before_fetch = False
        while not self._stop_level():
            limit = self._ahead.limit(len(self._free_workers))
            self._wake.clear()
            # Jobs an enqueue handed to this server: held here already,
            # started now rather than after the outcomes below are
            # written (that write is a durable commit). Taken whatever
            # the limit: a server can be handed more jobs than it has
            # workers free (a fetch that ran while a hand-off was on its
            # way marks that job's worker idle again; so does the fetch
            # of a first queue just before the next queue's fetch fills
            # the workers). Those wait as jobs fetched ahead do: held,
            # and put back on their queues if no worker frees up in
            # time. Left in storage's keeping they would be put back by
            # the reconciler while their records waited here to be
            # started all the same. Taken under the fetch lock, as a
            # fetch's jobs are: the reconciler may be putting back a job
            # it found held but not running whose hand-off notice came
            # only meanwhile; once that put-back is written, storage
            # has forgotten the hand-off.
            async with self._fetching:
                if self._stop_level():
                    return
                handed = self.storage.take_handed_jobs(
                    self.name, max(limit, self.concurrency)
                )
                self._hand_out(handed)
            if handed:
                # Their outcomes may schedule retries due at once: with
                # until_empty, promote again before stopping.
                promoted_before_fetch = False
                # As after a fetch: a worker that frees up wakes this
                # loop when these took every one.
                self._saturated = len(handed) >= limit
                if len(handed) < limit:
                    # The queues were empty when these were handed over;
                    # a job enqueued since wakes this loop.
                    await self._nap(self.tuning.poll_interval)
                continue
            if limit == 0:
                await self._wait_for_worker()
                continue
            # Outcomes waiting to be written ride along with the fetch:
            # one transaction instead of two.
            batch = self._writer.take()
            written = False
            try:
                # The lock is released here, but the jobs fetched are
                # started before the next await: the reconciler never
                # sees a job between its fetch and its start.
                async with self._fetching:
                    fetched = await self.storage.apply_changes_and_fetch(
                        [change for change, _ in batch],
                        self.name,
                        self.queues,
                        limit,
                        datetime.now(UTC),
                    )
                outcomes, jobs = fetched
                written = True
            except StorageError as error:
                _log.warning(
                    "fetching jobs failed: %s",
                    error,
                    extra={"event": "server.fetch_failed"},
                )
                await self._nap(self.tuning.poll_interval)
                continue
            finally:
                if written:
                    self._writer.settle(batch, outcomes)
                else:
                    self._writer.give_back(batch)
            if self._stop_level():
                # A stop was requested while this fetch ran.
                await self._put_back(jobs, _STOPPING)
                return
            self._hand_out(jobs)
            self._saturated = len(jobs) == limit
            if self._saturated:
                continue
            if until_empty and not jobs and self._idle():
                if promoted_before_fetch:
                    return
                await self._promoter.promote()
                promoted_before_fetch = True
                continue
            promoted_before_fetch = False
            await self._nap(self.tuning.poll_interval)

    def _hand_out(self, jobs: Sequence[JobRecord]) -> None:
        """Start fetched jobs on free workers; keep the rest for later."""
        ahead = []
        for job in jobs:
            if self._free_workers:
                self._start(job)
            else:
                ahead.append(job)
                self._held.add((job.id, job.version))
        self._ahead.keep(ahead)

    async def _wait_for_worker(self) -> None:
        """Sleep until woken; put back jobs fetched ahead that wait long."""
        seconds = self._ahead.seconds_to_overdue()
        if seconds is None:
            await self._wake.wait()
            return
        await self._nap(seconds)
        if self._ahead.overdue() and not self._stop_level():
            jobs = self._ahead.give_up()
            _log.info(
                "server %s put %d jobs fetched ahead back on their queues: "
                "no worker freed up for them",
                self.name,
                len(jobs),
                extra={
                    "event": "server.fetched_ahead_returned",
                    "server": self.name,
                },
            )
            await self._put_back(jobs, _NO_WORKER)

    def _idle(self) -> bool:
        """No job task runs or waits, every outcome has been written."""
        return (
            not self._tasks
            and not self._unwritten
            and not self._ahead
            and not self._doubtful
        )

    async def _nap(self, seconds: float) -> None:
        """Sleep until woken (work, a finished job, a stop) or timed out."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    # -- one job ------------------------------------------------------------

    def _start(self, job: JobRecord) -> None:
        source = CancellationTokenSource()
        if job.timeout is not None:
            source.cancel_after(job.timeout, CancellationReason.TIMEOUT)
        execution = _Execution(job, source, self._free_workers.pop())
        previous = self._latest.get(job.id)
        self._running[execution.key] = execution
        self._latest[job.id] = execution
        task = asyncio.get_running_loop().create_task(
            self._run(execution, previous)
        )
        execution.task = task
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        # Held until its outcome is written, or its task ends without one.
        self._held.add(execution.key)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._idle():
            self._wake.set()
        if not task.cancelled() and task.exception() is not None:
            _log.error(
                "server %s: a job task failed",
                self.name,
                exc_info=task.exception(),
                extra={"event": "server.job_task_failed"},
            )

    async def _run(
        self, execution: _Execution, previous: _Execution | None
    ) -> None:
        submitted = False
        try:
            submitted = await self._run_and_submit(execution, previous)
        finally:
            if not submitted:
                self._held.discard(execution.key)

    async def _run_and_submit(
        self, execution: _Execution, previous: _Execution | None
    ) -> bool:
        """Run the job and submit its outcome; False when there is none.

        The outcome is written later, with others; then
        :meth:`_outcome_written` logs the job's end.
        """
        job = execution.job
        token = execution.source.token
        if _log.isEnabledFor(logging.INFO):
            _log.info(
                "job %s started: %s on %s (attempt %d)",
                job.id,
                job.function,
                job.queue,
                job.attempt,
                extra=self._facts(execution, "job.started"),
            )
        started = time.monotonic()
        try:
            if previous is not None:
                await self._outlive(previous)
            context = JobContext(
                job.id,
                job.function,
                job.queue,
                job.attempt,
                token,
                self._progress,
            )
            ending = await perform(
                job,
                token,
                self.activator,
                self._threads,
                self.tuning.interrupt_delay,
                context,
            )
        except asyncio.CancelledError:
            raise
        except BaseException as error:  # noqa: BLE001 - recorded as failure
            # SystemExit or KeyboardInterrupt raised by a job function on
            # its thread: a failure of that job, not of the server.
            duration = time.monotonic() - started
            ending = Ending(error, True, DEFAULT_RETRY, duration)
        finally:
            self._release(execution)
        if execution.abandoned:
            return False

        data: dict[str, JSONValue] = {
            "server": self.name,
            "worker": execution.worker,
            "duration": round(ending.duration, 6),
        }
        if not ending.keep_result:
            if ending.error is None:
                # Never encoded: nothing of it can be logged or stored.
                data[RESULT_ERROR] = NOT_WANTED
        elif ending.value is not None:
            if cheap_to_keep(ending.value):
                record_result(data, ending.value, job)
            else:
                # A big result would hold the loop, heartbeat included.
                await asyncio.to_thread(record_result, data, ending.value, job)
        change = outcome_of(
            job,
            ending,
            token,
            datetime.now(UTC),
            data,
            self.tuning.retention,
        )
        if change is None:
            _log.info(
                "job %s stopped: %s",
                job.id,
                token.reason,
                extra=self._facts(execution, "job.aborted", ending),
            )
            return False
        self._unwritten += 1
        self._writer.submit_then(
            change,
            functools.partial(
                self._outcome_written, execution, ending, change
            ),
        )
        return True

    def _outcome_written(
        self,
        execution: _Execution,
        ending: Ending,
        change: StateChange,
        outcome: ChangeOutcome | None,
    ) -> None:
        self._unwritten -= 1
        self._held.discard(execution.key)
        if self._idle():
            self._wake.set()
        self._log_end(execution, ending, change, outcome)
        if change.scheduled_at is not None:
            self._promoter.due_at(change.scheduled_at)

    async def _outlive(self, previous: _Execution) -> None:
        """Wait for an older execution of the same job to end.

        The job was requeued while it ran here and fetched again before
        the older execution noticed: one server never runs a job twice
        at once.
        """
        task = previous.task
        if task is None or task.done():
            return
        previous.source.cancel(_ABORT_REASONS[JobState.ENQUEUED])
        await asyncio.wait({task})

    def _release(self, execution: _Execution) -> None:
        if self._running.get(execution.key) is execution:
            del self._running[execution.key]
        if self._latest.get(execution.job.id) is execution:
            del self._latest[execution.job.id]
        self._free_workers.append(execution.worker)
        self._ahead.finished()
        execution.source.close()
        self._changed.set()
        if not self._stop_level():
            job = self._ahead.take()
            if job is not None:
                self._start(job)
        if self._saturated:
            self._wake.set()

    def _facts(
        self,
        execution: _Execution,
        event: str,
        ending: Ending | None = None,
    ) -> dict[str, object]:
        job = execution.job
        facts: dict[str, object] = {
            "event": event,
            "job_id": job.id,
            "function": job.function,
            "queue": job.queue,
            "attempt": job.attempt,
            "server": self.name,
            "worker": execution.worker,
        }
        if ending is not None:
            facts["duration"] = round(ending.duration, 6)
        return facts

    def _log_end(
        self,
        execution: _Execution,
        ending: Ending,
        change: StateChange,
        outcome: ChangeOutcome | None,
    ) -> None:
        job = execution.job
        if outcome is None:
            _log.error(
                "job %s ended but its outcome (%s) could not be written",
                job.id,
                change.to_state.value,
                extra=self._facts(execution, "job.outcome_lost", ending),
            )
            return
        if not outcome.applied:
            _log.info(
                "job %s ended but had left processing meanwhile; its "
                "outcome (%s) was not recorded",
                job.id,
                change.to_state.value,
                extra=self._facts(execution, "job.outcome_refused", ending),
            )
            return
        level, event, words = _ENDINGS[change.to_state]
        if not _log.isEnabledFor(level):
            return
        _log.log(
            level,
            "job %s %s after %.3f s: %s",
            job.id,
            words,
            ending.duration,
            change.reason,
            exc_info=ending.error if level >= logging.ERROR else None,
            extra=self._facts(execution, event, ending),
        )

    async def _unstarted(self) -> list[JobRecord]:
        """The jobs this stopping server holds but has not started: those
        fetched ahead, and those handed to it at enqueue (after which it
        takes no more hand-offs)."""
        jobs = self._ahead.give_up() + self._give_up_doubtful()
        try:
            jobs += await self.storage.end_handoffs(self.name)
        except StorageError as error:
            # Its jobs are recovered once it has unregistered.
            _log.warning(
                "server %s could not stop taking jobs at enqueue: %s",
                self.name,
                error,
                extra={"event": "server.handoffs_end_failed"},
            )
        return jobs

    async def _put_back(self, jobs: Sequence[JobRecord], reason: str) -> None:
        """Requeue jobs fetched but not started (the server stops, or
        no worker freed up for jobs fetched ahead)."""
        now = datetime.now(UTC)
        changes = [
            states.interrupted(job.id, job.version, now, reason, {})
            for job in jobs
        ]
        if changes:
            await asyncio.gather(
                *(self._writer.submit(change) for change in changes)
            )
        # Written or not: a job still held in storage is the
        # reconciler's to put back.
        for job in jobs:
            self._held.discard((job.id, job.version))

    # -- aborting running jobs ---------------------------------------------

    def _hear(self, notification: Notification) -> None:
        # Called from any thread (the storage's, another client's).
        loop = self._loop
        if loop is None:
            return
        if _running_loop() is loop:
            # Heard on our own loop (PostgreSQL's listening connection,
            # a commit in this process): act now rather than one loop
            # turn and a wake-up write later, which is a good part of
            # an idle server's enqueue-to-start time.
            self._heard(notification)
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._heard, notification)

    def _heard(self, notification: Notification) -> None:
        if isinstance(notification, JobsEnqueued):
            if not notification.queues.isdisjoint(self.queues):
                self._wake.set()
        elif isinstance(notification, JobsAborted):
            ids = notification.job_ids
            # The notification names jobs, not versions: it may be about
            # an earlier run of a job fetched ahead here since (requeued
            # or recovered elsewhere, then fetched again). Such a job is
            # not to start before the check, nor to be forgotten while
            # storage says this server holds it.
            doubted = self._ahead.drop(ids)
            for job in doubted:
                self._doubtful[(job.id, job.version)] = job
            if doubted or not ids.isdisjoint(self._latest):
                self._abort_check.set()

    async def _watch_aborts(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.tuning.abort_check_interval):
                    await self._abort_check.wait()
            self._abort_check.clear()
            if self._running or self._doubtful:
                await self._check_aborts()

    async def _check_aborts(self) -> None:
        """Fire the tokens of running jobs that left *processing*; settle
        the jobs fetched ahead that were set aside."""
        watched = [
            e
            for e in self._running.values()
            if not e.source.is_cancellation_requested
        ]
        doubtful = list(self._doubtful.values())
        if not watched and not doubtful:
            return
        ids = {e.job.id for e in watched} | {job.id for job in doubtful}
        try:
            found = await self.storage.job_states(list(ids))
        except StorageError as error:
            _log.warning(
                "checking running jobs failed: %s",
                error,
                extra={"event": "server.abort_check_failed"},
            )
            return
        self._settle_doubtful(doubtful, found)
        for execution in watched:
            current = found.get(execution.job.id)
            if current == (JobState.PROCESSING, execution.job.version):
                continue
            state = None if current is None else current[0]
            reason = _ABORT_REASONS.get(state, f"job moved to {state}")
            if execution.source.cancel(reason):
                _log.info(
                    "job %s aborted: %s",
                    execution.job.id,
                    reason,
                    extra=self._facts(execution, "job.aborting"),
                )

    def _settle_doubtful(
        self,
        doubtful: Sequence[JobRecord],
        found: dict[JobId, tuple[JobState, int]],
    ) -> None:
        """Drop the jobs set aside that did change; wait on the others."""
        kept = []
        for job in doubtful:
            key = (job.id, job.version)
            if self._doubtful.pop(key, None) is None:
                continue  # given up meanwhile: the server stops
            if found.get(job.id) == (JobState.PROCESSING, job.version):
                kept.append(job)
            else:
                self._held.discard(key)
        if not kept:
            return
        _log.debug(
            "server %s: %d jobs fetched ahead were changed elsewhere "
            "only before this fetch; they wait for a worker again",
            self.name,
            len(kept),
            extra={"event": "server.fetched_ahead_kept", "server": self.name},
        )
        self._ahead.keep(kept)
        while self._free_workers and not self._stop_level():
            waiting = self._ahead.take()
            if waiting is None:
                break
            self._start(waiting)
        # The fetch loop may wait for a worker with nothing ahead: it
        # looks again, so that these go back if no worker frees up.
        self._wake.set()

    def _give_up_doubtful(self) -> list[JobRecord]:
        jobs = list(self._doubtful.values())
        self._doubtful.clear()
        return jobs

    async def _declared_dead(self) -> None:
        _log.warning(
            "server %s was declared dead by another server; its %d "
            "running jobs were recovered elsewhere and are stopped",
            self.name,
            len(self._running),
            extra={"event": "server.declared_dead", "server": self.name},
        )
        for execution in list(self._running.values()):
            execution.source.cancel(DECLARED_DEAD)
        # Jobs fetched ahead, or handed to it at enqueue, were put back
        # on their queues with the rest.
        for job in self._ahead.give_up() + self._give_up_doubtful():
            self._held.discard((job.id, job.version))
        with contextlib.suppress(StorageError):
            await self.storage.end_handoffs(self.name)
        await self._announce()

    # -- stopping -------------------------------------------------------------

    def _stop_requested(self) -> None:
        self._wake.set()
        self._changed.set()

    async def _stop_jobs(self) -> None:
        """Wind down running jobs: grace, tokens, timeout, put back."""
        tuning = self.tuning
        if self._running and self._stop_requests < 2:
            await self._wait_idle(tuning.shutdown_grace)
        if self._running:
            for execution in list(self._running.values()):
                execution.source.cancel(CancellationReason.SHUTDOWN)
            if self._stop_requests < 2:
                await self._wait_idle(tuning.shutdown_timeout)
        left = list(self._running.values())
        if left:
            await self._abandon(left)
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5)

    async def _wait_idle(self, seconds: float) -> None:
        """Wait until no job runs, ``seconds`` pass, or a harder stop."""
        level = self._stop_requests
        deadline = time.monotonic() + seconds
        while self._running and self._stop_requests == level:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._changed.wait()

    async def _abandon(self, executions: Sequence[_Execution]) -> None:
        """Put jobs that did not stop back on their queues, and leave them."""
        now = datetime.now(UTC)
        changes = []
        for execution in executions:
            execution.abandoned = True
            job = execution.job
            changes.append(
                states.interrupted(
                    job.id,
                    job.version,
                    now,
                    "interrupted by shutdown (the job did not stop in time)",
                    {"server": self.name, "worker": execution.worker},
                )
            )
            if execution.task is not None:
                execution.task.cancel()
        outcomes = await asyncio.gather(
            *(self._writer.submit(change) for change in changes)
        )
        for execution, outcome in zip(executions, outcomes, strict=True):
            if outcome is None:
                what = "it could not be put back on its queue"
            elif outcome.applied:
                what = "put back on its queue"
            else:
                what = "it had left processing already"
            _log.warning(
                "job %s did not stop in time; %s",
                execution.job.id,
                what,
                extra=self._facts(execution, "job.abandoned"),
            )


# -- the command-line entry point ---------------------------------------------


@dataclass(frozen=True, slots=True)
class _Plan:
    storage_url: str
    imports: tuple[str, ...]
    queues: tuple[str, ...]
    concurrency: int | None
    name: str | None
    until_empty: bool


def run_server(
    storage_url: str,
    *,
    imports: Sequence[str] = (),
    queues: Sequence[str] = ("default",),
    concurrency: int | None = None,
    processes: int = 1,
    name: str | None = None,
    until_empty: bool = False,
) -> int:
    """Run a server (or several server processes) until stopped.

    Imports ``imports`` (the modules that define the job functions),
    opens and migrates the storage, and runs one :class:`Server`, or
    ``processes`` of them in child processes (for CPU-bound jobs), each
    named ``host:pid``, or ``name-1``, ``name-2``... when named. SIGTERM
    and SIGINT stop gracefully; a second signal stops harder.

    Returns:
        The exit code: 0 after a clean stop (a server process that
        SIGTERM ended while it was still starting counts as one), 1 when
        the server failed (storage unreachable...), 2 for bad arguments
        (a module that does not import, an invalid storage URL or queue
        name).
    """
    logging_ours = _default_logging()
    if name is not None:
        try:
            # The longest name of a process, when there are several.
            check_server_name(
                name if processes == 1 else f"{name}-{processes}"
            )
        except ValueError as error:
            _log.error("%s", error, extra={"event": "server.bad_arguments"})
            return 2
    plan = _Plan(
        storage_url,
        tuple(imports),
        tuple(queues),
        concurrency,
        name,
        until_empty,
    )
    if processes < 1:
        _log.error("processes must be at least 1, got %d", processes)
        return 2
    if processes == 1:
        return _run_process(plan, (signal.SIGTERM, signal.SIGINT))
    return _run_processes(plan, processes, logging_ours)


_NAME_LIMIT = 200


def check_server_name(name: str) -> str:
    """Return ``name`` if it can name a server.

    Names go into every log line, the dashboard and storage: 1 to 200
    printable characters (``run_server`` adds ``-1``, ``-2``... for its
    processes).

    Raises:
        ValueError: the name is empty, too long or holds a control
            character.
    """
    if (
        not isinstance(name, str)
        or not 0 < len(name) <= _NAME_LIMIT
        or not name.isprintable()
    ):
        shown = name
        if isinstance(name, str) and len(name) > 40:
            shown = name[:40] + "…"  # not the whole of a huge input
        raise ValueError(
            f"invalid server name {shown!r}: use 1-{_NAME_LIMIT} "
            "printable characters"
        )
    return name


def _run_process(plan: _Plan, signals: Sequence[signal.Signals]) -> int:
    for module in plan.imports:
        try:
            importlib.import_module(module)
        except Exception as error:  # noqa: BLE001 - reported, exit code 2
            _log.error(
                "cannot import %s: %s: %s",
                module,
                type(error).__name__,
                error,
                extra={"event": "server.import_failed"},
            )
            return 2
    try:
        storage = open_storage(plan.storage_url)
        server = Server(
            storage,
            queues=plan.queues,
            concurrency=plan.concurrency,
            name=plan.name,
        )
    except (ValueError, TypeError) as error:
        _log.error("%s", error, extra={"event": "server.bad_arguments"})
        return 2
    try:
        asyncio.run(_serve_with_signals(server, storage, plan, signals))
    # OSError: the machine refused the process something it needs to run
    # at all (a file descriptor for its event loop, say).
    except (StorageError, OSError) as error:
        _log.error(
            "server %s failed: %s",
            server.name,
            error,
            extra={"event": "server.failed"},
        )
        return 1
    return 0


async def _serve_with_signals(
    server: Server,
    storage: Storage,
    plan: _Plan,
    signals: Sequence[signal.Signals],
) -> None:
    loop = asyncio.get_running_loop()
    installed = []
    if threading.current_thread() is threading.main_thread():
        for signum in signals:
            try:
                loop.add_signal_handler(signum, _on_signal, server, signum)
            except NotImplementedError:  # Windows: no loop signal handlers
                signal.signal(
                    signum,
                    lambda s, f: loop.call_soon_threadsafe(
                        _on_signal, server, signal.Signals(s)
                    ),
                )
            installed.append(signum)
    try:
        await storage.migrate()
        await server.run(until_empty=plan.until_empty)
    finally:
        for signum in installed:
            with contextlib.suppress(NotImplementedError, ValueError):
                loop.remove_signal_handler(signum)
        await storage.close()


def _on_signal(server: Server, signum: signal.Signals) -> None:
    harder = server.stopping
    _log.info(
        "%s: %s",
        signum.name,
        "stopping harder" if harder else "stopping gracefully",
        extra={"event": "server.signal", "signal": signum.name},
    )
    server.shutdown()


def _default_logging() -> logging.Handler | None:
    """Log job lifecycle lines to stderr unless the app set logging up.

    Returns:
        The handler put on the root logger, if one was.
    """
    # Written by a thread of its own, off the event loop that runs jobs.
    if not log_to(sys.stderr):
        return None
    return logging.getLogger().handlers[-1]


def _stop_default_logging(handler: logging.Handler) -> None:
    """Take ``handler`` off: its queued lines are written, its thread ends."""
    logging.getLogger().removeHandler(handler)
    handler.close()


def _child_main(plan: _Plan) -> None:
    # A child starts with logging unconfigured (spawned: a new
    # interpreter; forked: the parent took its handler off first):
    # without this its job lines would be lost while the parent's show.
    _default_logging()
    # The parent forwards SIGINT as SIGTERM: a terminal's Ctrl-C, which
    # reaches every process of the group, must count once, not twice.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A forked child inherits the parent's handler, which is no use
    # here: until the server's own is in place, SIGTERM ends the
    # process (a clean stop, see _exit_code).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # Held back since the parent started this process (_signals_held):
    # a SIGINT that came meanwhile is dropped, a SIGTERM ends it now.
    _release_stop_signals()
    try:
        code = _run_process(plan, (signal.SIGTERM,))
    finally:
        # A forked child ends in os._exit(), which skips the atexit hook
        # that writes the lines still queued by the log writer thread.
        logging.shutdown()
    sys.exit(code)


def _forkable() -> bool:
    """Whether the server processes can be forked rather than spawned.

    A forked child inherits the parent's imports (the job engine and the
    application's job functions, some 0.1-0.2 s of start-up each), but
    fork is only safe from a process running a single thread, on Linux
    (macOS system libraries do not survive it). Anything else spawns a
    fresh interpreter, which imports everything again.
    """
    linux = sys.platform.startswith("linux")
    return linux and threading.active_count() == 1


def _run_processes(
    plan: _Plan, processes: int, logging_ours: logging.Handler | None
) -> int:
    # Only here: one server process needs none of it.
    import multiprocessing

    try:
        storage = open_storage(plan.storage_url)
        asyncio.run(_migrate(storage))
    except (ValueError, StorageError) as error:
        _log.error("%s", error, extra={"event": "server.bad_arguments"})
        return 2 if isinstance(error, ValueError) else 1
    # The default log writer is a thread: take it off while the children
    # are made, so that they can be forked, then put a new one on.
    if logging_ours is not None:
        _stop_default_logging(logging_ours)
    context = (
        multiprocessing.get_context("fork")
        if _forkable()
        else multiprocessing.get_context("spawn")
    )
    children = []
    for index in range(1, processes + 1):
        child_plan = dataclasses.replace(
            plan, name=None if plan.name is None else f"{plan.name}-{index}"
        )
        children.append(
            context.Process(
                target=_child_main,
                args=(child_plan,),
                name=f"backburner-server-{index}",
            )
        )
    stops = _Stops(children)
    # In place before the first process starts: from then on a Ctrl-C
    # must stop the processes, not interrupt this one, whose exit would
    # wait for them (they ignore SIGINT) or leave them orphaned.
    previous = _install(stops.received)
    refused: OSError | None = None
    try:
        try:
            _start(children, context)
        except BaseException as error:
            # A process did not start (fork refused, no file descriptor
            # left...): stop those that did rather than leave them
            # running.
            stops.request("a server process failed to start")
            stops.forward()
            if not isinstance(error, OSError):
                raise
            refused = error
        finally:
            if logging_ours is not None:
                _default_logging()
        if refused is None:
            _supervise(children, stops)
    finally:
        for child in children:
            if child.pid is not None:
                child.join()
        _restore(previous)
        stops.close()
    if refused is not None:
        started = sum(child.pid is not None for child in children)
        _log.error(
            "cannot start %d server processes (%d started, now stopped): %s",
            processes,
            started,
            refused,
            extra={"event": "server.start_failed"},
        )
        return 1
    return _exit_code([child.exitcode or 0 for child in children])


def _start(
    children: Sequence[BaseProcess],
    context: BaseContext,
) -> None:
    """Start the server processes, SIGINT and SIGTERM held back meanwhile.

    Held back, the signals wait until the parent can forward them, and
    until each child has set its own handlers (:func:`_child_main`):
    before that, a forked child would run the parent's handler.
    """
    if context.get_start_method() == "spawn":
        from multiprocessing import resource_tracker

        # The first spawn would start the resource tracker, which lets
        # the signals through again as it does: start it beforehand.
        resource_tracker.ensure_running()
    with _signals_held():
        for child in children:
            child.start()


def _supervise(children: Sequence[BaseProcess], stops: _Stops) -> None:
    """Forward stop requests to the server processes until all ended."""
    from multiprocessing.connection import wait

    waiting = [child for child in children if child.is_alive()]
    while waiting:
        stops.forward()
        wait(
            [*(child.sentinel for child in waiting), stops.wakeup],
            timeout=1.0,
        )
        waiting = [child for child in waiting if child.is_alive()]


class _Stops:
    """Stop requests for the server processes, each forwarded to each.

    :meth:`received` is the parent's SIGTERM and SIGINT handler. It only
    notes the request and wakes :func:`_supervise`: a handler may run
    between any two bytecodes, in ``Process.start()`` too, after the
    fork but before the process is known. :meth:`forward` then sends
    every process one SIGTERM per request it has not had yet, a process
    started after the request included. A second request is a second
    SIGTERM: the servers stop harder.
    """

    def __init__(self, children: Sequence[BaseProcess]) -> None:
        self._children = children
        # What asked for each stop: a signal's name, mostly.
        self._requests: list[str] = []
        self._logged = 0
        self._sent = [0] * len(children)
        self.wakeup, self._wake = os.pipe()
        os.set_blocking(self.wakeup, False)
        os.set_blocking(self._wake, False)

    def received(self, signum: int, frame: FrameType | None) -> None:
        """The signal handler: note a stop request."""
        self.request(signal.Signals(signum).name)
        # Full pipe (requests by the thousand): a wake-up is due anyway.
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake, b"\0")

    def request(self, why: str) -> None:
        """Note a stop request; :meth:`forward` sends it."""
        self._requests.append(why)

    def forward(self) -> None:
        """Send the server processes the stop requests they have not had."""
        with contextlib.suppress(BlockingIOError):
            os.read(self.wakeup, 512)
        requests = len(self._requests)
        for why in self._requests[self._logged : requests]:
            _log.info(
                "%s: stopping the server processes",
                why,
                extra={"event": "server.signal"},
            )
        self._logged = requests
        for index, child in enumerate(self._children):
            missing = requests - self._sent[index]
            # Alive: not reaped, so its pid is still its own.
            if missing == 0 or child.pid is None or not child.is_alive():
                continue
            for _ in range(missing):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGTERM)
            self._sent[index] = requests

    def close(self) -> None:
        """Close the wake-up pipe; the handler must be off by now."""
        os.close(self.wakeup)
        os.close(self._wake)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back from this thread, and from the
    processes it starts meanwhile (they inherit the signal mask)."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _release_stop_signals() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)


def _exit_code(codes: Sequence[int]) -> int:
    """The parent's exit code from its children's (negative: signal).

    A child killed by SIGTERM stopped as asked: it was still starting,
    before its own handler was in place, when the stop was forwarded to
    it (or someone sent SIGTERM to the whole group).
    """
    worst = 0
    for code in codes:
        if code == -signal.SIGTERM:
            code = 0
        elif code < 0:
            code = 1
        worst = max(worst, code)
    return worst


async def _migrate(storage: Storage) -> None:
    try:
        await storage.migrate()
    finally:
        await storage.close()


_Handler = Callable[[int, FrameType | None], Any] | int | None


def _install(
    handler: Callable[[int, FrameType | None], None],
) -> dict[int, _Handler]:
    previous: dict[int, _Handler] = {}
    if threading.current_thread() is not threading.main_thread():
        return previous
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, handler)
    return previous


def _restore(previous: dict[int, _Handler]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)
