"""A request cancelled while the pool sets up its new connection.

SQLAlchemy runs an engine's ``connect`` listeners (PRAGMAs, SQL
functions) inside the checkout of the request that needed a fresh
connection. When the request is interrupted there, SQLAlchemy closes
the half-made connection in a shielded task of its own; a second
cancellation of the request at that moment makes it give up on that
close and stop the driver instead, and with aiosqlite the abandoned
close then waits forever. Nothing of the request may outlive it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)

from backburner.cancellation import (
    CancellationReason,
    CancellationTokenSource,
    OperationCancelled,
)
from backburner.web import CancellationMiddleware
from backburner.web.sqlalchemy import cancellable_session

from .scripted import ScriptedServer, http_scope

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.usefixtures("no_server_errors"),
]

WAIT = 10.0


class SlowSetup:
    """A ``connect`` listener that holds the connection until released."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.started = asyncio.Event()
        self.release = threading.Event()

    def hold(self) -> int:
        # Runs in aiosqlite's thread, inside the listener's statement.
        self.loop.call_soon_threadsafe(self.started.set)
        self.release.wait(WAIT)
        return 1

    def on_connect(self, dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.create_function("hold", 0, self.hold)
        # No try/finally: a cursor close on the way out would queue behind
        # the held statement and keep the interrupted checkout waiting.
        cursor = dbapi_connection.cursor()
        cursor.execute("SELECT hold()")
        cursor.close()


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    made = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'db'}")
    try:
        yield made
    finally:
        await made.dispose()


def closes_left_behind() -> list[str]:
    """Tasks still closing a driver connection."""
    return [
        repr(task)
        for task in asyncio.all_tasks()
        if "_terminate_graceful_close" in repr(task.get_coro())
    ]


async def closes_finished() -> None:
    """Wait, within a bound, for the connection closes to end.

    A close that will finish does so as soon as the statement ahead of
    it in aiosqlite's queue has; an abandoned one never does.
    """
    for _ in range(200):
        if not closes_left_behind():
            return
        await asyncio.sleep(0.01)


async def test_a_request_cancelled_during_connection_setup_leaves_no_close(
    engine: AsyncEngine,
) -> None:
    setup = SlowSetup()
    event.listen(engine.sync_engine, "connect", setup.on_connect)
    sessions = async_sessionmaker(engine)
    outcomes: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            async with cancellable_session(sessions) as session:
                await session.execute(text("SELECT 1"))
        except BaseException as exc:
            outcomes.append(type(exc).__name__)
            raise

    server = ScriptedServer()
    running = asyncio.create_task(
        CancellationMiddleware(app)(http_scope(), server.receive, server.send)
    )
    await asyncio.wait_for(setup.started.wait(), WAIT)
    server.disconnect()
    # Every interruption of the request lands while the listener's
    # statement still runs: the close SQLAlchemy starts queues behind it.
    for _ in range(20):
        await asyncio.sleep(0)
    setup.release.set()
    await asyncio.wait_for(running, WAIT)

    await closes_finished()

    assert outcomes == ["OperationCancelled"]
    assert closes_left_behind() == []
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_token_firing_after_another_cancellation_leaves_no_close(
    engine: AsyncEngine,
) -> None:
    setup = SlowSetup()
    event.listen(engine.sync_engine, "connect", setup.on_connect)
    sessions = async_sessionmaker(engine)
    source = CancellationTokenSource()

    async def work() -> None:
        async with cancellable_session(sessions, source.token) as session:
            await session.execute(text("SELECT 1"))

    task = asyncio.create_task(work())
    await asyncio.wait_for(setup.started.wait(), WAIT)
    # The first interruption: SQLAlchemy gives the half-made connection
    # up and starts closing it, behind the listener's statement.
    task.cancel()
    for _ in range(int(WAIT * 1000)):
        if closes_left_behind():
            break
        await asyncio.sleep(0.001)
    assert closes_left_behind(), (
        "the interrupted checkout closes its connection"
    )
    # The token fires while that close waits.
    source.cancel(CancellationReason.CLIENT_DISCONNECTED)
    for _ in range(20):
        await asyncio.sleep(0)
    setup.release.set()

    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, WAIT)
    await closes_finished()
    assert closes_left_behind() == []
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_held_interruption_lands_once_the_other_is_absorbed(
    engine: AsyncEngine,
) -> None:
    source = CancellationTokenSource()
    reached: list[str] = []

    async def work() -> None:
        task = asyncio.current_task()
        assert task is not None
        async with cancellable_session(engine, source.token):
            task.cancel()  # another cancellation, in flight
            source.cancel(CancellationReason.TIMEOUT)
            try:
                await asyncio.sleep(WAIT)
            except asyncio.CancelledError:
                task.uncancel()  # absorbed, like asyncio.timeout does
                reached.append("absorbed")
            await asyncio.sleep(WAIT)
            reached.append("not interrupted")

    with pytest.raises(OperationCancelled) as raised:
        await asyncio.wait_for(work(), WAIT / 2)
    assert reached == ["absorbed"]
    assert raised.value.reason == CancellationReason.TIMEOUT
