"""Job listings: jobs by state, and jobs waiting for a retry.

Pages are newest first with a keyset cursor (``?before=<id>``), never
an offset, and the counts in the tabs come from storage's counters, so
a page costs the same with a thousand jobs or a million.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backburner.dashboard import inputs
from backburner.dashboard.finding import find_jobs
from backburner.dashboard.progress import progress_of
from backburner.dashboard.rendering import render
from backburner.dashboard.settings import settings_of
from backburner.jobs import states
from backburner.storage.base import JobState

__all__ = ["routes"]


async def _listing(
    request: Request, state: JobState, *, retrying: bool
) -> dict[str, Any]:
    settings = settings_of(request)
    query = request.query_params
    queue = inputs.queue_filter(query.get("queue"))
    function = inputs.function_filter(query.get("function"))
    before = inputs.cursor(query.get("before"))

    found = await find_jobs(
        settings.client,
        state=state,
        queue=queue,
        function=function,
        retrying=retrying,
        before=before,
        limit=settings.page_size,
        scan_limit=settings.scan_limit,
    )
    counts = await settings.client.counts()
    queues = sorted(
        (name, by_state[state])
        for name, by_state in counts.by_queue.items()
        if by_state[state]
    )
    progress = {}
    if state is JobState.PROCESSING:
        progress = await progress_of(settings.client, found.jobs)
    return {
        "state": state,
        "counts": counts.by_state,
        "queues": queues,
        "queue": queue,
        "function": function,
        "before": before,
        "found": found,
        "progress": progress,
        "may_requeue": states.can_move(state, JobState.ENQUEUED),
        "may_delete": states.can_move(state, JobState.DELETED),
        "may_run_now": state is JobState.SCHEDULED,
    }


async def jobs_by_state(request: Request) -> Response:
    """The jobs in one state, filtered by queue and function."""
    state = inputs.state(request.path_params["state"])
    context = await _listing(request, state, retrying=False)
    return render(
        request,
        "jobs.html",
        {**context, "page": "jobs", "route": "jobs"},
    )


async def retries(request: Request) -> Response:
    """Jobs waiting for their next attempt (scheduled after a failure)."""
    context = await _listing(request, JobState.SCHEDULED, retrying=True)
    return render(
        request,
        "jobs.html",
        {**context, "page": "retries", "route": "retries"},
    )


routes = [
    Route("/jobs/{state}", jobs_by_state, name="jobs"),
    Route("/retries", retries, name="retries"),
]
