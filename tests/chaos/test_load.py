"""Sustained load: enqueue and drain at a steady rate for a long time.

One server process drains while the test enqueues at a fixed rate, one
call per job, as a web application does. Every ten seconds (every
second in short runs) it samples the server's resident memory and open
file descriptors (its database connections and sockets among them),
the enqueue latency, and the backlog. The last third of the run must
look like the first third: memory, descriptors and latency flat, the
backlog bounded.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import postgres_fleet
import pytest
from chaos_fleet import Fleet, count_in, ran, wait_until
from chaos_harness import Record, seconds

from backburner.jobs import Client, JobState
from backburner.storage import open_storage

S = JobState
DURATION = seconds(600, 12)
RATE = 200
EVERY = 10.0 if DURATION >= 120 else 1.0

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.slow,
    pytest.mark.timeout(int(DURATION + 300)),
]


@dataclass
class Sample:
    rss_kib: int
    fds: int
    latencies: list[float] = field(default_factory=list)
    backlog: int = 0


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def thirds(values: list[float]) -> tuple[float, float]:
    third = max(1, len(values) // 3)
    return statistics.mean(values[:third]), statistics.mean(values[-third:])


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[int(len(ordered) * 0.99)] if ordered else 0.0


async def test_memory_latency_and_descriptors_stay_flat(
    storage_url: str, tmp_path: Path, record: Record
) -> None:
    kind = storage_url.split(":", 1)[0]
    figures = record(
        "sustained load",
        storage=kind,
        size=f"{DURATION / 60:.1f} min at {RATE} jobs/s",
    )
    out = tmp_path / "out.txt"
    storage = open_storage(storage_url)
    await storage.migrate()
    fleet = Fleet(storage_url, tmp_path)
    samples: list[Sample] = []
    enqueued = 0
    try:
        client = Client(storage)
        server = fleet.spawn(concurrency=8)
        # Measure from a server that has connected and run a job.
        await client.enqueue(postgres_fleet.mark, str(out), "warm-up")
        enqueued = 1

        async def warm() -> bool:
            return await count_in(client, S.SUCCEEDED) == 1

        await wait_until(warm, 60, "the server to start")
        started = time.monotonic()
        sample = Sample(0, 0)
        next_sample = started + EVERY
        while time.monotonic() - started < DURATION:
            due = started + (enqueued - 1) / RATE
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            before = time.perf_counter()
            await client.enqueue(postgres_fleet.mark, str(out), str(enqueued))
            sample.latencies.append(time.perf_counter() - before)
            enqueued += 1
            if time.monotonic() >= next_sample:
                sample.rss_kib = rss_kib(server.pid)
                sample.fds = fds(server.pid)
                sample.backlog = await count_in(client, S.ENQUEUED)
                samples.append(sample)
                sample = Sample(0, 0)
                next_sample += EVERY

        async def drained() -> bool:
            return await count_in(client, S.SUCCEEDED) == enqueued

        await wait_until(drained, 120, "the backlog to drain")
        alive = server.poll() is None
    finally:
        fleet.close()
        await storage.close()

    steady = samples[1:]  # the first window includes the start-up
    rss_first, rss_last = thirds([s.rss_kib for s in steady])
    fd_counts = [s.fds for s in steady]
    p99_first, p99_last = thirds([p99(s.latencies) for s in steady])
    backlog = max(s.backlog for s in steady)
    figures.jobs_lost = enqueued - len(ran(out))
    figures.errors_surfaced = fleet.tracebacks()
    figures.note(f"RSS {rss_first / 1024:.0f} -> {rss_last / 1024:.0f} MiB")
    figures.note(f"fds {min(fd_counts)}..{max(fd_counts)}")
    figures.note(
        f"enqueue p99 {p99_first * 1000:.1f} -> {p99_last * 1000:.1f} ms"
    )
    figures.note(f"backlog max {backlog}")

    assert alive
    assert figures.jobs_lost == 0
    assert len(steady) >= 3, "too short a run to compare"
    assert rss_last <= rss_first * 1.2 + 8 * 1024, "memory grew"
    assert max(fd_counts) - min(fd_counts) <= 4, "descriptors grew"
    assert p99_last <= p99_first * 3 + 0.05, "latency grew"
    assert backlog < RATE * 10, "the server fell behind"
