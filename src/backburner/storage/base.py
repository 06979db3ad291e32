"""The storage interface: everything the job engine asks of a database.

Nothing above ``backburner.storage`` talks to a database directly; the
client, the server, the CLI and the dashboard go through :class:`Storage`.
An implementation owns its schema, its connections and its dialect.

Contract, in short (the conformance suite in ``tests/storage`` is the
long version):

- Every state change is applied by :meth:`Storage.apply_changes` (or by
  :meth:`Storage.fetch`, :meth:`Storage.promote_scheduled` and
  :meth:`Storage.recover_dead_servers`, which are state changes too) in
  one transaction per call: a history row per job, the job's current
  state and version, its queue entry and the counters move together.
- A change is a compare-and-set: it names the states it may start from
  (and optionally the job's version). When the job is elsewhere nothing
  is written for that job and the outcome says so.
- A job has a queue entry exactly while it is *enqueued*, so at most one.
- Entering *processing* (only through :meth:`Storage.fetch`) records the
  server and increments the attempt; leaving it clears the server.
- Every change increments the job's version; a worker writes its outcome
  with the version it fetched, so a job that was recovered or deleted
  meanwhile refuses the stale outcome.
- Times are timezone-aware UTC :class:`datetime` values, passed in by the
  caller so that the engine, not the database, decides what "now" is.
- Methods are coroutines and never block the event loop.
- Listeners passed to :meth:`Storage.subscribe` hear about enqueued jobs
  and about jobs that left *processing* without their worker's say, in
  this process at least (implementations may reach other processes).
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeAlias

from backburner._picklable import PicklableException

JobId: TypeAlias = int
# Both storages keep ids in a signed 64-bit column: a larger id cannot
# name a job, and SQLite would refuse to even compare it.
MAX_JOB_ID = 2**63 - 1
JSONValue: TypeAlias = (
    bool
    | int
    | float
    | str
    | list["JSONValue"]
    | dict[str, "JSONValue"]
    | None
)


class JobState(enum.StrEnum):
    """The states a job moves through (see ``backburner.jobs.states``)."""

    ENQUEUED = "enqueued"
    SCHEDULED = "scheduled"
    AWAITING = "awaiting"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DELETED = "deleted"


ACTIVE_STATES = frozenset(
    {JobState.ENQUEUED, JobState.SCHEDULED, JobState.PROCESSING}
)
"""States in which a job holds its unique key."""
FINAL_STATES = frozenset(
    {JobState.SUCCEEDED, JobState.FAILED, JobState.DELETED}
)
"""States a parent job's continuations react to."""


def continuation_target(
    parent_state: JobState, on_states: frozenset[JobState]
) -> JobState | None:
    """Where an awaiting continuation goes when its parent reaches
    ``parent_state``: *enqueued* when it is one of ``on_states``;
    *deleted* when the parent succeeded or was deleted otherwise (it will
    not reach them without a requeue, which re-arms the continuation);
    nowhere (``None``: it keeps waiting) after a failure it does not
    wait for, since a failed job stays until someone requeues or
    deletes it.
    """
    if parent_state in on_states:
        return JobState.ENQUEUED
    if parent_state in (JobState.SUCCEEDED, JobState.DELETED):
        return JobState.DELETED
    return None


def encode_states(states: frozenset[JobState]) -> str:
    """The stored form of a set of states (comma-separated, sorted)."""
    return ",".join(sorted(state.value for state in states))


def decode_states(text: str) -> frozenset[JobState]:
    """Read back :func:`encode_states`; unknown names are ignored."""
    known = {state.value: state for state in JobState}
    return frozenset(known[name] for name in text.split(",") if name in known)


class StorageError(PicklableException, Exception):
    """Base class of every error raised by a storage implementation."""


class InvalidStorageURLError(StorageError, ValueError):
    """Raised by ``open_storage`` when a URL names no usable storage."""


class SchemaError(StorageError):
    """Raised when the database schema is newer than this code knows."""


