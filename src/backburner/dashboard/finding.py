"""Pages of jobs, filtered further than the client's listing can.

The client lists jobs by state and queue, newest first, with a keyset
cursor (``before``: the last id seen), which storage serves from an
index however many jobs there are. Two filters the dashboard offers are
not in that listing: part of the job function's name, in any case (the
listing matches a whole ``module:qualname`` exactly), and "waiting for
a retry" (a scheduled job that has run before, so ``attempt > 0``).

For those, this module reads the listing in batches and keeps the jobs
that match, looking at no more than ``scan_limit`` jobs per request.
The cost of a page is bounded whatever the table holds; the price is
that a rare match deep in a large state may need several "continue"
pages to reach, and the page says how far it looked. Filtering in
storage (an index on state, function and id) would remove the scan;
that needs a storage method both engines implement.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from backburner.jobs.client import Client, Job
from backburner.storage.base import JobId, JobState

__all__ = ["Found", "find_jobs"]

_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Found:
    """One page of matching jobs.

    ``next_before`` continues the search (``None``: nothing further).
    ``exhausted_scan`` is true when the page stopped because it looked
    at ``scan_limit`` jobs, not because it was full or at the end.
    """

    jobs: list[Job]
    next_before: JobId | None
    scanned: int
    exhausted_scan: bool


def _matcher(
    function: str | None, retrying: bool
) -> Callable[[Job], bool] | None:
    if not function and not retrying:
        return None
    needle = (function or "").casefold()

    def matches(job: Job) -> bool:
        if retrying and job.attempt < 1:
            return False
        return needle in job.function.casefold()

    return matches


async def find_jobs(
    client: Client,
    *,
    state: JobState | None,
    queue: str | None,
    function: str | None,
    retrying: bool,
    before: JobId | None,
    limit: int,
    scan_limit: int,
) -> Found:
    """Return up to ``limit`` matching jobs with ids below ``before``.

    Raises:
        CorruptedJobError: a job in the listing cannot be read back.
    """
    matches = _matcher(function, retrying)
    if matches is None:
        page = await client.list_jobs(
            state=state, queue=queue, before=before, limit=limit
        )
        return Found(page.jobs, page.next_before, len(page.jobs), False)

    kept: list[Job] = []
    cursor = before
    scanned = 0
    # Small first: a common match fills the page from the first batch;
    # a rare one gets batches growing up to _BATCH rows.
    batch = 2 * limit
    while scanned < scan_limit:
        batch = min(batch, _BATCH, scan_limit - scanned)
        page = await client.list_jobs(
            state=state, queue=queue, before=cursor, limit=batch
        )
        for job in page.jobs:
            scanned += 1
            cursor = job.id
            if matches(job):
                kept.append(job)
                if len(kept) == limit:
                    return Found(kept, job.id, scanned, False)
        if page.next_before is None:
            return Found(kept, None, scanned, False)
        batch *= 2
    return Found(kept, cursor, scanned, True)
