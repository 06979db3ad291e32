"""The job server, in-process, on real SQLite files."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import job_samples
import pytest
import server_samples
from server_helpers import (
    FAST,
    client,
    eventually,
    fresh_samples,
    state_is,
    states_of,
    storage,
)

from backburner.cancellation import CancellationReason
from backburner.jobs import (
    Activator,
    Client,
    JobOptions,
    JobState,
    Server,
)
from backburner.jobs.functions import resolve
from backburner.storage import Storage
from backburner.storage.base import JobsEnqueued, Notification

__all__ = ["client", "fresh_samples", "storage"]

S = JobState
pytestmark = pytest.mark.timeout(60)


def server(storage: Storage, **options: Any) -> Server:
    return Server(storage, **{"concurrency": 4, **FAST, **options})


# -- running jobs -------------------------------------------------------


async def test_sync_async_and_runner_jobs_succeed_with_their_history(
    storage: Storage, client: Client
) -> None:
    ids = [
        await client.enqueue(job_samples.record, 1),
        await client.enqueue(job_samples.async_record, 2),
        await client.enqueue(job_samples.Mailer.send, "ann"),
        await client.enqueue(job_samples.Mailer.send_async, "bob"),
        await client.enqueue(job_samples.Mailer.static, "cy"),
    ]
    the_server = server(storage)

    await the_server.run(until_empty=True)

    assert sorted(job_samples.calls, key=repr) == sorted(
        [
            ("record", (1, "", "")),
            ("async_record", 2),
            ("mailer.send", "default:ann"),
            ("mailer.send_async", "default:bob"),
            ("mailer.static", "cy"),
        ],
        key=repr,
    )
    for job_id in ids:
        job = await client.get(job_id)
        assert job.state is S.SUCCEEDED
        assert states_of(job) == ["enqueued", "processing", "succeeded"]
        assert job.history[1].data["server"] == the_server.name
        done = job.history[2].data
        assert done["server"] == the_server.name
        assert done["worker"] in range(1, 5)
        assert isinstance(done["duration"], float)
        assert job.expires_at is not None


async def test_a_custom_activator_opens_one_scope_per_execution(
    storage: Storage, client: Client
) -> None:
    scopes: list[str] = []

    class Recording(Activator):
        @contextlib.asynccontextmanager
        async def scope(self, runner_class: type[Any]) -> AsyncIterator[Any]:
            scopes.append("open")
            try:
                yield runner_class(prefix="scoped")
            finally:
                scopes.append("close")

    await client.enqueue(job_samples.Mailer.send, "a")
    await client.enqueue(job_samples.Mailer.send_async, "b")

    await server(storage, activator=Recording()).run(until_empty=True)

    assert sorted(scopes) == ["close", "close", "open", "open"]
    assert sorted(v for _, v in job_samples.calls) == [
        "scoped:a",
        "scoped:b",
    ]


async def test_queues_are_drained_in_the_order_given(
    storage: Storage, client: Client
) -> None:
    for value in range(3):
        await client.enqueue_with(
            JobOptions(queue="low"), job_samples.record, f"low{value}"
        )
        await client.enqueue_with(
            JobOptions(queue="high"), job_samples.record, f"high{value}"
        )
    await client.enqueue_with(
        JobOptions(queue="other"), job_samples.record, "other"
    )

    await server(storage, queues=["high", "low"], concurrency=1).run(
        until_empty=True
    )

    ran = [value[0] for _, value in job_samples.calls]  # type: ignore[index]
    assert ran == ["high0", "high1", "high2", "low0", "low1", "low2"]
    counts = await client.counts()
    assert counts.by_queue["other"][S.ENQUEUED] == 1


async def test_the_token_parameter_gets_the_jobs_token_whatever_was_stored(
    storage: Storage, client: Client
) -> None:
    # None stored in the token's position is replaced by the real token.
    stored_none = await client.enqueue(job_samples.wait_for_token, "a", None)
    by_keyword = await client.enqueue(job_samples.sync_wait_for_token, "b")

    async with server(storage):
        for name in ("a", "b"):
            started = job_samples.event(f"{name}:started")
            assert await asyncio.to_thread(started.wait, 30)
        await client.delete(stored_none)
        await client.delete(by_keyword)
        await eventually(lambda: len(job_samples.calls) == 2)

    assert sorted(job_samples.calls) == [
        ("cancelled", ("a", "job deleted")),
        ("cancelled", ("b", "job deleted")),
    ]
    for job_id in (stored_none, by_keyword):
        job = await client.get(job_id)
        assert job.state is S.DELETED
        assert states_of(job) == ["enqueued", "processing", "deleted"]


async def test_a_job_enqueued_in_the_same_process_starts_without_polling(
    storage: Storage, client: Client
) -> None:
    fetches: list[int] = []
    fetched = asyncio.Event()
    combined = storage.apply_changes_and_fetch

    async def counting(*args: Any) -> Any:
        result = await combined(*args)
        fetches.append(len(result[1]))
        fetched.set()
        return result

    storage.apply_changes_and_fetch = counting  # type: ignore[method-assign]

    async with server(storage, poll_interval=30.0):
        await asyncio.wait_for(fetched.wait(), 10)
        # The first fetch found nothing; only a notification can wake the
        # server before its 30 s poll.
        job_id = await client.enqueue(job_samples.async_record, "woken")
        await eventually(
            lambda: state_is(client, job_id, S.SUCCEEDED), within=10
        )

    assert fetches[0] == 0
    reasons = [entry.reason for entry in (await client.get(job_id)).history]
    if not any(reason.startswith("handed to ") for reason in reasons):
        # Woken, then fetched. (A storage that hands jobs to idle servers
        # at enqueue, as PostgreSQL does, starts it without a fetch.)
        assert 1 in fetches


async def test_a_notification_heard_on_the_loop_starts_a_fetch_next_turn(
    storage: Storage,
) -> None:
    # PostgreSQL's listening connection calls the server's listener on
    # the server's own loop: no hop through call_soon_threadsafe, which
    # would add a loop turn (and a wake-up write) to every enqueue.
    listeners: list[Callable[[Notification], None]] = []
    subscribe = storage.subscribe

    def capturing(listener: Callable[[Notification], None]) -> Any:
        listeners.append(listener)
        return subscribe(listener)

    fetches = 0
    first_done = asyncio.Event()
    combined = storage.apply_changes_and_fetch

    async def counting(*args: Any) -> Any:
        nonlocal fetches
        fetches += 1
        result = await combined(*args)
        first_done.set()
        return result

    storage.subscribe = capturing  # type: ignore[method-assign]
    storage.apply_changes_and_fetch = counting  # type: ignore[method-assign]

    async with server(storage, poll_interval=30.0):
        await asyncio.wait_for(first_done.wait(), 10)
        await asyncio.sleep(0.05)  # the server naps until woken
        assert fetches == 1
        for listener in listeners:
            listener(JobsEnqueued(frozenset({"default"})))
        await asyncio.sleep(0)

        assert fetches == 2


async def test_outcomes_of_many_jobs_are_written_in_batches(
    storage: Storage, client: Client
) -> None:
    from backburner.jobs import Call

    await client.enqueue_many(
        [Call(job_samples.async_noop) for _ in range(200)]
    )
    writes: list[int] = []
    apply_changes = storage.apply_changes
    apply_changes_and_fetch = storage.apply_changes_and_fetch

    async def counting(changes: Any) -> Any:
        writes.append(len(changes))
        return await apply_changes(changes)

    async def counting_with_fetch(changes: Any, *rest: Any) -> Any:
        if changes:
            writes.append(len(changes))
        return await apply_changes_and_fetch(changes, *rest)

    storage.apply_changes = counting  # type: ignore[method-assign]
    storage.apply_changes_and_fetch = counting_with_fetch  # type: ignore[method-assign]

    await server(storage, concurrency=16).run(until_empty=True)

    counts = await client.counts()
    assert counts.by_state[S.SUCCEEDED] == 200
    assert sum(writes) == 200
    assert len(writes) < 100, writes


# -- retries -----------------------------------------------------------------


async def test_a_flaky_job_is_retried_then_succeeds(
    storage: Storage, client: Client
) -> None:
    job_id = await client.enqueue(job_samples.flaky, "f", 2)

    await server(storage).run(until_empty=True)

    job = await client.get(job_id)
    assert job.state is S.SUCCEEDED
    assert job.attempt == 3
    reasons = [e.reason for e in job.history if e.state is S.SCHEDULED]
    assert reasons == [
        "retry 2 of 3: RuntimeError: boom 1",
        "retry 3 of 3: RuntimeError: boom 2",
    ]
    retried = next(e for e in job.history if e.state is S.SCHEDULED)
    assert retried.data["exception_type"] == "builtins.RuntimeError"
    assert "boom 1" in str(retried.data["traceback"])


async def test_a_never_retried_exception_fails_at_once(
    storage: Storage, client: Client
) -> None:
    job_id = await client.enqueue(server_samples.refuses, "k")

    await server(storage).run(until_empty=True)

    job = await client.get(job_id)
    assert job.state is S.FAILED
    assert job.attempt == 1
    assert server_samples.runs == {"k": 1}
    assert job.reason == "failed: not retried (KnownError: k is not allowed)"
    assert job.expires_at is None


async def test_a_job_whose_attempts_run_out_stays_failed(
    storage: Storage, client: Client
) -> None:
    job_id = await client.enqueue(job_samples.flaky, "g", 10)

    await server(storage).run(until_empty=True)

    job = await client.get(job_id)
    assert job.state is S.FAILED
    assert job.attempt == 3
    assert job.reason == (
        "failed: gave up after 3 attempts (RuntimeError: boom 3)"
    )


async def test_a_job_whose_attempts_run_out_is_deleted_when_configured(
    storage: Storage, client: Client
) -> None:
    job_id = await client.enqueue(job_samples.always_fails)

    await server(storage).run(until_empty=True)

    job = await client.get(job_id)
    assert job.state is S.DELETED
    assert job.attempt == 2
    assert job.reason.startswith("deleted: gave up after 2 attempts")
    assert job.expires_at is not None


async def test_failures_are_logged_warning_when_retried_error_when_final(
    storage: Storage, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = await client.enqueue(job_samples.flaky, "h", 10)
    caplog.set_level(logging.INFO, logger="backburner.server")

    await server(storage).run(until_empty=True)

    mine = [r for r in caplog.records if getattr(r, "job_id", None) == job_id]
    events = [(r.levelno, getattr(r, "event", None)) for r in mine]
    assert events == [
        (logging.INFO, "job.started"),
        (logging.WARNING, "job.retried"),
        (logging.INFO, "job.started"),
        (logging.WARNING, "job.retried"),
        (logging.INFO, "job.started"),
        (logging.ERROR, "job.failed"),
    ]
    final = mine[-1]
    assert final.exc_info is not None
    assert final.function == "job_samples:flaky"
    assert final.queue == "default"
    assert final.attempt == 3
    assert isinstance(final.duration, float)


# -- aborting running jobs ---------------------------------------------------


async def test_deleting_a_running_job_fires_its_token_and_it_ends_deleted(
    storage: Storage, client: Client
) -> None:
    job_id = await client.enqueue(job_samples.wait_for_token, "d")

    async with server(storage):
        started = job_samples.event("d:started")
        assert await asyncio.to_thread(started.wait, 30)
        await client.delete(job_id)
        await eventually(lambda: bool(job_samples.calls), within=5)

    assert job_samples.calls == [("cancelled", ("d", "job deleted"))]
    job = await client.get(job_id)
    assert job.state is S.DELETED
    assert states_of(job) == ["enqueued", "processing", "deleted"]


async def test_deleting_from_another_process_is_noticed_by_polling(
    storage: Storage, client: Client, tmp_path: Path
) -> None:
    from backburner.storage import open_storage

    job_id = await client.enqueue(job_samples.wait_for_token, "p")
    # A second storage object stands for another process: it does not
    # share this one's notifications... unless on the same file, so its
    # listeners are silenced here to force the polling path.
    elsewhere = open_storage(f"sqlite:///{tmp_path / 'jobs.db'}")
    elsewhere._hub = type(elsewhere._hub)()  # type: ignore[attr-defined]
    try:
        async with server(storage, abort_check_interval=0.2):
            started = job_samples.event("p:started")
            assert await asyncio.to_thread(started.wait, 30)
            await Client(elsewhere).delete(job_id)
            await eventually(lambda: bool(job_samples.calls), within=10)
    finally:
        await elsewhere.close()

    assert job_samples.calls == [("cancelled", ("p", "job deleted"))]
    assert (await client.get(job_id)).state is S.DELETED


async def test_a_job_timeout_fires_its_token_with_reason_timeout(
    storage: Storage, client: Client
) -> None:
    job_id = await client.enqueue_with(
        JobOptions(timeout=0.2), job_samples.too_slow
    )

    await server(storage).run(until_empty=True)

    job = await client.get(job_id)
    assert job.state is S.FAILED
    assert (
        job.reason == "failed: gave up after 1 attempt (timed out after 0.2 s)"
    )
    assert job.history[-1].data["cancelled"] == CancellationReason.TIMEOUT


async def test_requeue_and_delete_races_never_run_a_job_twice(
    storage: Storage, client: Client
) -> None:
    job_id = await client.enqueue(server_samples.exclusive, "race")

    async with server(storage, concurrency=4):
        for _ in range(20):
            await eventually(lambda: server_samples.active.get("race") == 1)
            results = await asyncio.gather(
                client.requeue(job_id),
                client.delete(job_id),
                client.requeue(job_id),
                return_exceptions=True,
            )
            assert any(r is None for r in results)
            counts = await client.counts()
            assert counts.by_state[S.ENQUEUED] <= 1
            assert counts.by_state[S.PROCESSING] <= 1
            if (await client.get(job_id)).state is S.DELETED:
                await client.requeue(job_id)
        await eventually(lambda: server_samples.active.get("race") == 1)
        await client.delete(job_id)

    assert server_samples.most_at_once["race"] == 1
    assert server_samples.runs["race"] >= 20
    assert (await client.get(job_id)).state is S.DELETED


async def test_a_server_declared_dead_stops_its_jobs_and_comes_back(
    storage: Storage, client: Client
) -> None:
    job_id = await client.enqueue(job_samples.wait_for_token, "z")

    async with server(storage) as running:
        started = job_samples.event("z:started")
        assert await asyncio.to_thread(started.wait, 30)
        # Another server declares this one dead and takes its job back.
        await storage.remove_server(running.name)
        await storage.recover_dead_servers(
            job_samples_now(), 1000.0, "recovered in test"
        )
        await eventually(lambda: bool(job_samples.calls), within=5)
        names = [s.name for s in await storage.list_servers()]
        await eventually(lambda: _listed(storage, running.name), within=10)

    first = job_samples.calls[0]
    # The token fired as soon as the job left processing (in this
    # process the notification wins over the refused heartbeat).
    assert first[1][1] in ("job requeued", "server declared dead")
    job = await client.get(job_id)
    # Back on its queue by a recovery, run again once the server had
    # announced itself again, and never marked failed. Which recovery
    # wins is a race: once the server row is gone, the server's own
    # maintenance loop may recover the job before the test's call does.
    assert job.history[2].state == S.ENQUEUED
    assert job.history[2].reason.startswith("recovered")
    assert S.FAILED not in [e.state for e in job.history]
    assert names is not None


async def test_a_server_that_missed_its_heartbeats_stops_its_jobs(
    storage: Storage, client: Client, tmp_path: Path
) -> None:
    from backburner.storage import open_storage

    job_id = await client.enqueue(job_samples.wait_for_token, "dead")
    # Another process declares the server dead: its storage shares no
    # notifications with this one, and abort polling is slowed down, so
    # only the refused heartbeat can tell the server.
    elsewhere = open_storage(f"sqlite:///{tmp_path / 'jobs.db'}")
    elsewhere._hub = type(elsewhere._hub)()  # type: ignore[attr-defined]
    try:
        async with server(storage, abort_check_interval=60.0) as running:
            started = job_samples.event("dead:started")
            assert await asyncio.to_thread(started.wait, 30)
            # Seen from an hour ahead, the server has been silent: it is
            # removed and its job requeued in one transaction.
            later = job_samples_now() + timedelta(hours=1)
            await elsewhere.recover_dead_servers(
                later, 1000.0, "recovered elsewhere"
            )
            await eventually(lambda: bool(job_samples.calls), within=10)
            await eventually(lambda: _listed(storage, running.name))
    finally:
        await elsewhere.close()

    assert job_samples.calls[0] == (
        "cancelled",
        ("dead", "server declared dead"),
    )
    job = await client.get(job_id)
    assert job.history[2].reason == "recovered elsewhere"
    assert S.FAILED not in [e.state for e in job.history]


async def test_outcomes_survive_a_failing_write_and_are_written_later(
    storage: Storage, client: Client
) -> None:
    from backburner.storage import StorageError

    ids = [await client.enqueue(job_samples.async_noop) for _ in range(3)]
    failures = 0
    combined = storage.apply_changes_and_fetch

    async def flaky_write(changes: Any, *rest: Any) -> Any:
        nonlocal failures
        if changes and failures < 2:
            failures += 1
            raise StorageError("database is locked")
        return await combined(changes, *rest)

    storage.apply_changes_and_fetch = flaky_write  # type: ignore[method-assign]
    the_server = server(storage, outcome_window=0.5, concurrency=1)

    await asyncio.wait_for(the_server.run(until_empty=True), 30)

    assert failures == 2
    for job_id in ids:
        assert (await client.get(job_id)).state is S.SUCCEEDED


async def test_jobs_whose_fetch_reply_was_lost_are_put_back_and_run_once(
    storage: Storage, client: Client
) -> None:
    from backburner.jobs import Call
    from backburner.jobs.reconcile import RECONCILE_REASON
    from backburner.storage import StorageError

    long_id = await client.enqueue(job_samples.wait_for_token, "long")
    fetch = storage.apply_changes_and_fetch
    lost: list[int] = []

    async def commit_then_lose_the_reply(*args: Any) -> Any:
        outcomes, jobs = await fetch(*args)
        if jobs and not lost:
            # As PostgreSQL when the connection drops during COMMIT: the
            # jobs are in processing, the server hears only an error.
            lost.extend(job.id for job in jobs)
            raise StorageError("connection lost during COMMIT")
        return outcomes, jobs

    async with server(storage, dead_after=1.0) as running:
        started = job_samples.event("long:started")
        assert await asyncio.to_thread(started.wait, 30)
        storage.apply_changes_and_fetch = (  # type: ignore[method-assign]
            commit_then_lose_the_reply
        )
        # One transaction: the three jobs come in one fetch.
        ids = await client.enqueue_many(
            [Call(job_samples.async_record, n) for n in range(3)]
        )
        await eventually(lambda: len(lost) == 3, what="a lost fetch")
        held = await storage.held_jobs(running.name)
        assert set(ids) <= set(held)

        for job_id in ids:
            await eventually(
                lambda job_id=job_id: state_is(client, job_id, S.SUCCEEDED),
                what=f"job {job_id} to succeed",
            )
        long_job = await client.get(long_id)

    assert sorted(lost) == sorted(ids)
    assert sorted(job_samples.calls, key=repr) == [
        ("async_record", n) for n in range(3)
    ] + [("cancelled", ("long", "shutdown"))]
    for job_id in ids:
        job = await client.get(job_id)
        assert states_of(job) == [
            "enqueued",
            "processing",
            "enqueued",
            "processing",
            "succeeded",
        ]
        assert job.history[2].reason == RECONCILE_REASON
        assert job.history[2].data == {"server": running.name}
    # The job the server ran all along, over many rounds, was left alone.
    assert states_of(long_job) == ["enqueued", "processing"]


async def test_the_reconciler_never_looks_between_a_fetch_and_its_start(
    storage: Storage, client: Client
) -> None:
    from backburner.jobs import Call
    from backburner.jobs.reconcile import RECONCILE_REASON

    fetch = storage.apply_changes_and_fetch
    listed = storage.held_jobs
    looked = asyncio.Event()
    paused: list[int] = []

    async def slow_reply(*args: Any) -> Any:
        # The reply is slow to come: long enough for three looks.
        outcomes, jobs = await fetch(*args)
        if jobs and not paused:
            paused.extend(job.id for job in jobs)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(looked.wait(), 3.0)
        return outcomes, jobs

    async def long_held(server: str) -> Any:
        # Every job held looks fetched an hour ago: past the grace.
        held = await listed(server)
        looked.set()
        return {
            job_id: (version, fetched_at - timedelta(hours=1))
            for job_id, (version, fetched_at) in held.items()
        }

    storage.apply_changes_and_fetch = slow_reply  # type: ignore[method-assign]
    storage.held_jobs = long_held  # type: ignore[method-assign]

    async with server(storage, dead_after=1.0):
        # Two at once: fetched, never handed over at enqueue (PostgreSQL).
        ids = await client.enqueue_many(
            [Call(job_samples.async_record, n) for n in range(2)]
        )
        for job_id in ids:
            await eventually(
                lambda job_id=job_id: state_is(client, job_id, S.SUCCEEDED)
            )
        # The reconciler looked, but only once the jobs had started.
        await eventually(looked.is_set)

    assert sorted(paused) == sorted(ids)
    assert sorted(job_samples.calls, key=repr) == [
        ("async_record", 0),
        ("async_record", 1),
    ]
    for job_id in ids:
        job = await client.get(job_id)
        reasons = [entry.reason for entry in job.history]
        assert RECONCILE_REASON not in reasons
        assert states_of(job) == ["enqueued", "processing", "succeeded"]


async def test_shutdown_can_be_requested_from_another_thread(
    storage: Storage,
) -> None:
    the_server = server(storage)
    running = asyncio.create_task(the_server.run())
    await eventually(lambda: _listed(storage, the_server.name))

    await asyncio.to_thread(the_server.shutdown)

    await asyncio.wait_for(running, 10)
    assert not await _listed(storage, the_server.name)


def job_samples_now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


async def _listed(storage: Storage, name: str) -> bool:
    return name in [s.name for s in await storage.list_servers()]


# -- shutdown ----------------------------------------------------------------


async def test_shutdown_puts_a_job_that_honours_its_token_back_on_its_queue(
    storage: Storage, client: Client, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    log = Path(f"{marker}.log")
    job_id = await client.enqueue(job_samples.honour_token_once, str(marker))

    async with server(storage):
        await eventually(log.exists, what="the job to start")

    job = await client.get(job_id)
    assert job.state is S.ENQUEUED
    assert job.reason == "interrupted by shutdown"
    assert states_of(job) == ["enqueued", "processing", "enqueued"]
    assert await storage.list_servers() == []

    await server(storage).run(until_empty=True)

    job = await client.get(job_id)
    assert job.state is S.SUCCEEDED
    lines = log.read_text().splitlines()  # noqa: ASYNC240 - tiny file
    assert lines == ["started", "succeeded"]


async def test_shutdown_reaches_a_synchronous_job_through_its_token(
    storage: Storage, client: Client
) -> None:
    job_id = await client.enqueue(job_samples.sync_wait_for_token, "s")

    async with server(storage):
        started = job_samples.event("s:started")
        assert await asyncio.to_thread(started.wait, 30)

    assert job_samples.calls == [("cancelled", ("s", "shutdown"))]
    job = await client.get(job_id)
    assert job.state is S.ENQUEUED
    assert job.reason == "interrupted by shutdown"


async def test_a_job_that_ends_within_the_grace_period_succeeds(
    storage: Storage, client: Client
) -> None:
    job_id = await client.enqueue(job_samples.sleep_ignoring_token, "g", 0.2)

    async with server(storage, shutdown_grace=10.0):
        started = job_samples.event("g:started")
        assert await asyncio.to_thread(started.wait, 30)

    assert (await client.get(job_id)).state is S.SUCCEEDED


async def test_a_job_ignoring_its_token_is_put_back_after_the_timeout(
    storage: Storage, client: Client
) -> None:
    job_id = await client.enqueue(server_samples.ignore_token, 5.0)

    async with server(storage, shutdown_timeout=0.2):
        assert await asyncio.to_thread(server_samples.started.wait, 30)

    job = await client.get(job_id)
    assert job.state is S.ENQUEUED
    assert "did not stop in time" in job.reason


async def test_a_second_shutdown_stops_without_waiting(
    storage: Storage, client: Client
) -> None:
    job_id = await client.enqueue(server_samples.ignore_token, 5.0)
    the_server = server(storage, shutdown_grace=60.0, shutdown_timeout=60.0)
    running = asyncio.create_task(the_server.run())
    assert await asyncio.to_thread(server_samples.started.wait, 30)

    the_server.shutdown()
    await asyncio.sleep(0.05)
    assert not running.done()
    the_server.shutdown()
    await asyncio.wait_for(running, 10)

    assert (await client.get(job_id)).state is S.ENQUEUED


async def test_shutdown_before_run_returns_at_once(storage: Storage) -> None:
    the_server = server(storage)
    the_server.shutdown()

    await asyncio.wait_for(the_server.run(), 10)

    assert await storage.list_servers() == []


# -- functions that cannot run -----------------------------------------------


async def test_a_job_whose_module_vanished_fails_clearly_and_is_deletable(
    storage: Storage, client: Client, tmp_path: Path
) -> None:
    module = tmp_path / "vanishing_jobs.py"
    module.write_text("def work():\n    return None\n", encoding="utf-8")
    sys.path.insert(0, str(tmp_path))
    try:
        import vanishing_jobs

        job_id = await client.enqueue(vanishing_jobs.work)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("vanishing_jobs", None)
    module.unlink()
    resolve.cache_clear()

    await asyncio.wait_for(server(storage).run(until_empty=True), 30)

    job = await client.get(job_id)
    assert job.state is S.FAILED
    assert job.attempt == 1
    assert job.reason.startswith(
        "cannot import job function vanishing_jobs:work: ModuleNotFoundError"
    )
    await client.delete(job_id)
    assert (await client.get(job_id)).state is S.DELETED


async def test_stored_arguments_that_do_not_decode_fail_the_job_at_once(
    storage: Storage, client: Client
) -> None:
    from datetime import UTC, datetime

    from backburner.storage import NewJob

    job_id = await storage.create_job(
        NewJob(
            function="job_samples:record",
            arguments="{not json",
            queue="default",
            state=S.ENQUEUED,
            reason="enqueued",
            created_at=datetime.now(UTC),
        )
    )

    await server(storage).run(until_empty=True)

    job = await client.get(job_id)
    assert job.state is S.FAILED
    assert job.attempt == 1
    assert "cannot be decoded" in job.reason
    assert job_samples.calls == []


async def test_a_plain_callable_returning_a_coroutine_is_awaited(
    storage: Storage, client: Client
) -> None:
    job_id = await client.enqueue(server_samples.hidden_coroutine, "h")

    await server(storage).run(until_empty=True)

    assert (await client.get(job_id)).state is S.SUCCEEDED
    assert server_samples.runs == {"h": 1}


async def test_until_empty_returns_at_once_when_there_is_nothing(
    storage: Storage,
) -> None:
    await asyncio.wait_for(server(storage).run(until_empty=True), 10)


# -- maintenance -------------------------------------------------------------


async def test_scheduled_jobs_are_promoted_once_across_two_servers(
    storage: Storage, client: Client, tmp_path: Path
) -> None:
    from backburner.jobs import Call
    from backburner.storage import open_storage

    ids = await client.enqueue_many(
        [Call(job_samples.async_noop) for _ in range(40)],
        JobOptions(delay=0.3),
    )
    other = open_storage(f"sqlite:///{tmp_path / 'jobs.db'}")
    try:
        async with server(storage, name="one"), server(other, name="two"):

            async def all_done() -> bool:
                counts = await client.counts()
                return counts.by_state[S.SUCCEEDED] == len(ids)

            await eventually(all_done, what="the scheduled jobs to run")
    finally:
        await other.close()

    for job_id in ids:
        assert states_of(await client.get(job_id)) == [
            "scheduled",
            "enqueued",
            "processing",
            "succeeded",
        ]


async def test_succeeded_jobs_expire_after_retention_and_failed_ones_stay(
    storage: Storage, client: Client
) -> None:
    from backburner.jobs import JobNotFoundError

    done = await client.enqueue(job_samples.noop)
    failed = await client.enqueue(server_samples.refuses, "x")

    async with server(
        storage, retention=timedelta(seconds=0.2), expire_interval=0.1
    ):

        async def expired() -> bool:
            try:
                await client.get(done)
            except JobNotFoundError:
                return True
            return False

        await eventually(expired, what="the succeeded job to expire")

    assert (await client.get(failed)).state is S.FAILED


# -- configuration -----------------------------------------------------------


def test_server_names_default_to_host_and_pid(storage: Storage) -> None:
    import os
    import socket

    the_server = Server(storage)

    assert the_server.name == f"{socket.gethostname()}:{os.getpid()}"
    assert the_server.concurrency == 2 * (os.cpu_count() or 1)
    assert the_server.queues == ("default",)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"queues": []}, ValueError),
        ({"queues": ["bad queue"]}, ValueError),
        ({"concurrency": 0}, ValueError),
        ({"poll_intervall": 1.0}, TypeError),
        ({"heartbeat_interval": 5.0, "dead_after": 5.0}, ValueError),
        ({"shutdown_grace": -1}, ValueError),
    ],
)
def test_bad_server_options_are_refused(
    storage: Storage, options: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        Server(storage, **options)
