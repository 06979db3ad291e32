"""The client: create jobs and steer them.

Job options never mix with the job function's own arguments:

- ``await client.enqueue(func, *args, **kwargs)``: every keyword after
  ``func`` belongs to ``func``.
- ``await client.enqueue_with(JobOptions(queue="mail"), func, *args,
  **kwargs)``: options go in the first argument.
- ``await client.schedule(when, func, *args, **kwargs)``: ``when`` is a
  delay (seconds or :class:`~datetime.timedelta`) or an aware datetime.
- ``await client.enqueue_many([Call(func, *args, **kwargs), ...])``.

``func`` and ``when`` are positional-only, so a job function may itself
take keywords called ``func``, ``options`` or ``when``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from backburner.cancellation import CancellationToken
from backburner.jobs import states
from backburner.jobs.continuations import (
    ContinuationLinks,
    ContinueOn,
    states_for,
)
from backburner.jobs.errors import (
    InvalidStateChangeError,
    JobArgumentError,
    JobNotFoundError,
)
from backburner.jobs.functions import reference_of
from backburner.jobs.mutex import Mutex, mutex_of
from backburner.jobs.progress import Progress, progress_from_parameters
from backburner.jobs.queues import DEFAULT_QUEUE, check_queue_name
from backburner.jobs.results import result_of, wait_for
from backburner.jobs.serializer import (
    decode_arguments,
    decode_value,
    encode_arguments,
    encode_value,
)
from backburner.jobs.states import DEFAULT_RETENTION, LATEST_READY_AT
from backburner.jobs.timeouts import check_timeout
from backburner.jobs.uniqueness import UniqueKeyTakenError, check_key
from backburner.jobs.waiters import Waiters
from backburner.storage import open_storage
from backburner.storage.base import (
    MAX_JOB_ID,
    HistoryEntry,
    JobId,
    JobRecord,
    JobState,
    MissingParentError,
    NewContinuation,
    NewJob,
    OutcomeCount,
    ServerInfo,
    StateChange,
    Storage,
)

if TYPE_CHECKING:
    from backburner.jobs.recurring import RecurringJobs

DEFAULT_MAX_ARGUMENT_BYTES = 1024 * 1024

_PARAMETER_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
_MAX_PARAMETER_SIZE = 4096


def check_argument_size(arguments: str, limit: int) -> None:
    """Refuse serialised ``arguments`` of more than ``limit`` UTF-8 bytes.

    Raises:
        JobArgumentError: the arguments are over the limit.
    """
    # A character takes at most 4 bytes: most calls need no encoding.
    if len(arguments) * 4 <= limit:
        return
    size = len(arguments.encode("utf-8"))
    if size > limit:
        raise JobArgumentError(
            "args and kwargs",
            f"{size} bytes serialised, over the limit of {limit} bytes "
            "(Client max_argument_bytes)",
        )


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def _check_job_id(job_id: JobId) -> None:
    # True == 1 in Python, but a flag passed as an id is a mistake.
    if isinstance(job_id, bool) or not isinstance(job_id, int):
        raise TypeError(
            f"a job id is an int, got {type(job_id).__name__} {job_id!r}"
        )
    if not 1 <= job_id <= MAX_JOB_ID:
        raise JobNotFoundError(job_id)


def _delay_seconds(delay: float | timedelta) -> float:
    seconds = delay.total_seconds() if isinstance(delay, timedelta) else delay
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(
            f"invalid delay {delay!r}: use a finite number of seconds >= 0"
        )
    return float(seconds)


def _ready_after(now: datetime, delay: float | timedelta) -> datetime:
    seconds = _delay_seconds(delay)
    try:
        ready = now + timedelta(seconds=seconds)
    except OverflowError:
        ready = None
    if ready is None or ready > LATEST_READY_AT:
        raise ValueError(
            f"invalid delay {delay!r}: it ends after the latest date "
            f"a job can be scheduled at ({LATEST_READY_AT.date()})"
        )
    return ready


@dataclass(frozen=True, slots=True)
class JobOptions:
    """How to create a job, apart from what it calls.

    Attributes:
        queue: the queue to put it on (default ``"default"``).
        delay: make it ready after this many seconds (schedule).
        at: make it ready at this aware datetime (schedule).
        timeout: seconds after which a running attempt is cancelled
            with reason ``timeout`` and counts as failed.
        parameters: small key/value pairs stored with the job.
        unique_key: while a job with this key is enqueued, scheduled or
            processing, creating another returns that job's id instead
            (see :mod:`backburner.jobs.uniqueness`).
        mutex: at most ``mutex_limit`` jobs with this key run at once
            across all servers; wins over a ``@mutex`` declaration (see
            :mod:`backburner.jobs.mutex`).
        mutex_limit: how many jobs holding ``mutex`` may run at once.
        keep_result: ``False``: what the job function returns is not
            kept (never serialised), and :meth:`Client.wait` and
            :meth:`Job.result` raise :class:`ResultNotKeptError` once
            the job succeeded; ``True``: kept; ``None`` (the default):
            as the job function declares with
            :func:`~backburner.jobs.keep_result` (kept if it does not).
            Wins over the declaration.

    Raises:
        ValueError: on construction, for an invalid queue name, a
            delay that is negative, not finite or ends after year 9999,
            a timeout that is not positive or not finite, a naive
            ``at``, both ``delay`` and ``at``, an empty, over-long or
            unstorable unique key or mutex, a mutex limit below 1, or a
            ``keep_result`` that is not ``None`` or a bool.
        TypeError: on construction, for a timeout that is not an
            ``int`` or a ``float``.
    """

    queue: str | None = None
    delay: float | timedelta | None = None
    at: datetime | None = None
    timeout: float | None = None
    parameters: Mapping[str, object] = field(default_factory=dict)
    unique_key: str | None = None
    mutex: str | None = None
    mutex_limit: int = 1
    keep_result: bool | None = None

    def __post_init__(self) -> None:
        if self.queue is not None:
            check_queue_name(self.queue)
        if self.unique_key is not None:
            check_key(self.unique_key, "unique key")
        if self.mutex is not None:
            check_key(self.mutex, "mutex")
        if isinstance(self.mutex_limit, bool) or not (
            isinstance(self.mutex_limit, int) and self.mutex_limit >= 1
        ):
            raise ValueError(
                f"mutex_limit must be an int of at least 1, "
                f"got {self.mutex_limit!r}"
            )
        if self.delay is not None and self.at is not None:
            raise ValueError("give either delay or at, not both")
        if self.delay is not None:
            _ready_after(utc_now(), self.delay)
        if self.at is not None and self.at.utcoffset() is None:
            raise ValueError("at must be timezone-aware")
        if self.at is not None and self.at > LATEST_READY_AT:
            raise ValueError(
                f"at {self.at.isoformat()} is after the latest date a job "
                f"can be scheduled at ({LATEST_READY_AT.date()})"
            )
        if self.timeout is not None:
            check_timeout(self.timeout)
        if self.keep_result is not None and not isinstance(
            self.keep_result, bool
        ):
            raise ValueError(
                f"keep_result must be True, False or None, "
                f"got {self.keep_result!r}"
            )

    def ready_at(self, now: datetime) -> datetime | None:
        """When the job becomes ready, or ``None`` for "now"."""
        if self.at is not None:
            return self.at.astimezone(UTC)
        if self.delay is not None:
            return _ready_after(now, self.delay)
        return None


class Call:
    """A job function with its arguments, for :meth:`Client.enqueue_many`."""

    __slots__ = ("args", "func", "kwargs")

    def __init__(
        self, func: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> None:
        self.func = func
        self.args = args
        self.kwargs = kwargs

    def __repr__(self) -> str:
        return f"Call({self.func!r}, *{self.args!r}, **{self.kwargs!r})"


@dataclass(frozen=True, slots=True)
class Job:
    """A job as the client sees it.

    ``history`` is filled by :meth:`Client.get` (oldest first) and empty
    in listings; so are ``parameters``. Arguments stay encoded until
    :meth:`arguments` is called, and the result until :meth:`result` is,
    so that listing jobs never imports application code.
    """

    id: JobId
    function: str
    queue: str
    state: JobState
    reason: str
    attempt: int
    created_at: datetime
    state_changed_at: datetime
    scheduled_at: datetime | None
    server: str | None
    expires_at: datetime | None
    timeout: float | None
    raw_arguments: str
    history: tuple[HistoryEntry, ...] = ()
    parameters: Mapping[str, Any] = field(default_factory=dict)
    unique_key: str | None = None
    mutex: str | None = None
    keep_result: bool | None = None

    @property
    def progress(self) -> Progress | None:
        """The latest progress the job reported (``None``: none, or a
        listing, whose jobs carry no parameters)."""
        return progress_from_parameters(self.parameters)

    def arguments(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Decode the stored ``(args, kwargs)``.

        Raises:
            ValueError: the stored arguments are damaged.
        """
        return decode_arguments(self.raw_arguments)

    def result(self) -> Any:
        """Decode what the job function returned (``None`` when it
        returned nothing), once the job succeeded.

        Reads the latest *succeeded* entry of ``history``: call it on a
        job from :meth:`Client.get`, not from a listing.

        Raises:
            JobNotFinishedError: the job is enqueued, scheduled, awaiting
                or processing.
            JobFailedError: the job failed for good; the error carries
                the exception type and message of its last attempt.
            JobDeletedError: the job was deleted.
            ResultNotKeptError: the job succeeded but its return value
                was not kept: not wanted (``keep_result`` off, whatever
                it returned), not serialisable, or too large.
            ValueError: the job carries no history (a listed job), or
                the stored result cannot be decoded.
        """
        return result_of(self.id, self.state, self.reason, self.history)

    @classmethod
    def from_record(
        cls,
        record: JobRecord,
        history: Sequence[HistoryEntry] = (),
        parameters: Mapping[str, Any] | None = None,
    ) -> Job:
        """Build the client view of a storage record."""
        return cls(
            id=record.id,
            function=record.function,
            queue=record.queue,
            state=record.state,
            reason=record.reason,
            attempt=record.attempt,
            created_at=record.created_at,
            state_changed_at=record.state_changed_at,
            scheduled_at=record.scheduled_at,
            server=record.server,
            expires_at=record.expires_at,
            timeout=record.timeout,
            raw_arguments=record.arguments,
            history=tuple(history),
            parameters=dict(parameters or {}),
            unique_key=record.unique_key,
            mutex=record.mutex,
            keep_result=record.keep_result,
        )


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of a listing, newest first.

    Pass ``next_before`` as ``before`` to get the next page; it is
    ``None`` on the last page.
    """

    jobs: list[Job]
    next_before: JobId | None


@dataclass(frozen=True, slots=True)
class Counts:
    """Job counts per state (every state present) and per queue."""

    by_state: dict[JobState, int]
    by_queue: dict[str, dict[JobState, int]]


@dataclass(frozen=True, slots=True)
class Period:
    """How many jobs succeeded and failed in one hour or one UTC day."""

    start: datetime
    succeeded: int
    failed: int


_PERIODS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}


def _period_start(moment: datetime, unit: str) -> datetime:
    start = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return start.replace(hour=0) if unit == "day" else start


class _JobBuilder:
    """Builds the new jobs of calls made with one set of options at once.

    What depends only on the options is worked out once (at the first
    call, after its own checks, so that errors come in the order they
    always did), and what depends only on the job function once per
    function: in a bulk enqueue of a thousand calls of one function, that
    was most of the client's work per job. The facts about job functions
    go into ``functions``, which a client keeps across calls (see
    :class:`_FunctionFacts`).
    """

    def __init__(
        self,
        options: JobOptions,
        now: datetime,
        max_argument_bytes: int,
        functions: _FunctionFacts,
    ) -> None:
        self._options = options
        self._now = now
        self._max_argument_bytes = max_argument_bytes
        # The default options settle the same way at any time.
        self._settled = _IMMEDIATE if options is _NO_OPTIONS else None
        self._functions = functions

    def _function(self, func: Callable[..., Any]) -> tuple[str, Mutex | None]:
        try:
            known = self._functions.get(func)
        except TypeError:  # an unhashable callable: looked at each time
            return reference_of(func), mutex_of(func)
        if known is None:
            known = (reference_of(func), mutex_of(func))
            self._functions.keep(func, known)
        return known

    def _settle(self) -> _Settled:
        options, now = self._options, self._now
        ready_at = options.ready_at(now)
        scheduled = ready_at is not None and ready_at > now
        return _Settled(
            state=JobState.SCHEDULED if scheduled else JobState.ENQUEUED,
            reason="scheduled" if scheduled else "enqueued",
            scheduled_at=ready_at if scheduled else None,
            queue=options.queue or DEFAULT_QUEUE,
            parameters=_encode_parameters(options.parameters),
        )

    def build(self, call: Call) -> NewJob:
        """The new job for ``call``.

        Raises:
            JobFunctionError, JobArgumentError: as :meth:`Client.enqueue`.
            ValueError: the options are invalid.
        """
        reference, declared = self._function(call.func)
        arguments = encode_arguments(call.args, call.kwargs)
        check_argument_size(arguments, self._max_argument_bytes)
        options = self._options
        mutex, mutex_limit = options.mutex, options.mutex_limit
        if mutex is None and declared is not None:
            mutex = declared.key_for(call.args, call.kwargs)
            mutex_limit = declared.limit
        settled = self._settled
        if settled is None:
            settled = self._settled = self._settle()
        # Positional, in NewJob's field order: keywords cost a quarter
        # of the job's construction, per job of a bulk enqueue.
        return NewJob(
            reference,  # function
            arguments,
            settled.queue,
            settled.state,
            settled.reason,
            self._now,  # created_at
            settled.scheduled_at,
            options.timeout,
            settled.parameters,
            options.unique_key,
            mutex,
            mutex_limit,
            options.keep_result,
        )


@dataclass(frozen=True, slots=True)
class _Settled:
    """What the new jobs of one set of options share."""

    state: JobState
    reason: str
    scheduled_at: datetime | None
    queue: str
    parameters: dict[str, str]


# The options of Client.enqueue, and what they settle to.
_NO_OPTIONS = JobOptions()
_IMMEDIATE = _Settled(
    state=JobState.ENQUEUED,
    reason="enqueued",
    scheduled_at=None,
    queue=DEFAULT_QUEUE,
    parameters={},
)
# Job functions a client remembers at most.
_FUNCTIONS_KEPT = 1024


class _FunctionFacts:
    """What a client learnt about each job function it was given.

    A job function's reference (found by importing it back) and its
    declared mutex, keyed on the function itself (a bound method made
    anew for each call is equal to the others: same class, same
    function). Kept for the client's life, so that an enqueue pays for
    the import check once per function, not once per call. Known limit:
    a function replaced in its module after its first enqueue (a
    monkeypatch) is not checked again.
    """

    def __init__(self) -> None:
        self._known: dict[object, tuple[str, Mutex | None]] = {}

    def get(self, func: object) -> tuple[str, Mutex | None] | None:
        """What is known of ``func``, or ``None``.

        Raises:
            TypeError: ``func`` is not hashable.
        """
        return self._known.get(func)

    def keep(self, func: object, facts: tuple[str, Mutex | None]) -> None:
        """Remember ``facts`` about ``func`` (forgetting all the others
        when the table is full)."""
        if len(self._known) >= _FUNCTIONS_KEPT:
            self._known.clear()
        self._known[func] = facts


class Client:
    """Create, inspect and steer jobs.

    Args:
        storage: a :class:`~backburner.storage.Storage`, or a storage URL
            (then the client owns the storage and closes it).
        retention: how long deleted jobs are kept before they expire.
        max_argument_bytes: the most a job's arguments may take once
            serialised (UTF-8 JSON); a job over it is refused at enqueue.
    """

    def __init__(
        self,
        storage: Storage | str,
        *,
        retention: timedelta = DEFAULT_RETENTION,
        max_argument_bytes: int = DEFAULT_MAX_ARGUMENT_BYTES,
    ) -> None:
        if isinstance(max_argument_bytes, bool) or not (
            isinstance(max_argument_bytes, int) and max_argument_bytes >= 1
        ):
            raise ValueError(
                f"max_argument_bytes must be a positive int, "
                f"got {max_argument_bytes!r}"
            )
        self._owns_storage = isinstance(storage, str)
        self.storage = (
            open_storage(storage) if isinstance(storage, str) else storage
        )
        self.retention = retention
        self.max_argument_bytes = max_argument_bytes
        self._waiters = Waiters(self.storage)
        self._functions = _FunctionFacts()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """End pending :meth:`wait` calls (they raise ``RuntimeError``)
        and refuse new ones; close the storage if the client opened it
        from a URL."""
        self._waiters.close()
        if self._owns_storage:
            await self.storage.close()

    @functools.cached_property
    def recurring(self) -> RecurringJobs:
        """Define, trigger, pause and list recurring jobs."""
        # Imported here: the recurring module builds on this one.
        from backburner.jobs.recurring import RecurringJobs

        return RecurringJobs(
            self.storage, max_argument_bytes=self.max_argument_bytes
        )

    # -- creating jobs -------------------------------------------------

    def _new_job(
        self, options: JobOptions, call: Call, now: datetime
    ) -> NewJob:
        builder = _JobBuilder(
            options, now, self.max_argument_bytes, self._functions
        )
        return builder.build(call)

    async def enqueue(
        self, func: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> JobId:
        """Create a job that is ready now; return its id once stored.

        Raises:
            JobFunctionError: ``func`` cannot be stored as a reference.
            JobArgumentError: an argument cannot be stored, or all of
                them take more than ``max_argument_bytes``; nothing is
                written.
            StorageError: the storage failed; nothing is written.
        """
        return await self.enqueue_with(_NO_OPTIONS, func, *args, **kwargs)

    async def enqueue_with(
        self,
        options: JobOptions,
        func: Callable[..., Any],
        /,
        *args: Any,
        **kwargs: Any,
    ) -> JobId:
        """Create a job with ``options``; return its id once stored.

        With ``options.unique_key`` held by an active job, nothing is
        created and that job's id is returned.

        Raises:
            JobFunctionError, JobArgumentError, StorageError: as
                :meth:`enqueue`.
        """
        new_job = self._new_job(
            options, Call(func, *args, **kwargs), utc_now()
        )
        return await self.storage.create_job(new_job)

    async def schedule(
        self,
        when: datetime | timedelta | float,
        func: Callable[..., Any],
        /,
        *args: Any,
        **kwargs: Any,
    ) -> JobId:
        """Create a job ready at ``when`` (an aware datetime or a delay).

        Raises:
            ValueError: ``when`` is naive, or a delay that is negative,
                not finite or ends after year 9999.
            JobFunctionError, JobArgumentError, StorageError: as
                :meth:`enqueue`.
        """
        options = (
            JobOptions(at=when)
            if isinstance(when, datetime)
            else JobOptions(delay=when)
        )
        return await self.enqueue_with(options, func, *args, **kwargs)

    async def enqueue_many(
        self, calls: Iterable[Call], options: JobOptions | None = None
    ) -> list[JobId]:
        """Create many jobs in one transaction; return their ids in order.

        All or nothing: if one call is refused, none is stored.

        Raises:
            JobFunctionError, JobArgumentError, StorageError: as
                :meth:`enqueue`; the message names the failing call.
        """
        builder = _JobBuilder(
            options or _NO_OPTIONS,
            utc_now(),
            self.max_argument_bytes,
            self._functions,
        )
        new_jobs = []
        for index, call in enumerate(calls):
            try:
                new_jobs.append(builder.build(call))
            except JobArgumentError as error:
                raise JobArgumentError(
                    f"{error.argument} of call {index}",
                    str(error).partition(": ")[2],
                ) from None
        if not new_jobs:
            return []
        return await self.storage.create_jobs(new_jobs)

    # -- continuations ----------------------------------------------------

    async def continue_with(
        self,
        parent_id: JobId,
        func: Callable[..., Any],
        /,
        *args: Any,
        **kwargs: Any,
    ) -> JobId:
        """Create a job that is enqueued once ``parent_id`` succeeds.

        It waits in *awaiting* until then (see
        :mod:`backburner.jobs.continuations`).

        Raises:
            JobNotFoundError: there is no job ``parent_id``; nothing is
                written.
            JobFunctionError, JobArgumentError, StorageError: as
                :meth:`enqueue`.
        """
        return await self.continue_with_options(
            parent_id, ContinueOn.SUCCEEDED, None, func, *args, **kwargs
        )

    async def continue_with_options(
        self,
        parent_id: JobId,
        on: ContinueOn | str,
        options: JobOptions | None,
        func: Callable[..., Any],
        /,
        *args: Any,
        **kwargs: Any,
    ) -> JobId:
        """Create a job that runs when ``parent_id`` reaches ``on``.

        ``options`` may set the queue, timeout, parameters, mutex and
        ``keep_result``; a continuation is never scheduled and has no
        unique key.

        Raises:
            ValueError: ``on`` is unknown, or ``options`` has a delay,
                ``at`` or a unique key.
            JobNotFoundError: there is no job ``parent_id``; nothing is
                written.
            JobFunctionError, JobArgumentError, StorageError: as
                :meth:`enqueue`.
        """
        waited = states_for(on)
        _check_job_id(parent_id)
        options = options or JobOptions()
        if options.delay is not None or options.at is not None:
            raise ValueError("a continuation cannot be scheduled")
        if options.unique_key is not None:
            raise ValueError("a continuation cannot have a unique key")
        now = utc_now()
        job = dataclasses.replace(
            self._new_job(options, Call(func, *args, **kwargs), now),
            state=JobState.AWAITING,
            reason=f"awaiting job {parent_id} ({ContinueOn(on).value})",
        )
        continuation = NewContinuation(parent_id, job, waited)
        try:
            (job_id,) = await self.storage.create_continuations([continuation])
        except MissingParentError:
            raise JobNotFoundError(parent_id) from None
        return job_id

    async def continuation_links(self, job_id: JobId) -> ContinuationLinks:
        """Return the job's parent (if it is a continuation) and the jobs
        that continue it (empty for an unknown job)."""
        links = await self.storage.continuation_links(job_id)
        return ContinuationLinks.of(job_id, links)

    # -- steering jobs ---------------------------------------------------

    async def _apply(
        self, change: StateChange, expected: JobState | None
    ) -> None:
        _check_job_id(change.job_id)
        if expected is not None:
            allowed = change.from_states & {expected}
            change = dataclasses.replace(change, from_states=allowed)
        outcome = await self.storage.apply_change(change)
        if outcome.applied:
            return
        if outcome.previous_state is None:
            raise JobNotFoundError(change.job_id)
        if outcome.unique_holder is not None:
            raise UniqueKeyTakenError(
                change.job_id,
                outcome.previous_state,
                change.to_state,
                outcome.unique_holder,
            )
        raise InvalidStateChangeError(
            change.job_id,
            outcome.previous_state,
            change.to_state,
            change.from_states,
        )

    async def requeue(
        self,
        job_id: JobId,
        *,
        expected_state: JobState | None = None,
        reason: str = "requeued",
    ) -> None:
        """Put a job back on its queue; a running job is aborted.

        With ``expected_state`` the requeue happens only if the job is
        still in that state (compare-and-set).

        Raises:
            JobNotFoundError: there is no such job.
            InvalidStateChangeError: the job is enqueued already, or not
                in ``expected_state``; it is left as it was.
            UniqueKeyTakenError: another active job holds the job's
                unique key; it is left as it was.
        """
        change = states.requeue(job_id, utc_now(), reason)
        await self._apply(change, expected_state)

    async def delete(
        self,
        job_id: JobId,
        *,
        expected_state: JobState | None = None,
        reason: str = "deleted",
    ) -> None:
        """Move a job to *deleted*; if it is running its token fires.

        Raises:
            JobNotFoundError: there is no such job.
            InvalidStateChangeError: the job is deleted already, or not
                in ``expected_state``; it is left as it was.
        """
        change = states.delete(job_id, utc_now(), reason, self.retention)
        await self._apply(change, expected_state)

    # -- reading -------------------------------------------------------

    async def get(self, job_id: JobId) -> Job:
        """Return a job with its state history and parameters.

        Raises:
            JobNotFoundError: there is no such job.
            CorruptedJobError: the stored row cannot be read back.
        """
        _check_job_id(job_id)
        record = await self.storage.get_job(job_id)
        if record is None:
            raise JobNotFoundError(job_id)
        history = await self.storage.get_history(job_id)
        parameters = await self.get_parameters(job_id)
        return Job.from_record(record, history, parameters)

    async def wait(
        self,
        job_id: JobId,
        *,
        # The error raised names the job and the state it is stuck in,
        # which asyncio.timeout() around the call could not.
        timeout: float | None = None,  # noqa: ASYNC109
        token: CancellationToken = CancellationToken.NONE,
    ) -> Any:
        """Wait until a job finishes; return what its function returned.

        All the waits of a client share one poller, which reads the
        state of every waited job in one query per tick (every 10 ms at
        first, then less often, up to every 0.5 s; a new waiter, or a
        storage notification that a waited job was deleted or requeued,
        brings it back to 10 ms). A job that is retried is waited for
        until its last attempt. Waiting does not change the job: a
        timeout leaves it running.

        Args:
            job_id: the job.
            timeout: the most seconds to wait (``None``: no limit).
            token: ends the wait early when it fires (a web request's
                token, say); the job is left alone.

        Raises:
            ValueError: ``timeout`` is negative or not finite.
            WaitTimeoutError: (a ``TimeoutError``) the job did not finish
                within ``timeout`` seconds.
            JobNotFoundError: there is no such job (or it expired).
            JobFailedError, JobDeletedError, ResultNotKeptError: as
                :meth:`Job.result`.
            TypeError: ``job_id`` is not an int.
            OperationCancelled: ``token`` fired (a ``BaseException``,
                like ``asyncio.CancelledError``).
            StorageError: reading the job failed; a failed tick of the
                shared poller ends every wait it was polling for, so
                retry the wait if the storage may recover.
            RuntimeError: the client is closed, or was closed while
                waiting.
        """
        _check_job_id(job_id)
        return await wait_for(
            self, self._waiters, job_id, limit=timeout, token=token
        )

    async def list_jobs(
        self,
        *,
        state: JobState | None = None,
        queue: str | None = None,
        function: str | None = None,
        before: JobId | None = None,
        limit: int = 50,
    ) -> JobPage:
        """Return a page of jobs, newest first, filtered by state, queue
        and job function (``module:qualname`` as stored, matched
        exactly; a listing by function reads the jobs of its state, or
        of all states, until the page is full).

        Raises:
            ValueError: ``limit`` is not between 1 and 1000.
            CorruptedJobError: a row in the page cannot be read back.
        """
        if not 1 <= limit <= 1000:
            raise ValueError("limit must be between 1 and 1000")
        records = await self.storage.list_jobs(
            state=state,
            queue=queue,
            function=function,
            before=before,
            limit=limit + 1,
        )
        jobs = [Job.from_record(r) for r in records[:limit]]
        more = len(records) > limit
        return JobPage(jobs, jobs[-1].id if more else None)

    async def counts(self) -> Counts:
        """Return job counts per state and per queue, from the counters."""
        by_state = dict.fromkeys(JobState, 0)
        by_queue: dict[str, dict[JobState, int]] = {}
        for row in await self.storage.counts():
            by_state[row.state] += row.count
            queue = by_queue.setdefault(row.queue, dict.fromkeys(JobState, 0))
            queue[row.state] += row.count
        return Counts(by_state, by_queue)

    async def outcome_history(
        self, unit: str = "hour", periods: int = 24
    ) -> list[Period]:
        """Return the succeeded and failed totals of the last periods.

        ``unit`` is ``"hour"`` or ``"day"`` (UTC days); the current,
        unfinished period is the last one. Every period is present,
        oldest first, zeros included. Totals count jobs as they reach
        the state, so a job that later expires or is requeued still
        counts where it finished.

        Raises:
            ValueError: ``unit`` is neither ``"hour"`` nor ``"day"``, or
                ``periods`` is not between 1 and 1000.
        """
        step = _PERIODS.get(unit)
        if step is None:
            raise ValueError("unit must be 'hour' or 'day'")
        if not 1 <= periods <= 1000:
            raise ValueError("periods must be between 1 and 1000")
        first = _period_start(utc_now(), unit) - step * (periods - 1)
        totals = {first + step * index: [0, 0] for index in range(periods)}
        rows: list[OutcomeCount] = await self.storage.outcome_counts(first)
        for row in rows:
            period = totals.get(_period_start(row.hour, unit))
            if period is not None:
                period[row.state is JobState.FAILED] += row.count
        return [Period(start, s, f) for start, (s, f) in totals.items()]

    async def servers(self) -> list[ServerInfo]:
        """Return the servers registered as alive."""
        return await self.storage.list_servers()

    # -- parameters ----------------------------------------------------

    async def set_parameter(
        self, job_id: JobId, name: str, value: object
    ) -> None:
        """Store a small value under ``name`` on a job.

        Raises:
            ValueError: the name is invalid or the value over 4 KiB.
            JobArgumentError: the value cannot be stored.
            JobNotFoundError: there is no such job.
        """
        encoded = _encode_parameters({name: value})[name]
        _check_job_id(job_id)
        if not await self.storage.set_parameter(job_id, name, encoded):
            raise JobNotFoundError(job_id)

    async def get_parameter(
        self, job_id: JobId, name: str, default: object = None
    ) -> Any:
        """Return a job parameter, or ``default`` if it is not set."""
        return (await self.get_parameters(job_id)).get(name, default)

    async def get_progress(self, job_id: JobId) -> Progress | None:
        """Return the latest progress the job reported, or ``None``.

        The value is at most about half a second older than what the
        job last reported (servers write progress in batches).
        """
        return progress_from_parameters(await self.get_parameters(job_id))

    async def get_parameters(self, job_id: JobId) -> dict[str, Any]:
        """Return all parameters of a job (damaged ones as raw text)."""
        decoded = {}
        for name, text in (await self.storage.get_parameters(job_id)).items():
            try:
                decoded[name] = decode_value(text)
            except ValueError:
                decoded[name] = text
        return decoded


def _encode_parameters(parameters: Mapping[str, object]) -> dict[str, str]:
    encoded = {}
    for name, value in parameters.items():
        if not isinstance(name, str) or not _PARAMETER_NAME.fullmatch(name):
            raise ValueError(
                f"invalid parameter name {name!r}: use 1-100 letters, "
                "digits or _.:-"
            )
        text = encode_value(value, f"parameter {name!r}")
        if len(text) > _MAX_PARAMETER_SIZE:
            raise ValueError(
                f"parameter {name!r} is {len(text)} characters encoded; "
                f"parameters are for small values (<= {_MAX_PARAMETER_SIZE})"
            )
        encoded[name] = text
    return encoded
