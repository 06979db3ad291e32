"""The recurring jobs page: schedules, their last job, and their steering.

Reads and acts only through ``client.recurring``. Actions (trigger now,
pause, resume, remove) are POSTs carrying the CSRF token, refused in
read-only mode, answered with a redirect back to the page.

Known limit: the recurring job API takes no reason, so pause, resume
and remove do not record who did them. A trigger records it on the job
it creates, in the ``triggered_by`` parameter.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from backburner.dashboard import csrf
from backburner.dashboard.auth import actor_of
from backburner.dashboard.calls import view_call
from backburner.dashboard.rendering import link, render
from backburner.dashboard.settings import access_of, settings_of
from backburner.jobs.client import Client
from backburner.jobs.recurring import (
    RecurringJobNotFoundError,
    check_recurring_id,
)

__all__ = ["RECURRING_ACTIONS", "TRIGGERED_BY_PARAMETER", "routes"]

TRIGGERED_BY_PARAMETER = "triggered_by"
"""Job parameter naming who triggered a recurring job from the page."""

RecurringAction = Callable[[Client, str, str], Awaitable[None]]


async def _trigger(client: Client, recurring_id: str, actor: str) -> None:
    job_id = await client.recurring.trigger(recurring_id)
    await client.set_parameter(job_id, TRIGGERED_BY_PARAMETER, actor)


async def _pause(client: Client, recurring_id: str, actor: str) -> None:
    await client.recurring.pause(recurring_id)


async def _resume(client: Client, recurring_id: str, actor: str) -> None:
    await client.recurring.resume(recurring_id)


async def _remove(client: Client, recurring_id: str, actor: str) -> None:
    await client.recurring.remove(recurring_id)


RECURRING_ACTIONS: dict[str, RecurringAction] = {
    "trigger": _trigger,
    "pause": _pause,
    "resume": _resume,
    "remove": _remove,
}

_VERBS = {
    "trigger": "triggered",
    "pause": "paused",
    "resume": "resumed",
    "remove": "removed",
}


def _notice(request: Request) -> str | None:
    """The notice a recurring action left in the query string."""
    verb = _VERBS.get(request.query_params.get("done", ""))
    recurring_id = request.query_params.get("id", "")
    try:
        check_recurring_id(recurring_id)
    except ValueError:
        return None
    if verb is None:
        return None
    if request.query_params.get("gone") == "1":
        return f"Recurring job {recurring_id} no longer exists."
    return f"Recurring job {recurring_id} {verb}."


async def recurring_jobs(request: Request) -> Response:
    """Every recurring job, by id, with its schedule and last job."""
    settings = settings_of(request)
    rows = [
        (
            recurring,
            view_call(
                recurring.function, recurring.raw_arguments, settings.mask
            ),
        )
        for recurring in await settings.client.recurring.list()
    ]
    context = {"page": "recurring", "rows": rows}
    notice = _notice(request)
    if notice is not None:
        context["notice"] = notice
    return render(request, "recurring.html", context)


async def recurring_action(request: Request) -> Response:
    """``POST /recurring/{id}/{action}``: steer one recurring job."""
    action = RECURRING_ACTIONS.get(request.path_params["action"])
    if action is None:
        raise HTTPException(404, "no such action")
    try:
        recurring_id = check_recurring_id(request.path_params["recurring_id"])
    except ValueError:
        raise HTTPException(400, "invalid recurring job id") from None
    if access_of(request).read_only:
        raise HTTPException(403, "the dashboard is read-only for you")
    form = await request.form(max_files=0, max_fields=10)
    if not csrf.check(request, form.get(csrf.FIELD)):
        raise HTTPException(
            403, "the form is stale or came from another site; reload it"
        )

    client = settings_of(request).client
    actor = actor_of(access_of(request), request)
    query = {"done": request.path_params["action"], "id": recurring_id}
    try:
        await action(client, recurring_id, actor)
    except RecurringJobNotFoundError:
        query["gone"] = "1"
    target = f"{link(request, 'recurring')}?{urlencode(query)}"
    return RedirectResponse(target, status_code=303)


routes = [
    Route("/recurring", recurring_jobs, name="recurring"),
    Route(
        "/recurring/{recurring_id}/{action}",
        recurring_action,
        methods=["POST"],
        name="recurring_action",
    ),
]
