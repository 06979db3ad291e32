"""Recurring jobs: a named cron schedule that creates a job at each occurrence.

The client side: define, change, trigger, pause, resume, remove and list
recurring jobs (``client.recurring``). The job servers create the jobs
(:mod:`backburner.jobs.recurring_scheduler`). ``docs/recurring.md`` is
the guide::

    await client.recurring.add_or_update(
        "nightly-report",
        "0 3 * * *",
        Call(send_report, "ops"),
        time_zone="Europe/Berlin",
    )

The job function and its arguments are checked and encoded here, as at
enqueue, so a recurring job that cannot be stored is refused at once and
nothing is written.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from backburner.jobs.client import (
    DEFAULT_MAX_ARGUMENT_BYTES,
    Call,
    check_argument_size,
    utc_now,
)
from backburner.jobs.cron import CronSchedule
from backburner.jobs.errors import JobError, JobFunctionError
from backburner.jobs.functions import reference_of, resolve
from backburner.jobs.occurrences import (
    OCCURRENCE_PARAMETER,
    RECURRING_PARAMETER,
    MissedRunPolicy,
    declared_mutex,
    missed_policy,
    occurrence_job,
)
from backburner.jobs.queues import DEFAULT_QUEUE, check_queue_name
from backburner.jobs.serializer import decode_arguments, encode_arguments
from backburner.jobs.timeouts import check_timeout
from backburner.storage.base import (
    JobId,
    JobState,
    RecurringDefinition,
    RecurringFiring,
    RecurringRecord,
    Storage,
    StorageError,
)

# The policy and the parameters live in backburner.jobs.occurrences, which
# the servers import without the client; they are named here as before.
__all__ = [
    "OCCURRENCE_PARAMETER",
    "RECURRING_PARAMETER",
    "MissedRunPolicy",
    "RecurringJob",
    "RecurringJobNotFoundError",
    "RecurringJobs",
    "RecurringStatus",
    "SyncRecurringJobs",
]

T = TypeVar("T")

_RECURRING_ID = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
# A trigger is a compare-and-set too; it loses only to a scheduler or
# another change writing the same recurring job at the same moment.
_TRIGGER_TRIES = 10


class RecurringStatus(enum.StrEnum):
    """Whether a recurring job creates jobs."""

    ACTIVE = "active"
    PAUSED = "paused"
    STOPPED = "stopped"
    """Stopped after repeated errors (see ``error``); resume restarts."""


class RecurringJobNotFoundError(JobError, LookupError):
    """Raised when no recurring job has the given id."""

    def __init__(self, recurring_id: str) -> None:
        super().__init__(f"recurring job {recurring_id!r} does not exist")
        self.recurring_id = recurring_id


def _mutex_here(record: RecurringRecord) -> tuple[str | None, int]:
    """The declared mutex of a triggered occurrence, where this process
    can import its job function; none where it cannot (the function may
    live on the servers only)."""
    try:
        function = resolve(record.function)
    except JobFunctionError:
        return None, 1
    return declared_mutex(function.target, record.arguments)


def check_recurring_id(recurring_id: str) -> str:
    """Return ``recurring_id`` if it is a valid recurring job id.

    Raises:
        ValueError: the id is empty, longer than 100 characters, or has
            characters other than letters, digits and ``_.:-``.
    """
    if not isinstance(recurring_id, str) or not _RECURRING_ID.fullmatch(
        recurring_id
    ):
        raise ValueError(
            f"invalid recurring job id {recurring_id!r}: use 1-100 "
            "letters, digits or _.:-"
        )
    return recurring_id


@dataclass(frozen=True, slots=True)
class RecurringJob:
    """A recurring job as the client sees it.

    ``next_run_at`` is ``None`` while paused or stopped. ``last_run_at``
    is the occurrence (or trigger) time of the last job created, and
    ``last_job_state`` that job's current state (``None`` once it
    expired). Arguments stay encoded until :meth:`arguments` is called.
    """

    id: str
    function: str
    cron: str
    time_zone: str
    queue: str
    missed: MissedRunPolicy
    timeout: float | None
    status: RecurringStatus
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_job_id: JobId | None
    last_job_state: JobState | None
    error: str | None
    failures: int
    created_at: datetime
    updated_at: datetime
    raw_arguments: str

    @property
    def paused(self) -> bool:
        """Whether the recurring job is paused."""
        return self.status is RecurringStatus.PAUSED

    def arguments(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Decode the stored ``(args, kwargs)``.

        Raises:
            ValueError: the stored arguments are damaged.
        """
        return decode_arguments(self.raw_arguments)

    @classmethod
    def from_record(cls, record: RecurringRecord) -> RecurringJob:
        """Build the client view of a storage record."""
        if record.paused:
            status = RecurringStatus.PAUSED
        elif record.next_run_at is None:
            status = RecurringStatus.STOPPED
        else:
            status = RecurringStatus.ACTIVE
        return cls(
            id=record.id,
            function=record.function,
            cron=record.cron,
            time_zone=record.time_zone,
            queue=record.queue,
            missed=missed_policy(record.missed),
            timeout=record.timeout,
            status=status,
            next_run_at=(
                record.next_run_at
                if status is RecurringStatus.ACTIVE
                else None
            ),
            last_run_at=record.last_run_at,
            last_job_id=record.last_job_id,
            last_job_state=record.last_job_state,
            error=record.error,
            failures=record.failures,
            created_at=record.created_at,
            updated_at=record.updated_at,
            raw_arguments=record.arguments,
        )


