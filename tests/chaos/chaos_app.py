"""The reference app on a real uvicorn server on 127.0.0.1.

The server runs on a thread of its own with its lifespan on, so that
synchronous clients (Schemathesis, the abuse tests) can call it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from argon2 import PasswordHasher

from catalogue import Settings, create_app, identity

SECRET = "chaos-secret-" + "x" * 32
PASSWORD = "correct horse battery"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def catalogue_server(data_dir: Path) -> Iterator[str]:
    """Run the reference app; yield its base URL."""
    with running_catalogue(data_dir) as running:
        yield running.url


class Running:
    """A running app: its URL, ASGI app, and the server's event loop."""

    def __init__(self, url: str, app: Any) -> None:
        self.url = url
        self.app = app
        self.loop: asyncio.AbstractEventLoop | None = None

    @property
    def api(self) -> Any:
        """The FastAPI object inside the middleware."""
        return self.app.app.app

    def tasks(self) -> int:
        """How many asyncio tasks the server's loop has."""
        return len(self.task_names())

    def task_names(self) -> list[str]:
        """What each asyncio task of the server's loop runs."""
        assert self.loop is not None

        async def names() -> list[str]:
            return [repr(t.get_coro())[:80] for t in asyncio.all_tasks()]

        future = asyncio.run_coroutine_threadsafe(names(), self.loop)
        return future.result(30)


@contextlib.contextmanager
def running_catalogue(data_dir: Path) -> Iterator[Running]:
    """Run the reference app; yield what a test may look at."""
    # Argon2 at its real cost would make every sign-up take a third of
    # a second on this busy machine; the scenarios test behaviour.
    identity._hasher = PasswordHasher(
        time_cost=1, memory_cost=1024, parallelism=1
    )
    settings = Settings(
        data_dir=data_dir,
        secret_key=SECRET,
        run_worker=False,
        twilio_base_url="http://127.0.0.1:9/unused",
        smtp_port=_free_port(),
        export_pace=0,
    )
    app: Any = create_app(settings, start_smtp_sink=False)
    port = _free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    running = Running(f"http://127.0.0.1:{port}", app)

    async def serve() -> None:
        running.loop = asyncio.get_running_loop()
        await server.serve()

    thread = threading.Thread(target=asyncio.run, args=(serve(),))
    thread.daemon = True
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the reference app did not start")
        time.sleep(0.05)
    try:
        yield running
    finally:
        server.should_exit = True
        thread.join(30)
