"""Mutexes across several servers on one storage."""

from __future__ import annotations

import coordination_samples as samples
import pytest
from coordination_helpers import servers, shared, storage_url
from server_helpers import eventually

from backburner.jobs import Call, Client, JobOptions, JobState, Mutex, mutex
from backburner.jobs.mutex import mutex_of

__all__ = ["shared", "storage_url"]

pytestmark = pytest.mark.timeout(120)
S = JobState


@pytest.fixture(autouse=True)
def fresh() -> None:
    samples.reset()


async def all_succeeded(client: Client, total: int) -> bool:
    return (await client.counts()).by_state[S.SUCCEEDED] == total


async def test_a_declared_mutex_runs_one_job_at_a_time_on_all_servers(
    storage_url: str, shared: Client
) -> None:
    await shared.enqueue_many(
        [Call(samples.exclusive, "x") for _ in range(12)]
        + [Call(samples.hold, "free") for _ in range(12)]
    )

    async with servers(storage_url, 3):
        await eventually(
            lambda: all_succeeded(shared, 24), what="every job to run"
        )

    assert samples.runs == {"x": 12, "free": 12}
    assert samples.most_at_once["x"] == 1
    # Waiting for the mutex is neither a failure nor a retry.
    for job in (await shared.list_jobs(limit=100)).jobs:
        assert job.attempt == 1


async def test_a_limit_of_two_per_key_from_the_arguments(
    storage_url: str, shared: Client
) -> None:
    calls = [
        Call(samples.per_tenant, tenant, f"t{tenant}")
        for tenant in ("a", "b")
        for _ in range(10)
    ]
    ids = await shared.enqueue_many(calls)
    assert (await shared.get(ids[0])).mutex == "tenant:a"

    async with servers(storage_url, 2):
        await eventually(
            lambda: all_succeeded(shared, 20), what="every job to run"
        )

    assert samples.runs == {"ta": 10, "tb": 10}
    assert samples.most_at_once["ta"] <= 2
    assert samples.most_at_once["tb"] <= 2


async def test_options_set_a_mutex_and_win_over_the_declaration(
    storage_url: str, shared: Client
) -> None:
    options = JobOptions(mutex="shared", mutex_limit=1)
    await shared.enqueue_many(
        [Call(samples.hold, "s") for _ in range(8)], options
    )
    job_id = await shared.enqueue_with(
        JobOptions(mutex="mine", mutex_limit=3), samples.exclusive, "y"
    )
    assert (await shared.get(job_id)).mutex == "mine"

    async with servers(storage_url, 2):
        await eventually(
            lambda: all_succeeded(shared, 9), what="every job to run"
        )

    assert samples.most_at_once["s"] == 1


async def test_a_deleted_holder_lets_the_next_job_run(
    storage_url: str, shared: Client
) -> None:
    options = JobOptions(mutex="slot")
    first = await shared.enqueue_with(options, samples.wait_release, "first")
    second = await shared.enqueue_with(options, samples.note, "second")

    async with servers(storage_url, 2):
        await eventually(samples.reported.is_set, what="the holder")
        assert (await shared.get(second)).state is S.ENQUEUED
        await shared.delete(first)

        async def second_done() -> bool:
            return (await shared.get(second)).state is S.SUCCEEDED

        await eventually(second_done, what="the waiting job")
        samples.release.set()


def test_a_mutex_needs_a_key_and_a_positive_limit() -> None:
    with pytest.raises(ValueError, match="mutex"):
        mutex("")
    with pytest.raises(ValueError, match="at least 1"):
        mutex("k", limit=0)
    with pytest.raises(ValueError, match="mutex_limit"):
        JobOptions(mutex="k", mutex_limit=0)
    assert mutex_of(samples.exclusive) == Mutex("one-at-a-time", 1)
    assert mutex_of(samples.note) is None
