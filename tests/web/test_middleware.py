"""CancellationMiddleware against a scripted server: no sockets."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from backburner.cancellation import (
    CancellationReason,
    CancellationToken,
    OperationCancelled,
)
from backburner.web import (
    SCOPE_KEY,
    CancellationMiddleware,
    CancelledRequest,
    MiddlewareMissingError,
    current_request_token,
    keep_running,
    request_cancellation_state,
    request_cancellation_token,
    shielded,
)

from .scripted import Message, ScriptedServer, http_scope
from .task_names import WATCHER, tasks_created

pytestmark = pytest.mark.timeout(10)

Scope = dict[str, Any]


async def respond(send: Any, body: bytes = b"ok") -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


class BlockingApp:
    """Reads the body, then blocks in an await until told otherwise."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.cancelled_with: BaseException | None = None
        self.finished = False
        self.token: CancellationToken | None = None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        self.token = request_cancellation_token(scope)
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError as exc:
            self.cancelled_with = exc
            raise
        self.finished = True
        await respond(send)


async def run_until_started(
    middleware: CancellationMiddleware,
    app: BlockingApp,
    server: ScriptedServer,
    scope: Scope | None = None,
) -> asyncio.Task[None]:
    task = asyncio.create_task(
        middleware(scope or http_scope(), server.receive, server.send)
    )
    await app.started.wait()
    return task


async def test_a_disconnect_cancels_the_handler_blocked_in_await() -> None:
    app = BlockingApp()
    seen: list[CancelledRequest] = []
    middleware = CancellationMiddleware(app, on_request_cancelled=seen.append)
    server = ScriptedServer()
    task = await run_until_started(middleware, app, server)

    server.disconnect()
    await task

    assert isinstance(app.cancelled_with, asyncio.CancelledError)
    assert app.token is not None
    assert app.token.reason == CancellationReason.CLIENT_DISCONNECTED
    assert not app.finished
    assert server.sent == []
    [info] = seen
    assert info.status == 499
    assert info.interrupted
    assert info.reason == "client disconnected"
    assert (info.method, info.path) == ("GET", "/")
    assert not info.response_started


async def test_the_cancelled_request_is_logged_once_with_its_event_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = BlockingApp()
    middleware = CancellationMiddleware(app, log_level=logging.INFO)
    server = ScriptedServer()
    caplog.set_level(logging.INFO, logger="backburner.web")
    task = await run_until_started(
        middleware, app, server, http_scope("POST", "/orders")
    )

    server.disconnect()
    await task

    records = [r for r in caplog.records if r.name == "backburner.web"]
    [record] = records
    assert record.levelno == logging.INFO
    assert record.__dict__["event"] == "request.cancelled"
    assert record.__dict__["status"] == 499
    assert record.__dict__["method"] == "POST"
    assert record.__dict__["path"] == "/orders"
    assert record.__dict__["duration_ms"] >= 0
    assert record.exc_info is None


