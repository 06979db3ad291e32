"""Unique keys through the client and under racing clients and servers."""

from __future__ import annotations

import asyncio

import coordination_samples as samples
import pytest
from coordination_helpers import servers, shared, storage_url
from server_helpers import eventually

from backburner.jobs import (
    Call,
    Client,
    JobOptions,
    JobState,
    SyncClient,
    UniqueKeyTakenError,
)
from backburner.storage import open_storage

__all__ = ["shared", "storage_url"]

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(autouse=True)
def fresh() -> None:
    samples.reset()


async def test_enqueueing_a_held_key_returns_the_holder(
    shared: Client,
) -> None:
    options = JobOptions(unique_key="report:7")
    first = await shared.enqueue_with(options, samples.note, "a")
    scheduled = await shared.enqueue_with(
        JobOptions(unique_key="later", delay=3600), samples.note, "b"
    )

    assert await shared.enqueue_with(options, samples.note, "c") == first
    assert (
        await shared.enqueue_with(
            JobOptions(unique_key="later"), samples.note, "d"
        )
        == scheduled
    )
    ids = await shared.enqueue_many(
        [Call(samples.note, "e"), Call(samples.note, "f")],
        JobOptions(unique_key="bulk"),
    )
    assert ids[0] == ids[1]
    job = await shared.get(first)
    assert job.unique_key == "report:7"
    assert (await shared.counts()).by_state[JobState.ENQUEUED] == 2


async def test_racing_clients_and_running_servers_keep_one_active_job(
    storage_url: str, shared: Client
) -> None:
    clients = [open_storage(storage_url) for _ in range(4)]
    options = JobOptions(unique_key="only-one")
    try:
        async with servers(storage_url, 2):
            for _ in range(5):
                # The job runs until every racing enqueue has returned:
                # a job that ended first would rightly let a later
                # enqueue create a new one.
                samples.release.clear()
                ids = await asyncio.gather(
                    *(
                        Client(storage).enqueue_with(
                            options, samples.hold_until_released, "k"
                        )
                        for storage in clients
                        for _ in range(3)
                    )
                )
                assert len(set(ids)) == 1
                samples.release.set()

                async def finished(job_id: int = ids[0]) -> bool:
                    job = await shared.get(job_id)
                    return job.state is JobState.SUCCEEDED

                await eventually(finished, what="the keyed job to finish")
    finally:
        for storage in clients:
            await storage.close()

    assert samples.runs["k"] == 5
    assert samples.most_at_once["k"] == 1


async def test_requeue_is_refused_while_another_job_holds_the_key(
    shared: Client,
) -> None:
    options = JobOptions(unique_key="k")
    old = await shared.enqueue_with(options, samples.note, "old")
    await shared.delete(old)
    new = await shared.enqueue_with(options, samples.note, "new")
    assert new != old

    with pytest.raises(UniqueKeyTakenError) as caught:
        await shared.requeue(old)

    assert caught.value.holder == new
    assert f"job {new} holds the same unique key" in str(caught.value)
    assert (await shared.get(old)).state is JobState.DELETED


@pytest.mark.parametrize("key", ["", "x" * 201])
def test_an_empty_or_long_key_is_refused(key: str) -> None:
    with pytest.raises(ValueError, match="unique key"):
        JobOptions(unique_key=key)


@pytest.mark.parametrize("key", ["a\x00b", "a\ud800b"])
def test_a_key_no_storage_can_hold_is_refused(key: str) -> None:
    # SQLite failed with a UnicodeEncodeError from deep in the driver.
    with pytest.raises(ValueError, match="NUL character or a lone"):
        JobOptions(unique_key=key)
    with pytest.raises(ValueError, match="NUL character or a lone"):
        JobOptions(mutex=key)


def test_the_sync_client_returns_the_holder(tmp_path: object) -> None:
    with SyncClient(f"sqlite:///{tmp_path}/jobs.db") as client:
        options = JobOptions(unique_key="k")
        first = client.enqueue_with(options, samples.note, "a")

        assert client.enqueue_with(options, samples.note, "b") == first
