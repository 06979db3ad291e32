"""Repeated kill -9 of server processes during a long run.

Two servers drain the queue; at evenly spaced points one of them is
killed with SIGKILL and a fresh one started. Every job must end
*succeeded*, and a job may run twice only if it was in *processing*
when a server was killed (delivery is at least once, never silently
twice).
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest
from chaos_fleet import (
    Fleet,
    count_in,
    enqueue_marks,
    processing_ids,
    ran,
    wait_until,
)
from chaos_harness import Record, seconds, size

from backburner.jobs import Client, JobState
from backburner.storage import open_storage

S = JobState
JOBS = size(50_000, 300)
KILLS = size(10, 2)

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.timeout(int(seconds(1500, 170))),
]


@pytest.mark.chaos_smoke
async def test_repeated_kill_9_loses_nothing_and_repeats_only_held_jobs(
    storage_url: str, tmp_path: Path, record: Record
) -> None:
    kind = storage_url.split(":", 1)[0]
    figures = record(
        "kill -9 of servers, repeated",
        storage=kind,
        size=f"{JOBS:,} jobs, {KILLS} kills, 2 servers",
    )
    out = tmp_path / "out.txt"
    storage = open_storage(storage_url)
    await storage.migrate()
    fleet = Fleet(storage_url, tmp_path)
    try:
        client = Client(storage)
        texts = [f"j{i}" for i in range(JOBS)]
        ids = await enqueue_marks(client, out, texts)
        id_of = dict(zip(texts, ids, strict=True))
        servers = [fleet.spawn(), fleet.spawn()]
        held_at_kills: set[int] = set()
        recoveries: list[float] = []

        for round_ in range(1, KILLS + 1):
            target = JOBS * round_ // (KILLS + 1)

            async def far_enough(target: int = target) -> bool:
                return await count_in(client, S.SUCCEEDED) >= target

            await wait_until(far_enough, 600, f"{target} jobs done")
            victim = servers[round_ % 2]
            victim.send_signal(signal.SIGKILL)
            await asyncio.to_thread(victim.wait, 60)
            killed_at = time.monotonic()
            held = await processing_ids(storage)
            held_at_kills |= held
            servers[round_ % 2] = fleet.spawn()

            async def held_done(held: set[int] = held) -> bool:
                states = await storage.job_states(list(held))
                return all(s is S.SUCCEEDED for s, _ in states.values())

            await wait_until(held_done, 120, "held jobs to be recovered")
            recoveries.append(time.monotonic() - killed_at)

        async def all_done() -> bool:
            return await count_in(client, S.SUCCEEDED) == JOBS

        await wait_until(all_done, 60 + JOBS / 100, "every job to succeed")
        counts = (await client.counts()).by_state
    finally:
        fleet.close()
        await storage.close()

    runs = ran(out)
    twice = {text for text, n in runs.items() if n > 1}
    figures.jobs_lost = JOBS - len(set(runs) & set(texts))
    figures.duplicates = sum(runs[text] - 1 for text in twice)
    figures.errors_surfaced = fleet.tracebacks()
    figures.recovery_s = max(recoveries)
    figures.note(f"{len(held_at_kills)} jobs held at the kills")
    figures.note(f"{len(twice)} of them ran twice")

    assert counts[S.SUCCEEDED] == JOBS
    assert sum(counts.values()) == JOBS, "every job reached a final state"
    assert figures.jobs_lost == 0
    assert {id_of[text] for text in twice} <= held_at_kills
    assert max(runs.values()) <= 1 + KILLS