async def test_the_log_line_stays_at_debug_by_default(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = BlockingApp()
    middleware = CancellationMiddleware(app)
    server = ScriptedServer()
    caplog.set_level(logging.DEBUG, logger="backburner.web")
    task = await run_until_started(middleware, app, server)

    server.disconnect()
    await task

    [record] = [r for r in caplog.records if r.name == "backburner.web"]
    assert record.levelno == logging.DEBUG


async def test_the_token_is_in_the_scope_and_in_scope_state() -> None:
    seen: dict[str, Any] = {}

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        seen["state"] = request_cancellation_state(scope)
        seen["state_token"] = scope["state"]["cancellation_token"]
        seen["current"] = current_request_token()
        await respond(send)

    server = ScriptedServer()
    outer_scope = http_scope()
    await CancellationMiddleware(app)(outer_scope, server.receive, server.send)

    token = seen["state"].token
    assert seen["state_token"] is token
    assert seen["current"] is token
    assert token.can_be_cancelled
    assert not token.is_cancellation_requested
    assert SCOPE_KEY not in outer_scope
    assert "cancellation_token" not in outer_scope["state"]


async def test_a_disconnect_after_the_final_body_does_not_fire() -> None:
    after_response = asyncio.Event()
    tokens: list[CancellationToken] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        tokens.append(request_cancellation_token(scope))
        await respond(send)
        # Like a background task: still running after the response, and
        # the server already answered the next receive with a disconnect.
        message = await receive()
        assert message["type"] == "http.request"
        message = await receive()
        assert message["type"] == "http.disconnect"
        await asyncio.sleep(0)
        after_response.set()

    server = ScriptedServer()
    seen: list[CancelledRequest] = []
    await CancellationMiddleware(app, on_request_cancelled=seen.append)(
        http_scope(), server.receive, server.send
    )

    assert after_response.is_set()
    assert not tokens[0].is_cancellation_requested
    assert seen == []
    assert server.status == 200


async def test_every_receive_message_reaches_the_app_untouched_in_order() -> (
    None
):
    messages: list[Message] = [
        {"type": "http.request", "body": b"one", "more_body": True},
        {"type": "http.request", "body": b"two", "more_body": True},
        {"type": "http.request", "body": b"", "more_body": True},
        {"type": "http.request", "body": b"three", "more_body": False},
    ]
    received: list[Message] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            received.append(message)
            if not message.get("more_body"):
                break
        await respond(send)

    server = ScriptedServer(*messages)
    await CancellationMiddleware(app, max_body_buffer=4)(
        http_scope("POST"), server.receive, server.send
    )

    assert len(received) == len(messages)
    assert all(a is b for a, b in zip(received, messages, strict=True))


async def test_the_watcher_reads_no_further_ahead_than_the_buffer() -> None:
    chunk = b"x" * 10
    messages = [
        {"type": "http.request", "body": chunk, "more_body": True}
        for _ in range(5)
    ]
    server = ScriptedServer(*messages)
    app_may_read = asyncio.Event()
    calls_before_reading: list[int] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        # Let the watcher run as far as it is allowed to.
        for _ in range(10):
            await asyncio.sleep(0)
        calls_before_reading.append(server.receive_calls)
        app_may_read.set()
        for _ in range(5):
            await receive()
        await respond(send)

    server.inbox.put_nowait({"type": "http.request", "body": b""})
    await CancellationMiddleware(app, max_body_buffer=20)(
        http_scope("POST"), server.receive, server.send
    )

    # Two chunks fill the 20-byte buffer; the watcher waits there.
    assert calls_before_reading == [2]
    assert server.status == 200


async def test_receive_after_a_disconnect_keeps_answering_disconnect() -> None:
    answers: list[str] = []

    @keep_running
    async def endpoint() -> None:  # pragma: no cover - marker carrier
        pass

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        scope["endpoint"] = endpoint
        for _ in range(3):
            answers.append((await receive())["type"])

    server = ScriptedServer()
    server.disconnect()
    await CancellationMiddleware(app)(
        http_scope(), server.receive, server.send
    )

    assert answers == ["http.request", "http.disconnect", "http.disconnect"]


async def test_lifespan_passes_through_with_the_servers_callables() -> None:
    seen: list[Any] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        seen.extend([scope, receive, send])

    async def receive() -> Message:
        raise AssertionError("not called")

    async def send(message: Message) -> None:
        raise AssertionError("not called")

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    await CancellationMiddleware(app)(scope, receive, send)

    assert seen == [scope, receive, send]
    assert seen[0] is scope


async def test_a_keep_running_endpoint_finishes_while_its_token_fires() -> (
    None
):
    app = BlockingApp()

    @keep_running
    async def endpoint() -> None:  # pragma: no cover - marker carrier
        pass

    async def routed(scope: Scope, receive: Any, send: Any) -> None:
        scope["endpoint"] = endpoint
        await app(scope, receive, send)

    seen: list[CancelledRequest] = []
    middleware = CancellationMiddleware(
        routed, on_request_cancelled=seen.append
    )
    server = ScriptedServer()
    task = await run_until_started(middleware, app, server)

    server.disconnect()
    assert app.token is not None
    await app.token.wait()
    app.release.set()
    await task

    assert app.finished
    assert app.cancelled_with is None
    assert server.sent == []
    [info] = seen
    assert not info.interrupted
    assert info.status == 499


async def test_keep_running_at_runtime_and_the_middleware_option_opt_out() -> (
    None
):
    for option in ("runtime", "middleware"):
        app = BlockingApp()

        async def routed(
            scope: Scope, receive: Any, send: Any, app: BlockingApp = app
        ) -> None:
            request_cancellation_state(scope).keep_running()
            await app(scope, receive, send)

        middleware = (
            CancellationMiddleware(routed)
            if option == "runtime"
            else CancellationMiddleware(app, cancel_handler=False)
        )
        server = ScriptedServer()
        task = await run_until_started(middleware, app, server)

        server.disconnect()
        assert app.token is not None
        await app.token.wait()
        app.release.set()
        await task

        assert app.finished, option
        assert app.cancelled_with is None, option


async def test_a_shielded_block_finishes_and_the_cancellation_follows() -> (
    None
):
    in_block = asyncio.Event()
    commit = asyncio.Event()
    steps: list[str] = []
    failures: list[BaseException] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        token = request_cancellation_token(scope)
        try:
            async with shielded():
                in_block.set()
                await commit.wait()
                steps.append(f"committed, token fired: {bool(token.reason)}")
        except OperationCancelled as exc:
            failures.append(exc)
            raise
        steps.append("after the block")  # pragma: no cover - must not run

    server = ScriptedServer()
    seen: list[CancelledRequest] = []
    task = asyncio.create_task(
        CancellationMiddleware(app, on_request_cancelled=seen.append)(
            http_scope(), server.receive, server.send
        )
    )
    await in_block.wait()
    server.disconnect()
    for _ in range(5):
        await asyncio.sleep(0)
    commit.set()
    await task

    assert steps == ["committed, token fired: True"]
    [failure] = failures
    assert isinstance(failure, OperationCancelled)
    assert failure.reason == CancellationReason.CLIENT_DISCONNECTED
    assert seen[0].interrupted


async def test_a_failing_shielded_block_interrupts_at_the_next_await() -> None:
    in_block = asyncio.Event()
    commit = asyncio.Event()
    outcome: list[str] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        try:
            async with shielded():
                in_block.set()
                await commit.wait()
                raise ValueError("write refused")
        except ValueError:
            outcome.append("handled")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            outcome.append("interrupted")
            raise

    server = ScriptedServer()
    task = asyncio.create_task(
        CancellationMiddleware(app)(http_scope(), server.receive, server.send)
    )
    await in_block.wait()
    server.disconnect()
    for _ in range(5):
        await asyncio.sleep(0)
    commit.set()
    await task

    assert outcome == ["handled", "interrupted"]


async def test_shielded_does_nothing_outside_a_request() -> None:
    async with shielded():
        done = True
    assert done


async def test_without_middleware_the_lookup_says_what_is_missing() -> None:
    with pytest.raises(MiddlewareMissingError, match="CancellationMiddleware"):
        request_cancellation_token(http_scope())
    assert current_request_token() is CancellationToken.NONE


async def test_an_outside_cancellation_is_not_taken_for_a_disconnect() -> None:
    app = BlockingApp()
    middleware = CancellationMiddleware(app)
    server = ScriptedServer()
    task = await run_until_started(middleware, app, server)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert app.token is not None
    assert not app.token.is_cancellation_requested


async def test_an_outside_cancel_after_a_disconnect_still_propagates() -> None:
    app = BlockingApp()
    middleware = CancellationMiddleware(app)
    server = ScriptedServer()
    task = await run_until_started(middleware, app, server)

    server.disconnect()
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_app_error_with_the_client_connected_propagates() -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        raise ValueError("bug")

    server = ScriptedServer()
    with pytest.raises(ValueError, match="bug"):
        await CancellationMiddleware(app)(
            http_scope(), server.receive, server.send
        )


async def test_an_app_error_after_the_client_left_is_not_reraised() -> None:
    app = BlockingApp()

    async def failing(scope: Scope, receive: Any, send: Any) -> None:
        try:
            await app(scope, receive, send)
        except asyncio.CancelledError:
            raise RuntimeError("driver wrapped the cancellation") from None

    seen: list[CancelledRequest] = []
    middleware = CancellationMiddleware(
        failing, on_request_cancelled=seen.append
    )
    server = ScriptedServer()
    task = await run_until_started(middleware, app, server)

    server.disconnect()
    await task

    assert len(seen) == 1


async def test_sends_after_a_premature_disconnect_are_dropped() -> None:
    app = BlockingApp()
    middleware = CancellationMiddleware(app, cancel_handler=False)
    server = ScriptedServer()
    task = await run_until_started(middleware, app, server)

    server.disconnect()
    assert app.token is not None
    await app.token.wait()
    app.release.set()
    await task

    assert app.finished
    assert server.sent == []


async def test_a_server_receive_error_reaches_the_app() -> None:
    async def receive() -> Message:
        raise OSError("socket gone")

    errors: list[BaseException] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        try:
            await receive()
        except OSError as exc:
            errors.append(exc)
        await respond(send)

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await CancellationMiddleware(app)(http_scope(), receive, send)

    assert [str(e) for e in errors] == ["socket gone"]
    assert len(sent) == 2


def test_a_non_positive_buffer_is_refused() -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        raise AssertionError("not called")  # pragma: no cover

    with pytest.raises(ValueError, match="max_body_buffer"):
        CancellationMiddleware(app, max_body_buffer=0)


async def test_no_task_outlives_the_request() -> None:
    before = asyncio.all_tasks()
    for _ in range(20):
        app = BlockingApp()
        server = ScriptedServer()
        task = await run_until_started(
            CancellationMiddleware(app), app, server
        )
        server.disconnect()
        await task
    for _ in range(3):
        await asyncio.sleep(0)
    assert asyncio.all_tasks() == before


# -- who reads receive: the app itself, or a watcher task ---------------


class WatchedServer(ScriptedServer):
    """A scripted server that says when a receive call waits for input."""

    def __init__(self, *messages: Message) -> None:
        super().__init__(*messages)
        self.waiting = asyncio.Event()

    async def receive(self) -> Message:
        if self.inbox.empty():
            self.waiting.set()
        return await super().receive()


async def test_a_request_that_never_suspends_gets_no_watcher_task() -> None:
    received: list[Message] = []

    async def reads(scope: Scope, receive: Any, send: Any) -> None:
        received.append(await receive())
        await respond(send)

    async def ignores_the_body(scope: Scope, receive: Any, send: Any) -> None:
        await respond(send)

    request: Message = {"type": "http.request", "body": b""}
    for app in (reads, ignores_the_body):
        server = ScriptedServer(request)
        with tasks_created() as names:
            await CancellationMiddleware(app)(
                http_scope(), server.receive, server.send
            )
            for _ in range(3):
                await asyncio.sleep(0)

        assert names == [], app.__name__
        assert server.status == 200
    assert len(received) == 1
    assert received[0] is request


async def test_a_disconnect_while_the_app_waits_in_receive_interrupts_it() -> (
    None
):
    outcome: list[str] = []
    seen: list[CancelledRequest] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        try:
            await receive()
        except asyncio.CancelledError:
            outcome.append("cancelled in receive")
            raise
        outcome.append("went on")  # pragma: no cover - must not run

    server = WatchedServer()
    with tasks_created() as names:
        task = asyncio.create_task(
            CancellationMiddleware(app, on_request_cancelled=seen.append)(
                http_scope(), server.receive, server.send
            )
        )
        await server.waiting.wait()
        server.disconnect()
        await task

    assert outcome == ["cancelled in receive"]
    assert WATCHER not in names
    [info] = seen
    assert info.interrupted
    assert info.reason == CancellationReason.CLIENT_DISCONNECTED


async def test_a_disconnect_in_receive_is_handed_over_when_opted_out() -> None:
    answers: list[str] = []
    tokens: list[CancellationToken] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        tokens.append(request_cancellation_token(scope))
        answers.append((await receive())["type"])
        answers.append((await receive())["type"])
        answers.append((await receive())["type"])

    server = WatchedServer()
    task = asyncio.create_task(
        CancellationMiddleware(app, cancel_handler=False)(
            http_scope(), server.receive, server.send
        )
    )
    await server.waiting.wait()
    server.disconnect()
    await task

    assert answers == ["http.request", "http.disconnect", "http.disconnect"]
    assert tokens[0].reason == CancellationReason.CLIENT_DISCONNECTED
    assert server.receive_calls == 2


async def test_a_disconnect_before_the_app_reads_interrupts_it() -> None:
    waiting = asyncio.Event()
    outcome: list[str] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        waiting.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            outcome.append("cancelled before reading")
            raise

    server = ScriptedServer()
    seen: list[CancelledRequest] = []
    with tasks_created() as names:
        task = asyncio.create_task(
            CancellationMiddleware(app, on_request_cancelled=seen.append)(
                http_scope(), server.receive, server.send
            )
        )
        await waiting.wait()
        server.disconnect()
        await task

    assert outcome == ["cancelled before reading"]
    assert names.count(WATCHER) == 1
    assert seen[0].interrupted


async def test_messages_the_watcher_read_ahead_are_replayed_in_order() -> None:
    request: Message = {"type": "http.request", "body": b"x"}
    received: list[Message] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        # Busy before reading: the watcher reads on, to the disconnect.
        await request_cancellation_token(scope).wait()
        for _ in range(3):
            received.append(await receive())

    server = ScriptedServer(request)
    server.disconnect()
    await CancellationMiddleware(app, cancel_handler=False)(
        http_scope("POST"), server.receive, server.send
    )

    assert received[0] is request
    assert [m["type"] for m in received[1:]] == ["http.disconnect"] * 2
    assert server.receive_calls == 2


async def test_a_body_read_with_pauses_is_replayed_untouched() -> None:
    messages: list[Message] = [
        {"type": "http.request", "body": b"one", "more_body": True},
        {"type": "http.request", "body": b"two", "more_body": True},
        {"type": "http.request", "body": b"", "more_body": True},
        {"type": "http.request", "body": b"three", "more_body": True},
        {"type": "http.request", "body": b"four", "more_body": False},
    ]
    received: list[Message] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            received.append(message)
            # Work between chunks: the watcher takes over the reading
            # after the first one.
            await asyncio.sleep(0)
            if not message.get("more_body"):
                break
        await respond(send)

    server = ScriptedServer(*messages)
    with tasks_created() as names:
        await CancellationMiddleware(app, max_body_buffer=4)(
            http_scope("POST"), server.receive, server.send
        )

    assert all(a is b for a, b in zip(received, messages, strict=True))
    assert len(received) == len(messages)
    assert names.count(WATCHER) == 1
    assert server.status == 200


async def test_leaving_in_the_middle_of_a_body_read_with_pauses() -> None:
    first: Message = {"type": "http.request", "body": b"a", "more_body": True}
    paused = asyncio.Event()
    outcome: list[str] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        paused.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            outcome.append("cancelled between chunks")
            raise

    server = ScriptedServer(first)
    seen: list[CancelledRequest] = []
    task = asyncio.create_task(
        CancellationMiddleware(app, on_request_cancelled=seen.append)(
            http_scope("POST"), server.receive, server.send
        )
    )
    await paused.wait()
    server.disconnect()
    await task

    assert outcome == ["cancelled between chunks"]
    assert seen[0].interrupted


async def test_concurrent_receive_calls_get_one_message_each() -> None:
    messages: list[Message] = [
        {"type": "http.request", "body": b"one", "more_body": True},
        {"type": "http.request", "body": b"two", "more_body": False},
    ]
    received: list[Message] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        async def read() -> None:
            received.append(await receive())

        async with asyncio.TaskGroup() as group:
            group.create_task(read())
            group.create_task(read())
            await server.waiting.wait()
            for message in messages:
                server.inbox.put_nowait(message)
        await respond(send)

    server = WatchedServer()
    server.inbox.get_nowait()
    await CancellationMiddleware(app)(
        http_scope("POST"), server.receive, server.send
    )

    assert received == messages
    assert all(a is b for a, b in zip(received, messages, strict=True))
    assert server.status == 200


async def test_no_watcher_starts_after_the_response_is_complete() -> None:
    done = asyncio.Event()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await respond(send)
        # Like a background task: suspended after the final body.
        await asyncio.sleep(0)
        done.set()

    server = ScriptedServer()
    with tasks_created() as names:
        await CancellationMiddleware(app)(
            http_scope(), server.receive, server.send
        )

    assert done.is_set()
    assert names == []


async def test_a_disconnect_before_the_app_ever_suspends_interrupts_it() -> (
    None
):
    outcome: list[str] = []
    seen: list[CancelledRequest] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        try:
            await receive()
        except asyncio.CancelledError:
            outcome.append("cancelled in its first receive")
            raise

    # The client left before the app started: the server's first answer
    # is the disconnect.
    server = ScriptedServer({"type": "http.disconnect"})
    await CancellationMiddleware(app, on_request_cancelled=seen.append)(
        http_scope(), server.receive, server.send
    )

    assert outcome == ["cancelled in its first receive"]
    [info] = seen
    assert info.interrupted
    assert info.reason == CancellationReason.CLIENT_DISCONNECTED


async def test_an_app_that_swallows_the_interruption_runs_on_unchained() -> (
    None
):
    app = BlockingApp()
    contexts: list[BaseException | None] = []
    steps: list[str] = []

    async def swallowing(scope: Scope, receive: Any, send: Any) -> None:
        try:
            await app(scope, receive, send)
        except asyncio.CancelledError:
            steps.append("swallowed")
        # Raised in the same step the cancellation was thrown into: it
        # must not look as if raised while handling it.
        try:
            raise ValueError("unrelated")
        except ValueError as exc:
            contexts.append(exc.__context__)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        steps.append("ran on")

    server = ScriptedServer()
    task = asyncio.create_task(
        CancellationMiddleware(swallowing)(
            http_scope(), server.receive, server.send
        )
    )
    await app.started.wait()
    server.disconnect()
    await task

    assert steps == ["swallowed", "ran on"]
    assert contexts == [None]
    assert not task.cancelled()
