"""The enqueue-to-start floor of a durable PostgreSQL queue.

``python -m bench.latency_floor [PROBES]`` prints, as JSON, the
enqueue-to-start latency of the smallest job queue that keeps the two
promises every PostgreSQL system of ``bench.jobs_postgres`` keeps: an
enqueue has committed durably when the call returns, and a job is marked
taken, durably, before it starts (or a crash of the database could hand
it out twice without a server dying). It has no job server, no
serializer and no pool; two processes and two statements:

- the sender, in this process, inserts one row and sends a ``NOTIFY`` in
  one autocommit statement (one round trip, one WAL flush);
- the taker, a process of its own, ``LISTEN``s; on each notification it
  takes the oldest waiting row with ``FOR UPDATE SKIP LOCKED`` in one
  autocommit ``UPDATE`` (one round trip, one WAL flush) and records the
  moment, as a benchmark job would, through :mod:`bench.jobs_record`.

Probes go one at a time, the same way as the benchmark's latency row
(:func:`bench.jobs_client.probe_loop`). Every queue built on PostgreSQL
with those two durable commits pays at least this; a system measured
below it skips one of them (or keeps its jobs elsewhere).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import jobs_record
from bench.jobs import percentile
from bench.jobs_client import probe_loop

POSTGRES_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
_URL_ENV = "BENCH_FLOOR_URL"
_READY = "ready"


def take(schema: str) -> None:
    """The taker: take and record each notified job until told to stop."""
    import psycopg
    from psycopg import sql

    taken = sql.SQL(
        "UPDATE {}.jobs SET state = 'processing' WHERE id = ("
        " SELECT id FROM {}.jobs WHERE state = 'enqueued'"
        " ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id"
    ).format(sql.Identifier(schema), sql.Identifier(schema))
    with psycopg.connect(os.environ[_URL_ENV], autocommit=True) as conn:
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(schema)))
        print(_READY, flush=True)
        while True:
            # Drained before the UPDATE: the generator holds the
            # connection's lock while it is being iterated.
            for note in list(conn.notifies(stop_after=1)):
                if note.payload == "stop":
                    return
                row = conn.execute(taken, prepare=True).fetchone()
                if row is not None:
                    jobs_record.record(int(row[0]))


def measure(
    count: int = 150, pause: float = 0.02, url: str = POSTGRES_URL
) -> dict[str, Any]:
    """Send ``count`` probes; return p50 and p99 in ms, and every value.

    Works in a schema of its own, dropped at the end.

    Raises:
        RuntimeError: the taker did not start.
        TimeoutError: a probe was not taken within 10 seconds.
    """
    import psycopg
    from psycopg import sql

    schema = f"bench_latency_floor_{uuid.uuid4().hex[:10]}"
    name = sql.Identifier(schema)
    with (
        tempfile.TemporaryDirectory(prefix="bench-floor-") as directory,
        psycopg.connect(url, autocommit=True) as conn,
    ):
        record = Path(directory) / "record.txt"
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(name))
        try:
            conn.execute(
                sql.SQL(
                    "CREATE TABLE {}.jobs (id bigint PRIMARY KEY,"
                    " state text NOT NULL DEFAULT 'enqueued')"
                ).format(name)
            )
            env = {
                **os.environ,
                _URL_ENV: url,
                jobs_record.RECORD_ENV: str(record),
            }
            taker = subprocess.Popen(
                [sys.executable, "-m", "bench.latency_floor", "take", schema],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            try:
                assert taker.stdout is not None
                if taker.stdout.readline().strip() != _READY:
                    raise RuntimeError(
                        "the latency floor's taker did not start"
                    )
                enqueue = sql.SQL(
                    "WITH new AS (INSERT INTO {}.jobs (id) VALUES (%s))"
                    " SELECT pg_notify(%s, %s)"
                ).format(name)

                def send(number: int) -> None:
                    conn.execute(
                        enqueue, (number, schema, str(number)), prepare=True
                    )

                latencies = probe_loop(send, count, record, pause, 10.0)
                conn.execute(sql.SQL("NOTIFY {}, 'stop'").format(name))
                taker.wait(10)
            finally:
                if taker.poll() is None:
                    taker.kill()
                    taker.wait()
        finally:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(name)
            )
    ordered = sorted(1000 * value for value in latencies)
    return {
        "p50_ms": percentile(ordered, 50),
        "p99_ms": percentile(ordered, 99),
        "latencies_ms": [round(value, 3) for value in ordered],
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``[PROBES]``: print :func:`measure`'s result as JSON (``take
    SCHEMA`` runs the taker)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["take"]:
        take(argv[1])
        return 0
    count = int(argv[0]) if argv else 150
    found = measure(count)
    found.pop("latencies_ms")
    print(json.dumps(found))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
