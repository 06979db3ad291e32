"""Continuations: a job that runs once its parent job finishes.

``await client.continue_with(parent_id, func, *args, **kwargs)`` creates
a job in *awaiting* that is enqueued when the parent succeeds.
:meth:`~backburner.jobs.client.Client.continue_with_options` picks
another trigger (:class:`ContinueOn`) and job options.

Storage moves continuations in the same transaction as their parent,
so each fires exactly once per time its parent finishes:

- the parent reaches a state the continuation waits for: *enqueued*;
- the parent succeeds or is deleted otherwise: *deleted* (it would
  never run), which its own continuations see as a deletion;
- the parent fails for good and the continuation waits for something
  else: it keeps waiting, since a failed job stays until someone
  requeues or deletes it;
- the parent is requeued from a final state: its continuations that
  already ended go back to *awaiting* (re-armed), theirs too.

A continuation created after its parent finished reacts at once.
"On failure" means failed after the last retry; a job whose retry
policy deletes it when attempts run out ends *deleted*, not failed.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from backburner.storage.base import ContinuationLink, JobId, JobState

__all__ = ["ContinuationLinks", "ContinueOn", "states_for"]


class ContinueOn(enum.StrEnum):
    """When a continuation runs."""

    SUCCEEDED = "succeeded"
    """The parent succeeded (the default)."""
    FAILED = "failed"
    """The parent failed after its last attempt."""
    DELETED = "deleted"
    """The parent was deleted (by hand, or by its retry policy)."""
    FINISHED = "finished"
    """Any of the above."""


_STATES = {
    ContinueOn.SUCCEEDED: frozenset({JobState.SUCCEEDED}),
    ContinueOn.FAILED: frozenset({JobState.FAILED}),
    ContinueOn.DELETED: frozenset({JobState.DELETED}),
    ContinueOn.FINISHED: frozenset(
        {JobState.SUCCEEDED, JobState.FAILED, JobState.DELETED}
    ),
}


def states_for(on: ContinueOn | str) -> frozenset[JobState]:
    """The parent states that fire a continuation.

    Raises:
        ValueError: ``on`` is not one of :class:`ContinueOn`.
    """
    try:
        return _STATES[ContinueOn(on)]
    except ValueError:
        names = ", ".join(member.value for member in ContinueOn)
        raise ValueError(
            f"a continuation runs on one of {names}, not {on!r}"
        ) from None


def _trigger(states: frozenset[JobState]) -> ContinueOn:
    for on, waited in _STATES.items():
        if waited == states:
            return on
    # Stored by hand or by a newer release: the widest name that fits.
    return ContinueOn.FINISHED


@dataclass(frozen=True, slots=True)
class ContinuationLinks:
    """How a job is tied to others by continuations.

    Attributes:
        parent_id: the job this one continues (``None``: none).
        on: when this job runs after its parent (``None``: no parent).
        continuations: the jobs that continue this one, with when they
            run, oldest first.
    """

    parent_id: JobId | None
    on: ContinueOn | None
    continuations: tuple[tuple[JobId, ContinueOn], ...]

    @classmethod
    def of(
        cls, job_id: JobId, links: Sequence[ContinuationLink]
    ) -> ContinuationLinks:
        """Sort storage's links into parent and continuations."""
        parent = next((link for link in links if link.job_id == job_id), None)
        return cls(
            parent_id=None if parent is None else parent.parent_id,
            on=None if parent is None else _trigger(parent.on_states),
            continuations=tuple(
                (link.job_id, _trigger(link.on_states))
                for link in links
                if link.parent_id == job_id
            ),
        )
