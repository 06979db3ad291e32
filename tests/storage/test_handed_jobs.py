"""The hand-offs a PostgreSQL storage keeps for its servers' fetches."""

from __future__ import annotations

from datetime import UTC, datetime

from backburner.storage.base import JobId, JobRecord
from backburner.storage.postgres.handoffs import (
    DROPPED_REMEMBERED,
    HandedJobs,
    handed_record,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def record(job_id: int) -> JobRecord:
    return handed_record(
        "s1", JobId(job_id), "default", "app:f", "[]", T0, None
    )


def test_a_hand_off_heard_after_its_job_was_dropped_is_refused() -> None:
    handed = HandedJobs()
    handed.add("s1", JobId(1), record(1))
    handed.drop([JobId(1), JobId(2)])

    # Job 2's notice comes in late: its job was put back meanwhile.
    handed.add("s1", JobId(2), record(2))
    handed.add("s1", JobId(3), record(3))

    assert [job_id for job_id, _ in handed.take("s1", 10)] == [3]


def test_only_the_latest_dropped_ids_are_remembered() -> None:
    handed = HandedJobs()
    handed.drop(JobId(n) for n in range(DROPPED_REMEMBERED + 1))

    handed.add("s1", JobId(0), None)
    handed.add("s1", JobId(1), None)

    assert [job_id for job_id, _ in handed.take("s1", 10)] == [0]
