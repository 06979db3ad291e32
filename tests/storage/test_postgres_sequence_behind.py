"""A one-job enqueue on PostgreSQL when the jobs sequence is behind.

After a data-only restore, a manual ``setval`` or a logical-replication
switchover the sequence may hand out ids the table already holds. The
one-statement enqueue treats a row on its reserved id as its own
earlier try; it must check that the row really is its own, and never
answer with another job's id.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest

from backburner.storage import open_storage
from backburner.storage.base import JobState, NewJob, Storage, StorageError
from backburner.storage.postgres import spare_ids

Admin = Callable[..., list[tuple[object, ...]]]


def _job(function: str) -> NewJob:
    return NewJob(
        function=function,
        arguments="[[], {}]",
        queue="default",
        state=JobState.ENQUEUED,
        reason="enqueued",
        created_at=datetime.now(UTC),
    )


@pytest.fixture
async def storage(postgres_storage_url: str) -> AsyncIterator[Storage]:
    opened = open_storage(postgres_storage_url)
    await opened.migrate()
    try:
        yield opened
    finally:
        await opened.close()


async def test_an_id_taken_by_another_job_is_refused_not_returned(
    storage: Storage, admin: Admin, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No spare id survives: each enqueue reserves a fresh one.
    monkeypatch.setattr(spare_ids, "MAX_AGE", -1.0)
    (first,) = await asyncio.wait_for(
        storage.create_jobs([_job("app:charge_card")]), 10
    )
    admin(
        "SELECT setval(pg_get_serial_sequence('jobs', 'id'), %s, false)",
        first,
    )

    with pytest.raises(StorageError, match="already taken"):
        await asyncio.wait_for(
            storage.create_jobs([_job("app:send_receipt")]), 10
        )

    rows = admin("SELECT id, function FROM jobs ORDER BY id")
    assert rows == [(first, "app:charge_card")]


async def test_a_second_run_of_the_same_enqueue_finds_its_own_row(
    storage: Storage, admin: Admin, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As when the reply to the first run was lost and it is run again.
    job = _job("app:charge_card")
    (reserved,) = admin("SELECT nextval(pg_get_serial_sequence('jobs', 'id'))")
    taken = iter([int(str(reserved[0]))] * 2)
    spares = storage._spare_ids  # type: ignore[attr-defined]
    monkeypatch.setattr(spares, "take", lambda: next(taken))

    first = await asyncio.wait_for(storage.create_jobs([job]), 10)
    again = await asyncio.wait_for(storage.create_jobs([job]), 10)

    assert first == again
    assert admin("SELECT count(*) FROM jobs") == [(1,)]
