"""Live progress of processing jobs.

A job reports progress by setting its ``progress`` parameter to a
number from 0 to 100 (``await client.set_parameter(job_id, "progress",
40)``). The processing page shows it as a bar and asks
``/api/progress`` every couple of seconds for fresh values; a job that
never sets the parameter shows only how long it has been running.

One parameter read per job shown: the processing page lists at most a
page of jobs, and processing jobs are bounded by the workers running.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from backburner.dashboard import inputs
from backburner.dashboard.settings import settings_of
from backburner.jobs.client import Client, Job
from backburner.jobs.errors import JobNotFoundError
from backburner.storage.base import JobId

__all__ = ["PROGRESS_PARAMETER", "progress_of", "routes"]

PROGRESS_PARAMETER = "progress"
_MAX_IDS = 100


def _percent(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value != value:  # NaN never compares equal to itself.
        return None
    return float(min(max(value, 0), 100))


async def progress_of(
    client: Client, jobs: Iterable[Job]
) -> dict[JobId, float | None]:
    """The reported progress of each job, in percent (``None``: none)."""
    found = {}
    for job in jobs:
        value = await client.get_parameter(job.id, PROGRESS_PARAMETER)
        found[job.id] = _percent(value)
    return found


async def progress_api(request: Request) -> Response:
    """``GET /api/progress?id=1&id=2``: state and progress of each job."""
    ids = inputs.job_ids(request.query_params.getlist("id"), _MAX_IDS)
    client = settings_of(request).client
    now = datetime.now(UTC)
    jobs = {}
    for job_id in ids:
        try:
            job = await client.get(job_id)
        except JobNotFoundError:
            continue
        value = job.parameters.get(PROGRESS_PARAMETER)
        jobs[str(job_id)] = {
            "state": job.state.value,
            "progress": _percent(value),
            "running_for": (now - job.state_changed_at).total_seconds(),
        }
    return JSONResponse({"jobs": jobs})


routes = [Route("/api/progress", progress_api, name="progress_api")]
