"""Job results: kept by the server, read back and awaited by clients."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest
import result_samples
from server_helpers import FAST, client, eventually, fresh_samples, state_is
from server_helpers import storage as storage

from backburner.cancellation import (
    CancellationReason,
    CancellationTokenSource,
    OperationCancelled,
)
from backburner.jobs import (
    Call,
    Client,
    JobDeletedError,
    JobFailedError,
    JobNotFinishedError,
    JobNotFoundError,
    JobOptions,
    JobState,
    ResultNotKeptError,
    Server,
    SyncClient,
    WaitTimeoutError,
    keep_result,
    results,
    waiters,
)
from backburner.jobs.client import DEFAULT_MAX_ARGUMENT_BYTES
from backburner.storage import Storage, StorageError

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
    # A zone's name, and a time's zone, show only in the repr.
    assert repr(value) == repr(expected)
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


# -- integers other processes could not read back -----------------------


@contextlib.contextmanager
def int_digits_limit(limit: int) -> Iterator[None]:
    """This process's limit on int-to-text conversion, for a while."""
    before = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(limit)
    try:
        yield
    finally:
        sys.set_int_max_str_digits(before)


def dropped_ids(caplog: pytest.LogCaptureFixture) -> list[object]:
    return [
        getattr(r, "job_id", None)
        for r in caplog.records
        if getattr(r, "event", None) == "job.result_dropped"
    ]


@pytest.mark.parametrize("server_limit", [0, 10_000])
async def test_an_integer_over_the_default_digit_limit_is_dropped(
    storage: Storage,
    client: Client,
    caplog: pytest.LogCaptureFixture,
    server_limit: int,
) -> None:
    caplog.set_level(logging.WARNING, logger="backburner.server")
    job_id = await client.enqueue(result_samples.huge_integer_of, 4301)

    # A server whose limit lets it write the integer as text...
    with int_digits_limit(server_limit):
        await run_all(storage)

    # ... still drops it: a reader with the default limit could not
    # parse it, and would find the job's whole history unreadable.
    job = await client.get(job_id)
    assert job.state is S.SUCCEEDED
    why = job.history[-1].data["result_error"]
    assert why == (
        "list is not serialisable: integers of more than 4300 digits "
        "cannot be stored"
    )
    assert dropped_ids(caplog) == [job_id]
    with pytest.raises(ResultNotKeptError, match="4300 digits"):
        await client.wait(job_id, timeout=5)


async def test_an_integer_over_the_servers_own_lower_limit_is_dropped(
    storage: Storage, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="backburner.server")
    job_id = await client.enqueue(result_samples.huge_integer_of, 1001)

    # Until integers of 4,200 digits were checked, this one reached
    # json.dumps, which raised: the job's task failed and the job stayed
    # in processing.
    with int_digits_limit(1000):
        await run_all(storage)

    job = await client.get(job_id)
    assert job.state is S.SUCCEEDED
    assert job.history[-1].data["result_error"] == (
        "list is not serialisable: integers of more than 1000 digits "
        "cannot be stored"
    )
    assert dropped_ids(caplog) == [job_id]


async def test_an_integer_at_the_default_digit_limit_reads_back(
    storage: Storage, client: Client
) -> None:
    job_id = await client.enqueue(result_samples.huge_integer_of, 4300)

    with int_digits_limit(0):
        await run_all(storage)

    assert await client.wait(job_id, timeout=5) == [10**4299]


# -- results not kept on request --------------------------------------------


