"""Building the dashboard's ASGI application."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from backburner.dashboard import (
    actions,
    details,
    jobs,
    overview,
    progress,
    recurring,
    servers,
)
from backburner.dashboard.auth import Authorize, loopback_only
from backburner.dashboard.calls import ArgumentMask
from backburner.dashboard.guard import Guard
from backburner.dashboard.rendering import render
from backburner.dashboard.settings import ACCESS_KEY, Settings
from backburner.jobs.client import Client
from backburner.storage.base import Storage, StorageError

__all__ = ["create_dashboard"]


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    if ACCESS_KEY not in request.scope or request.url.path.startswith(
        request.scope.get("root_path", "") + "/api/"
    ):
        return PlainTextResponse(error.detail, status_code=error.status_code)
    return render(
        request,
        "error.html",
        {"page": "error", "status": error.status_code, "detail": error.detail},
        status_code=error.status_code,
    )


async def _storage_error(request: Request, error: Exception) -> Response:
    # The storage's message may quote connection details; the page says
    # only what kind of trouble it is.
    detail = f"the job storage failed ({type(error).__name__}); try again"
    return PlainTextResponse(detail, status_code=503)


def create_dashboard(
    storage: Client | Storage | str,
    *,
    authorize: Authorize | None = None,
    read_only: bool = False,
    mask: ArgumentMask | None = None,
    title: str = "backburner",
    page_size: int = 50,
    server_silence: float = 15.0,
    scan_limit: int = 1000,
) -> Starlette:
    """Build the dashboard, an ASGI app to mount at a path of your choice.

    Args:
        storage: a :class:`~backburner.jobs.Client`, a storage, or a
            storage URL. Given a URL, the dashboard opens the storage
            and closes it at lifespan shutdown, which runs only when the
            dashboard is the top-level app; when mounting, pass a client
            or storage your application owns.
        authorize: the authorization hook (see
            :mod:`backburner.dashboard.auth`); default
            :func:`~backburner.dashboard.auth.loopback_only`.
        read_only: hide and refuse every action, for everyone.
        mask: hides personal data in arguments (see
            :mod:`backburner.dashboard.calls`).
        title: the name shown in the header.
        page_size: jobs per listing page (1 to 1000).
        server_silence: seconds without a heartbeat after which the
            server of a processing job is shown as gone.
        scan_limit: jobs a filtered listing looks at per page (see
            :mod:`backburner.dashboard.finding`).

    Raises:
        ValueError: ``page_size``, ``server_silence`` or ``scan_limit``
            is out of range.
        InvalidStorageURLError: ``storage`` is a URL naming no storage.
    """
    if not 1 <= page_size <= 1000:
        raise ValueError("page_size must be between 1 and 1000")
    if not server_silence > 0:
        raise ValueError("server_silence must be a positive number")
    if scan_limit < page_size:
        raise ValueError("scan_limit must be at least page_size")
    client = storage if isinstance(storage, Client) else Client(storage)
    owned = isinstance(storage, str)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if owned:
            await client.close()

    routes = [
        *overview.routes,
        *jobs.routes,
        *details.routes,
        *progress.routes,
        *actions.routes,
        *recurring.routes,
        *servers.routes,
        Mount(
            "/static",
            StaticFiles(packages=[("backburner.dashboard", "static")]),
            name="static",
        ),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(
                Guard,
                authorize=authorize or loopback_only,
                read_only=read_only,
            )
        ],
        exception_handlers={
            HTTPException: _http_error,
            StorageError: _storage_error,
        },
        lifespan=lifespan,
    )
    app.state.backburner_dashboard = Settings(
        client=client,
        authorize=authorize or loopback_only,
        read_only=read_only,
        mask=mask,
        title=title,
        page_size=page_size,
        server_silence=server_silence,
        scan_limit=scan_limit,
    )
    return app
