"""Live progress of processing jobs.

A job's progress lives in two of its parameters: ``progress``, a
number from 0 to 100, and ``progress_message``, a short text. The job
server writes them from what a running job reports; anything else may
set them too (``await client.set_parameter(job_id, "progress", 40)``).
The processing page shows them as a bar and a line of text, and asks
``/api/progress`` every couple of seconds for fresh values; a job that
reports nothing shows only how long it has been running.

One parameter read per job shown: the processing page lists at most a
page of jobs, and processing jobs are bounded by the workers running.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from backburner.dashboard import inputs
from backburner.dashboard.settings import settings_of
from backburner.jobs.client import Client, Job
from backburner.jobs.errors import JobNotFoundError
from backburner.storage.base import JobId

__all__ = [
    "MESSAGE_PARAMETER",
    "PROGRESS_PARAMETER",
    "Shown",
    "progress_of",
    "routes",
    "shown",
]

PROGRESS_PARAMETER = "progress"
MESSAGE_PARAMETER = "progress_message"
_MAX_IDS = 100


def _percent(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value != value:  # NaN never compares equal to itself.
        return None
    return float(min(max(value, 0), 100))


@dataclass(frozen=True, slots=True)
class Shown:
    """A job's progress as shown: percent (``None``: none) and message."""

    percent: float | None
    message: str


def shown(parameters: Mapping[str, Any]) -> Shown:
    """The progress held in a job's decoded parameters."""
    message = parameters.get(MESSAGE_PARAMETER, "")
    return Shown(
        _percent(parameters.get(PROGRESS_PARAMETER)),
        message if isinstance(message, str) else "",
    )


async def progress_of(
    client: Client, jobs: Iterable[Job]
) -> dict[JobId, Shown]:
    """The reported progress of each job."""
    return {job.id: shown(await client.get_parameters(job.id)) for job in jobs}


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
        progress = shown(job.parameters)
        jobs[str(job_id)] = {
            "state": job.state.value,
            "progress": progress.percent,
            "message": progress.message,
            "running_for": (now - job.state_changed_at).total_seconds(),
        }
    return JSONResponse({"jobs": jobs})


routes = [Route("/api/progress", progress_api, name="progress_api")]
