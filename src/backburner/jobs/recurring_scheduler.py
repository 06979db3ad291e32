"""The recurring scheduler: each occurrence of a recurring job creates a job.

Every server runs it. It sleeps until the earliest next occurrence of
any active recurring job (at most ``poll_interval``, so that recurring
jobs defined or changed by other processes are seen), then creates the
jobs that are due. Each recurring job is moved on by a compare-and-set
on its version, in the same transaction that creates its jobs
(:meth:`~backburner.storage.Storage.fire_recurring`): when several
servers wake for the same occurrence, one creates the job and the others
find the version moved on and write nothing. No election, no lock held.

Occurrences are created late when the servers get to them late. An
occurrence more than ``grace`` seconds late counts as missed (every
server was down, or the storage unreachable), and the recurring job's
:class:`~backburner.jobs.recurring.MissedRunPolicy` decides: run once
now, run every missed one, or skip. Occurrences less late than that
each get their job.

Before creating a job, the scheduler checks that the job function still
imports. When it does not, nothing is created; the error is recorded on
the recurring job and tried again after ``retry_delay`` seconds; after
``attempts`` failures in a row the recurring job is *stopped* (it shows
the error; updating or resuming it starts it again).

A clock that steps back (NTP correcting it, a virtual machine resumed)
leaves plans made while it was ahead: a next occurrence an hour away
when the clock was an hour fast. The scheduler looks for such plans
when its own wall clock fell behind its monotonic clock by more than
``grace``, and every ``grace`` seconds anyway (another server's clock
may have made them). A plan later than the first occurrence after
``now + grace`` is moved back to the first occurrence after ``now``,
by the same compare-and-set and without creating a job. The cost: an
occurrence created early, while the clock was ahead, gets a second job
when the corrected clock reaches it; skew within ``grace`` is never
corrected, so servers whose clocks agree that well never do this.

Limit: with SQLite, a recurring job defined in another process is seen
within ``poll_interval``; its occurrences are punctual from then on.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from backburner.jobs.cron import CronSchedule, InvalidCronError
from backburner.jobs.errors import JobFunctionError
from backburner.jobs.functions import resolve
from backburner.jobs.occurrences import (
    MissedRunPolicy,
    declared_mutex,
    missed_policy,
    occurrence_job,
)
from backburner.storage.base import (
    NewJob,
    RecurringFiring,
    RecurringRecord,
    Storage,
    StorageError,
)

__all__ = ["DEFAULT_ATTEMPTS", "DEFAULT_RETRY_DELAY", "RecurringScheduler"]

_log = logging.getLogger("backburner.server")

DEFAULT_ATTEMPTS = 3
DEFAULT_RETRY_DELAY = 30.0
# Recurring jobs read per pass, and jobs created per firing: a recurring
# job with many missed occurrences under RUN_ALL is worked off in
# batches, each its own transaction.
_BATCH = 100


@dataclass(frozen=True, slots=True)
class _Plan:
    """What one firing does, and what to say about it."""

    firing: RecurringFiring
    missed: bool = False
    problem: str | None = None


class RecurringScheduler:
    """Creates the jobs of due recurring jobs, punctually.

    Args:
        storage: the shared storage.
        poll_interval: the longest sleep between two looks at storage.
        grace: seconds after which a late occurrence counts as missed.
        attempts: failed tries (function does not import) before a
            recurring job is stopped.
        retry_delay: seconds between two such tries.
        server: the name of the server, for the logs.
    """

    def __init__(
        self,
        storage: Storage,
        *,
        poll_interval: float = 1.0,
        grace: float = 60.0,
        attempts: int = DEFAULT_ATTEMPTS,
        retry_delay: float = DEFAULT_RETRY_DELAY,
        server: str = "",
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self._storage = storage
        self._poll_interval = poll_interval
        self._grace = timedelta(seconds=grace)
        self._attempts = attempts
        self._retry_delay = timedelta(seconds=retry_delay)
        self._server = server
        # (wall clock, monotonic clock) at the last pass, and the
        # monotonic time of the last look for plans made too far ahead.
        self._last_pass: tuple[datetime, float] | None = None
        self._plans_checked_at: float | None = None

    async def run(self) -> None:
        """Create due jobs until cancelled."""
        while True:
            try:
                await self.schedule_due()
                due = await self._storage.next_recurring_due()
            except StorageError as error:
                _log.warning(
                    "scheduling recurring jobs failed: %s",
                    error,
                    extra={"event": "recurring.failed"},
                )
                due = None
            await asyncio.sleep(self._delay_until(due))

    def _delay_until(self, due: datetime | None) -> float:
        if due is None:
            return self._poll_interval
        seconds = (due - datetime.now(UTC)).total_seconds()
        return min(max(seconds, 0.0), self._poll_interval)

    async def schedule_due(self, now: datetime | None = None) -> int:
        """Create the jobs of every recurring job due ``now``.

        ``now`` defaults to the current time (tests pass their own).
        Returns how many jobs this server created.

        Raises:
            StorageError: the storage failed (what was written stays).
        """
        created = 0
        fixed = now
        await self._replan_ahead(fixed or datetime.now(UTC))
        while True:
            now = fixed or datetime.now(UTC)
            due = await self._storage.due_recurring(now, _BATCH)
            again = len(due) == _BATCH
            for record in due:
                plan = self._plan(record, now)
                ids = await self._storage.fire_recurring(plan.firing)
                if ids is None:
                    # Another server (or a change) got there first.
                    continue
                self._report(record, plan, ids)
                created += len(ids)
                later = plan.firing.next_run_at
                # A batch of many missed occurrences: more to create.
                again = again or (later is not None and later <= now)
            if not again:
                return created

    def _report(
        self, record: RecurringRecord, plan: _Plan, ids: list[int]
    ) -> None:
        facts = {
            "recurring_job": record.id,
            "server": self._server,
            "job_ids": ids,
        }
        if plan.problem is not None:
            # A try that will be repeated warns; the last one is an error.
            stopped = plan.firing.next_run_at is None
            _log.log(
                logging.ERROR if stopped else logging.WARNING,
                "recurring job %s: %s%s",
                record.id,
                plan.problem,
                "; stopped" if stopped else "; trying again later",
                extra={
                    **facts,
                    "event": "recurring.stopped"
                    if stopped
                    else "recurring.error",
                },
            )
        elif plan.missed:
            _log.warning(
                "recurring job %s missed its occurrences since %s (%s)",
                record.id,
                record.next_run_at,
                missed_policy(record.missed).value,
                extra={**facts, "event": "recurring.missed"},
            )
        for job_id in ids:
            _log.info(
                "recurring job %s created job %s",
                record.id,
                job_id,
                extra={
                    **facts,
                    "event": "recurring.job_created",
                    "job_id": job_id,
                },
            )

    # -- plans made by a clock that was ahead ------------------------------

    async def _replan_ahead(self, now: datetime) -> None:
        if not self._plans_need_a_look(now):
            return
        for record in await self._storage.list_recurring():
            firing = self._replan(record, now)
            if firing is None:
                continue
            # A version that moved on means another server (or a change)
            # already rewrote the plan: nothing to do.
            if await self._storage.fire_recurring(firing) is None:
                continue
            _log.warning(
                "recurring job %s: next occurrence %s was planned by a "
                "clock ahead of this one; moved back to %s",
                record.id,
                record.next_run_at,
                firing.next_run_at,
                extra={
                    "event": "recurring.replanned",
                    "recurring_job": record.id,
                    "server": self._server,
                },
            )

    def _plans_need_a_look(self, now: datetime) -> bool:
        """Whether the clock stepped back, or the last look is old."""
        ticking = time.monotonic()
        last_pass, self._last_pass = self._last_pass, (now, ticking)
        checked = self._plans_checked_at
        grace = self._grace.total_seconds()
        look = checked is None or ticking - checked >= grace
        if last_pass is not None:
            wall, monotonic = last_pass
            walked = (now - wall).total_seconds()
            look = look or walked < ticking - monotonic - grace
        if look:
            self._plans_checked_at = ticking
        return look

    def _replan(
        self, record: RecurringRecord, now: datetime
    ) -> RecurringFiring | None:
        """The firing that moves a plan made too far ahead back to now."""
        if record.paused or record.next_run_at is None:
            return None
        if record.failures > 0:
            # Waiting to try an import again, not for an occurrence.
            expected: datetime | None = now + self._retry_delay
            latest: datetime | None = now + self._retry_delay + self._grace
        else:
            try:
                schedule = CronSchedule(record.cron, record.time_zone)
            except InvalidCronError:
                return None  # The next firing records the error.
            expected = schedule.next_after(now)
            latest = schedule.next_after(now + self._grace)
        if expected is None or latest is None:
            return None
        if record.next_run_at <= latest:
            return None
        return RecurringFiring(
            recurring_id=record.id,
            expected_version=record.version,
            at=now,
            jobs=[],
            next_run_at=expected,
            error=record.error,
            failures=record.failures,
        )

    # -- planning ----------------------------------------------------------

    def _plan(self, record: RecurringRecord, now: datetime) -> _Plan:
        try:
            schedule = CronSchedule(record.cron, record.time_zone)
            function = resolve(record.function)
            mutex = declared_mutex(function.target, record.arguments)
        except (InvalidCronError, JobFunctionError, ValueError) as error:
            return self._failure(record, now, str(error))
        assert record.next_run_at is not None  # Only active ones are due.
        due = record.next_run_at
        policy = missed_policy(record.missed)
        missed = now - due > self._grace
        jobs: list[NewJob] = []
        last_run_at = None
        if missed and policy is MissedRunPolicy.RUN_ONCE:
            # One job now stands for every occurrence due so far.
            reason = (
                f"recurring job {record.id}: occurrences since {due} "
                "missed, run once"
            )
            jobs.append(occurrence_job(record, now, now, reason, mutex))
            last_run_at = now
            candidates = schedule.occurrences(now)
        elif missed and policy is MissedRunPolicy.SKIP:
            # Occurrences within the grace are late, not missed: each
            # still gets its job.
            candidates = schedule.occurrences(now - self._grace)
        else:
            candidates = itertools.chain([due], schedule.occurrences(due))
        next_run_at = None
        for occurrence in candidates:
            if occurrence > now or len(jobs) >= _BATCH:
                next_run_at = occurrence
                break
            reason = f"recurring job {record.id}: occurrence {occurrence}"
            jobs.append(occurrence_job(record, now, occurrence, reason, mutex))
            last_run_at = occurrence
        problem = None
        if next_run_at is None:
            problem = "the cron expression has no further occurrence"
        return _Plan(
            RecurringFiring(
                recurring_id=record.id,
                expected_version=record.version,
                at=now,
                jobs=jobs,
                next_run_at=next_run_at,
                last_run_at=last_run_at,
                error=problem,
            ),
            missed=missed,
            problem=problem,
        )

    def _failure(
        self, record: RecurringRecord, now: datetime, error: str
    ) -> _Plan:
        failures = record.failures + 1
        stop = failures >= self._attempts
        problem = f"{error} (attempt {failures} of {self._attempts})"
        return _Plan(
            RecurringFiring(
                recurring_id=record.id,
                expected_version=record.version,
                at=now,
                jobs=[],
                next_run_at=None if stop else now + self._retry_delay,
                error=problem,
                failures=failures,
            ),
            problem=problem,
        )
