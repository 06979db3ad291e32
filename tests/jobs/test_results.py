"""Job results: kept by the server, read back and awaited by clients."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import result_samples
from server_helpers import FAST, client, eventually, fresh_samples, state_is
from server_helpers import storage as storage

from backburner.jobs import (
    Client,
    JobDeletedError,
    JobFailedError,
    JobNotFinishedError,
    JobNotFoundError,
    JobState,
    ResultNotKeptError,
    Server,
    SyncClient,
    WaitTimeoutError,
    results,
    waiters,
)
from backburner.jobs.client import DEFAULT_MAX_ARGUMENT_BYTES
from backburner.storage import Storage

__all__ = ["client", "fresh_samples", "storage"]

S = JobState
pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def released() -> Any:
    result_samples.release.clear()
    yield
    # A job still waiting must not hold its server's shutdown up.
    result_samples.release.set()


def server(storage: Storage) -> Server:
    return Server(storage, concurrency=4, **FAST)


async def run_all(storage: Storage) -> None:
    await server(storage).run(until_empty=True)


async def processing(client: Client, job_id: int) -> None:
    await eventually(
        lambda: state_is(client, job_id, S.PROCESSING), what="processing"
    )


# -- keeping results ----------------------------------------------------


@pytest.mark.parametrize(
    "func",
    [
        result_samples.rich,
        result_samples.async_rich,
        result_samples.hidden_async_rich,
    ],
    ids=["sync", "async", "returns-a-coroutine"],
)
async def test_a_rich_return_value_round_trips_through_a_server(
    storage: Storage, client: Client, func: Callable[..., Any]
) -> None:
    job_id = await client.enqueue(func, "first")

    await run_all(storage)

    job = await client.get(job_id)
    assert job.state is S.SUCCEEDED
    value = job.result()
    expected = result_samples.rich("first")
    assert value == expected
    # Equal is not enough: the zone, the exponent and the types stay.
    assert value["at"].tzinfo.key == "Europe/Paris"
    assert str(value["price"]) == "19.990"
    assert type(value["nested"][0]) is tuple
    assert type(value["raw"]) is bytes
    assert list(value) == list(expected)
    succeeded = job.history[-1].data
    assert {"server", "worker", "duration", "result"} <= set(succeeded)
    assert await client.wait(job_id, timeout=5) == expected


@pytest.mark.parametrize(
    "method", [result_samples.Pricer.price, result_samples.Pricer.price_async]
)
async def test_runner_methods_results_are_kept(
    storage: Storage, client: Client, method: Callable[..., Any]
) -> None:
    job_id = await client.enqueue(method, "10.50")

    await run_all(storage)

    value = (await client.get(job_id)).result()
    assert value == Decimal("12.600")
    assert type(value) is Decimal


async def test_none_keeps_nothing_and_a_falsy_value_is_kept(
    storage: Storage, client: Client
) -> None:
    nothing = await client.enqueue(result_samples.returns_none)
    zero = await client.enqueue(result_samples.returns_falsy)

    await run_all(storage)

    nothing_job = await client.get(nothing)
    assert nothing_job.result() is None
    data = nothing_job.history[-1].data
    assert "result" not in data
    assert "result_error" not in data
    zero_job = await client.get(zero)
    assert zero_job.result() == 0
    assert zero_job.history[-1].data["result"] == 0


async def test_an_unfinished_job_has_no_result_yet(client: Client) -> None:
    job_id = await client.enqueue(result_samples.returns_falsy)

    with pytest.raises(JobNotFinishedError) as raised:
        (await client.get(job_id)).result()

    assert raised.value.state is S.ENQUEUED
    assert raised.value.job_id == job_id
    assert str(raised.value) == (
        f"job {job_id} has not finished: it is enqueued (enqueued)"
    )


async def test_a_listed_job_says_its_result_needs_the_history(
    storage: Storage, client: Client
) -> None:
    await client.enqueue(result_samples.returns_falsy)
    await run_all(storage)

    (listed,) = (await client.list_jobs()).jobs

    with pytest.raises(ValueError, match=r"Client\.get"):
        listed.result()


async def test_an_unserialisable_result_is_dropped_with_a_warning(
    storage: Storage, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="backburner.server")
    job_id = await client.enqueue(result_samples.unserialisable)

    await run_all(storage)

    job = await client.get(job_id)
    assert job.state is S.SUCCEEDED
    why = job.history[-1].data["result_error"]
    assert isinstance(why, str)
    assert why.startswith("dict is not serialisable")
    assert "Opaque" in why
    assert "result" not in job.history[-1].data
    with pytest.raises(ResultNotKeptError) as not_kept:
        job.result()
    assert str(not_kept.value) == (
        f"job {job_id} succeeded but its result was not kept: {why}"
    )
    (dropped,) = [
        r
        for r in caplog.records
        if getattr(r, "event", None) == "job.result_dropped"
    ]
    assert dropped.levelno == logging.WARNING
    assert getattr(dropped, "job_id", None) == job_id
    assert getattr(dropped, "function", None) == (
        "result_samples:unserialisable"
    )
    # Nothing of the value is logged, not even a key.
    assert "secret-key" not in dropped.getMessage()
    assert "secret-key" not in why


async def test_an_integer_json_cannot_write_is_dropped_too(
    storage: Storage, client: Client
) -> None:
    job_id = await client.enqueue(result_samples.huge_integer)

    await run_all(storage)

    job = await client.get(job_id)
    assert job.state is S.SUCCEEDED
    why = job.history[-1].data["result_error"]
    assert isinstance(why, str)
    assert why == (
        "list is not serialisable: integers of more than 4300 digits "
        "cannot be stored"
    )


async def test_an_oversized_result_is_dropped_and_the_job_succeeds(
    storage: Storage, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="backburner.server")
    assert results.MAX_RESULT_BYTES == DEFAULT_MAX_ARGUMENT_BYTES
    # Two UTF-8 bytes a character: under the limit in characters, over
    # it in bytes.
    size = results.MAX_RESULT_BYTES // 2
    big = await client.enqueue(result_samples.oversized, size)
    fits = await client.enqueue(result_samples.oversized, size - 2)

    await run_all(storage)

    big_job = await client.get(big)
    assert big_job.state is S.SUCCEEDED
    why = big_job.history[-1].data["result_error"]
    assert why == (
        f"{results.MAX_RESULT_BYTES + 2} bytes serialised, over the limit "
        f"of {results.MAX_RESULT_BYTES} bytes"
    )
    with pytest.raises(ResultNotKeptError):
        big_job.result()
    assert [
        getattr(r, "job_id", None)
        for r in caplog.records
        if getattr(r, "event", None) == "job.result_dropped"
    ] == [big]
    assert (await client.get(fits)).result() == "é" * (size - 2)


# -- waiting ------------------------------------------------------------


@pytest.fixture
async def running(storage: Storage) -> AsyncIterator[Server]:
    async with server(storage) as the_server:
        try:
            yield the_server
        finally:
            result_samples.release.set()


async def test_wait_returns_the_result_once_the_job_succeeds(
    client: Client, running: Server
) -> None:
    job_id = await client.enqueue(result_samples.after_release, "done")
    waiting = asyncio.create_task(client.wait(job_id, timeout=30))
    await processing(client, job_id)
    # Long enough for the polls to space out.
    await asyncio.sleep(0.3)
    assert not waiting.done()

    released_at = time.monotonic()
    result_samples.release.set()
    value = await waiting

    assert value == "done"
    # Polls are at most 0.5 s apart; the margin is for a busy machine.
    assert time.monotonic() - released_at < 1.5


async def test_wait_raises_job_failed_error_once_retries_ran_out(
    client: Client, running: Server
) -> None:
    job_id = await client.enqueue(result_samples.always_fails, "no stock")

    with pytest.raises(JobFailedError) as raised:
        await client.wait(job_id, timeout=30)

    error = raised.value
    assert error.job_id == job_id
    assert error.state is S.FAILED
    assert error.exception_type == "builtins.LookupError"
    assert error.message == "no stock"
    assert "gave up after 2 attempts" in error.reason
    assert str(error) == f"job {job_id} failed: {error.reason}"
    assert (await client.get(job_id)).attempt == 2


async def test_wait_raises_job_deleted_error_for_a_job_deleted_by_policy(
    client: Client, running: Server
) -> None:
    job_id = await client.enqueue(result_samples.fails_then_deleted)

    with pytest.raises(JobDeletedError) as raised:
        await client.wait(job_id, timeout=30)

    assert raised.value.exception_type == "builtins.KeyError"
    assert raised.value.state is S.DELETED


async def test_wait_wakes_at_once_when_a_running_job_is_deleted(
    client: Client, running: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Polls so far apart that only the storage notification can end the
    # wait within the test's bound.
    monkeypatch.setattr(waiters, "FIRST_POLL", 60.0)
    monkeypatch.setattr(waiters, "MAX_POLL", 60.0)
    job_id = await client.enqueue(result_samples.after_release, "never")
    await processing(client, job_id)
    waiting = asyncio.create_task(client.wait(job_id))
    await asyncio.sleep(0.1)

    deleted_at = time.monotonic()
    await client.delete(job_id, reason="not wanted")
    with pytest.raises(JobDeletedError) as raised:
        await waiting

    assert time.monotonic() - deleted_at < 5
    assert raised.value.reason == "not wanted"
    assert str(raised.value) == f"job {job_id} was deleted: not wanted"
    assert raised.value.exception_type is None


async def test_wait_times_out_and_leaves_the_job_alone(
    client: Client,
) -> None:
    job_id = await client.enqueue(result_samples.returns_falsy)
    started = time.monotonic()

    with pytest.raises(WaitTimeoutError) as raised:
        await client.wait(job_id, timeout=0.2)

    assert 0.2 <= time.monotonic() - started < 5
    assert isinstance(raised.value, TimeoutError)
    assert raised.value.state is S.ENQUEUED
    assert str(raised.value) == f"job {job_id} is still enqueued after 0.2 s"
    assert (await client.get(job_id)).state is S.ENQUEUED


async def test_wait_refuses_unknown_jobs_and_bad_timeouts(
    client: Client,
) -> None:
    with pytest.raises(JobNotFoundError):
        await client.wait(10**6, timeout=1)
    with pytest.raises(JobNotFoundError):
        await client.wait(0)
    job_id = await client.enqueue(result_samples.returns_falsy)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="invalid timeout"):
            await client.wait(job_id, timeout=bad)


async def test_the_sync_client_waits_for_a_result(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'sync.db'}"
    with SyncClient(url) as sync:
        job_id = sync.enqueue(result_samples.rich, "sync")
        with pytest.raises(WaitTimeoutError):
            sync.wait(job_id, timeout=0.05)
        async with Client(url) as other, server(other.storage):
            value = await asyncio.to_thread(sync.wait, job_id, timeout=30)

        assert value == result_samples.rich("sync")
        assert sync.get(job_id).result() == value
