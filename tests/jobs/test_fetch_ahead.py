"""Fetching ahead: the count, and the server's use of it on SQLite."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any, cast

import job_samples
import pytest
from server_helpers import (
    FAST,
    client,
    eventually,
    fresh_samples,
    state_is,
    storage,
)

from backburner.jobs import Call, Client, JobState, Server
from backburner.jobs.fetch_ahead import FetchAhead
from backburner.storage import (
    JobsAborted,
    Listener,
    Notification,
    ServerInfo,
    Storage,
)
from backburner.storage.base import JobRecord

__all__ = ["client", "fresh_samples", "storage"]

S = JobState
pytestmark = pytest.mark.timeout(60)


def job(number: int) -> JobRecord:
    # FetchAhead only keeps and hands back what it is given.
    return cast(JobRecord, ("job", number))


# -- the count ----------------------------------------------------------


class Clock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def finish(ahead: FetchAhead, clock: Clock, jobs: int, every: float) -> None:
    """``jobs`` jobs finish, one every ``every`` seconds."""
    for _ in range(jobs):
        clock.now += every
        ahead.finished()


def test_nothing_is_fetched_ahead_before_a_job_has_finished() -> None:
    ahead = FetchAhead(workers=50, window=0.02, hold=0.5, clock=Clock())

    assert ahead.target() == 0
    assert ahead.limit(free=3) == 3
    assert ahead.limit(free=0) == 0


def test_the_count_follows_the_pace_at_which_jobs_finish() -> None:
    clock = Clock()
    ahead = FetchAhead(workers=50, window=0.02, hold=0.5, clock=clock)

    finish(ahead, clock, 500, every=0.0002)  # 5,000 a second
    assert ahead.target() == 50  # 100 in 20 ms, at most the workers

    finish(ahead, clock, 100, every=0.004)  # 250 a second
    assert ahead.target() == 5

    finish(ahead, clock, 10, every=0.5)  # 50 workers on 25 s jobs
    assert ahead.target() == 0


def test_short_jobs_beside_long_ones_are_fetched_ahead_at_their_pace() -> None:
    # 49 workers hold hour-long jobs; one runs a 10 ms job after another.
    clock = Clock()
    ahead = FetchAhead(workers=50, window=0.02, hold=0.5, clock=clock)

    finish(ahead, clock, 30, every=0.01)

    assert ahead.target() == 2


def test_the_count_falls_to_zero_once_jobs_stop_finishing() -> None:
    clock = Clock()
    ahead = FetchAhead(workers=8, window=0.02, hold=0.5, clock=clock)
    finish(ahead, clock, 100, every=0.001)
    assert ahead.target() == 8

    clock.now += 1.0

    assert ahead.target() == 0


def test_a_window_of_zero_turns_fetching_ahead_off() -> None:
    clock = Clock()
    ahead = FetchAhead(workers=8, window=0.0, hold=0.5, clock=clock)
    finish(ahead, clock, 100, every=0.0001)

    assert ahead.target() == 0
    assert ahead.limit(free=2) == 2


def test_a_fetch_is_due_once_half_the_jobs_ahead_are_taken() -> None:
    clock = Clock()
    ahead = FetchAhead(workers=10, window=1.0, hold=0.5, clock=clock)
    finish(ahead, clock, 1, every=0.01)
    assert ahead.limit(free=0) == 10

    ahead.keep([job(n) for n in range(10)])
    taken = [ahead.take() for _ in range(4)]
    assert taken == [job(0), job(1), job(2), job(3)]
    assert ahead.limit(free=0) == 0  # 4 missing of 10: not yet
    ahead.take()
    assert ahead.limit(free=0) == 5
    # Free workers are always fetched for.
    assert ahead.limit(free=2) == 7


def test_jobs_held_too_long_are_given_up_and_fetching_ahead_pauses() -> None:
    clock = Clock()
    ahead = FetchAhead(workers=4, window=1.0, hold=0.3, clock=clock)
    finish(ahead, clock, 1, every=0.01)
    ahead.keep([job(1), job(2)])
    assert not ahead.overdue()
    assert ahead.seconds_to_overdue() == pytest.approx(0.3)

    clock.now += 0.5

    assert ahead.overdue()
    assert ahead.seconds_to_overdue() == 0.0
    assert ahead.give_up() == [job(1), job(2)]
    assert not ahead
    assert ahead.seconds_to_overdue() is None
    assert ahead.target() == 0
    finish(ahead, clock, 1, every=0.01)  # a worker freed up
    assert ahead.target() == 4


def test_jobs_changed_elsewhere_are_dropped() -> None:
    clock = Clock()
    ahead = FetchAhead(workers=4, window=1.0, hold=0.5, clock=clock)
    records = [
        cast(JobRecord, type("Job", (), {"id": n})()) for n in (1, 2, 3)
    ]
    ahead.keep(records)

    assert ahead.drop({2, 9}) == [records[1]]
    assert [ahead.take(), ahead.take(), ahead.take()] == [
        records[0],
        records[2],
        None,
    ]


# -- the server ---------------------------------------------------------


def server(storage: Storage, **options: Any) -> Server:
    return Server(storage, **{**FAST, **options})


def count_limits(storage: Storage) -> list[int]:
    """Note the ``limit`` of every fetch the server makes."""
    limits: list[int] = []
    combined = storage.apply_changes_and_fetch

    async def counting(
        changes: Any, name: str, queues: Any, limit: int, now: Any
    ) -> Any:
        limits.append(limit)
        return await combined(changes, name, queues, limit, now)

    storage.apply_changes_and_fetch = counting  # type: ignore[method-assign]
    return limits


async def test_short_jobs_are_fetched_for_busy_workers_too(
    storage: Storage, client: Client
) -> None:
    await client.enqueue_many(
        [Call(job_samples.async_record, n) for n in range(100)]
    )
    limits = count_limits(storage)

    await server(storage, concurrency=2).run(until_empty=True)

    counts = await client.counts()
    assert counts.by_state[S.SUCCEEDED] == 100
    assert sorted(v for _, v in job_samples.calls) == list(range(100))
    assert max(limits) > 2, limits


async def put_back(client: Client, job_id: int) -> bool:
    """Whether the job went to processing and came back to enqueued."""
    job = await client.get(job_id)
    return job.state is S.ENQUEUED and len(job.history) > 2


@contextlib.asynccontextmanager
async def busy_worker_and_one_fetched_ahead(
    storage: Storage, client: Client, **tuning: Any
) -> AsyncIterator[tuple[int, int]]:
    """One worker busy with a job that waits for its token, and one more
    job fetched ahead for it; yields their ids (busy, fetched ahead).

    The server runs while the caller's block does; a first finished job
    makes the next ones count as short, so they are fetched ahead.
    """
    first = await client.enqueue(job_samples.async_noop)
    async with server(storage, concurrency=1, fetch_ahead=10.0, **tuning):
        await eventually(lambda: state_is(client, first, S.SUCCEEDED))
        busy, waiting = await client.enqueue_many(
            [
                Call(job_samples.wait_for_token, "long"),
                Call(job_samples.async_record, "after"),
            ]
        )
        await asyncio.to_thread(job_samples.event("long:started").wait, 10)
        yield busy, waiting


async def test_jobs_fetched_ahead_go_back_when_no_worker_frees_up(
    storage: Storage, client: Client
) -> None:
    async with busy_worker_and_one_fetched_ahead(storage, client) as (
        long_id,
        waiting,
    ):
        # Enqueued at first too: wait for its way back, not its state.
        await eventually(lambda: put_back(client, waiting))

        job = await client.get(waiting)
        assert [e.state for e in job.history] == [
            S.ENQUEUED,
            S.PROCESSING,
            S.ENQUEUED,
        ]
        assert job.reason == "fetched ahead, but no worker freed up in time"
        assert ("async_record", "after") not in job_samples.calls
        # Not fetched ahead again while the worker stays busy.
        await asyncio.sleep(5 * FAST["poll_interval"])
        assert len((await client.get(waiting)).history) == 3
        assert await state_is(client, long_id, S.PROCESSING)


async def test_jobs_fetched_ahead_go_back_when_the_server_stops(
    storage: Storage, client: Client
) -> None:
    async with busy_worker_and_one_fetched_ahead(
        storage, client, poll_interval=30.0
    ) as (_, waiting):
        await eventually(lambda: state_is(client, waiting, S.PROCESSING))

    job = await client.get(waiting)
    assert job.state is S.ENQUEUED
    assert job.reason == "server stopping"
    assert ("async_record", "after") not in job_samples.calls


async def test_a_job_deleted_while_fetched_ahead_never_starts(
    storage: Storage, client: Client
) -> None:
    async with busy_worker_and_one_fetched_ahead(
        storage, client, poll_interval=30.0
    ) as (long_id, waiting):
        await eventually(lambda: state_is(client, waiting, S.PROCESSING))

        await client.delete(waiting)
        # The worker frees up: the deleted job must not be its next one.
        await client.delete(long_id)
        await eventually(lambda: state_is(client, long_id, S.DELETED))
        later = await client.enqueue(job_samples.async_record, "later")
        await eventually(lambda: state_is(client, later, S.SUCCEEDED))

    assert ("async_record", "after") not in job_samples.calls
    assert (await client.get(waiting)).state is S.DELETED


class LateAborts:
    """Holds back the :class:`JobsAborted` a server hears, while told to.

    As PostgreSQL's NOTIFY from another process can: it comes on a
    connection of its own, and may reach the server after the server's
    next fetch has returned.
    """

    def __init__(self, storage: Storage) -> None:
        self.holding = False
        self._late: list[tuple[Listener, Notification]] = []
        subscribe = storage.subscribe

        def holding_back(listener: Listener) -> Callable[[], None]:
            def hear(notification: Notification) -> None:
                if self.holding and isinstance(notification, JobsAborted):
                    self._late.append((listener, notification))
                else:
                    listener(notification)

            return subscribe(hear)

        storage.subscribe = holding_back  # type: ignore[method-assign]

    def release(self) -> int:
        """Deliver what was held back; return how many notifications."""
        self.holding = False
        late, self._late = self._late, []
        for listener, notification in late:
            listener(notification)
        return len(late)


def gate_fetches(storage: Storage) -> asyncio.Event:
    """Make the server's fetches wait until the event returned is set."""
    gate = asyncio.Event()
    gate.set()
    combined = storage.apply_changes_and_fetch

    async def gated(*args: Any) -> Any:
        await gate.wait()
        return await combined(*args)

    storage.apply_changes_and_fetch = gated  # type: ignore[method-assign]
    return gate


