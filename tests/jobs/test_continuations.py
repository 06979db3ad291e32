"""Continuations run by real servers, once each, under load and races."""

from __future__ import annotations

import asyncio
import time

import coordination_samples as samples
import pytest
from coordination_helpers import servers, shared, storage_url
from server_helpers import eventually

from backburner.jobs import (
    Call,
    Client,
    ContinueOn,
    JobNotFoundError,
    JobOptions,
    JobState,
)

__all__ = ["shared", "storage_url"]

S = JobState


@pytest.fixture(autouse=True)
def fresh() -> None:
    samples.reset()


async def states(client: Client, *ids: int) -> list[JobState]:
    return [(await client.get(job_id)).state for job_id in ids]


@pytest.mark.timeout(90)
async def test_each_trigger_fires_on_its_parent_state(
    storage_url: str, shared: Client
) -> None:
    good = await shared.enqueue(samples.note, "good")
    bad = await shared.enqueue(samples.explode, "bad")
    after_good = await shared.continue_with(good, samples.note, "after-good")
    after_bad = await shared.continue_with_options(
        bad, ContinueOn.FAILED, None, samples.note, "after-bad"
    )
    any_bad = await shared.continue_with_options(
        bad, "finished", JobOptions(queue="default"), samples.note, "any"
    )
    never = await shared.continue_with(bad, samples.note, "never")
    assert (await shared.get(after_good)).state is S.AWAITING

    async with servers(storage_url, 1):

        async def settled() -> bool:
            found = await states(shared, after_good, after_bad, any_bad)
            return found == [S.SUCCEEDED] * 3

        await eventually(settled, what="the continuations to run")

    assert (await shared.get(never)).state is S.AWAITING
    assert sorted(samples.order) == [
        "after-bad",
        "after-good",
        "any",
        "good",
    ]
    assert samples.order.index("good") < samples.order.index("after-good")
    history = (await shared.get(after_good)).history
    assert history[1].reason == f"parent job {good} succeeded"


async def test_deleting_a_parent_runs_on_deleted_and_drops_the_rest(
    shared: Client,
) -> None:
    parent = await shared.enqueue(samples.note, "p")
    on_deleted = await shared.continue_with_options(
        parent, ContinueOn.DELETED, None, samples.note, "d"
    )
    on_success = await shared.continue_with(parent, samples.note, "s")

    await shared.delete(parent)

    assert await states(shared, on_deleted, on_success) == [
        S.ENQUEUED,
        S.DELETED,
    ]


async def test_a_continuation_of_a_missing_job_is_refused(
    shared: Client,
) -> None:
    with pytest.raises(JobNotFoundError):
        await shared.continue_with(424242, samples.note, "x")
    with pytest.raises(ValueError, match="runs on one of"):
        await shared.continue_with_options(1, "sometimes", None, samples.note)
    with pytest.raises(ValueError, match="scheduled"):
        await shared.continue_with_options(
            1, "succeeded", JobOptions(delay=5), samples.note
        )
    with pytest.raises(ValueError, match="unique key"):
        await shared.continue_with_options(
            1, "succeeded", JobOptions(unique_key="k"), samples.note
        )

    assert (await shared.list_jobs()).jobs == []


@pytest.mark.timeout(90)
async def test_requeueing_a_parent_runs_its_continuation_again(
    storage_url: str, shared: Client
) -> None:
    parent = await shared.enqueue(samples.note, "parent")
    child = await shared.continue_with(parent, samples.note, "child")

    async with servers(storage_url, 1):

        async def child_ran(times: int) -> bool:
            job = await shared.get(child)
            return (
                job.state is S.SUCCEEDED and samples.runs.get("child") == times
            )

        await eventually(lambda: child_ran(1), what="the first run")
        await shared.requeue(parent)
        await eventually(lambda: child_ran(2), what="the second run")

    assert samples.runs == {"parent": 2, "child": 2}


async def drain_parents(
    storage_url: str, shared: Client, parents: int
) -> None:
    started = time.monotonic()
    ids = await shared.enqueue_many(
        [Call(samples.note, f"p{index}") for index in range(parents)]
    )
    children = [
        await shared.continue_with(parent, samples.note, f"c{index}")
        for index, parent in enumerate(ids)
    ]

    async with servers(storage_url, 3, concurrency=8):

        async def all_done() -> bool:
            counts = (await shared.counts()).by_state
            return counts[S.SUCCEEDED] == 2 * parents

        await eventually(all_done, within=240, what="every job to finish")

    counts = (await shared.counts()).by_state
    assert counts[S.AWAITING] == 0
    assert counts[S.SUCCEEDED] == 2 * parents
    # Exactly once: each continuation ran once, after its own parent.
    assert all(samples.runs[f"c{index}"] == 1 for index in range(parents))
    assert len(samples.order) == 2 * parents
    for index in (0, parents // 2, parents - 1):
        child = await shared.get(children[index])
        assert [e.state for e in child.history] == [
            S.AWAITING,
            S.ENQUEUED,
            S.PROCESSING,
            S.SUCCEEDED,
        ]
        order = samples.order
        assert order.index(f"p{index}") < order.index(f"c{index}")
    assert time.monotonic() - started < 600


@pytest.mark.timeout(120)
async def test_two_hundred_parents_fire_every_continuation_once(
    storage_url: str, shared: Client
) -> None:
    await drain_parents(storage_url, shared, 200)


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_a_thousand_parents_fire_every_continuation_once(
    storage_url: str, shared: Client
) -> None:
    await drain_parents(storage_url, shared, 1000)


@pytest.mark.timeout(90)
async def test_continuations_added_while_parents_finish_never_stay_awaiting(
    storage_url: str, shared: Client
) -> None:
    parents = await shared.enqueue_many(
        [Call(samples.note, f"p{index}") for index in range(60)]
    )

    async with servers(storage_url, 2):
        children = await asyncio.gather(
            *(
                shared.continue_with(parent, samples.note, f"c{index}")
                for index, parent in enumerate(parents)
            )
        )

        async def all_done() -> bool:
            found = await states(shared, *children)
            return all(state is S.SUCCEEDED for state in found)

        await eventually(all_done, what="every continuation to run")

    assert all(samples.runs[f"c{index}"] == 1 for index in range(60))


async def test_links_tell_a_continuation_its_parent_and_trigger(
    shared: Client,
) -> None:
    parent = await shared.enqueue(samples.note, "p")
    child = await shared.continue_with_options(
        parent, ContinueOn.FAILED, None, samples.note, "c"
    )

    links = await shared.continuation_links(child)
    parents_links = await shared.continuation_links(parent)

    assert (links.parent_id, links.on) == (parent, ContinueOn.FAILED)
    assert links.continuations == ()
    assert parents_links.parent_id is None
    assert parents_links.continuations == ((child, ContinueOn.FAILED),)
