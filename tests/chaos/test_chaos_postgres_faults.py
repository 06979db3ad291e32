"""PostgreSQL restarted, and every connection cut, during a run.

Three servers drain the queue of a private cluster (never the shared
server) while, at evenly spaced points, the cluster is restarted
(``pg_ctl stop -m fast`` then start) or every backend but our own is
terminated (``pg_terminate_backend``). The servers must carry on by
themselves: every job ends *succeeded*, no server process exits.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import psycopg
import pytest
from chaos_fleet import Fleet, count_in, enqueue_marks, ran, wait_until
from chaos_harness import Record, seconds, size

from backburner.jobs import Client, JobState
from backburner.storage import open_storage
from pg_cluster import PrivateCluster

S = JobState
JOBS = size(20_000, 600)
FAULTS = size(6, 2)

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.postgres,
    pytest.mark.timeout(int(seconds(1200, 240))),
]


def cut_connections(url: str) -> int:
    """Terminate every other backend of the cluster; return how many."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE pid <> pg_backend_pid() AND backend_type = "
            "'client backend'"
        ).fetchall()
    return len(rows)


async def test_servers_resume_after_restarts_and_cut_connections(
    private_cluster: PrivateCluster, tmp_path: Path, record: Record
) -> None:
    figures = record(
        "PostgreSQL restarted and connections cut",
        storage="postgresql",
        size=f"{JOBS:,} jobs, {FAULTS} faults, 3 servers",
    )
    url = private_cluster.url
    out = tmp_path / "out.txt"
    storage = open_storage(url)
    await storage.migrate()
    fleet = Fleet(url, tmp_path)
    recoveries: list[float] = []
    cut = 0
    try:
        client = Client(storage)
        texts = [f"p{i}" for i in range(JOBS)]
        await enqueue_marks(client, out, texts)
        servers = [fleet.spawn() for _ in range(3)]
        for fault in range(1, FAULTS + 1):
            target = JOBS * fault // (FAULTS + 2)

            async def far_enough(target: int = target) -> bool:
                return await count_in(client, S.SUCCEEDED) >= target

            await wait_until(far_enough, 300, f"{target} jobs done")
            if fault % 2:
                await asyncio.to_thread(private_cluster.stop)
                await asyncio.to_thread(private_cluster.start)
            else:
                cut += await asyncio.to_thread(cut_connections, url)
            faulted_at = time.monotonic()
            done_then = len(ran(out))

            async def resumed(done_then: int = done_then) -> bool:
                return len(ran(out)) > done_then + 20

            await wait_until(resumed, 120, "the servers to resume")
            recoveries.append(time.monotonic() - faulted_at)

        async def all_done() -> bool:
            return await count_in(client, S.SUCCEEDED) == JOBS

        await wait_until(all_done, 120 + JOBS / 100, "every job")
        counts = (await client.counts()).by_state
        alive = [child.poll() is None for child in servers]
    finally:
        fleet.close()
        await storage.close()

    runs = ran(out)
    figures.jobs_lost = JOBS - len(set(runs) & set(texts))
    figures.duplicates = sum(n - 1 for n in runs.values())
    figures.errors_surfaced = fleet.tracebacks()
    figures.recovery_s = max(recoveries)
    figures.note(f"{(FAULTS + 1) // 2} restarts, {FAULTS // 2} cuts")
    figures.note(f"{cut} connections cut")

    assert alive == [True, True, True], "no server gave up"
    assert counts[S.SUCCEEDED] == JOBS
    assert sum(counts.values()) == JOBS, "nothing stuck"
    assert figures.jobs_lost == 0
