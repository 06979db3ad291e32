"""The demo application: slow routes, a live log, and a page to drive them.

Routes:

- ``GET /``: the page (HTML, script and style served from ``static/``).
- ``GET /api/report``: a slow report that takes the request's token. It
  awaits in steps, then runs a SQLite query in a worker thread; a client
  that leaves interrupts whichever is running.
- ``GET /api/export``: marked :func:`~backburner.web.keep_running`: a
  client that leaves fires the token, but the export runs to its end.
- ``GET /api/events``: the live log, as a long poll.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query
from fastapi.responses import Response

from backburner.cancellation import OperationCancelled
from backburner.demo.database import run_busy_query
from backburner.demo.events import EventLog
from backburner.web import (
    CancellationMiddleware,
    CancelledRequest,
    keep_running,
)
from backburner.web._asgi import ASGIApp
from backburner.web.fastapi import RequestCancellation

# The page loads nothing from elsewhere and runs no inline script.
_SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}

_STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/demo.js": ("demo.js", "text/javascript; charset=utf-8"),
    "/demo.css": ("demo.css", "text/css; charset=utf-8"),
}

_LONG_POLL_SECONDS = 25.0

Steps = Annotated[int, Query(ge=0, le=100)]
Milliseconds = Annotated[int, Query(ge=0, le=600_000)]


def build_app(
    events: EventLog | None = None, database: Path | None = None
) -> ASGIApp:
    """The demo app, wrapped in :class:`CancellationMiddleware`.

    Args:
        events: the live log to record into (a fresh one by default).
        database: the SQLite file the report queries (a file in a new
            temporary directory by default).
    """
    log = EventLog() if events is None else events
    if database is None:
        database = Path(tempfile.mkdtemp(prefix="backburner-demo-"))
        database = database / "demo.db"
    app = FastAPI(title="backburner demo", docs_url=None, redoc_url=None)
    _add_page(app)
    _add_report(app, log, database)
    _add_export(app, log)
    _add_events(app, log)

    def on_cancelled(info: CancelledRequest) -> None:
        if info.path.startswith("/api/events"):
            return  # a closed page ending its long poll: not news
        how = "interrupted" if info.interrupted else "ran to its end"
        log.record(
            None,
            info.path,
            str(info.status),
            f"{info.method} {info.path}: client closed request after "
            f"{info.duration * 1000:.0f} ms; handler {how}",
        )

    return CancellationMiddleware(
        app, log_level=logging.INFO, on_request_cancelled=on_cancelled
    )


def _add_page(app: FastAPI) -> None:
    files = resources.files("backburner.demo") / "static"
    for path, (name, media_type) in _STATIC.items():
        content = (files / name).read_bytes()

        async def serve(
            content: bytes = content, media_type: str = media_type
        ) -> Response:
            return Response(
                content, media_type=media_type, headers=_SECURITY_HEADERS
            )

        app.add_api_route(
            path, serve, methods=["GET"], include_in_schema=False
        )


def _add_report(app: FastAPI, log: EventLog, database: Path) -> None:
    route = "/api/report"

    @app.get(route)
    async def report(
        token: RequestCancellation,
        steps: Steps = 5,
        step_ms: Milliseconds = 800,
        query_ms: Milliseconds = 2000,
    ) -> dict[str, Any]:
        request = log.next_request()
        started = time.monotonic()
        log.record(
            request,
            route,
            "started",
            f"{steps} steps of {step_ms} ms, then a {query_ms} ms "
            "SQLite query",
        )

        def querying() -> None:
            log.record(
                request,
                route,
                "progress",
                "SQLite query running",
                started=started,
            )

        def interrupted() -> None:
            log.record(
                request,
                route,
                "interrupted",
                "SQLite statement interrupted in its worker thread",
                started=started,
            )

        try:
            for step in range(1, steps + 1):
                await asyncio.sleep(step_ms / 1000)
                log.record(
                    request,
                    route,
                    "progress",
                    f"step {step}/{steps}",
                    started=started,
                )
            rows = await asyncio.to_thread(
                run_busy_query,
                database,
                query_ms / 1000,
                token,
                on_started=querying,
                on_interrupted=interrupted,
            )
        except (asyncio.CancelledError, OperationCancelled):
            # Recorded, then passed on: the middleware expects it.
            reason = token.reason or "task cancelled"
            log.record(request, route, "cancelled", reason, started=started)
            raise
        event = log.record(
            request, route, "completed", f"{rows} rows", started=started
        )
        return {"request": request, "rows": rows, "ms": event.elapsed_ms}


def _add_export(app: FastAPI, log: EventLog) -> None:
    route = "/api/export"

    @app.get(route)
    @keep_running
    async def export(
        token: RequestCancellation,
        steps: Steps = 5,
        step_ms: Milliseconds = 800,
    ) -> dict[str, Any]:
        request = log.next_request()
        started = time.monotonic()
        log.record(request, route, "started", f"{steps} steps of {step_ms} ms")

        def client_left() -> None:
            log.record(
                request,
                route,
                "client left",
                f"token fired ({token.reason}); export keeps running",
                started=started,
            )

        with token.register(client_left):
            for step in range(1, steps + 1):
                await asyncio.sleep(step_ms / 1000)
                log.record(
                    request,
                    route,
                    "progress",
                    f"step {step}/{steps}",
                    started=started,
                )
        outcome = "nobody to send it to" if token.reason else "sent"
        event = log.record(
            request, route, "completed", outcome, started=started
        )
        return {"request": request, "ms": event.elapsed_ms}


def _add_events(app: FastAPI, log: EventLog) -> None:
    @app.get("/api/events")
    async def events(
        after: Annotated[int, Query(ge=0)] = 0,
        wait: Annotated[float, Query(ge=0, le=_LONG_POLL_SECONDS)] = 0,
    ) -> dict[str, Any]:
        if wait:
            await log.wait_newer(after, wait)
        found = log.since(after)
        return {
            "events": [event.as_json() for event in found],
            "last": log.last_id,
        }
