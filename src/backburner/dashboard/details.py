"""One job: its call, parameters, history timeline and failures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backburner.dashboard import inputs
from backburner.dashboard.calls import (
    ArgumentMask,
    ArgumentView,
    pretty,
    view_call,
    view_result,
)
from backburner.dashboard.progress import (
    MESSAGE_PARAMETER,
    PROGRESS_PARAMETER,
    shown,
)
from backburner.dashboard.rendering import render
from backburner.dashboard.settings import settings_of
from backburner.jobs import states
from backburner.jobs.client import Job
from backburner.jobs.errors import JobNotFoundError
from backburner.jobs.results import RESULT, RESULT_ERROR, stored_result
from backburner.storage.base import (
    HistoryEntry,
    JobState,
    JSONValue,
    ServerInfo,
)

__all__ = [
    "Failure",
    "ResultView",
    "ServerWarning",
    "Step",
    "routes",
    "timeline",
]

# Shown in panels of their own rather than among a step's facts.
_OWN_PANELS = ("exception_type", "message", "traceback", RESULT)
_FINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.DELETED})


@dataclass(frozen=True, slots=True)
class Failure:
    """An exception recorded in a history entry."""

    exception_type: str
    message: str
    traceback: str


@dataclass(frozen=True, slots=True)
class Step:
    """One entry of the timeline and how long the job stayed there.

    ``lasted`` runs to the next entry; for the current state it runs to
    now, unless the state is final.
    """

    entry: HistoryEntry
    lasted: timedelta | None
    current: bool
    failure: Failure | None
    facts: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ServerWarning:
    """Why the server holding a processing job looks gone."""

    server: str
    silent_for: timedelta | None  # None: not registered at all.


def _failure(data: Mapping[str, JSONValue]) -> Failure | None:
    kind = data.get("exception_type")
    if not isinstance(kind, str):
        return None
    return Failure(
        kind, str(data.get("message", "")), str(data.get("traceback", ""))
    )


def _fact(value: JSONValue) -> str:
    return value if isinstance(value, str) else pretty(value)


def timeline(history: Sequence[HistoryEntry], now: datetime) -> list[Step]:
    """The job's history as steps with durations, oldest first."""
    steps = []
    for index, entry in enumerate(history):
        last = index == len(history) - 1
        if not last:
            lasted: timedelta | None = history[index + 1].at - entry.at
        elif entry.state in _FINAL:
            lasted = None
        else:
            lasted = now - entry.at
        facts = [
            (key, _fact(value))
            for key, value in entry.data.items()
            if key not in _OWN_PANELS
        ]
        steps.append(Step(entry, lasted, last, _failure(entry.data), facts))
    return steps


@dataclass(frozen=True, slots=True)
class ResultView:
    """What a succeeded job returned: ``value`` (``None`` when it
    returned nothing), or why it was not kept."""

    value: ArgumentView | None
    dropped: str | None


def result_view(job: Job, mask: ArgumentMask | None) -> ResultView | None:
    """The result panel of a succeeded job (``None`` for other states)."""
    if job.state is not JobState.SUCCEEDED:
        return None
    stored = stored_result(job.state, job.history)
    if RESULT_ERROR in stored:
        return ResultView(None, str(stored[RESULT_ERROR]))
    if RESULT not in stored:
        return ResultView(None, None)
    return ResultView(view_result(job.function, stored[RESULT], mask), None)


def server_warning(
    job: Job, servers: Sequence[ServerInfo], silence: float, now: datetime
) -> ServerWarning | None:
    """A warning when a processing job's server is gone or silent."""
    if job.state is not JobState.PROCESSING or job.server is None:
        return None
    for server in servers:
        if server.name == job.server:
            quiet = now - server.heartbeat_at
            if quiet.total_seconds() > silence:
                return ServerWarning(job.server, quiet)
            return None
    return ServerWarning(job.server, None)


async def job_details(request: Request) -> Response:
    """The job page."""
    job_id = inputs.job_id(request.path_params["job_id"])
    settings = settings_of(request)
    try:
        job = await settings.client.get(job_id)
    except JobNotFoundError:
        raise HTTPException(404, "no such job") from None

    now = datetime.now(UTC)
    steps = timeline(job.history, now)
    failures = [step for step in steps if step.failure is not None]
    warning = None
    progress = None
    if job.state is JobState.PROCESSING:
        servers = await settings.client.servers()
        warning = server_warning(job, servers, settings.server_silence, now)
        progress = shown(job.parameters)
    parameters = [
        (name, pretty(value))
        for name, value in job.parameters.items()
        if name not in (PROGRESS_PARAMETER, MESSAGE_PARAMETER)
    ]
    return render(
        request,
        "job.html",
        {
            "page": "job",
            "job": job,
            "call": view_call(job.function, job.raw_arguments, settings.mask),
            "result": result_view(job, settings.mask),
            "parameters": parameters,
            "steps": list(reversed(steps)),
            "last_failure": failures[-1] if failures else None,
            "warning": warning,
            "progress": progress,
            "may_requeue": states.can_move(job.state, JobState.ENQUEUED),
            "may_delete": states.can_move(job.state, JobState.DELETED),
            "may_run_now": job.state is JobState.SCHEDULED,
        },
    )


routes = [Route("/job/{job_id}", job_details, name="job")]
