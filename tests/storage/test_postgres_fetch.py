"""PostgreSQL only: fetching under contention, and the query plans."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest

from backburner.storage import (
    JobState,
    NewJob,
    ServerInfo,
    StateChange,
    open_storage,
)
from backburner.storage.postgres import PostgresStorage
from backburner.storage.postgres.queries import query

pytestmark = pytest.mark.postgres

Admin = Callable[..., list[tuple[object, ...]]]

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def new_job(queue: str = "default") -> NewJob:
    return NewJob(
        function="app.jobs:send",
        arguments='{"args":[],"kwargs":{}}',
        queue=queue,
        state=JobState.ENQUEUED,
        reason="enqueued",
        created_at=T0,
    )


async def announce(storage: PostgresStorage, name: str) -> None:
    await storage.announce_server(ServerInfo(name, ("default",), 4, T0, T0))


@pytest.fixture
async def storages(
    postgres_storage_url: str,
) -> AsyncIterator[list[PostgresStorage]]:
    """Four storages on one schema: four pools, as four servers have."""
    opened = [open_storage(postgres_storage_url) for _ in range(4)]
    assert all(isinstance(s, PostgresStorage) for s in opened)
    typed = [s for s in opened if isinstance(s, PostgresStorage)]
    await typed[0].migrate()
    try:
        yield typed
    finally:
        for storage in typed:
            await storage.close()


async def test_concurrent_fetches_from_many_connections_hand_out_each_job_once(
    storages: list[PostgresStorage],
) -> None:
    ids = await storages[0].create_jobs([new_job() for _ in range(400)])
    for index, storage in enumerate(storages):
        await announce(storage, f"server:{index}")

    async def drain(storage: PostgresStorage, name: str) -> list[int]:
        taken: list[int] = []
        while batch := await storage.fetch(name, ["default"], 5, T0):
            taken.extend(record.id for record in batch)
        return taken

    # Three fetch loops per storage: twelve connections competing.
    results = await asyncio.gather(
        *(
            drain(storage, f"server:{index}")
            for index, storage in enumerate(storages)
            for _ in range(3)
        )
    )

    taken = [job_id for result in results for job_id in result]
    assert sorted(taken) == ids
    counts = {(c.state, c.queue): c.count for c in await storages[0].counts()}
    assert counts == {(JobState.PROCESSING, "default"): 400}
    histories = await asyncio.gather(
        *(storages[0].get_history(job_id) for job_id in ids[:20])
    )
    for history in histories:
        assert [h.state for h in history] == [
            JobState.ENQUEUED,
            JobState.PROCESSING,
        ]


async def test_fetches_racing_deletes_never_hand_out_a_deleted_job(
    storages: list[PostgresStorage],
) -> None:
    ids = await storages[0].create_jobs([new_job() for _ in range(200)])
    await announce(storages[1], "server:1")
    doomed = ids[::2]

    async def delete_all() -> None:
        for start in range(0, len(doomed), 10):
            await storages[0].apply_changes(
                [
                    StateChange(
                        job_id=job_id,
                        to_state=JobState.DELETED,
                        from_states=frozenset({JobState.ENQUEUED}),
                        reason="deleted",
                        at=T0,
                    )
                    for job_id in doomed[start : start + 10]
                ]
            )

    async def drain() -> list[int]:
        taken: list[int] = []
        while batch := await storages[1].fetch("server:1", ["default"], 3, T0):
            taken.extend(record.id for record in batch)
        return taken

    taken, _ = await asyncio.gather(drain(), delete_all())

    states = await storages[0].job_states(ids)
    for job_id in taken:
        assert states[job_id][0] is JobState.PROCESSING
    for job_id in set(ids) - set(taken):
        assert states[job_id][0] is JobState.DELETED
    assert len(set(taken)) == len(taken)


async def test_servers_draining_queues_in_opposite_orders_never_deadlock(
    storages: list[PostgresStorage],
) -> None:
    ids = await storages[0].create_jobs(
        [new_job(queue) for queue in ("a", "b") * 150]
    )
    for index, storage in enumerate(storages):
        await announce(storage, f"server:{index}")

    async def work(index: int) -> list[int]:
        storage = storages[index]
        queues = ["a", "b"] if index % 2 else ["b", "a"]
        done: list[int] = []
        finished: list[StateChange] = []
        while True:
            outcomes, fetched = await storage.apply_changes_and_fetch(
                finished, f"server:{index}", queues, 4, T0
            )
            assert all(outcome.applied for outcome in outcomes)
            if not fetched:
                return done
            done.extend(record.id for record in fetched)
            finished = [
                StateChange(
                    job_id=record.id,
                    to_state=JobState.SUCCEEDED,
                    from_states=frozenset({JobState.PROCESSING}),
                    reason="succeeded",
                    at=T0,
                    expected_version=record.version,
                    from_worker=True,
                )
                for record in fetched
            ]

    results = await asyncio.gather(*(work(i) for i in range(4) for _ in "xy"))

    assert sorted(job_id for r in results for job_id in r) == ids
    counts = {(c.state, c.queue): c.count for c in await storages[0].counts()}
    assert counts == {
        (JobState.SUCCEEDED, "a"): 150,
        (JobState.SUCCEEDED, "b"): 150,
    }


async def test_polling_empty_queues_writes_nothing(
    storages: list[PostgresStorage],
) -> None:
    await announce(storages[0], "server:0")
    later = T0 + timedelta(minutes=1)

    empty = await storages[0].fetch("server:0", ("default",), 5, later)

    (server,) = await storages[0].list_servers()
    assert empty == []
    assert server.heartbeat_at == T0
    await storages[0].create_job(new_job())
    (fetched,) = await storages[0].fetch("server:0", ("default",), 5, later)
    (server,) = await storages[0].list_servers()
    assert server.heartbeat_at == later
    assert fetched.server == "server:0"


async def test_a_fetch_alone_moves_the_counters_and_nothing_for_a_ghost(
    storages: list[PostgresStorage],
) -> None:
    storage = storages[0]
    await storage.create_jobs([new_job(), new_job(), new_job("other")])

    ghost = await storage.fetch("ghost:1", ("default", "other"), 5, T0)
    after_ghost = await storage.counts()
    await announce(storage, "server:0")
    fetched = await storage.fetch("server:0", ("default", "other"), 2, T0)
    after_fetch = {
        (count.state, count.queue): count.count
        for count in await storage.counts()
    }

    assert ghost == []
    assert {(c.state, c.queue, c.count) for c in after_ghost} == {
        (JobState.ENQUEUED, "default", 2),
        (JobState.ENQUEUED, "other", 1),
    }
    assert [job.queue for job in fetched] == ["default", "default"]
    assert after_fetch == {
        (JobState.PROCESSING, "default"): 2,
        (JobState.ENQUEUED, "other"): 1,
    }


# -- plans -------------------------------------------------------------------

ROWS = 20_000


@pytest.fixture
def big_schema(admin: Admin, storages: list[PostgresStorage]) -> Admin:
    """20,000 jobs: most finished, a tenth enqueued, some scheduled."""
    admin(
        """
        INSERT INTO jobs (function, arguments, queue, state, reason,
                          created_at, state_changed_at, scheduled_at,
                          expires_at)
        SELECT 'app.jobs:send', '{}', 'q' || (i %% 3),
               CASE WHEN i %% 10 = 0 THEN 'enqueued'
                    WHEN i %% 10 = 1 THEN 'scheduled'
                    ELSE 'succeeded' END,
               '', now(), now(),
               CASE WHEN i %% 10 = 1 THEN now() + interval '1 day' END,
               CASE WHEN i %% 10 > 1 THEN now() + interval '1 day' END
        FROM generate_series(1, %s) AS i
        """,
        ROWS,
    )
    admin(
        "INSERT INTO job_history (job_id, state, reason, created_at)"
        " SELECT id, state, '', now() FROM jobs"
    )
    admin(
        "INSERT INTO job_queue (job_id, queue)"
        " SELECT id, queue FROM jobs WHERE state = 'enqueued' ORDER BY id"
    )
    admin("INSERT INTO servers VALUES ('s:1', '{q1}', 1, now(), now())")
    admin("ANALYZE")
    return admin


def _plan(admin: Admin, name: str, params: dict[str, object]) -> str:
    """EXPLAIN ANALYZE a statement of queries.sql, then roll it back."""
    values: list[object] = []

    def positional(match: re.Match[str]) -> str:
        values.append(params[match.group(1)])
        return "%" + match.group(2)

    statement = re.sub(r"%\((\w+)\)([sb])", positional, query(name).decode())
    admin("BEGIN")
    try:
        (row,) = admin("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, *values)
    finally:
        admin("ROLLBACK")
    return json.dumps(row[0])


def scanned_relations(plan_json: str) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "Relation Name" in node:
                found.add((node["Node Type"], node["Relation Name"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(json.loads(plan_json))
    return found


async def test_fetch_uses_indexes_on_a_big_table(big_schema: Admin) -> None:
    scans = scanned_relations(
        _plan(
            big_schema,
            "fetch",
            {
                "server": "s:1",
                "now": T0,
                "reason": "fetched",
                "data": "{}",
                "queue": "q1",
                "limit": 10,
                "count": True,
                "shard": 0,
                "heard": True,
            },
        )
    )

    assert ("Index Scan", "job_queue") in scans
    assert ("Seq Scan", "jobs") not in scans
    assert ("Seq Scan", "job_queue") not in scans


async def test_promotion_and_expiry_use_their_partial_indexes(
    big_schema: Admin,
) -> None:
    later = datetime.now(UTC) + timedelta(days=2)

    promote = scanned_relations(
        _plan(
            big_schema,
            "promote",
            {"now": later, "limit": 100, "reason": "due"},
        )
    )
    expire = scanned_relations(
        _plan(big_schema, "expire", {"now": later, "limit": 100})
    )

    assert ("Index Scan", "jobs") in promote
    assert ("Seq Scan", "jobs") not in promote
    for table in ("jobs", "job_history", "job_queue"):
        assert ("Seq Scan", table) not in expire


async def test_a_batch_of_outcomes_finds_its_jobs_by_primary_key(
    big_schema: Admin,
) -> None:
    ids = [row[0] for row in big_schema("SELECT id FROM jobs LIMIT 50")]
    count = len(ids)

    scans = scanned_relations(
        _plan(
            big_schema,
            "change_jobs",
            {
                "ids": ids,
                "from_states": ["succeeded"] * count,
                "versions": [None] * count,
                "states": ["deleted"] * count,
                "reasons": ["deleted"] * count,
                "at": [T0] * count,
                "scheduled": [None] * count,
                "expires": [T0] * count,
                "resets": [False] * count,
                "data": ["{}"] * count,
            },
        )
    )

    assert ("Seq Scan", "jobs") not in scans
    assert ("Index Scan", "jobs") in scans
