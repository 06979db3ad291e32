"""The servers page: who is running jobs, and whether they still beat."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backburner.dashboard.rendering import render
from backburner.dashboard.settings import settings_of

__all__ = ["routes"]


async def servers(request: Request) -> Response:
    """Registered servers with workers, queues and heartbeat age."""
    settings = settings_of(request)
    now = datetime.now(UTC)
    rows = [
        (
            server,
            (now - server.heartbeat_at).total_seconds()
            > settings.server_silence,
        )
        for server in await settings.client.servers()
    ]
    return render(request, "servers.html", {"page": "servers", "rows": rows})


routes = [Route("/servers", servers, name="servers")]