class MissingParentError(StorageError):
    """Raised when a continuation names a parent job that does not exist.

    Attributes:
        parent_id: the missing parent.
    """

    def __init__(self, parent_id: JobId) -> None:
        super().__init__(f"parent job {parent_id} does not exist")
        self.parent_id = parent_id


class CorruptedJobError(StorageError):
    """Raised when a stored job row cannot be read back.

    Attributes:
        job_id: the job whose row is damaged.
    """

    def __init__(self, job_id: JobId, detail: str) -> None:
        super().__init__(f"job {job_id} is corrupted in storage: {detail}")
        self.job_id = job_id


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One row of a job's state history.

    ``data`` holds facts about the change (server, worker, duration,
    exception type, message and traceback...) as JSON values.
    """

    state: JobState
    reason: str
    at: datetime
    data: Mapping[str, JSONValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to create.

    ``arguments`` is the already-encoded argument document; storage keeps
    it as an opaque string. ``state`` is *enqueued*, *scheduled* (then
    ``scheduled_at`` is set) or *awaiting*.

    ``unique_key``: while a job with this key is enqueued, scheduled or
    processing (:data:`ACTIVE_STATES`), no other is created; its id is
    returned instead. Not allowed on an *awaiting* job.
    ``mutex``: at most ``mutex_limit`` jobs with this key are processing
    at once, across all servers; the others wait on their queue.
    ``keep_result``: whether the server keeps what the job function
    returns; ``None`` leaves it to the job function's declaration.
    Storage keeps it as given and reads it back in :class:`JobRecord`.
    """

    function: str
    arguments: str
    queue: str
    state: JobState
    reason: str
    created_at: datetime
    scheduled_at: datetime | None = None
    timeout: float | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)
    unique_key: str | None = None
    mutex: str | None = None
    mutex_limit: int = 1
    keep_result: bool | None = None


@dataclass(frozen=True, slots=True)
class NewContinuation:
    """A job (created *awaiting*) that runs when its parent finishes.

    When the parent reaches a state in ``on_states`` (a non-empty subset
    of :data:`FINAL_STATES`) the job is enqueued; see
    :func:`continuation_target` for the other cases.
    """

    parent_id: JobId
    job: NewJob
    on_states: frozenset[JobState]