async def test_a_job_declared_not_to_keep_its_result_never_encodes_it(
    storage: Storage,
    client: Client,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from backburner.jobs import server as server_module

    caplog.set_level(logging.INFO, logger="backburner.server")
    recorded: list[object] = []

    def spy(data: dict[str, Any], value: object, job: Any) -> None:
        recorded.append(value)

    monkeypatch.setattr(server_module, "record_result", spy)
    # secret returns a value the serializer refuses: encoding it would
    # log job.result_dropped.
    job_id = await client.enqueue(result_samples.secret)

    await run_all(storage)

    job = await client.get(job_id)
    assert job.state is S.SUCCEEDED
    assert job.keep_result is None  # the declaration decided
    succeeded = job.history[-1].data
    assert succeeded["result_error"] == results.NOT_WANTED
    assert "result" not in succeeded
    assert recorded == []
    assert dropped_ids(caplog) == []
    with pytest.raises(ResultNotKeptError) as not_kept:
        job.result()
    assert not_kept.value.reason == results.NOT_WANTED
    assert not_kept.value.state is S.SUCCEEDED
    assert str(not_kept.value) == (
        f"job {job_id} succeeded but its result was not kept: "
        "keep_result is off for this job"
    )
    with pytest.raises(ResultNotKeptError):
        await client.wait(job_id, timeout=5)


async def test_keep_result_in_the_options_wins_over_the_declaration(
    storage: Storage, client: Client
) -> None:
    kept = await client.enqueue_with(
        JobOptions(keep_result=True), result_samples.secret_number
    )
    not_kept = await client.enqueue_with(
        JobOptions(keep_result=False), result_samples.returns_falsy
    )
    declared = await client.enqueue(result_samples.secret_number)

    await run_all(storage)

    assert (await client.get(kept)).keep_result is True
    assert await client.wait(kept, timeout=5) == 42
    not_kept_job = await client.get(not_kept)
    assert not_kept_job.keep_result is False
    assert not_kept_job.history[-1].data["result_error"] == (
        results.NOT_WANTED
    )
    with pytest.raises(ResultNotKeptError):
        await client.wait(not_kept, timeout=5)
    with pytest.raises(ResultNotKeptError):
        await client.wait(declared, timeout=5)


async def test_a_job_that_keeps_no_result_is_unlike_one_that_returned_none(
    storage: Storage, client: Client
) -> None:
    nothing = await client.enqueue(result_samples.returns_none)
    not_kept = await client.enqueue(result_samples.secret_nothing)

    await run_all(storage)

    assert await client.wait(nothing, timeout=5) is None
    with pytest.raises(ResultNotKeptError):
        await client.wait(not_kept, timeout=5)


async def test_a_job_that_keeps_no_result_fails_as_any_other(
    storage: Storage, client: Client
) -> None:
    job_id = await client.enqueue_with(
        JobOptions(keep_result=False), result_samples.always_fails, "gone"
    )
    declared = await client.enqueue(result_samples.secret_failure)

    await run_all(storage)
    # always_fails retries once, at once.
    await run_all(storage)

    with pytest.raises(JobFailedError) as failed:
        await client.wait(job_id, timeout=5)
    assert failed.value.exception_type == "builtins.LookupError"
    assert "result_error" not in (await client.get(job_id)).history[-1].data
    declared_job = await client.get(declared)
    assert declared_job.state is S.SCHEDULED  # the default retry policy
    retried = declared_job.history[-1].data
    assert retried["exception_type"] == "builtins.LookupError"
    assert "result_error" not in retried


async def test_a_runner_method_can_be_declared_not_to_keep_its_result(
    storage: Storage, client: Client
) -> None:
    job_id = await client.enqueue(result_samples.Vault.open, "1234")

    await run_all(storage)

    job = await client.get(job_id)
    assert job.state is S.SUCCEEDED
    assert job.history[-1].data["result_error"] == results.NOT_WANTED


@pytest.mark.parametrize("value", ["no", 0, 1])
def test_keep_result_takes_only_a_bool(value: object) -> None:
    with pytest.raises(ValueError, match="keep_result"):
        JobOptions(keep_result=value)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="keep_result"):
        keep_result(value)  # type: ignore[arg-type]


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


