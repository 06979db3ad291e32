"""Reading what a request asks for; anything malformed is a 4xx.

Every value from the URL or a form passes through here before it
reaches the client, so a bad job id, cursor, state or queue name is a
clear 400 or 404 and never an error deep in storage (a job id beyond
64 bits, for instance, would overflow the database's integer).
"""

from __future__ import annotations

from starlette.exceptions import HTTPException

from backburner.jobs.queues import check_queue_name
from backburner.storage.base import JobId, JobState

__all__ = [
    "MAX_JOB_ID",
    "cursor",
    "function_filter",
    "job_id",
    "job_ids",
    "queue_filter",
    "state",
]

MAX_JOB_ID = 2**63 - 1
_MAX_FUNCTION_FILTER = 200


def _positive_id(text: str) -> int | None:
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    value = int(text)
    return value if 1 <= value <= MAX_JOB_ID else None


def job_id(text: str) -> JobId:
    """A job id from the path.

    Raises:
        HTTPException: 404, the text is not a valid job id.
    """
    value = _positive_id(text)
    if value is None:
        raise HTTPException(404, "no such job")
    return value


def cursor(text: str | None) -> JobId | None:
    """The ``before`` cursor of a listing (absent: the newest page).

    Raises:
        HTTPException: 400, the cursor is not a job id.
    """
    if text is None or text == "":
        return None
    value = _positive_id(text)
    if value is None:
        raise HTTPException(400, "the page cursor is not a job id")
    return value


def state(text: str) -> JobState:
    """A job state from the path.

    Raises:
        HTTPException: 404, there is no such state.
    """
    try:
        return JobState(text)
    except ValueError:
        raise HTTPException(404, "no such state") from None


def queue_filter(text: str | None) -> str | None:
    """The queue filter (absent or empty: every queue).

    Raises:
        HTTPException: 400, the text is not a valid queue name.
    """
    if not text:
        return None
    try:
        return check_queue_name(text)
    except ValueError:
        raise HTTPException(400, "invalid queue name") from None


def function_filter(text: str | None) -> str | None:
    """The job function filter, a part of ``module:qualname``.

    Raises:
        HTTPException: 400, the text is too long to be a name.
    """
    if not text or not text.strip():
        return None
    if len(text) > _MAX_FUNCTION_FILTER:
        raise HTTPException(400, "the function filter is too long")
    return text.strip()


def job_ids(texts: list[str], limit: int) -> list[JobId]:
    """Job ids from a form or query (a selection), without repeats.

    Raises:
        HTTPException: 400, an id is malformed or there are more than
            ``limit``.
    """
    if len(texts) > limit:
        raise HTTPException(400, f"select at most {limit} jobs")
    ids: list[JobId] = []
    for text in texts:
        value = _positive_id(text)
        if value is None:
            raise HTTPException(400, "a selected job id is malformed")
        if value not in ids:
            ids.append(value)
    return ids
