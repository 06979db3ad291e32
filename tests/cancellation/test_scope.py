"""cancellable() and run_cancellable(): interrupt awaits blocked on I/O."""

from __future__ import annotations

import asyncio
import contextlib
import threading

import pytest

from backburner.cancellation import (
    CancellationReason,
    CancellationTokenSource,
    OperationCancelled,
    cancellable,
    run_cancellable,
)


async def _block_forever() -> None:
    await asyncio.Event().wait()


async def test_a_blocked_await_is_interrupted_with_the_reason() -> None:
    source = CancellationTokenSource()
    asyncio.get_running_loop().call_later(
        0.01, source.cancel, CancellationReason.CLIENT_DISCONNECTED
    )

    with pytest.raises(OperationCancelled) as caught:
        await asyncio.wait_for(
            run_cancellable(source.token, _block_forever()), 5
        )

    assert caught.value.reason == "client disconnected"


async def test_a_block_is_interrupted_when_a_thread_cancels() -> None:
    source = CancellationTokenSource()
    reached = asyncio.Event()

    async def body() -> None:
        async with cancellable(source.token):
            reached.set()
            await _block_forever()

    task = asyncio.create_task(body())
    await reached.wait()
    threading.Thread(target=source.cancel, args=("from thread",)).start()

    with pytest.raises(OperationCancelled, match="from thread"):
        await asyncio.wait_for(task, 5)


async def test_an_already_cancelled_token_refuses_to_enter() -> None:
    source = CancellationTokenSource()
    source.cancel(CancellationReason.SHUTDOWN)
    entered = False

    with pytest.raises(OperationCancelled, match="shutdown"):
        async with cancellable(source.token):
            entered = True

    assert not entered


async def test_a_completed_block_returns_its_value() -> None:
    source = CancellationTokenSource()

    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert await run_cancellable(source.token, answer()) == 42
    source.cancel()
    # Firing after the block ended must not reach the task later.
    await asyncio.sleep(0.01)


async def test_cancelling_from_inside_the_block_lands_inside_it() -> None:
    source = CancellationTokenSource()
    after_block = False

    with pytest.raises(OperationCancelled):
        async with cancellable(source.token):
            source.cancel("self")
            await asyncio.sleep(1)
    # The interruption did not leak past the block.
    await asyncio.sleep(0)
    after_block = True

    assert after_block
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0


async def test_an_outside_task_cancel_stays_a_cancelled_error() -> None:
    source = CancellationTokenSource()
    reached = asyncio.Event()

    async def body() -> None:
        async with cancellable(source.token):
            reached.set()
            await _block_forever()

    task = asyncio.create_task(body())
    await reached.wait()
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert not source.token.is_cancellation_requested


async def test_both_cancels_at_once_let_the_outside_one_win() -> None:
    source = CancellationTokenSource()
    reached = asyncio.Event()

    async def body() -> None:
        async with cancellable(source.token):
            reached.set()
            await _block_forever()

    task = asyncio.create_task(body())
    await reached.wait()
    source.cancel()
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_swallowed_interruption_still_ends_in_cancellation() -> None:
    source = CancellationTokenSource()
    asyncio.get_running_loop().call_later(0.01, source.cancel, "stop")

    with pytest.raises(OperationCancelled, match="stop"):
        async with cancellable(source.token):
            with contextlib.suppress(asyncio.CancelledError):
                await _block_forever()


async def test_another_error_during_interruption_is_not_masked() -> None:
    source = CancellationTokenSource()
    asyncio.get_running_loop().call_later(0.01, source.cancel)

    with pytest.raises(KeyError):
        async with cancellable(source.token):
            try:
                await _block_forever()
            finally:
                raise KeyError("cleanup failed")


async def test_it_composes_with_asyncio_timeout() -> None:
    source = CancellationTokenSource()

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01), cancellable(source.token):
            await _block_forever()

    source.cancel()
    with pytest.raises(OperationCancelled):
        async with asyncio.timeout(5), cancellable(source.token):
            await _block_forever()


async def test_the_scope_unregisters_its_callback_on_exit() -> None:
    source = CancellationTokenSource()

    async with cancellable(source.token):
        await asyncio.sleep(0)

    assert source.token._state is not None
    assert source.token._state.callbacks == {}


async def _let_callbacks_run() -> None:
    # The scope hears of its token through the loop, a few steps later.
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_task_already_being_cancelled_is_not_cancelled_again() -> None:
    source = CancellationTokenSource()
    reached = asyncio.Event()
    cleaning = asyncio.Event()
    release = asyncio.Event()
    cleaned = False

    async def body() -> None:
        nonlocal cleaned
        async with cancellable(source.token):
            reached.set()
            try:
                await _block_forever()
            finally:
                cleaning.set()
                await release.wait()
                cleaned = True

    task = asyncio.create_task(body())
    await reached.wait()
    task.cancel()  # the first cancellation, as the web middleware's
    await cleaning.wait()
    source.cancel(CancellationReason.CLIENT_DISCONNECTED)
    await _let_callbacks_run()
    release.set()

    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert cleaned


async def test_a_held_interruption_lands_once_the_other_is_absorbed() -> None:
    source = CancellationTokenSource()
    timed_out = asyncio.Event()
    release = asyncio.Event()

    async def body() -> None:
        async with cancellable(source.token):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.01):
                    try:
                        await _block_forever()
                    finally:
                        timed_out.set()
                        await release.wait()
            await _block_forever()

    task = asyncio.create_task(body())
    await timed_out.wait()
    source.cancel("stop")
    await _let_callbacks_run()
    release.set()

    with pytest.raises(OperationCancelled, match="stop"):
        await asyncio.wait_for(task, 5)


async def test_a_block_entered_during_a_cancellation_is_interrupted() -> None:
    source = CancellationTokenSource()
    reached = asyncio.Event()
    in_cleanup = asyncio.Event()

    async def body() -> None:
        try:
            reached.set()
            await _block_forever()
        finally:
            # Cleanup under a token: the cancellation that started it was
            # in flight before the block, so it does not hold the scope.
            async with cancellable(source.token):
                in_cleanup.set()
                await _block_forever()

    task = asyncio.create_task(body())
    await reached.wait()
    task.cancel()
    await in_cleanup.wait()
    source.cancel()

    # The outside cancellation still wins the exception type.
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert task.cancelled()