async def test_a_result_far_over_the_limit_is_dropped_unencoded(
    storage: Storage, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoded: list[object] = []
    encode = results.encode_json

    def spy(value: object, name: str) -> Any:
        encoded.append(value)
        return encode(value, name)

    monkeypatch.setattr(results, "encode_json", spy)
    job_id = await client.enqueue(result_samples.many_items, 2_000_000)

    await run_all(storage)

    job = await client.get(job_id)
    assert job.state is S.SUCCEEDED
    assert job.history[-1].data["result_error"] == (
        f"more than {results.MAX_RESULT_BYTES} bytes serialised, over the "
        "limit"
    )
    assert encoded == []


async def test_containers_are_kept_off_the_event_loop_and_numbers_on_it(
    storage: Storage, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from backburner.jobs import server as server_module

    threads: dict[str, int] = {}
    keep = server_module.record_result

    def spy(data: dict[str, Any], value: object, job: Any) -> None:
        threads[job.function.rsplit(":", 1)[1]] = threading.get_ident()
        keep(data, value, job)

    monkeypatch.setattr(server_module, "record_result", spy)
    container = await client.enqueue(result_samples.small_dict)
    number = await client.enqueue(result_samples.small_number)

    await run_all(storage)

    assert threads["small_dict"] != threading.get_ident()
    assert threads["small_number"] == threading.get_ident()
    assert await client.wait(container, timeout=5) == {"a": [1, 2]}
    assert await client.wait(number, timeout=5) == 5


# -- many waiters, one poller ---------------------------------------------


class CountingStorage:
    """A real storage that counts the reads waiting makes."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.state_batches: list[int] = []
        self.get_jobs = 0

    async def job_states(self, job_ids: Any) -> Any:
        self.state_batches.append(len(job_ids))
        return await self.inner.job_states(job_ids)

    async def get_job(self, job_id: int) -> Any:
        self.get_jobs += 1
        return await self.inner.get_job(job_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def reads(self) -> int:
        return len(self.state_batches) + self.get_jobs


async def test_many_waiters_cost_one_batched_query_per_tick(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(waiters, "BATCH", 200)
    counting = CountingStorage(storage)
    client = Client(cast(Storage, counting))
    job_ids = await client.enqueue_many(
        [Call(result_samples.rich, str(n)) for n in range(500)]
    )
    waiting = [
        asyncio.create_task(client.wait(i, timeout=60)) for i in job_ids
    ]
    await asyncio.sleep(1.0)
    # Ticks at 10 ms, growing to 0.5 s: about 12 in the second, each
    # three batches of at most 200 ids; one waiter alone polled as often.
    assert not any(task.done() for task in waiting)
    assert counting.get_jobs == 0
    assert max(counting.state_batches) <= 200
    assert 3 <= len(counting.state_batches) <= 3 * 20

    await run_all(storage)
    ended_at = time.monotonic()
    values = await asyncio.gather(*waiting)

    # The poll interval is at most 0.5 s; the margin is for a busy machine.
    assert time.monotonic() - ended_at < 2.0
    assert values == [result_samples.rich(str(n)) for n in range(500)]
    # Only the finished jobs were read in full: once each.
    assert counting.get_jobs == 500


async def test_the_poller_stops_when_nobody_waits(
    storage: Storage,
) -> None:
    counting = CountingStorage(storage)
    client = Client(cast(Storage, counting))
    job_id = await client.enqueue(result_samples.returns_falsy)
    with pytest.raises(WaitTimeoutError):
        await client.wait(job_id, timeout=0.1)
    await asyncio.sleep(0.05)
    reads = counting.reads()

    await asyncio.sleep(0.6)

    assert counting.reads() == reads
    assert not [
        t
        for t in asyncio.all_tasks()
        if t.get_name() == "backburner-wait-poller"
    ]


async def test_a_storage_error_ends_the_waits_it_was_polling_for(
    storage: Storage,
) -> None:
    counting = CountingStorage(storage)
    client = Client(cast(Storage, counting))
    job_ids = await client.enqueue_many(
        [Call(result_samples.returns_falsy) for _ in range(3)]
    )
    waiting = [
        asyncio.create_task(client.wait(i, timeout=30)) for i in job_ids
    ]
    await asyncio.sleep(0.05)

    async def broken(job_ids: Any) -> Any:
        raise StorageError("the database is down")

    counting.job_states = broken  # type: ignore[method-assign]
    for task in waiting:
        with pytest.raises(StorageError, match="the database is down"):
            await asyncio.wait_for(task, 5)


async def test_closing_the_client_ends_its_pending_waits(
    storage: Storage,
) -> None:
    client = Client(storage)
    job_ids = await client.enqueue_many(
        [Call(result_samples.returns_falsy) for _ in range(3)]
    )
    waiting = [asyncio.create_task(client.wait(i)) for i in job_ids]
    await asyncio.sleep(0.1)

    await client.close()

    for task in waiting:
        with pytest.raises(RuntimeError, match="the client is closed"):
            await asyncio.wait_for(task, 1)
    with pytest.raises(RuntimeError, match="the client is closed"):
        await client.wait(job_ids[0])


def call_in_thread(
    call: Callable[[], object],
) -> tuple[threading.Thread, list[BaseException]]:
    """Start ``call`` on a thread; the list gets what it raises."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as error:
            raised.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, raised


async def test_closing_the_sync_client_ends_a_wait_in_another_thread(
    tmp_path: Path,
) -> None:
    sync = SyncClient(f"sqlite:///{tmp_path / 'sync.db'}")
    job_id = sync.enqueue(result_samples.returns_falsy)
    waiter, raised = call_in_thread(lambda: sync.wait(job_id))
    await asyncio.sleep(0.2)

    closed_at = time.monotonic()
    await asyncio.to_thread(sync.close)
    await asyncio.to_thread(waiter.join, 5)

    assert not waiter.is_alive()
    assert time.monotonic() - closed_at < 1.0
    assert len(raised) == 1
    assert isinstance(raised[0], RuntimeError)
    assert "closed" in str(raised[0])


async def test_closing_the_sync_client_ends_any_other_pending_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync = SyncClient(f"sqlite:///{tmp_path / 'sync.db'}")
    job_id = sync.enqueue(result_samples.returns_falsy)
    stuck = asyncio.Event()  # never set: a read that hangs

    async def hanging_get(job_id: int) -> Any:
        await stuck.wait()

    monkeypatch.setattr(sync._client, "get", hanging_get)
    caller, raised = call_in_thread(lambda: sync.get(job_id))
    await asyncio.sleep(0.2)

    await asyncio.to_thread(sync.close)
    await asyncio.to_thread(caller.join, 5)

    assert not caller.is_alive()
    assert len(raised) == 1
    assert isinstance(raised[0], RuntimeError)
    assert str(raised[0]) == "the client was closed during the call"


async def test_a_fired_token_ends_the_wait_and_leaves_the_job_alone(
    storage: Storage,
) -> None:
    client = Client(storage)
    job_id = await client.enqueue(result_samples.returns_falsy)
    request = CancellationTokenSource()
    waiting = asyncio.create_task(client.wait(job_id, token=request.token))
    await asyncio.sleep(0.1)

    fired_at = time.monotonic()
    request.cancel(CancellationReason.CLIENT_DISCONNECTED)
    with pytest.raises(OperationCancelled) as raised:
        await asyncio.wait_for(waiting, 5)

    assert time.monotonic() - fired_at < 1.0
    assert raised.value.reason == CancellationReason.CLIENT_DISCONNECTED
    assert raised.value.token is request.token
    assert (await client.get(job_id)).state is S.ENQUEUED
    with pytest.raises(OperationCancelled):
        await client.wait(job_id, token=request.token)


def test_a_fired_token_ends_a_sync_wait(tmp_path: Path) -> None:
    request = CancellationTokenSource()
    with SyncClient(f"sqlite:///{tmp_path / 'sync.db'}") as sync:
        job_id = sync.enqueue(result_samples.returns_falsy)
        threading.Timer(0.1, request.cancel).start()
        started = time.monotonic()

        with pytest.raises(OperationCancelled):
            sync.wait(job_id, timeout=30, token=request.token)

        assert time.monotonic() - started < 5


async def test_a_wait_ends_when_its_poller_dies_rather_than_hang(
    client: Client,
) -> None:
    job_id = await client.enqueue(result_samples.returns_falsy)
    waiting = asyncio.create_task(client.wait(job_id))
    await asyncio.sleep(0.1)

    (poller,) = [
        t
        for t in asyncio.all_tasks()
        if t.get_name() == "backburner-wait-poller"
    ]
    poller.cancel()

    with pytest.raises(RuntimeError, match="the poller ended unexpectedly"):
        await asyncio.wait_for(waiting, 1)
    # The next wait starts a poller of its own.
    with pytest.raises(WaitTimeoutError):
        await client.wait(job_id, timeout=0.1)
