"""The fetch keeps its plan when the planner has no statistics yet.

A burst of enqueues fills ``jobs`` and ``job_queue`` faster than
autoanalyze runs, and a schema just migrated has no statistics on its
new columns. The fetch must still walk the queue in order and stop at
its limit instead of joining and sorting the whole queue (which took a
second per fetch with 300,000 jobs queued).

With a few thousand jobs queued the planner, which takes ``queue = ...``
for one row in 200 without statistics, expects a dozen entries and reads,
joins and sorts the whole queue (23 ms per fetch of 50 with 10,000
queued, against 1.4 ms in order): every fetch runs after
``walk_queue_in_order`` in its transaction, or on the fetch connection,
whose session ``fetch_connection_settings`` set the same way.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import psycopg
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
SERVER = "host:1"


# 10,000: the no-op drain of the PostgreSQL benchmark, where the plan of
# the fetch alone read the whole queue.
@pytest.mark.parametrize("queued", [10_000, 100_000])
@pytest.mark.parametrize(
    "settings", ["walk_queue_in_order", "fetch_connection_settings"]
)
async def test_fetch_walks_the_queue_in_order_without_statistics(
    postgres_storage_url: str,
    postgres_url: str,
    postgres_schema: str,
    queued: int,
    settings: str,
) -> None:
    storage = open_storage(postgres_storage_url)
    await storage.migrate()
    await storage.close()
    with psycopg.connect(postgres_url) as conn:
        conn.execute(f'SET search_path TO "{postgres_schema}"')
        conn.execute(
            "INSERT INTO jobs (id, function, arguments, queue, state, "
            "reason, created_at, state_changed_at) "
            "SELECT g, 'app:f', '{}', 'default', 'enqueued', 'enqueued', "
            "now(), now() FROM generate_series(1, %s) AS g",
            (queued,),
        )
        conn.execute(
            "INSERT INTO job_queue (job_id, queue) "
            "SELECT g, 'default' FROM generate_series(1, %s) AS g",
            (queued,),
        )
        params = {
            "server": "s",
            "now": datetime.now(UTC),
            "reason": "fetched by s",
            "data": json.dumps({"server": "s"}),
            "queue": "default",
            "limit": 50,
            "count": True,
            "shard": 0,
            "heard": True,
        }
        # Same transaction: no autoanalyze can have seen these rows.
        conn.execute(query(settings))
        plan = "\n".join(
            row[0]
            for row in conn.execute(b"EXPLAIN " + query("fetch"), params)
        )
        conn.rollback()

    assert "Index Scan using job_queue_fetch" in plan, plan
    assert "Sort Key: q.seq" not in plan, plan


async def test_every_fetch_runs_with_the_settings_in_force(
    postgres_storage_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = open_storage(postgres_storage_url)
    assert isinstance(storage, PostgresStorage)
    now = datetime.now(UTC)
    await storage.migrate()
    await storage.announce_server(
        ServerInfo(SERVER, ("default",), 4, now, now)
    )
    await storage.create_jobs(
        [
            NewJob(
                function="app.jobs:send",
                arguments='{"args":[],"kwargs":{}}',
                queue="default",
                state=JobState.ENQUEUED,
                reason="enqueued",
                created_at=now,
            )
            for _ in range(2)
        ]
    )
    sent: list[tuple[int, bytes, bool]] = []
    execute = psycopg.AsyncConnection.execute
    idle = psycopg.pq.TransactionStatus.IDLE

    async def spy(
        conn: psycopg.AsyncConnection[Any], statement: bytes, *args: Any
    ) -> Any:
        # Outside a transaction, only a pipeline's implicit one holds
        # the settings until the fetch has run.
        held = conn.info.transaction_status != idle
        pipelined = conn._pipeline is not None
        sent.append((id(conn), statement, held or pipelined))
        return await execute(conn, statement, *args)

    monkeypatch.setattr(psycopg.AsyncConnection, "execute", spy)
    try:
        (first,) = await storage.fetch(SERVER, ["default"], 1, now)
        done = StateChange(
            job_id=first.id,
            to_state=JobState.SUCCEEDED,
            from_states=frozenset({JobState.PROCESSING}),
            reason="done",
            at=now,
            expected_version=first.version,
            from_worker=True,
        )
        _, second = await storage.apply_changes_and_fetch(
            [done], SERVER, ["default"], 1, now
        )
        assert len(second) == 1
        monkeypatch.undo()
        # The settings end with the fetch's transaction.
        settings = await storage._read(
            b"SELECT current_setting('enable_bitmapscan'),"
            b" current_setting('enable_seqscan')",
            {},
        )
    finally:
        await storage.close()

    fetch = query("fetch")
    fetches = [i for i, (_, text, _) in enumerate(sent) if text == fetch]
    assert len(fetches) == 2
    # The first, alone: on the fetch connection, which set the settings
    # for its session when it opened and runs nothing but fetches.
    alone, _, _ = sent[fetches[0]]
    on_it = [text for conn, text, _ in sent if conn == alone]
    assert query("fetch_connection_settings") in on_it
    assert on_it[on_it.index(query("fetch_connection_settings")) + 1 :] == [
        fetch
    ]
    # The second, with outcomes, in a transaction of the pool's.
    conn, _, in_transaction = sent[fetches[1]]
    assert conn != alone
    assert sent[fetches[1] - 1] == (
        conn,
        query("walk_queue_in_order"),
        in_transaction,
    )
    assert in_transaction
    assert settings == [("on", "on")]
