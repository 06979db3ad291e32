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

from backburner.jobs.serializer import encode_value
from backburner.storage.base import JobState, NewJob, RecurringRecord

__all__ = [
    "OCCURRENCE_PARAMETER",
    "RECURRING_PARAMETER",
    "MissedRunPolicy",
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


def occurrence_job(
    record: RecurringRecord, now: datetime, occurrence: datetime, reason: str
) -> NewJob:
    """The job a recurring job creates for one occurrence (or trigger)."""
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
    )
