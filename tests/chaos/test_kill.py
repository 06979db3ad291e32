"""Repeated kill -9 of server processes while they run jobs.

Two servers drain the queue; at evenly spaced points of its progress one
of them, holding jobs, is killed with SIGKILL and a fresh one started.
Kills do not wait for the previous kill's recovery: each kill's held
jobs are watched in the background until they are final. Every job must
end *succeeded*, and a job may run twice only if a killed server held it
(delivery is at least once, never silently twice).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from chaos_fleet import (
    Fleet,
    count_in,
    enqueue_marks,
    ran,
    wait_until,
)
from chaos_harness import Record, seconds, size

from backburner.jobs import Client, JobState
from backburner.storage import Storage, open_storage

S = JobState
FINAL = {S.SUCCEEDED, S.FAILED, S.DELETED}
JOBS = size(50_000, 300)
KILLS = size(10, 2)
# Each job takes this long, so that a run lasts long enough for every
# kill to find a server at work (mark jobs alone drain 50,000 jobs in
# seconds on SQLite) and its length depends less on the machine.
JOB_SECONDS = 0.01

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.timeout(int(seconds(1500, 170))),
]


@dataclass
class Kill:
    """One kill: the jobs its server held, and when they were all final."""

    at: float
    wall: datetime
    held: set[int]
    recovery_s: float | None = None


async def kill_holding(
    storage: Storage, victim: subprocess.Popen[bytes]
) -> Kill:
    """Wait until ``victim`` holds jobs, SIGKILL it, note what it held.

    The held jobs are read after the kill (the victim cannot fetch any
    more) and long before ``dead_after`` lets a survivor take them back.
    """
    name = Fleet.server_name(victim)

    async def holds_jobs() -> bool:
        return bool(await storage.held_jobs(name))

    await wait_until(holds_jobs, 120, f"server {name} to hold jobs", 0.02)
    victim.send_signal(signal.SIGKILL)
    await asyncio.to_thread(victim.wait, 60)
    at, wall = time.monotonic(), datetime.now(UTC)
    return Kill(at, wall, set(await storage.held_jobs(name)))


async def recovery_steps(storage: Storage, kill: Kill) -> str:
    """Where a kill's recovery time went, from its jobs' histories.

    Seconds from the kill until the last held job was requeued by a
    survivor, fetched again, and final.
    """
    requeued = fetched = final = kill.wall
    for job_id in kill.held:
        history = await storage.get_history(job_id)
        after = [entry for entry in history if entry.at >= kill.wall]
        for entry in after:
            if entry.state is S.ENQUEUED:
                requeued = max(requeued, entry.at)
            elif entry.state is S.PROCESSING:
                fetched = max(fetched, entry.at)
            elif entry.state in FINAL:
                final = max(final, entry.at)

    def since(moment: datetime) -> str:
        return f"{(moment - kill.wall).total_seconds():.1f}"

    return (
        f"slowest kill: held jobs requeued after {since(requeued)} s,"
        f" fetched {since(fetched)} s, final {since(final)} s"
    )


async def watch_recovery(storage: Storage, kill: Kill) -> None:
    """Set ``kill.recovery_s`` once every job it held is final."""
    pending = list(kill.held)
    while pending:
        states = await storage.job_states(pending)
        pending = [
            job_id
            for job_id in pending
            if job_id not in states or states[job_id][0] not in FINAL
        ]
        if pending:
            await asyncio.sleep(0.05)
    kill.recovery_s = time.monotonic() - kill.at


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
    kills: list[Kill] = []
    watchers: list[asyncio.Task[None]] = []
    try:
        client = Client(storage)
        texts = [f"j{i}" for i in range(JOBS)]
        ids = await enqueue_marks(client, out, texts, JOB_SECONDS)
        id_of = dict(zip(texts, ids, strict=True))
        servers = [fleet.spawn(), fleet.spawn()]

        for round_ in range(1, KILLS + 1):
            target = JOBS * round_ // (KILLS + 1)

            async def far_enough(target: int = target) -> bool:
                return await count_in(client, S.SUCCEEDED) >= target

            await wait_until(far_enough, 600, f"{target} jobs done")
            kill = await kill_holding(storage, servers[round_ % 2])
            servers[round_ % 2] = fleet.spawn()
            kills.append(kill)
            watchers.append(asyncio.create_task(watch_recovery(storage, kill)))
        left_at_last_kill = JOBS - await count_in(client, S.SUCCEEDED)

        async def all_done() -> bool:
            return await count_in(client, S.SUCCEEDED) == JOBS

        await wait_until(all_done, 120 + JOBS / 100, "every job to succeed")
        await asyncio.wait_for(asyncio.gather(*watchers), 120)
        counts = (await client.counts()).by_state
        slowest = max(kills, key=lambda kill: kill.recovery_s or 0.0)
        steps = await recovery_steps(storage, slowest)
    finally:
        for watcher in watchers:
            watcher.cancel()
        fleet.close()
        await storage.close()

    runs = ran(out)
    twice = {text for text, n in runs.items() if n > 1}
    held_at_kills = set().union(*(kill.held for kill in kills))
    held_counts = [len(kill.held) for kill in kills]
    figures.jobs_lost = JOBS - len(set(runs) & set(texts))
    figures.duplicates = sum(runs[text] - 1 for text in twice)
    figures.errors_surfaced = fleet.tracebacks()
    figures.recovery_s = max(kill.recovery_s or 0.0 for kill in kills)
    figures.note(
        f"held at each kill {held_counts} ({len(held_at_kills)} in all)"
    )
    figures.note(f"{len(twice)} of them ran twice")
    figures.note(f"{left_at_last_kill:,} jobs left at the last kill")
    figures.note(steps)

    assert all(held_counts), f"a kill found its server idle: {held_counts}"
    assert left_at_last_kill > 0, "the last kill came after the run"
    assert counts[S.SUCCEEDED] == JOBS
    assert sum(counts.values()) == JOBS, "every job reached a final state"
    assert figures.jobs_lost == 0
    assert {id_of[text] for text in twice} <= held_at_kills
    assert max(runs.values()) <= 1 + KILLS
