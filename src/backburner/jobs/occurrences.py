"""Occurrences of recurring jobs: the job each creates, and missed ones.

Shared by the client side (:mod:`backburner.jobs.recurring`), which
triggers occurrences by hand, and the servers'
:mod:`~backburner.jobs.recurring_scheduler`, which creates them on
time; a module of its own so that a server starts without the client's
code.
"""

from __future__ import annotations

import enum
from datetime import datetime

from backburner.jobs.mutex import mutex_of
from backburner.jobs.serializer import decode_arguments, encode_value
from backburner.storage.base import JobState, NewJob, RecurringRecord

__all__ = [
    "OCCURRENCE_PARAMETER",
    "RECURRING_PARAMETER",
    "MissedRunPolicy",
    "declared_mutex",
    "missed_policy",
    "occurrence_job",
]

RECURRING_PARAMETER = "recurring_job"
"""Job parameter naming the recurring job that created a job."""
OCCURRENCE_PARAMETER = "occurrence"
"""Job parameter holding the occurrence (or trigger) time, ISO 8601."""


class MissedRunPolicy(enum.StrEnum):
    """What to do with occurrences missed while no server ran.

    An occurrence is missed when the servers get to it more than the
    server's ``missed_run_grace`` (60 s by default) after its time.
    """

    RUN_ONCE = "run_once"
    """Create one job now for all the missed occurrences (default)."""
    RUN_ALL = "run_all"
    """Create a job for every missed occurrence."""
    SKIP = "skip"
    """Create none; wait for the next occurrence."""


def missed_policy(name: str) -> MissedRunPolicy:
    """The policy stored as ``name``; the default for an unknown name."""
    try:
        return MissedRunPolicy(name)
    except ValueError:
        return MissedRunPolicy.RUN_ONCE


def declared_mutex(target: object, arguments: str) -> tuple[str | None, int]:
    """The mutex a job function declares for a recurring job's call, and
    its limit; ``(None, 1)`` without one.

    Occurrences go through no client, so the declaration is read here:
    a recurring import declared with ``@mutex`` must not overlap itself
    any more than one enqueued by hand.

    Raises:
        ValueError: the stored arguments do not decode, or the mutex's
            key function fails on them.
    """
    declared = mutex_of(target)
    if declared is None:
        return None, 1
    args, kwargs = decode_arguments(arguments)
    return declared.key_for(args, kwargs), declared.limit


def occurrence_job(
    record: RecurringRecord,
    now: datetime,
    occurrence: datetime,
    reason: str,
    mutex: tuple[str | None, int] = (None, 1),
) -> NewJob:
    """The job a recurring job creates for one occurrence (or trigger);
    ``mutex`` as :func:`declared_mutex` gives it."""
    return NewJob(
        function=record.function,
        arguments=record.arguments,
        queue=record.queue,
        state=JobState.ENQUEUED,
        reason=reason,
        created_at=now,
        timeout=record.timeout,
        parameters={
            RECURRING_PARAMETER: encode_value(record.id, "recurring job"),
            OCCURRENCE_PARAMETER: encode_value(
                occurrence.isoformat(), "occurrence"
            ),
        },
        mutex=mutex[0],
        mutex_limit=mutex[1],
    )
