"""A FastAPI app whose routes report what happened to them."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.responses import Response

from backburner.cancellation import CancellationToken
from backburner.web import CancellationMiddleware, CancelledRequest
from backburner.web.fastapi import RequestCancellation


class Probe:
    """Events and records shared by the routes and the test."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.finished = asyncio.Event()
        self.cleanup = asyncio.Event()
        self.background_done = asyncio.Event()
        self.first_chunk_sent = asyncio.Event()
        self.tokens: list[CancellationToken] = []
        self.cancelled_requests: list[CancelledRequest] = []
        self.request_ended = asyncio.Event()
        self.thread_saw: list[str] = []
        self.thread_done = threading.Event()
        self.thread_entered = threading.Event()

    def on_cancelled(self, info: CancelledRequest) -> None:
        self.cancelled_requests.append(info)
        self.request_ended.set()

    @property
    def reasons(self) -> list[str | None]:
        return [token.reason for token in self.tokens]


async def _wait_reporting(probe: Probe, token: CancellationToken) -> None:
    probe.tokens.append(token)
    probe.entered.set()
    try:
        await probe.release.wait()
    except asyncio.CancelledError:
        probe.cancelled.set()
        raise
    probe.finished.set()


def build_app(probe: Probe, *, dispatch_stack: bool = False) -> Any:
    app = FastAPI()

    @app.get("/block")
    async def block(token: RequestCancellation) -> dict[str, str]:
        await _wait_reporting(probe, token)
        return {"status": "released"}

    @app.get("/hello")
    async def hello(token: RequestCancellation) -> dict[str, str]:
        probe.tokens.append(token)
        return {"hello": "world"}

    @app.get("/background")
    async def background(token: RequestCancellation) -> Response:
        probe.tokens.append(token)

        async def after_response() -> None:
            await probe.release.wait()
            probe.background_done.set()

        return Response(b"sent", background=BackgroundTask(after_response))

    @app.get("/stream")
    async def stream(
        token: RequestCancellation, chunks: int = 3, wait_first: bool = False
    ) -> StreamingResponse:
        probe.tokens.append(token)

        async def generate() -> AsyncIterator[bytes]:
            try:
                if wait_first:
                    probe.entered.set()
                    await probe.release.wait()
                for number in range(chunks):
                    yield f"chunk {number}\n".encode()
                    probe.first_chunk_sent.set()
                    if number == 0 and not wait_first:
                        probe.entered.set()
                        await probe.release.wait()
                probe.finished.set()
            finally:
                probe.cleanup.set()

        return StreamingResponse(generate(), media_type="text/plain")

    @app.post("/echo")
    async def echo(request: Request, slow: bool = False) -> dict[str, Any]:
        probe.tokens.append(request.state.cancellation_token)
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.stream():
            digest.update(chunk)
            size += len(chunk)
            if slow:
                await asyncio.sleep(0.001)
        return {"size": size, "sha256": digest.hexdigest()}

    @app.get("/sync-wait")
    def sync_wait(token: RequestCancellation) -> dict[str, bool]:
        probe.tokens.append(token)
        probe.thread_entered.set()
        fired = token.wait_blocking(timeout=10)
        probe.thread_saw.append(f"fired={fired}")
        probe.thread_done.set()
        return {"fired": fired}

    @app.get("/sync-poll")
    def sync_poll(token: RequestCancellation) -> dict[str, int]:
        probe.tokens.append(token)
        probe.thread_entered.set()
        steps = 0
        try:
            while steps < 10_000:
                token.raise_if_cancellation_requested()
                threading.Event().wait(0.005)
                steps += 1
        except BaseException as exc:
            probe.thread_saw.append(type(exc).__name__)
            raise
        finally:
            probe.thread_done.set()
        return {"steps": steps}

    inner: Any = app
    if dispatch_stack:

        async def dispatch(
            request: Request,
            call_next: Callable[[Request], Awaitable[Response]],
        ) -> Response:
            return await call_next(request)

        app.add_middleware(BaseHTTPMiddleware, dispatch=dispatch)
        app.add_middleware(GZipMiddleware, minimum_size=10)
        app.add_middleware(CORSMiddleware, allow_origins=["*"])
    return CancellationMiddleware(
        inner, on_request_cancelled=probe.on_cancelled
    )
