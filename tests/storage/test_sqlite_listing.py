"""SQLite lists a queue's jobs in every state through an index.

No index leads with the queue alone: the page merges the newest jobs of
each state. It must page like a plain ``ORDER BY id DESC`` and never
scan the jobs table.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backburner.storage.base import JobState, NewJob, StateChange
from backburner.storage.sqlite import SQLiteStorage
from backburner.storage.sqlite.storage import _page, _queue_page

S = JobState
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
pytestmark = pytest.mark.timeout(60)


def new_job(queue: str) -> NewJob:
    return NewJob(
        function="app.jobs:send",
        arguments="[]",
        queue=queue,
        state=S.ENQUEUED,
        reason="",
        created_at=T0,
    )


def delete(job_id: int) -> StateChange:
    return StateChange(
        job_id=job_id,
        to_state=S.DELETED,
        from_states=frozenset({S.ENQUEUED}),
        reason="deleted",
        at=T0,
    )


async def test_a_queue_pages_newest_first_across_states(
    tmp_path: Path,
) -> None:
    storage = SQLiteStorage(str(tmp_path / "jobs.db"))
    try:
        ids = await storage.create_jobs(
            [new_job("x" if n % 3 else "y") for n in range(40)]
        )
        await storage.apply_changes([delete(i) for i in ids if i % 4 == 0])
        pages = []
        before = None
        while True:
            page = await storage.list_jobs(queue="x", before=before, limit=6)
            if not page:
                break
            pages.append(page)
            before = page[-1].id
    finally:
        await storage.close()

    in_x = [n for n, i in enumerate(ids) if n % 3]
    listed = [record.id for page in pages for record in page]
    assert listed == sorted((ids[n] for n in in_x), reverse=True)
    assert {record.state for page in pages for record in page} == {
        S.ENQUEUED,
        S.DELETED,
    }
    assert all(len(page) == 6 for page in pages[:-1])


async def plan_of(tmp_path: Path, sql: str, params: list[object]) -> list[str]:
    path = tmp_path / "jobs.db"
    storage = SQLiteStorage(str(path))
    await storage.migrate()
    await storage.close()
    with sqlite3.connect(path) as conn:
        return [
            row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        ]


@pytest.mark.parametrize("function", [None, "app.jobs:send"])
async def test_the_queue_page_reads_only_through_the_index(
    tmp_path: Path, function: str | None
) -> None:
    sql, params = _queue_page("x", function, 100, 50)

    plan = await plan_of(tmp_path, sql, params)

    searches = [step for step in plan if step.startswith("SEARCH jobs")]
    assert len(searches) == len(JobState)
    assert all("jobs_by_state_queue" in step for step in searches)
    assert not any(step.startswith("SCAN jobs") for step in plan)


async def test_a_page_by_state_and_function_reads_the_state_index(
    tmp_path: Path,
) -> None:
    # The function is checked on the rows of the state, newest first:
    # no index of its own, and no scan of the other states' jobs.
    sql, params = _page(S.FAILED, None, "app.jobs:send", 100, 50)

    plan = await plan_of(tmp_path, sql, params)

    assert len(plan) == 1
    assert plan[0].startswith("SEARCH jobs USING INDEX jobs_by_state ")
