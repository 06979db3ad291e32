"""Dashboard page times with many jobs: ``python -m bench.dashboard``.

Fills a SQLite storage through the client up to ``--jobs`` jobs
(1,000,000 by default; the file is kept between runs, so a second run
starts at once), then asks each page ``--requests`` times through the
ASGI app in process (no network) and prints p50 and p95 per page. The
target is a p95 under 100 ms with 1,000,000 jobs.

``--postgres URL`` measures a PostgreSQL storage as well, filled the
same way (use a database or ``?schema=`` kept for benchmarks: the jobs
stay). Filling a million jobs takes minutes on either storage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import httpx

from backburner.dashboard import create_dashboard
from backburner.jobs import Call, Client, JobOptions, JobState

_BATCH = 10_000
DEFAULT_STORAGE = "sqlite:////tmp/dashboard-bench.db"
TARGET_P95_MS = 100.0


async def fill(client: Client, jobs: int) -> None:
    """Enqueue jobs until storage holds ``jobs`` of them."""
    total = sum((await client.counts()).by_state.values())
    while total < jobs:
        size = min(_BATCH, jobs - total)
        queue = "mail" if total % (2 * _BATCH) else "default"
        calls = [
            # A stdlib function: importable anywhere, never run here.
            Call(json.dumps, {"phone": "+44 7700 900123", "n": total + i})
            for i in range(size)
        ]
        await client.enqueue_many(calls, JobOptions(queue=queue))
        total += size
        print(f"\r{total} jobs", end="", flush=True)
    print()


async def prepare(client: Client) -> list[str]:
    """Delete the newest hundred jobs and a recurring job; the paths."""
    newest = (await client.list_jobs(limit=200)).jobs
    for job in newest[:100]:
        if job.state is not JobState.DELETED:
            await client.delete(job.id)
    await client.recurring.add_or_update(
        "bench-nightly", "0 3 * * *", Call(json.dumps, {"n": 0})
    )
    middle = newest[-1].id // 2
    return [
        "/",
        "/api/stats",
        "/jobs/enqueued",
        "/jobs/enqueued?queue=mail",
        f"/jobs/enqueued?before={middle}",
        "/jobs/deleted",
        f"/job/{newest[150].id}",
        "/jobs/enqueued?function=dumps",
        "/jobs/enqueued?function=nomatch",
        "/retries",
        "/recurring",
        "/servers",
    ]


def percentile(times: list[float], share: float) -> float:
    """The value below which ``share`` of ``times`` fall."""
    ordered = sorted(times)
    return ordered[max(0, round(share * len(ordered)) - 1)]


async def time_pages(
    client: Client, paths: list[str], requests: int
) -> list[tuple[str, float, float]]:
    """Ask each page ``requests`` times; (path, p50, p95) in ms."""
    transport = httpx.ASGITransport(
        app=create_dashboard(client), client=("127.0.0.1", 1)
    )
    rows = []
    async with httpx.AsyncClient(
        transport=transport, base_url="http://dashboard"
    ) as http:
        for path in paths:
            times = []
            for _ in range(requests):
                start = time.perf_counter()
                answer = await http.get(path)
                times.append((time.perf_counter() - start) * 1000)
                answer.raise_for_status()
            rows.append(
                (path, statistics.median(times), percentile(times, 0.95))
            )
    return rows


def print_table(title: str, rows: list[tuple[str, float, float]]) -> None:
    """Print the times as a Markdown table, flagging a slow p95."""
    print(f"\n{title}\n")
    print(f"| {'page':40} | {'p50':>9} | {'p95':>9} |")
    print(f"|{'-' * 42}|{'-' * 11}|{'-' * 11}|")
    for path, p50, p95 in rows:
        slow = " !" if p95 > TARGET_P95_MS else ""
        print(f"| {path:40} | {p50:6.1f} ms | {p95:6.1f} ms |{slow}")


async def measure(storage: str, jobs: int, requests: int) -> None:
    """Fill one storage, then time every page and print the table."""
    async with Client(storage) as client:
        await fill(client, jobs)
        paths = await prepare(client)
        rows = await time_pages(client, paths, requests)
    kind = storage.split(":", 1)[0]
    print_table(f"{kind}, {jobs:,} jobs, {requests} requests each", rows)


def main() -> None:
    """Parse the options and run the measurement."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--storage", default=DEFAULT_STORAGE)
    parser.add_argument("--postgres", metavar="URL", default=None)
    args = parser.parse_args()
    if args.jobs < 300:
        parser.error("--jobs must be at least 300")
    if args.requests < 1:
        parser.error("--requests must be at least 1")
    asyncio.run(measure(args.storage, args.jobs, args.requests))
    if args.postgres:
        asyncio.run(measure(args.postgres, args.jobs, args.requests))


if __name__ == "__main__":
    main()
