"""Actions on jobs: requeue, delete, run now; one job or a selection.

Every action is a POST carrying the CSRF token, goes through the same
client operations as application code (compare-and-set state changes:
a job that moved meanwhile is left alone and counted as refused), and
names who did it in the reason of the job's new history entry. The
answer is a redirect back to the page the action came from (Post,
Redirect, Get) with a short notice of what was done.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from backburner.dashboard import csrf, inputs
from backburner.dashboard.auth import actor_of
from backburner.dashboard.settings import access_of, settings_of
from backburner.jobs.client import Client
from backburner.jobs.errors import InvalidStateChangeError, JobNotFoundError
from backburner.storage.base import JobId, JobState

__all__ = ["ACTIONS", "NOTICE_KEYS", "routes"]

MAX_SELECTION = 500
NOTICE_KEYS = ("done", "ok", "refused")

Action = Callable[[Client, JobId, str], Awaitable[None]]


async def _requeue(client: Client, job_id: JobId, actor: str) -> None:
    await client.requeue(job_id, reason=f"requeued by {actor}")


async def _delete(client: Client, job_id: JobId, actor: str) -> None:
    await client.delete(job_id, reason=f"deleted by {actor}")


async def _run_now(client: Client, job_id: JobId, actor: str) -> None:
    # Only a job that is still scheduled: one that became ready (or was
    # deleted) meanwhile is refused rather than moved again.
    await client.requeue(
        job_id,
        expected_state=JobState.SCHEDULED,
        reason=f"run now by {actor}",
    )


ACTIONS: dict[str, Action] = {
    "requeue": _requeue,
    "delete": _delete,
    "run-now": _run_now,
}


async def _checked_form(request: Request) -> FormData:
    if access_of(request).read_only:
        raise HTTPException(403, "the dashboard is read-only for you")
    form = await request.form(max_files=0, max_fields=MAX_SELECTION + 10)
    if not csrf.check(request, form.get(csrf.FIELD)):
        raise HTTPException(
            403, "the form is stale or came from another site; reload it"
        )
    return form


def _back(request: Request, form: FormData, fallback: str) -> str:
    """Where to go after the action: a path inside the dashboard."""
    back = form.get("back")
    if (
        not isinstance(back, str)
        or not back.startswith("/")
        or back.startswith("//")
        or "\\" in back
        or any(ord(c) < 0x21 for c in back)
    ):
        back = fallback
    root: str = request.scope.get("root_path", "")
    return root + back


def _with_notice(path: str, action: str, ok: int, refused: int) -> str:
    parts = urlsplit(path)
    kept = [(k, v) for k, v in parse_qsl(parts.query) if k not in NOTICE_KEYS]
    kept += [("done", action), ("ok", str(ok)), ("refused", str(refused))]
    return f"{parts.path}?{urlencode(kept)}"


async def _perform(
    request: Request, action_name: str, ids: list[JobId], fallback: str
) -> Response:
    form = await _checked_form(request)
    action = ACTIONS.get(action_name)
    if action is None:
        raise HTTPException(400, "unknown action")
    client = settings_of(request).client
    actor = actor_of(access_of(request), request)
    ok = refused = 0
    for job_id in ids:
        try:
            await action(client, job_id, actor)
            ok += 1
        except (InvalidStateChangeError, JobNotFoundError):
            refused += 1
    target = _with_notice(
        _back(request, form, fallback), action_name, ok, refused
    )
    return RedirectResponse(target, status_code=303)


async def job_action(request: Request) -> Response:
    """``POST /job/{id}/{action}``: act on one job."""
    job_id = inputs.job_id(request.path_params["job_id"])
    action_name = request.path_params["action"]
    if action_name not in ACTIONS:
        raise HTTPException(404, "no such action")
    return await _perform(request, action_name, [job_id], f"/job/{job_id}")


async def selection_action(request: Request) -> Response:
    """``POST /actions``: act on the selected jobs (``job`` fields)."""
    form = await _checked_form(request)
    action_name = form.get("action")
    if not isinstance(action_name, str) or action_name not in ACTIONS:
        raise HTTPException(400, "unknown action")
    texts = [value for value in form.getlist("job") if isinstance(value, str)]
    ids = inputs.job_ids(texts, MAX_SELECTION)
    return await _perform(request, action_name, ids, "/")


routes = [
    Route(
        "/job/{job_id}/{action}",
        job_action,
        methods=["POST"],
        name="job_action",
    ),
    Route("/actions", selection_action, methods=["POST"], name="actions"),
]
