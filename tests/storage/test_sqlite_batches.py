"""SQLite applies a batch of changes in a few statements, as one by one.

A batch of distinct jobs without unique keys or continuations takes the
batched path; these tests hold it to what each change alone would do.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backburner.storage.base import (
    ChangeOutcome,
    JobState,
    NewJob,
    ServerInfo,
    StateChange,
)
from backburner.storage.sqlite import SQLiteStorage

S = JobState
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(seconds=5)
pytestmark = pytest.mark.timeout(60)


def new_job(unique_key: str | None = None) -> NewJob:
    return NewJob(
        function="app.jobs:send",
        arguments='{"args":[],"kwargs":{}}',
        queue="default",
        state=S.ENQUEUED,
        reason="created",
        created_at=T0,
        unique_key=unique_key,
    )


def change(
    job_id: int,
    to_state: JobState,
    from_state: JobState,
    version: int | None = None,
) -> StateChange:
    return StateChange(
        job_id=job_id,
        to_state=to_state,
        from_states=frozenset({from_state}),
        reason=f"to {to_state.value}",
        at=T1,
        expected_version=version,
        data={"step": to_state.value},
        expires_at=T1 if to_state is S.SUCCEEDED else None,
    )


async def test_a_mixed_batch_applies_and_refuses_as_one_by_one(
    tmp_path: Path,
) -> None:
    storage = SQLiteStorage(str(tmp_path / "jobs.db"))
    try:
        await storage.announce_server(
            ServerInfo("s1", ("default",), 4, T0, T0)
        )
        a, b, c, d, e = await storage.create_jobs([new_job()] * 5)
        await storage.fetch("s1", ["default"], 3, T0)  # a, b, c

        outcomes = await storage.apply_changes(
            [
                change(a, S.SUCCEEDED, S.PROCESSING, version=2),
                change(b, S.SUCCEEDED, S.PROCESSING, version=1),  # stale
                change(c, S.ENQUEUED, S.PROCESSING),
                change(d, S.SUCCEEDED, S.PROCESSING),  # still enqueued
                change(e, S.DELETED, S.ENQUEUED),
                change(999, S.DELETED, S.ENQUEUED),  # no such job
            ]
        )
        states = await storage.job_states([a, b, c, d, e])
        histories = [
            [(h.state, h.data) for h in await storage.get_history(job_id)]
            for job_id in (a, c, e)
        ]
        counts = {
            (count.state, count.queue): count.count
            for count in await storage.counts()
        }
        requeued = await storage.fetch("s1", ["default"], 10, T1)
    finally:
        await storage.close()

    assert outcomes == [
        ChangeOutcome(a, True, S.PROCESSING),
        ChangeOutcome(b, False, S.PROCESSING),
        ChangeOutcome(c, True, S.PROCESSING),
        ChangeOutcome(d, False, S.ENQUEUED),
        ChangeOutcome(e, True, S.ENQUEUED),
        ChangeOutcome(999, False, None),
    ]
    assert {job_id: state for job_id, (state, _) in states.items()} == {
        a: S.SUCCEEDED,
        b: S.PROCESSING,
        c: S.ENQUEUED,
        d: S.ENQUEUED,
        e: S.DELETED,
    }
    assert histories == [
        [
            (S.ENQUEUED, {}),
            (S.PROCESSING, {"server": "s1"}),
            (S.SUCCEEDED, {"step": "succeeded"}),
        ],
        [
            (S.ENQUEUED, {}),
            (S.PROCESSING, {"server": "s1"}),
            (S.ENQUEUED, {"step": "enqueued"}),
        ],
        [(S.ENQUEUED, {}), (S.DELETED, {"step": "deleted"})],
    ]
    assert counts == {
        (S.SUCCEEDED, "default"): 1,
        (S.PROCESSING, "default"): 1,
        (S.ENQUEUED, "default"): 2,
        (S.DELETED, "default"): 1,
    }
    # The requeued job went behind the one that was still waiting.
    assert [record.id for record in requeued] == [d, c]


async def test_a_batch_with_a_unique_key_keeps_the_order_of_its_changes(
    tmp_path: Path,
) -> None:
    storage = SQLiteStorage(str(tmp_path / "jobs.db"))
    try:
        holder, other = await storage.create_jobs([new_job("key"), new_job()])
        await storage.apply_change(change(holder, S.DELETED, S.ENQUEUED))
        waiting = await storage.create_job(new_job("key"))

        # Deleting the new holder first frees the key for the requeue.
        outcomes = await storage.apply_changes(
            [
                change(waiting, S.DELETED, S.ENQUEUED),
                change(holder, S.ENQUEUED, S.DELETED),
                change(other, S.DELETED, S.ENQUEUED),
            ]
        )
    finally:
        await storage.close()

    assert [outcome.applied for outcome in outcomes] == [True, True, True]