@dataclass(frozen=True, slots=True)
class ContinuationLink:
    """A parent job and one of its continuations."""

    parent_id: JobId
    job_id: JobId
    on_states: frozenset[JobState]


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job as storage keeps it (arguments still encoded)."""

    id: JobId
    function: str
    arguments: str
    queue: str
    state: JobState
    reason: str
    version: int
    attempt: int
    created_at: datetime
    state_changed_at: datetime
    scheduled_at: datetime | None
    server: str | None
    expires_at: datetime | None
    timeout: float | None
    unique_key: str | None = None
    mutex: str | None = None
    mutex_limit: int | None = None
    keep_result: bool | None = None


@dataclass(frozen=True, slots=True)
class StateChange:
    """A compare-and-set move of one job to ``to_state``.

    Applied only when the job's state is in ``from_states`` and, if
    ``expected_version`` is given, its version equals it.
    ``scheduled_at`` is required when moving to *scheduled*;
    ``expires_at`` marks the job for :meth:`Storage.expire`.
    ``from_worker`` is set when the worker running the job reports its
    outcome; any other change out of *processing* is announced to
    listeners as :class:`JobsAborted`. ``reset_attempt`` starts the
    attempt count again (a manual requeue).
    """

    job_id: JobId
    to_state: JobState
    from_states: frozenset[JobState]
    reason: str
    at: datetime
    data: Mapping[str, JSONValue] = field(default_factory=dict)
    expected_version: int | None = None
    scheduled_at: datetime | None = None
    expires_at: datetime | None = None
    from_worker: bool = False
    reset_attempt: bool = False


@dataclass(frozen=True, slots=True)
class ChangeOutcome:
    """What became of one :class:`StateChange`.

    ``previous_state`` is the state the job was found in (``None`` when
    there is no such job); ``applied`` tells whether the change was made.
    ``unique_holder`` is set when the change was refused because it
    would make the job active while another active job (this one) holds
    the same unique key.
    """

    job_id: JobId
    applied: bool
    previous_state: JobState | None
    unique_holder: JobId | None = None


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """A server as registered in storage."""

    name: str
    queues: tuple[str, ...]
    workers: int
    started_at: datetime
    heartbeat_at: datetime


@dataclass(frozen=True, slots=True)
class StateCount:
    """How many jobs are in ``state`` on ``queue``."""

    state: JobState
    queue: str
    count: int


@dataclass(frozen=True, slots=True)
class OutcomeCount:
    """How many jobs reached ``state`` in the hour starting at ``hour``.

    ``state`` is *succeeded* or *failed*; ``hour`` is UTC, on the hour.
    """

    state: JobState
    hour: datetime
    count: int


@dataclass(frozen=True, slots=True)
class JobsEnqueued:
    """Notification: jobs became ready on these queues."""

    queues: frozenset[str]


@dataclass(frozen=True, slots=True)
class JobsAborted:
    """Notification: these jobs left *processing* without their worker.

    Sent when a job is deleted, requeued or recovered while it runs, so
    that the server running it can fire the job's cancellation token.
    """

    job_ids: frozenset[JobId]


@dataclass(frozen=True, slots=True)
class RecurringDefinition:
    """What a recurring job creates, and when (validated by the caller).

    ``arguments`` is the encoded argument document, as in
    :class:`NewJob`; ``missed`` names the policy for occurrences missed
    while no server ran (storage keeps it as text).
    """

    id: str
    function: str
    arguments: str
    queue: str
    cron: str
    time_zone: str
    missed: str
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class RecurringRecord:
    """A recurring job as storage keeps it.

    ``next_run_at`` is the next occurrence to create a job for; it is
    ``None`` when the recurring job was stopped (after repeated errors)
    and is not looked at while ``paused``. ``last_run_at`` is the
    occurrence (or trigger) time of the last job created, whose id is
    ``last_job_id`` and whose current state is ``last_job_state``
    (``None`` once that job expired). ``error`` and ``failures`` tell
    why and how many times in a row creating a job failed. Every change
    increments ``version``.
    """

    id: str
    function: str
    arguments: str
    queue: str
    cron: str
    time_zone: str
    missed: str
    timeout: float | None
    paused: bool
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_job_id: JobId | None
    last_job_state: JobState | None
    error: str | None
    failures: int
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class RecurringFiring:
    """A compare-and-set step of one recurring job.

    Applied only when the recurring job's version still equals
    ``expected_version``: then ``jobs`` are created, ``next_run_at``,
    ``error`` and ``failures`` are written as given, and when ``jobs``
    is not empty ``last_run_at`` (required then) and the id of the last
    job created are recorded, all in one transaction.
    """

    recurring_id: str
    expected_version: int
    at: datetime
    jobs: Sequence[NewJob]
    next_run_at: datetime | None
    last_run_at: datetime | None = None
    error: str | None = None
    failures: int = 0


Notification: TypeAlias = JobsEnqueued | JobsAborted
Listener: TypeAlias = Callable[[Notification], None]


class Storage(abc.ABC):
    """The database behind the job engine.

    Listeners are called from any thread; they must be quick and
    thread-safe (``loop.call_soon_threadsafe`` is the usual body).
    """

    @abc.abstractmethod
    async def migrate(self) -> list[int]:
        """Install or upgrade the schema; return the versions applied.

        Raises:
            SchemaError: the database was migrated by newer code.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections and threads; the storage is unusable after."""

    async def maintain(self) -> None:  # noqa: B027 - optional, no-op default
        """Database housekeeping that every server runs now and then.

        Storages whose database needs care beyond expiry (statistics,
        vacuum) do it here; it must be safe with any number of servers
        calling at once, and cheap when there is nothing to do. The
        default does nothing.

        Raises:
            StorageError: the database could not be reached.
        """

    # -- jobs ---------------------------------------------------------

    @abc.abstractmethod
    async def create_jobs(self, jobs: Sequence[NewJob]) -> list[JobId]:
        """Store ``jobs`` in one transaction and return their ids in order.

        Each job gets its first history row, its queue entry when
        enqueued, its parameters, and the counters move. A job with a
        ``unique_key`` held by an active job (or by an earlier job of the
        same call) is not created: that job's id is returned in its
        place. Two callers racing with the same key get the same id.

        Raises:
            StorageError: nothing was written.
        """

    @abc.abstractmethod
    async def apply_changes(
        self, changes: Sequence[StateChange]
    ) -> list[ChangeOutcome]:
        """Apply compare-and-set state changes in one transaction.

        A change whose job is missing or elsewhere is skipped (and
        reported) without affecting the others. Moving to *processing* is
        refused here (only :meth:`fetch` does that).
        """

    @abc.abstractmethod
    async def create_continuations(
        self, continuations: Sequence[NewContinuation]
    ) -> list[JobId]:
        """Store continuations in one transaction; return their job ids.

        Each job is created *awaiting* under its parent. A parent that
        is already in a final state is taken into account at once, in
        the same transaction (see :func:`continuation_target`), so a
        continuation created just as its parent finishes is never left
        waiting.

        Continuations react to their parent inside the transaction that
        moves the parent (:meth:`apply_changes`): when the parent reaches
        a final state each awaiting continuation moves as
        :func:`continuation_target` says (a continuation deleted this way
        passes it on to its own continuations); when the parent leaves a
        final state for *enqueued* (a requeue) its continuations in
        final states go back to *awaiting* (re-armed), and theirs too.

        Raises:
            MissingParentError: a parent does not exist; nothing was
                written.
            StorageError: a job is not *awaiting*, has a unique key, or
                ``on_states`` is empty or not final; nothing was written.
        """

    @abc.abstractmethod
    async def continuation_links(
        self, job_id: JobId
    ) -> list[ContinuationLink]:
        """Return the links of a job: to its parent (where it is the
        continuation) and to its continuations, by continuation id."""

    @abc.abstractmethod
    async def fetch(
        self,
        server: str,
        queues: Sequence[str],
        limit: int,
        now: datetime,
    ) -> list[JobRecord]:
        """Move up to ``limit`` enqueued jobs to *processing* for ``server``.

        Queues are drained in the order given; within a queue the oldest
        queue entry goes first. Each job is handed to one caller only.
        A job with a mutex is passed over (it stays on its queue) while
        its mutex's limit of processing jobs is reached; jobs fetched
        together count against the limit too.
        The returned records show the new state, attempt and version.
        Returns nothing when ``server`` is not registered (it was declared
        dead and must announce itself again); otherwise the fetch also
        counts as a heartbeat.
        """

    @abc.abstractmethod
    async def promote_scheduled(self, now: datetime, limit: int) -> int:
        """Enqueue up to ``limit`` scheduled jobs due at ``now``.

        Returns how many jobs were moved.
        """

    @abc.abstractmethod
    async def get_job(self, job_id: JobId) -> JobRecord | None:
        """Return the job, or ``None`` if there is no such job.

        Raises:
            CorruptedJobError: the row cannot be read back.
        """

    @abc.abstractmethod
    async def get_history(self, job_id: JobId) -> list[HistoryEntry]:
        """Return the job's history, oldest first (empty if unknown)."""

    @abc.abstractmethod
    async def list_jobs(
        self,
        *,
        state: JobState | None = None,
        queue: str | None = None,
        function: str | None = None,
        before: JobId | None = None,
        limit: int = 50,
    ) -> list[JobRecord]:
        """Return up to ``limit`` jobs, newest first, with ids < ``before``.

        ``state``, ``queue`` and ``function`` (the stored job function
        reference, ``module:qualname``, matched exactly) keep only the
        jobs that have them. No index holds the job function: a listing
        by function reads the jobs of its state (or queue, or all jobs)
        from the newest down until the page is full.

        Raises:
            CorruptedJobError: a row in the page cannot be read back.
        """

    @abc.abstractmethod
    async def counts(self) -> list[StateCount]:
        """Return the job counters per state and queue (no zero rows)."""

    @abc.abstractmethod
    async def outcome_counts(self, since: datetime) -> list[OutcomeCount]:
        """Return how many jobs succeeded and failed, per hour.

        Every change into *succeeded* or *failed* adds one to the total
        of its state and hour (by the change's time), in the change's
        transaction; leaving the state takes nothing back. Returns the
        hours starting at or after ``since``, oldest first, no zero rows.
        """

    @abc.abstractmethod
    async def job_states(
        self, job_ids: Sequence[JobId]
    ) -> dict[JobId, tuple[JobState, int]]:
        """Return the current state and version of each existing job."""

    @abc.abstractmethod
    async def expire(self, now: datetime, limit: int) -> int:
        """Remove up to ``limit`` jobs whose ``expires_at`` has passed.

        Returns how many jobs (with history and parameters) were removed.
        """

    # -- parameters ---------------------------------------------------

    @abc.abstractmethod
    async def set_parameter(
        self, job_id: JobId, name: str, value: str
    ) -> bool:
        """Set a job parameter; return ``False`` if there is no such job."""

    @abc.abstractmethod
    async def get_parameters(self, job_id: JobId) -> dict[str, str]:
        """Return all parameters of a job (empty if none or unknown)."""

    @abc.abstractmethod
    async def set_parameters(
        self, values: Mapping[JobId, Mapping[str, str]]
    ) -> set[JobId]:
        """Set parameters of many jobs in one transaction.

        Jobs that do not exist (any more) are skipped. Returns the ids
        of the jobs whose parameters were written. A server flushes the
        progress its jobs report through this, in one write per batch.

        Raises:
            StorageError: nothing was written.
        """

    # -- servers ------------------------------------------------------

    @abc.abstractmethod
    async def announce_server(self, info: ServerInfo) -> None:
        """Register (or re-register) a server as alive."""

    @abc.abstractmethod
    async def heartbeat(self, name: str, now: datetime) -> bool:
        """Record that ``name`` is alive.

        Returns ``False`` when the server is not registered, which means
        another server declared it dead and took its jobs back.
        """

    @abc.abstractmethod
    async def remove_server(self, name: str) -> None:
        """Unregister a server that is stopping (its jobs stay as they are)."""

    @abc.abstractmethod
    async def list_servers(self) -> list[ServerInfo]:
        """Return the registered servers, by name."""

    @abc.abstractmethod
    async def recover_dead_servers(
        self, now: datetime, silence: float, reason: str
    ) -> list[JobId]:
        """Unregister servers silent for ``silence`` seconds; requeue jobs.

        Every job in *processing* held by a server that is not (or no
        longer) registered goes back to *enqueued* with ``reason``.
        Returns the ids of the recovered jobs.
        """

    @abc.abstractmethod
    async def held_jobs(
        self, server: str
    ) -> dict[JobId, tuple[int, datetime]]:
        """Return the jobs in *processing* held by ``server``.

        For each job: its version and when it entered *processing* (the
        ``now`` of the fetch). A server compares this with the jobs it
        runs, to find the ones it holds but never got (a fetch whose
        reply was lost). Reads through an index on the server's jobs in
        *processing*, not the whole table.
        """

    # -- notifications --------------------------------------------------

    @abc.abstractmethod
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` on notifications; return an unsubscriber."""

    # -- recurring jobs -------------------------------------------------

    @abc.abstractmethod
    async def save_recurring(
        self,
        definition: RecurringDefinition,
        next_run_at: datetime | None,
        now: datetime,
    ) -> RecurringRecord:
        """Create a recurring job, or update the one with the same id.

        An update keeps ``paused`` and, when the cron expression and
        time zone are unchanged and the job was not stopped, its current
        next occurrence (so that an update never skips or repeats one);
        otherwise ``next_run_at`` is written. Errors are cleared.

        Raises:
            StorageError: nothing was written.
        """

    @abc.abstractmethod
    async def get_recurring(self, recurring_id: str) -> RecurringRecord | None:
        """Return the recurring job, or ``None`` if there is none."""

    @abc.abstractmethod
    async def list_recurring(self) -> list[RecurringRecord]:
        """Return every recurring job, by id."""

    @abc.abstractmethod
    async def remove_recurring(self, recurring_id: str) -> bool:
        """Remove a recurring job (not its jobs); ``False`` if unknown."""

    @abc.abstractmethod
    async def pause_recurring(self, recurring_id: str, now: datetime) -> bool:
        """Mark a recurring job paused; ``False`` if there is none."""

    @abc.abstractmethod
    async def resume_recurring(
        self, recurring_id: str, next_run_at: datetime | None, now: datetime
    ) -> bool:
        """Unpause (or restart a stopped) recurring job.

        A paused or stopped job gets ``next_run_at`` and its errors are
        cleared; an active one is left as it is. Returns ``False`` when
        there is no such recurring job.
        """

    @abc.abstractmethod
    async def next_recurring_due(self) -> datetime | None:
        """Return the earliest next occurrence of an active recurring job."""

    @abc.abstractmethod
    async def due_recurring(
        self, now: datetime, limit: int
    ) -> list[RecurringRecord]:
        """Return up to ``limit`` active recurring jobs due at ``now``.

        Active means not paused and not stopped; the earliest due first.
        """

    @abc.abstractmethod
    async def fire_recurring(
        self, firing: RecurringFiring
    ) -> list[JobId] | None:
        """Apply a :class:`RecurringFiring` in one transaction.

        Returns the ids of the jobs created, or ``None`` (and nothing is
        written) when the recurring job is gone or its version moved on:
        another server fired it first, or it was changed meanwhile. This
        compare-and-set is what creates each occurrence's job once,
        however many servers schedule.

        Raises:
            StorageError: nothing was written.
        """

    # -- conveniences built on the above ----------------------------------

    async def create_job(self, job: NewJob) -> JobId:
        """Store one job and return its id (see :meth:`create_jobs`)."""
        (job_id,) = await self.create_jobs([job])
        return job_id

    async def apply_change(self, change: StateChange) -> ChangeOutcome:
        """Apply one state change (see :meth:`apply_changes`)."""
        (outcome,) = await self.apply_changes([change])
        return outcome

    async def apply_changes_and_fetch(
        self,
        changes: Sequence[StateChange],
        server: str,
        queues: Sequence[str],
        limit: int,
        now: datetime,
    ) -> tuple[list[ChangeOutcome], list[JobRecord]]:
        """Apply ``changes``, then :meth:`fetch`; return both results.

        A server calls it to write the outcomes of finished jobs and take
        new ones in one round trip. The changes are applied first, so a
        job they put back on its queue can be fetched at once. A backend
        may do both in one transaction (SQLite does, saving a write
        transaction per batch); this default makes two calls.

        Raises:
            StorageError: the changes could not be applied (as
                :meth:`apply_changes`: none was); nothing was fetched.
        """
        outcomes = await self.apply_changes(changes) if changes else []
        try:
            fetched = await self.fetch(server, queues, limit, now)
        except StorageError:
            if not changes:
                raise
            # The changes are written and their outcomes must reach the
            # caller; the fetch is simply tried again next time.
            fetched = []
        return outcomes, fetched

    def take_handed_jobs(self, server: str, limit: int) -> list[JobRecord]:
        """Jobs handed to ``server`` by their enqueue, ready to start.

        A backend may write a job straight in *processing* for an idle
        server when it is enqueued, and tell the server the whole job
        (PostgreSQL does; see ``handoffs.py`` in its package). Those jobs
        are held by ``server`` already: the server starts them without a
        fetch. Returns at most ``limit``, each once; no I/O. This default
        hands nothing off.
        """
        return []

    async def end_handoffs(self, server: str) -> list[JobRecord]:
        """Hand ``server`` no more jobs at enqueue (it stops, or was
        declared dead); return those handed to it and not taken yet.

        The server puts the jobs returned back on their queues. A job
        handed over just before this call whose notice arrives only
        afterwards stays held by the server until it is put back by the
        recovery of dead servers' jobs (the server unregisters as it
        stops). This default hands nothing off.
        """
        return []

    async def __aenter__(self) -> Storage:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
