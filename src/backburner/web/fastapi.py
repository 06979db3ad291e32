"""FastAPI integration: declare the request's token as a parameter.

::

    from backburner.web.fastapi import RequestCancellation

    @app.get("/search")
    async def search(q: str, token: RequestCancellation) -> list[str]:
        return await catalogue.search(q, token)

Like an ASP.NET action declaring a ``CancellationToken``, the route gets
the token of its request. Without
:class:`~backburner.web.CancellationMiddleware` the dependency raises
:class:`~backburner.web.MiddlewareMissingError` (the request fails with
500): a token that silently never fires would hide the missing
middleware until production traffic shows it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from backburner.cancellation import CancellationToken
from backburner.web.request import (
    request_cancellation_state,
    request_cancellation_token,
)


def get_request_cancellation(request: Request) -> CancellationToken:
    """FastAPI dependency: the request's cancellation token.

    Raises:
        MiddlewareMissingError: no CancellationMiddleware wraps the app.
    """
    return request_cancellation_token(request)


def keep_running_dependency(request: Request) -> None:
    """FastAPI dependency: do not interrupt this route on disconnect.

    The route option equivalent of :func:`~backburner.web.keep_running`:
    ``@app.post("/x", dependencies=[Depends(keep_running_dependency)])``.

    Raises:
        MiddlewareMissingError: no CancellationMiddleware wraps the app.
    """
    request_cancellation_state(request).keep_running()


RequestCancellation = Annotated[
    CancellationToken, Depends(get_request_cancellation)
]
"""A route parameter annotated with this receives the request's token."""

KeepRunning = Depends(keep_running_dependency)
"""``dependencies=[KeepRunning]`` on a route opts it out of interruption."""

__all__ = [
    "KeepRunning",
    "RequestCancellation",
    "get_request_cancellation",
    "keep_running_dependency",
]