async def test_a_late_notice_about_an_earlier_run_does_not_strand_the_job(
    storage: Storage, client: Client
) -> None:
    # Another server held the job; it was requeued (as from the
    # dashboard, or recovered after that server died) and this server
    # fetched it ahead before the notice of the requeue reached it.
    now = datetime.now(UTC)
    await storage.announce_server(
        ServerInfo("other:1", ("default",), 1, now, now)
    )
    moved = await client.enqueue(job_samples.async_record, "moved")
    (taken,) = await storage.fetch("other:1", ["default"], 1, now)
    assert taken.id == moved
    late = LateAborts(storage)
    gate = gate_fetches(storage)
    # No reconcile pass within the test: a stranded job stays stranded.
    async with server(
        storage, concurrency=1, fetch_ahead=10.0, dead_after=120.0
    ) as running:
        gate.clear()
        late.holding = True
        first, long_id = await client.enqueue_many(
            [
                Call(job_samples.async_noop),
                Call(job_samples.wait_for_token, "long"),
            ]
        )
        await client.requeue(moved)
        # The queue: first, long, moved. The first job finishes, so the
        # next fetch takes one job for the worker and one ahead.
        gate.set()
        await asyncio.to_thread(job_samples.event("long:started").wait, 10)
        held = await storage.held_jobs(running.name)
        assert set(held) == {long_id, moved}, "moved was not fetched ahead"
        assert late.release() == 1

        await client.delete(long_id)
        await eventually(
            lambda: state_is(client, moved, S.SUCCEEDED),
            within=10,
            what="the job fetched ahead to run",
        )

    assert job_samples.calls.count(("async_record", "moved")) == 1
    job = await client.get(moved)
    assert [(e.state, e.reason) for e in job.history][1:4] == [
        (S.PROCESSING, "fetched by other:1"),
        (S.ENQUEUED, "requeued"),
        (S.PROCESSING, f"fetched by {running.name}"),
    ]
    assert await state_is(client, first, S.SUCCEEDED)
