"""The FastAPI dependency hands routes their request's token."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI, Request

from backburner.cancellation import CancellationToken
from backburner.web import (
    CancellationMiddleware,
    MiddlewareMissingError,
    request_cancellation_state,
    request_cancellation_token,
)
from backburner.web.fastapi import KeepRunning, RequestCancellation

pytestmark = pytest.mark.timeout(10)


def build_app() -> tuple[FastAPI, dict[str, object]]:
    app = FastAPI()
    seen: dict[str, object] = {}

    @app.get("/token")
    async def token_route(
        request: Request, token: RequestCancellation
    ) -> dict[str, bool]:
        seen["token"] = token
        seen["from_request"] = request_cancellation_token(request)
        seen["from_state"] = request.state.cancellation_token
        return {"can_be_cancelled": token.can_be_cancelled}

    @app.get("/kept", dependencies=[KeepRunning])
    async def kept(request: Request) -> dict[str, bool]:
        state = request_cancellation_state(request)
        return {"keeps_running": state.keeps_running}

    return app, seen


async def test_a_route_declaring_the_token_gets_its_requests_token() -> None:
    app, seen = build_app()
    transport = httpx.ASGITransport(app=CancellationMiddleware(app))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test"
    ) as client:
        response = await client.get("/token")

    assert response.json() == {"can_be_cancelled": True}
    assert isinstance(seen["token"], CancellationToken)
    assert seen["token"] is seen["from_request"] is seen["from_state"]


async def test_the_keep_running_dependency_opts_the_route_out() -> None:
    app, _ = build_app()
    transport = httpx.ASGITransport(app=CancellationMiddleware(app))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test"
    ) as client:
        response = await client.get("/kept")

    assert response.json() == {"keeps_running": True}


async def test_without_the_middleware_the_dependency_fails_clearly() -> None:
    app, _ = build_app()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test"
    ) as client:
        with pytest.raises(MiddlewareMissingError, match="outermost"):
            await client.get("/token")