class RecurringJobs:
    """Define and steer recurring jobs (``Client.recurring``).

    Args:
        storage: the storage the recurring jobs live in.
        max_argument_bytes: the most a recurring job's arguments may take
            once serialised, as for ``Client`` (whose ``recurring`` passes
            its own limit).
    """

    def __init__(
        self,
        storage: Storage,
        *,
        max_argument_bytes: int = DEFAULT_MAX_ARGUMENT_BYTES,
    ) -> None:
        self.storage = storage
        self.max_argument_bytes = max_argument_bytes

    async def add_or_update(
        self,
        recurring_id: str,
        cron: str,
        call: Call | Callable[..., Any],
        *,
        time_zone: str = "UTC",
        queue: str | None = None,
        missed: MissedRunPolicy | str = MissedRunPolicy.RUN_ONCE,
        job_timeout: float | None = None,
    ) -> RecurringJob:
        """Create the recurring job ``recurring_id``, or redefine it.

        ``call`` is a :class:`~backburner.jobs.Call` (a job function with
        its arguments) or a job function taking no arguments. Updating a
        recurring job keeps it paused if it was, and keeps its next
        occurrence if the cron expression and time zone are unchanged;
        a stopped one starts again. ``job_timeout`` is each job's
        timeout (see :class:`~backburner.jobs.JobOptions`).

        Raises:
            ValueError: an invalid id, queue name, policy or timeout.
            TypeError: a timeout that is not an ``int`` or a ``float``.
            InvalidCronError: the cron expression or time zone is invalid
                (a ``ValueError`` too).
            JobFunctionError, JobArgumentError: as at enqueue.
            StorageError: the storage failed; nothing is written.
        """
        check_recurring_id(recurring_id)
        if not isinstance(call, Call):
            call = Call(call)
        schedule = CronSchedule(cron, time_zone)
        if queue is not None:
            check_queue_name(queue)
        policy = MissedRunPolicy(missed)
        if job_timeout is not None:
            check_timeout(job_timeout, "job_timeout")
        arguments = encode_arguments(call.args, call.kwargs)
        check_argument_size(arguments, self.max_argument_bytes)
        definition = RecurringDefinition(
            id=recurring_id,
            function=reference_of(call.func),
            arguments=arguments,
            queue=queue or DEFAULT_QUEUE,
            cron=schedule.expression,
            time_zone=schedule.time_zone.key,
            missed=policy.value,
            timeout=job_timeout,
        )
        now = utc_now()
        record = await self.storage.save_recurring(
            definition, schedule.next_after(now), now
        )
        return RecurringJob.from_record(record)

    async def get(self, recurring_id: str) -> RecurringJob:
        """Return one recurring job.

        Raises:
            RecurringJobNotFoundError: there is no such recurring job.
        """
        return RecurringJob.from_record(await self._record(recurring_id))

    async def list(self) -> list[RecurringJob]:
        """Return every recurring job, by id."""
        records = await self.storage.list_recurring()
        return [RecurringJob.from_record(record) for record in records]

    async def remove(self, recurring_id: str) -> None:
        """Remove a recurring job; the jobs it created stay.

        Raises:
            RecurringJobNotFoundError: there is no such recurring job.
        """
        if not await self.storage.remove_recurring(recurring_id):
            raise RecurringJobNotFoundError(recurring_id)

    async def pause(self, recurring_id: str) -> None:
        """Stop creating jobs until :meth:`resume`; the definition stays.

        Raises:
            RecurringJobNotFoundError: there is no such recurring job.
        """
        if not await self.storage.pause_recurring(recurring_id, utc_now()):
            raise RecurringJobNotFoundError(recurring_id)

    async def resume(self, recurring_id: str) -> None:
        """Create jobs again from the next occurrence on.

        Occurrences that fell while paused are not run. A stopped
        recurring job starts again with its errors cleared; an active
        one is left as it is.

        Raises:
            RecurringJobNotFoundError: there is no such recurring job.
        """
        record = await self._record(recurring_id)
        now = utc_now()
        schedule = CronSchedule(record.cron, record.time_zone)
        if not await self.storage.resume_recurring(
            recurring_id, schedule.next_after(now), now
        ):
            raise RecurringJobNotFoundError(recurring_id)

    async def trigger(self, recurring_id: str) -> JobId:
        """Create the recurring job's job now; return the job's id.

        The schedule is not moved: the next occurrence runs as planned.
        A paused recurring job can be triggered too.

        The job takes the mutex its job function declares (see
        :func:`~backburner.jobs.mutex.mutex`) when this process can
        import the function.

        Raises:
            RecurringJobNotFoundError: there is no such recurring job.
            StorageError: the storage failed, or the recurring job kept
                changing under the trigger; no job was created.
            ValueError: the declared mutex's key function failed on the
                recurring job's arguments; no job was created.
        """
        for _ in range(_TRIGGER_TRIES):
            record = await self._record(recurring_id)
            now = utc_now()
            job = occurrence_job(
                record,
                now,
                now,
                f"triggered recurring job {record.id}",
                _mutex_here(record),
            )
            created = await self.storage.fire_recurring(
                RecurringFiring(
                    recurring_id=record.id,
                    expected_version=record.version,
                    at=now,
                    jobs=[job],
                    next_run_at=record.next_run_at,
                    last_run_at=now,
                    error=record.error,
                    failures=record.failures,
                )
            )
            if created:
                return created[0]
        raise StorageError(
            f"recurring job {recurring_id!r} kept changing; not triggered"
        )

    async def _record(self, recurring_id: str) -> RecurringRecord:
        record = await self.storage.get_recurring(recurring_id)
        if record is None:
            raise RecurringJobNotFoundError(recurring_id)
        return record


