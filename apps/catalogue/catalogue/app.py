"""The ASGI application: API, pages, dashboard, and the job server.

:func:`create_app` wires everything together:

- ``CancellationMiddleware`` outermost, so that every request has a
  token that fires when its browser leaves; cancelled requests are
  logged at INFO and recorded in :class:`~catalogue.activity.Activity`;
- the JSON API under ``/api``, the HTML pages, the static files;
- the job dashboard at ``/jobs``, for users allowed to manage jobs;
- in development, the Twilio stand-in at ``/dev/twilio`` and an SMTP
  sink on loopback, both writing the outbox;
- the lifespan: both databases migrated, the demo data and admin
  created on first start (development), and the job server running in
  this process unless ``CATALOGUE_RUN_WORKER=0`` (then run
  ``backburner worker --import catalogue.jobs`` beside it).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request

from backburner import CancellationToken
from backburner.dashboard import Access, create_dashboard
from backburner.jobs import Client, Server
from backburner.storage import Storage, open_storage
from backburner.web import (
    CancellationMiddleware,
    CancelledRequest,
    current_request_token,
)
from catalogue import (
    categories,
    confirmation,
    exports,
    identity,
    outbox,
    pages,
    products,
    signup,
)
from catalogue.activity import Activity
from catalogue.errors import install_error_handlers
from catalogue.headers import SecurityHeaders
from catalogue.jobs import CatalogueActivator
from catalogue.seed import seed_demo
from catalogue.services import Services
from catalogue.settings import Settings
from catalogue.standins import SmtpSink, twilio_standin

__all__ = ["create_app"]

_log = logging.getLogger("catalogue")
_STATIC = Path(__file__).resolve().parent / "static"


def create_app(
    settings: Settings | None = None,
    *,
    server_options: Mapping[str, Any] | None = None,
    start_smtp_sink: bool | None = None,
) -> CancellationMiddleware:
    """Build the catalogue app.

    Args:
        settings: the configuration; by default from the environment.
        server_options: extra keywords for the job server
            (``concurrency``, tuning such as ``shutdown_grace``).
        start_smtp_sink: run the local SMTP sink; by default in
            development.

    Raises:
        SettingsError: the environment holds an unusable value.
    """
    settings = settings or Settings.from_environment()
    activity = Activity()
    storage = open_storage(settings.storage_url)
    client = Client(storage)
    api = FastAPI(
        title="catalogue",
        lifespan=_lifespan(
            settings,
            storage,
            dict(server_options or {}),
            settings.development
            if start_smtp_sink is None
            else start_smtp_sink,
        ),
        docs_url="/api/docs" if settings.development else None,
        redoc_url=None,
        openapi_url="/api/openapi.json" if settings.development else None,
    )
    api.state.settings = settings
    api.state.activity = activity
    install_error_handlers(api)
    for module in (
        identity,
        signup,
        confirmation,
        categories,
        products,
        exports,
    ):
        api.include_router(module.router)
    if settings.development:
        api.include_router(outbox.router)

        async def record(*message: str) -> None:
            services: Services = api.state.services
            await outbox.outbox_recorder(services.db)(*message)

        api.mount(
            "/dev/twilio",
            twilio_standin(
                settings.twilio_account_sid,
                settings.twilio_auth_token,
                record,
            ),
        )

    async def authorize(request: Request) -> Access:
        services: Services = api.state.services
        token = current_request_token()
        user = await identity.user_from_request(request, services, token)
        if user is None:
            return Access(user=None, allowed=False)
        return Access(user=f"user {user.id}", allowed=user.can_manage_jobs)

    api.mount(
        "/jobs",
        create_dashboard(client, authorize=authorize, title="catalogue jobs"),
    )
    api.mount("/static", StaticFiles(directory=_STATIC), name="static")
    api.include_router(pages.router)

    def cancelled(info: CancelledRequest) -> None:
        activity.record(
            "request.cancelled",
            method=info.method,
            path=info.path,
            duration=info.duration,
            reason=info.reason,
            interrupted=info.interrupted,
        )

    return CancellationMiddleware(
        SecurityHeaders(api),
        log_level=logging.INFO,
        on_request_cancelled=cancelled,
    )


def _lifespan(
    settings: Settings,
    storage: Storage,
    server_options: dict[str, Any],
    smtp_sink: bool,
) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        services = await Services.open(settings, storage)
        api.state.services = services
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(services.close)
            if smtp_sink:
                sink = SmtpSink(
                    outbox.outbox_recorder(services.db),
                    settings.smtp_host,
                    settings.smtp_port,
                )
                await _start_sink(sink, stack)
            if settings.development:
                await seed_demo(services, CancellationToken.NONE)
            if settings.run_worker:
                server = Server(
                    services.storage,
                    activator=CatalogueActivator(services),
                    **server_options,
                )
                await stack.enter_async_context(server)
                _log.info("job server %s running in-process", server.name)
            yield

    return lifespan


async def _start_sink(
    sink: SmtpSink, stack: contextlib.AsyncExitStack
) -> None:
    try:
        await sink.start()
    except OSError as error:
        # The app is still useful without it; the email jobs will fail
        # and retry, and say why in the dashboard.
        _log.error(
            "SMTP sink cannot listen on %s:%d (%s); set CATALOGUE_SMTP_PORT "
            "to a free port",
            sink.host,
            sink.port,
            error.strerror or error,
        )
        return
    stack.push_async_callback(sink.stop)
    _log.info("SMTP sink listening on %s:%d", sink.host, sink.port)
