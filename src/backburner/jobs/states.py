"""The job state machine: which moves exist, and the changes that make them.

::

    enqueued ──fetch──▶ processing ──▶ succeeded ──expire──▶ (gone)
      ▲  ▲                 │  │  └───▶ failed
      │  └─interrupted─────┘  └──retry──▶ scheduled ──due──▶ enqueued
      │
    requeue (from any state but enqueued)     delete (from any but deleted)

*awaiting* jobs (continuations) wait for a parent job; they leave by
requeue or delete, or when the parent finishes. A finished continuation
goes back to *awaiting* when its parent leaves its final state (a
requeued parent re-arms its continuations); storage makes that move, in
the parent's transaction.

Every function here returns a :class:`~backburner.storage.StateChange`:
storage applies it as one compare-and-set transaction, so a change that
finds the job elsewhere leaves the job untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from backburner.storage.base import JobId, JobState, JSONValue, StateChange

__all__ = [
    "DEFAULT_RETENTION",
    "LATEST_READY_AT",
    "TRANSITIONS",
    "JobState",
    "can_move",
    "delete",
    "fail",
    "give_up_deleted",
    "interrupted",
    "recovered",
    "requeue",
    "retry_later",
    "sources_of",
    "succeed",
]

DEFAULT_RETENTION = timedelta(days=1)
"""How long a succeeded or deleted job is kept, unless told otherwise."""

LATEST_READY_AT = datetime(9999, 12, 31, tzinfo=UTC)
"""The latest moment a job can be made ready at: later ones, near the
end of what ``datetime`` holds, may not read back from storage (SQLite
rounds them into year 10000)."""

S = JobState
TRANSITIONS: Mapping[JobState, frozenset[JobState]] = {
    S.ENQUEUED: frozenset({S.PROCESSING, S.DELETED}),
    S.SCHEDULED: frozenset({S.ENQUEUED, S.DELETED}),
    S.AWAITING: frozenset({S.ENQUEUED, S.DELETED}),
    S.PROCESSING: frozenset(
        {S.SUCCEEDED, S.FAILED, S.SCHEDULED, S.ENQUEUED, S.DELETED}
    ),
    # Finished continuations are re-armed (back to awaiting) by storage.
    S.SUCCEEDED: frozenset({S.ENQUEUED, S.DELETED, S.AWAITING}),
    S.FAILED: frozenset({S.ENQUEUED, S.DELETED, S.AWAITING}),
    S.DELETED: frozenset({S.ENQUEUED, S.AWAITING}),
}
"""For each state, the states a job may move to from it (by anyone:
the client, a server, or storage itself)."""


def can_move(source: JobState, target: JobState) -> bool:
    """Whether the state machine allows ``source`` -> ``target``."""
    return target in TRANSITIONS[source]


def sources_of(target: JobState) -> frozenset[JobState]:
    """The states from which a job may move to ``target``."""
    return frozenset(
        s for s, targets in TRANSITIONS.items() if target in targets
    )


def requeue(job_id: JobId, now: datetime, reason: str) -> StateChange:
    """Put a job back on its queue (a running job is aborted)."""
    return StateChange(
        job_id=job_id,
        to_state=S.ENQUEUED,
        from_states=sources_of(S.ENQUEUED),
        reason=reason,
        at=now,
        reset_attempt=True,
    )


def delete(
    job_id: JobId, now: datetime, reason: str, retention: timedelta
) -> StateChange:
    """Delete a job (a running job is aborted); it expires later."""
    return StateChange(
        job_id=job_id,
        to_state=S.DELETED,
        from_states=sources_of(S.DELETED),
        reason=reason,
        at=now,
        expires_at=now + retention,
    )


_PROCESSING = frozenset({S.PROCESSING})


def _outcome(
    job_id: JobId,
    version: int,
    target: JobState,
    now: datetime,
    reason: str,
    data: Mapping[str, JSONValue],
    *,
    scheduled_at: datetime | None = None,
    expires_at: datetime | None = None,
) -> StateChange:
    return StateChange(
        job_id=job_id,
        to_state=target,
        from_states=_PROCESSING,
        reason=reason,
        at=now,
        data=data,
        expected_version=version,
        from_worker=True,
        scheduled_at=scheduled_at,
        expires_at=expires_at,
    )


def succeed(
    job_id: JobId,
    version: int,
    now: datetime,
    data: Mapping[str, JSONValue],
    retention: timedelta,
) -> StateChange:
    """The worker finished the job; it expires after ``retention``."""
    return _outcome(
        job_id,
        version,
        S.SUCCEEDED,
        now,
        "succeeded",
        data,
        expires_at=now + retention,
    )


def fail(
    job_id: JobId,
    version: int,
    now: datetime,
    reason: str,
    data: Mapping[str, JSONValue],
) -> StateChange:
    """The job failed for good; it stays until someone acts."""
    return _outcome(job_id, version, S.FAILED, now, reason, data)


def retry_later(
    job_id: JobId,
    version: int,
    now: datetime,
    at: datetime,
    reason: str,
    data: Mapping[str, JSONValue],
) -> StateChange:
    """The attempt failed; the next one is scheduled for ``at``."""
    return _outcome(
        job_id, version, S.SCHEDULED, now, reason, data, scheduled_at=at
    )


def interrupted(
    job_id: JobId,
    version: int,
    now: datetime,
    reason: str,
    data: Mapping[str, JSONValue],
) -> StateChange:
    """The server stopped the job before it ended: back on its queue."""
    return _outcome(job_id, version, S.ENQUEUED, now, reason, data)


def recovered(
    job_id: JobId,
    version: int,
    now: datetime,
    reason: str,
    data: Mapping[str, JSONValue],
) -> StateChange:
    """A job its server holds in *processing* but does not run: back on
    its queue.

    Compared on ``version``, so a job that moved on meanwhile is left
    alone; the attempt count stays, as when a dead server's jobs are
    recovered.
    """
    return StateChange(
        job_id=job_id,
        to_state=S.ENQUEUED,
        from_states=frozenset({S.PROCESSING}),
        reason=reason,
        at=now,
        data=data,
        expected_version=version,
    )


def give_up_deleted(
    job_id: JobId,
    version: int,
    now: datetime,
    reason: str,
    data: Mapping[str, JSONValue],
    retention: timedelta,
) -> StateChange:
    """Attempts ran out and the policy says delete: the job is deleted."""
    return _outcome(
        job_id,
        version,
        S.DELETED,
        now,
        reason,
        data,
        expires_at=now + retention,
    )
