"""Fixtures for the web tests: real servers, parametrized."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from .servers import SERVERS, runner

Serve = Callable[
    [Any], contextlib.AbstractAsyncContextManager[tuple[str, int]]
]


@pytest.fixture(params=SERVERS)
def serve(request: pytest.FixtureRequest) -> Serve:
    """``async with serve(app) as (host, port):`` runs a real server."""
    return runner(request.param)  # type: ignore[no-any-return]


@pytest.fixture
def server_name(serve: Serve, request: pytest.FixtureRequest) -> str:
    return str(request.node.callspec.params["serve"])


@pytest.fixture
async def no_server_errors(
    caplog: pytest.LogCaptureFixture,
) -> AsyncIterator[None]:
    """Fail the test if a server logged an error or a traceback."""
    yield
    bad = [
        r
        for r in caplog.records
        if r.levelno >= 40 or (r.exc_info and r.name != "backburner.web")
    ]
    assert bad == [], [r.getMessage() for r in bad]
