"""Templates, links and the small formatting helpers pages share.

Autoescaping is on for every template and no template marks job data
``|safe``: a job's arguments, exception text, function, queue and
server names are shown as text wherever they appear.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from backburner.dashboard import csrf
from backburner.dashboard.auth import Access
from backburner.dashboard.settings import Settings, access_of, settings_of
from backburner.storage.base import JobState

__all__ = [
    "STATE_ORDER",
    "environment",
    "format_duration",
    "link",
    "render",
]

STATE_ORDER = tuple(JobState)

environment = jinja2.Environment(
    loader=jinja2.PackageLoader("backburner.dashboard", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def link(
    request: Request,
    name: str,
    query: Mapping[str, object] | None = None,
    **params: Any,
) -> str:
    """The path of the dashboard route ``name``, under its mount point."""
    root: str = request.scope.get("root_path", "")
    path = request.app.router.url_path_for(name, **params)
    kept = {k: v for k, v in (query or {}).items() if v not in (None, "")}
    return root + str(path) + (f"?{urlencode(kept)}" if kept else "")


def format_duration(span: timedelta | float) -> str:
    """A duration for people: ``850 ms``, ``4.2 s``, ``3 min 5 s``..."""
    seconds = span.total_seconds() if isinstance(span, timedelta) else span
    seconds = max(seconds, 0.0)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, second = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {second} s"
    hours, minute = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minute} min"
    days, hour = divmod(hours, 24)
    return f"{days} d {hour} h"


def _when(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _iso(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).isoformat()


def _ago(moment: datetime | None) -> str:
    if moment is None:
        return ""
    delta = datetime.now(UTC) - moment
    if delta.total_seconds() < 0:
        return f"in {format_duration(-delta)}"
    return f"{format_duration(delta)} ago"


environment.filters["when"] = _when
environment.filters["iso"] = _iso
environment.filters["ago"] = _ago
environment.filters["duration"] = format_duration
environment.filters["since"] = lambda moment: format_duration(
    datetime.now(UTC) - moment
)


_VERBS = {"requeue": "requeued", "delete": "deleted", "run-now": "run now"}


def _count(text: str | None) -> int:
    if text is None or not text.isascii() or not text.isdigit():
        return 0
    return int(text[:9])


def notice_of(request: Request) -> str | None:
    """The notice an action left in the query string, as fixed text."""
    query = request.query_params
    verb = _VERBS.get(query.get("done", ""))
    if verb is None:
        return None
    ok, refused = _count(query.get("ok")), _count(query.get("refused"))
    jobs = "job" if ok == 1 else "jobs"
    text = f"{ok} {jobs} {verb}"
    if refused:
        text += f"; {refused} refused (already moved or gone)"
    return text + "."


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    status_code: int = 200,
) -> HTMLResponse:
    """Render a page, with the values every page's layout needs."""
    settings: Settings = settings_of(request)
    access: Access = access_of(request)
    # Route lookup walks every route; a listing links 50 jobs, so the
    # job path is built once and the ids appended.
    job_prefix = link(request, "job", job_id="0")[:-1]
    page = environment.get_template(template).render(
        {
            "request": request,
            "title": settings.title,
            "may_act": not access.read_only,
            "user": access.user,
            "csrf_field": csrf.FIELD,
            "csrf_token": csrf.token_of(request),
            "link": lambda name, query=None, **params: link(
                request, name, query, **params
            ),
            "static": lambda path: link(request, "static", path=path),
            "job_href": lambda job_id: f"{job_prefix}{job_id}",
            "states": STATE_ORDER,
            "notice": notice_of(request),
            "here": request.url.path[len(request.scope.get("root_path", "")) :]
            + (f"?{request.url.query}" if request.url.query else ""),
            **context,
        }
    )
    response = HTMLResponse(page, status_code=status_code)
    csrf.issue(request, response)
    return response
