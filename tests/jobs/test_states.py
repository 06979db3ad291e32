"""The state machine's table against what the storages really do."""

from __future__ import annotations

import itertools

import coordination_samples as samples
import pytest
from coordination_helpers import servers, shared, storage_url
from server_helpers import eventually

from backburner.jobs import Client, ContinueOn, JobState, states

__all__ = ["shared", "storage_url"]

S = JobState
CREATED_IN = {S.ENQUEUED, S.SCHEDULED, S.AWAITING}


@pytest.fixture(autouse=True)
def fresh() -> None:
    samples.reset()


async def settle(client: Client, *job_ids: int) -> None:
    """Wait until none of ``job_ids`` is waiting to run or running."""

    async def settled() -> bool:
        for job_id in job_ids:
            state = (await client.get(job_id)).state
            if state in {S.ENQUEUED, S.SCHEDULED, S.PROCESSING}:
                return False
        return True

    await eventually(settled, what="the jobs to settle")


@pytest.mark.timeout(90)
async def test_every_move_the_storage_makes_is_in_the_table(
    storage_url: str, shared: Client
) -> None:
    parent = await shared.enqueue(samples.note, "parent")
    child = await shared.continue_with(parent, samples.note, "child")
    fails = await shared.continue_with(parent, samples.explode, "fails")
    failing = await shared.enqueue(samples.explode, "failing")
    on_failure = await shared.continue_with_options(
        failing, ContinueOn.FAILED, None, samples.note, "on-failure"
    )
    later = await shared.schedule(0.2, samples.note, "later")
    jobs = (parent, child, fails, failing, on_failure, later)

    async with servers(storage_url, 1):
        await settle(shared, *jobs)
        # A parent put back re-arms its finished continuations, whatever
        # their final state: each waits for it again, then runs again.
        await shared.delete(child)
        await shared.requeue(parent)
        await settle(shared, *jobs)
        await shared.requeue(failing)
        await settle(shared, *jobs)
        await shared.delete(child)
        await shared.requeue(child)
        await settle(shared, *jobs)

    moves = set()
    for job_id in jobs:
        history = [entry.state for entry in (await shared.get(job_id)).history]
        assert history[0] in CREATED_IN
        moves |= set(itertools.pairwise(history))
    finals = (S.SUCCEEDED, S.FAILED, S.DELETED)
    rearmed = {(final, S.AWAITING) for final in finals}
    assert rearmed <= moves
    not_in_table = {
        (source, target)
        for source, target in moves
        if not states.can_move(source, target)
    }
    assert not_in_table == set()
