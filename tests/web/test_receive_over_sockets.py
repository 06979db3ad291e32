"""Who reads ``receive``, behind real servers (uvicorn, hypercorn).

The middleware lets the app read the server's ``receive`` itself until
the app suspends elsewhere; these tests close the socket while the app
waits in its own read of the body, and while it works between reads.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backburner.cancellation import CancellationReason, CancellationToken
from backburner.web import (
    CancellationMiddleware,
    CancelledRequest,
    request_cancellation_token,
)

from .conftest import Serve
from .task_names import WATCHER, tasks_created

pytestmark = [
    pytest.mark.timeout(20),
    pytest.mark.usefixtures("no_server_errors"),
]

WAIT = 5.0


class Upload:
    """What the upload route saw."""

    def __init__(self) -> None:
        self.first_chunk = asyncio.Event()
        self.ended = asyncio.Event()
        self.outcome: list[str] = []
        self.tokens: list[CancellationToken] = []
        self.cancelled: list[CancelledRequest] = []

    def on_cancelled(self, info: CancelledRequest) -> None:
        self.cancelled.append(info)
        self.ended.set()


def upload_app(upload: Upload, *, pause: bool) -> Any:
    async def receive_upload(request: Request) -> Response:
        upload.tokens.append(request_cancellation_token(request))
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                upload.first_chunk.set()
                if pause:
                    # Work between chunks: the watcher reads meanwhile.
                    await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            upload.outcome.append("cancelled")
            raise
        upload.outcome.append(f"read {size}")
        return Response(str(size))

    app = Starlette(
        routes=[Route("/upload", receive_upload, methods=["POST"])]
    )
    return CancellationMiddleware(
        app, on_request_cancelled=upload.on_cancelled
    )


def partial_post(length: int, sent: bytes) -> bytes:
    head = (
        "POST /upload HTTP/1.1\r\nhost: test\r\n"
        f"content-length: {length}\r\n\r\n"
    )
    return head.encode() + sent


@pytest.mark.parametrize("pause", [False, True], ids=["reading", "pausing"])
async def test_leaving_in_the_middle_of_an_upload_interrupts_the_reader(
    serve: Serve, pause: bool
) -> None:
    upload = Upload()
    with tasks_created() as names:
        async with serve(upload_app(upload, pause=pause)) as (host, port):
            _, writer = await asyncio.open_connection(host, port)
            writer.write(partial_post(1_000_000, b"x" * 1000))
            await writer.drain()
            await asyncio.wait_for(upload.first_chunk.wait(), WAIT)

            writer.close()
            await writer.wait_closed()
            await asyncio.wait_for(upload.ended.wait(), WAIT)

    # Reading without pause, the app itself reads the disconnect; with
    # pauses, a watcher takes over the reading at the first one.
    assert names.count(WATCHER) == (1 if pause else 0)
    assert upload.outcome == ["cancelled"]
    assert upload.tokens[0].reason == CancellationReason.CLIENT_DISCONNECTED
    [info] = upload.cancelled
    assert info.interrupted
    assert info.status == 499


async def test_a_whole_upload_read_with_pauses_is_not_cancelled(
    serve: Serve,
) -> None:
    upload = Upload()
    body = b"y" * 300_000
    async with serve(upload_app(upload, pause=True)) as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(partial_post(len(body), body))
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
        answer = await asyncio.wait_for(reader.readexactly(6), WAIT)
        writer.close()
        await writer.wait_closed()

    assert head.startswith(b"HTTP/1.1 200")
    assert answer == b"300000"
    assert upload.outcome == ["read 300000"]
    assert upload.tokens[0].reason is None
    assert upload.cancelled == []


async def test_is_disconnected_polls_then_the_handler_is_interrupted(
    serve: Serve,
) -> None:
    answers: list[bool] = []
    entered = asyncio.Event()
    ended = asyncio.Event()
    outcome: list[str] = []

    async def check(request: Request) -> Response:
        # Starlette's own check reads receive under a cancelled scope:
        # the middleware must hand the read over and go on watching.
        answers.append(await request.is_disconnected())
        answers.append(await request.is_disconnected())
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise
        return Response("never")  # pragma: no cover - cancelled above

    app = CancellationMiddleware(
        Starlette(routes=[Route("/check", check)]),
        on_request_cancelled=lambda info: ended.set(),
    )
    async with serve(app) as (host, port):
        _, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET /check HTTP/1.1\r\nhost: test\r\n\r\n")
        await writer.drain()
        await asyncio.wait_for(entered.wait(), WAIT)

        writer.close()
        await writer.wait_closed()
        await asyncio.wait_for(ended.wait(), WAIT)

    assert answers == [False, False]
    assert outcome == ["cancelled"]
