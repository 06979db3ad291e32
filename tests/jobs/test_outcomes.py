"""The outcome writer: changes written in batches, callers told after."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import job_samples
import pytest
from server_helpers import client, fresh_samples, storage

from backburner.jobs import Client, JobState, states
from backburner.jobs.outcomes import OutcomeWriter
from backburner.storage import ChangeOutcome, Storage

__all__ = ["client", "fresh_samples", "storage"]

pytestmark = pytest.mark.timeout(30)


async def test_callbacks_are_told_each_outcome_even_when_one_fails(
    storage: Storage, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    ids = [await client.enqueue(job_samples.noop) for _ in range(3)]
    now = datetime.now(UTC)
    told: list[ChangeOutcome | None] = []
    all_told = asyncio.Event()

    def broken(outcome: ChangeOutcome | None) -> None:
        raise RuntimeError("a bug in the caller")

    def note(outcome: ChangeOutcome | None) -> None:
        told.append(outcome)
        if len(told) == 2:
            all_told.set()

    writer = OutcomeWriter(storage, window=0.01)
    writer.start()
    try:
        for job_id, then in zip(ids, (note, broken, note), strict=True):
            change = states.delete(job_id, now, "gone", timedelta(days=1))
            writer.submit_then(change, then)
        await asyncio.wait_for(all_told.wait(), 10)
    finally:
        await writer.close()

    assert [outcome.job_id for outcome in told if outcome] == [ids[0], ids[2]]
    assert all(outcome and outcome.applied for outcome in told)
    for job_id in ids:
        assert (await client.get(job_id)).state is JobState.DELETED
    failed = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [getattr(r, "event", None) for r in failed] == [
        "server.outcome_callback_failed"
    ]


async def test_a_stopped_writer_tells_none_at_once(
    storage: Storage, client: Client
) -> None:
    job_id = await client.enqueue(job_samples.noop)
    writer = OutcomeWriter(storage, window=0)
    writer.start()
    await writer.close()
    told: list[ChangeOutcome | None] = []

    change = states.delete(
        job_id, datetime.now(UTC), "gone", timedelta(days=1)
    )
    writer.submit_then(change, told.append)

    assert told == [None]
    assert (await client.get(job_id)).state is JobState.ENQUEUED


async def test_a_batch_due_during_a_fetch_waits_for_it_and_rides_along(
    storage: Storage, client: Client
) -> None:
    job_id = await client.enqueue(job_samples.noop)
    fetching = asyncio.Lock()
    writes: list[int] = []
    apply_changes = storage.apply_changes

    async def counting(changes: Any) -> Any:
        writes.append(len(changes))
        return await apply_changes(changes)

    storage.apply_changes = counting  # type: ignore[method-assign]
    told: list[ChangeOutcome | None] = []
    writer = OutcomeWriter(storage, window=0.001, fetching=fetching)
    writer.start()
    try:
        async with fetching:  # a fetch in flight
            change = states.delete(
                job_id, datetime.now(UTC), "gone", timedelta(days=1)
            )
            writer.submit_then(change, told.append)
            await asyncio.sleep(0.05)  # the window ends meanwhile
            assert writes == []
            # The next fetch takes the change along, as the server does.
            batch = writer.take()
        outcomes = await storage.apply_changes([c for c, _ in batch])
        writer.settle(batch, outcomes)
    finally:
        await writer.close()

    assert writes == [1]  # the fetch's write, none of the writer's own
    assert [outcome.applied for outcome in told if outcome] == [True]
