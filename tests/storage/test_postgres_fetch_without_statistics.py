"""The fetch keeps its plan when the planner has no statistics yet.

A burst of enqueues fills ``jobs`` and ``job_queue`` faster than
autoanalyze runs, and a schema just migrated has no statistics on its
new columns. The fetch must still walk the queue in order and stop at
its limit instead of joining and sorting the whole queue (which took a
second per fetch with 300,000 jobs queued).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import psycopg
import pytest

from backburner.storage import open_storage
from backburner.storage.postgres.queries import query

pytestmark = pytest.mark.postgres
QUEUED = 100_000


async def test_fetch_walks_the_queue_in_order_without_statistics(
    postgres_storage_url: str, postgres_url: str, postgres_schema: str
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
            (QUEUED,),
        )
        conn.execute(
            "INSERT INTO job_queue (job_id, queue) "
            "SELECT g, 'default' FROM generate_series(1, %s) AS g",
            (QUEUED,),
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
        }
        # Same transaction: no autoanalyze can have seen these rows.
        plan = "\n".join(
            row[0]
            for row in conn.execute(b"EXPLAIN " + query("fetch"), params)
        )
        conn.rollback()

    assert "Index Scan using job_queue_fetch" in plan, plan
    assert "Sort Key: q.seq" not in plan, plan
