"""Tokens and sources: cancel once, link, deadlines, callbacks, waits."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from backburner.cancellation import (
    CancellationReason,
    CancellationToken,
    CancellationTokenSource,
    OperationCancelled,
)


def test_a_new_token_is_not_cancelled() -> None:
    source = CancellationTokenSource()

    assert not source.token.is_cancellation_requested
    assert source.token.reason is None
    assert source.token.can_be_cancelled
    source.token.raise_if_cancellation_requested()


def test_cancel_fires_the_token_with_its_reason() -> None:
    source = CancellationTokenSource()

    assert source.cancel(CancellationReason.SHUTDOWN) is True

    assert source.token.is_cancellation_requested
    assert source.token.reason == "shutdown"
    assert source.is_cancellation_requested


def test_cancelling_again_is_a_no_op_and_the_first_reason_wins() -> None:
    source = CancellationTokenSource()
    calls: list[str] = []
    source.token.register(lambda: calls.append("fired"))

    source.cancel("first")
    assert source.cancel("second") is False

    assert source.token.reason == "first"
    assert calls == ["fired"]


def test_raise_if_cancellation_requested_carries_reason_and_token() -> None:
    source = CancellationTokenSource()
    source.cancel(CancellationReason.TIMEOUT)

    with pytest.raises(OperationCancelled) as caught:
        source.token.raise_if_cancellation_requested()

    assert caught.value.reason == "timeout"
    assert caught.value.token is source.token
    assert "timeout" in str(caught.value)


def test_the_cancellation_exception_escapes_except_exception() -> None:
    source = CancellationTokenSource()
    source.cancel()
    swallowed = False

    with pytest.raises(OperationCancelled):
        try:
            source.token.raise_if_cancellation_requested()
        except Exception:
            swallowed = True

    assert not swallowed
    assert not issubclass(OperationCancelled, Exception)


def test_the_none_token_never_fires() -> None:
    token = CancellationToken.NONE
    calls: list[int] = []

    registration = token.register(lambda: calls.append(1))

    assert not token.can_be_cancelled
    assert not token.is_cancellation_requested
    assert token.wait_blocking(0.01) is False
    assert registration.unregister() is False
    assert calls == []


def test_unregistered_callbacks_do_not_run() -> None:
    source = CancellationTokenSource()
    calls: list[str] = []
    registration = source.token.register(lambda: calls.append("a"))
    source.token.register(lambda: calls.append("b"))

    assert registration.unregister() is True
    source.cancel()

    assert calls == ["b"]
    assert registration.unregister() is False


def test_registration_as_context_manager_unregisters_on_exit() -> None:
    source = CancellationTokenSource()
    calls: list[str] = []

    with source.token.register(lambda: calls.append("inside")):
        pass
    source.cancel()

    assert calls == []


def test_registering_on_a_cancelled_token_runs_the_callback_at_once() -> None:
    source = CancellationTokenSource()
    source.cancel()
    calls: list[str] = []

    source.token.register(lambda: calls.append("now"))

    assert calls == ["now"]


def test_a_failing_callback_is_reported_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = CancellationTokenSource()
    calls: list[str] = []

    def broken() -> None:
        raise RuntimeError("callback bug")

    source.token.register(lambda: calls.append("before"))
    source.token.register(broken)
    source.token.register(lambda: calls.append("after"))
    with caplog.at_level(logging.ERROR, "backburner.cancellation"):
        source.cancel()

    assert calls == ["before", "after"]
    failures = [r for r in caplog.records if r.exc_info]
    assert len(failures) == 1
    assert "callback bug" in str(failures[0].exc_info[1])  # type: ignore[index]


def test_a_linked_source_fires_when_any_parent_fires() -> None:
    first, second = CancellationTokenSource(), CancellationTokenSource()
    linked = CancellationTokenSource.linked(first.token, second.token)

    second.cancel(CancellationReason.CLIENT_DISCONNECTED)

    assert linked.token.is_cancellation_requested
    assert linked.token.reason == "client disconnected"
    assert not first.token.is_cancellation_requested


def test_a_linked_source_can_be_cancelled_alone() -> None:
    parent = CancellationTokenSource()
    linked = CancellationTokenSource.linked(parent.token)

    linked.cancel(CancellationReason.TIMEOUT)

    assert linked.token.reason == "timeout"
    assert not parent.token.is_cancellation_requested


def test_linking_to_a_cancelled_parent_is_cancelled_at_once() -> None:
    parent = CancellationTokenSource()
    parent.cancel("gone")

    linked = CancellationTokenSource.linked(
        CancellationToken.NONE, parent.token
    )

    assert linked.token.reason == "gone"


def test_a_closed_linked_source_no_longer_follows_its_parent() -> None:
    parent = CancellationTokenSource()
    with CancellationTokenSource.linked(parent.token) as linked:
        pass

    parent.cancel()

    assert not linked.token.is_cancellation_requested


def test_cancel_after_fires_with_timeout_from_a_thread() -> None:
    source = CancellationTokenSource()

    source.cancel_after(0.01)

    assert source.token.wait_blocking(5)
    assert source.token.reason == CancellationReason.TIMEOUT


def test_cancel_after_is_stopped_by_close() -> None:
    source = CancellationTokenSource()

    source.cancel_after(0.05)
    source.close()

    assert source.token.wait_blocking(0.2) is False


def test_cancel_after_refuses_a_negative_delay() -> None:
    with pytest.raises(ValueError, match="negative"):
        CancellationTokenSource().cancel_after(-1)


def test_wait_blocking_times_out_when_nothing_fires() -> None:
    assert CancellationTokenSource().token.wait_blocking(0.01) is False


def test_wait_blocking_wakes_when_another_thread_cancels() -> None:
    source = CancellationTokenSource()
    woke = threading.Event()

    def waiter() -> None:
        if source.token.wait_blocking(10):
            woke.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    source.cancel()
    thread.join(10)

    assert woke.is_set()


def test_concurrent_cancels_run_each_callback_exactly_once() -> None:
    source = CancellationTokenSource()
    lock = threading.Lock()
    counts = [0] * 50

    def make(index: int) -> None:
        def bump() -> None:
            with lock:
                counts[index] += 1

        source.token.register(bump)

    for index in range(50):
        make(index)
    start = threading.Barrier(8)

    def cancel() -> None:
        start.wait()
        source.cancel()

    threads = [threading.Thread(target=cancel) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert counts == [1] * 50


async def test_await_wait_returns_once_cancelled() -> None:
    source = CancellationTokenSource()
    waiter = asyncio.create_task(source.token.wait())
    await asyncio.sleep(0)
    assert not waiter.done()

    source.cancel()

    await asyncio.wait_for(waiter, 5)


async def test_await_wait_wakes_when_a_thread_cancels() -> None:
    source = CancellationTokenSource()
    loop = asyncio.get_running_loop()

    thread = threading.Thread(target=source.cancel)
    loop.call_later(0.01, thread.start)

    await asyncio.wait_for(source.token.wait(), 5)
    thread.join(5)
    assert source.token.is_cancellation_requested


async def test_callbacks_registered_in_a_loop_run_on_that_loop() -> None:
    source = CancellationTokenSource()
    loop_thread = threading.get_ident()
    ran_on: list[int] = []
    done = asyncio.Event()

    def callback() -> None:
        ran_on.append(threading.get_ident())
        done.set()

    source.token.register(callback)
    thread = threading.Thread(target=source.cancel)
    thread.start()
    await asyncio.wait_for(done.wait(), 5)
    thread.join(5)

    assert ran_on == [loop_thread]


async def test_cancel_after_inside_a_loop_uses_the_loop() -> None:
    source = CancellationTokenSource()

    source.cancel_after(0.01, "deadline")

    await asyncio.wait_for(source.token.wait(), 5)
    assert source.token.reason == "deadline"


async def test_a_cancelled_wait_leaves_no_callback_behind() -> None:
    source = CancellationTokenSource()
    waiter = asyncio.create_task(source.token.wait())
    await asyncio.sleep(0)

    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter

    assert source.token._state is not None
    assert source.token._state.callbacks == {}
