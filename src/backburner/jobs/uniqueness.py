"""Unique keys: one active job per key.

A job enqueued or scheduled with ``JobOptions(unique_key=...)`` is not
created while another job with the same key is *enqueued*, *scheduled*
or *processing*: the client returns that job's id instead. Storage
enforces it (a unique index on the key over those states), so two
clients racing with the same key get the same id.

A key is released when its job succeeds, fails for good or is deleted.
Requeueing such a job while another job holds its key is refused with
:class:`UniqueKeyTakenError`.
"""

from __future__ import annotations

from backburner.jobs.errors import InvalidStateChangeError
from backburner.jobs.serializer import text_problem
from backburner.storage.base import ACTIVE_STATES, JobId, JobState

__all__ = ["MAX_KEY_LENGTH", "UniqueKeyTakenError", "check_key"]

MAX_KEY_LENGTH = 200


def check_key(key: str, what: str) -> str:
    """Return ``key`` if it is a usable unique key or mutex name.

    Raises:
        ValueError: the key is not a string, is empty, is longer than
            200 characters, or holds a NUL character or a lone surrogate.
    """
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise ValueError(
            f"a {what} is a string of 1-{MAX_KEY_LENGTH} characters, "
            f"got {key!r}"
        )
    # Neither storage can hold these: SQLite's driver fails to encode a
    # lone surrogate and PostgreSQL's text refuses both. Refused here,
    # every storage gives the same answer before anything is written.
    if text_problem(key) is not None:
        raise ValueError(
            f"a {what} cannot hold a NUL character or a lone surrogate "
            f"(not valid UTF-8), got {key!r}"
        )
    return key


class UniqueKeyTakenError(InvalidStateChangeError):
    """Raised when a change would make a job active while another active
    job holds its unique key. The job is left as it was.

    Attributes:
        holder: the active job holding the key.
    """

    def __init__(
        self, job_id: JobId, state: JobState, target: JobState, holder: JobId
    ) -> None:
        super().__init__(job_id, state, target, ACTIVE_STATES)
        self.args = (
            f"job {job_id} cannot move to {target.value}: job {holder} "
            "holds the same unique key",
        )
        self.holder = holder