class SyncRecurringJobs:
    """The blocking twin of :class:`RecurringJobs` (``SyncClient.recurring``).

    Args:
        call: runs a coroutine on the sync client's loop, returns its value.
        jobs: the asynchronous recurring jobs API it wraps.
    """

    def __init__(
        self,
        call: Callable[[Coroutine[Any, Any, Any]], Any],
        jobs: RecurringJobs,
    ) -> None:
        self._call = call
        self._jobs = jobs

    def add_or_update(
        self,
        recurring_id: str,
        cron: str,
        call: Call | Callable[..., Any],
        *,
        time_zone: str = "UTC",
        queue: str | None = None,
        missed: MissedRunPolicy | str = MissedRunPolicy.RUN_ONCE,
        job_timeout: float | None = None,
    ) -> RecurringJob:
        """Create or update (see :meth:`RecurringJobs.add_or_update`)."""
        job: RecurringJob = self._call(
            self._jobs.add_or_update(
                recurring_id,
                cron,
                call,
                time_zone=time_zone,
                queue=queue,
                missed=missed,
                job_timeout=job_timeout,
            )
        )
        return job

    def get(self, recurring_id: str) -> RecurringJob:
        """Return one recurring job (see :meth:`RecurringJobs.get`)."""
        job: RecurringJob = self._call(self._jobs.get(recurring_id))
        return job

    def list(self) -> list[RecurringJob]:
        """Return every recurring job (see :meth:`RecurringJobs.list`)."""
        jobs: list[RecurringJob] = self._call(self._jobs.list())
        return jobs

    def remove(self, recurring_id: str) -> None:
        """Remove a recurring job (see :meth:`RecurringJobs.remove`)."""
        self._call(self._jobs.remove(recurring_id))

    def pause(self, recurring_id: str) -> None:
        """Pause a recurring job (see :meth:`RecurringJobs.pause`)."""
        self._call(self._jobs.pause(recurring_id))

    def resume(self, recurring_id: str) -> None:
        """Resume a recurring job (see :meth:`RecurringJobs.resume`)."""
        self._call(self._jobs.resume(recurring_id))

    def trigger(self, recurring_id: str) -> JobId:
        """Create its job now (see :meth:`RecurringJobs.trigger`)."""
        job_id: JobId = self._call(self._jobs.trigger(recurring_id))
        return job_id
