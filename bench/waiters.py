"""Many ``Client.wait`` calls in one process, on PostgreSQL.

``python -m bench.waiters [COUNT]`` (6,000 by default) creates COUNT
jobs on a schema of its own, waits for all of them from one client,
times an unrelated ``client.get`` every 50 ms for 5 s meanwhile, then
starts a server in a process of its own and records how long after each
job succeeded its wait returned. It prints one JSON object and drops the
schema. ``BENCH_POSTGRES_URL`` names the server (default: the local one).

``python -m bench.waiters serve URL`` is that server's process.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
import urllib.parse
import uuid
from typing import Any

import psycopg

from backburner.jobs import Call, Client, Server
from backburner.storage import open_storage

POSTGRES_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
PROBE_SECONDS = 5.0
PROBE_PAUSE = 0.05


def answer(number: int) -> int:
    """The job waited for: returns at once, with a small result."""
    return number * 2


def _percentile(sorted_values: list[float], share: float) -> float:
    return sorted_values[
        min(len(sorted_values) - 1, int(len(sorted_values) * share))
    ]


def _summary(seconds: list[float]) -> dict[str, float]:
    values = sorted(seconds)
    return {
        "count": len(values),
        "p50_ms": round(statistics.median(values) * 1000, 1),
        "p99_ms": round(_percentile(values, 0.99) * 1000, 1),
        "max_ms": round(values[-1] * 1000, 1),
    }


async def measure(url: str, count: int) -> dict[str, Any]:
    """Wait for ``count`` jobs; time an unrelated read and the wake-ups."""
    # Run as a script this module is __main__, which no server imports.
    from bench.waiters import answer

    storage = open_storage(url)
    await storage.migrate()
    client = Client(storage)
    try:
        other = await client.enqueue(answer, 0)
        job_ids = await client.enqueue_many(
            [Call(answer, n) for n in range(count)]
        )
        returned: dict[int, float] = {}

        async def wait(job_id: int) -> None:
            await client.wait(job_id, timeout=300)
            returned[job_id] = time.time()

        waiting = [asyncio.create_task(wait(i)) for i in job_ids]
        await asyncio.sleep(1.0)  # the waits settle into their polling
        reads = []
        stop = time.monotonic() + PROBE_SECONDS
        while time.monotonic() < stop:
            started = time.perf_counter()
            await client.get(other)
            reads.append(time.perf_counter() - started)
            await asyncio.sleep(PROBE_PAUSE)
        server = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.waiters", "serve", url
        )
        await asyncio.gather(*waiting)
        await server.wait()
        lags = []
        for job_id in job_ids:
            job = await client.get(job_id)
            lags.append(returned[job_id] - job.state_changed_at.timestamp())
        return {
            "waits": count,
            "unrelated_get": _summary(reads),
            "returned_after_success": _summary(lags),
        }
    finally:
        await client.close()
        await storage.close()


async def serve(url: str) -> None:
    """Run the jobs until none is left."""
    storage = open_storage(url)
    try:
        await Server(storage, concurrency=8, poll_interval=0.05).run(
            until_empty=True
        )
    finally:
        await storage.close()


def main(argv: list[str]) -> None:
    if argv[:1] == ["serve"]:
        asyncio.run(serve(argv[1]))
        return
    count = int(argv[0]) if argv else 6000
    schema = f"bench_waiters_{uuid.uuid4().hex[:8]}"
    separator = "&" if urllib.parse.urlsplit(POSTGRES_URL).query else "?"
    url = f"{POSTGRES_URL}{separator}schema={schema}"
    try:
        print(json.dumps(asyncio.run(measure(url, count))))
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main(sys.argv[1:])
