"""Dashboard page times with many jobs in storage (not a test).

::

    .venv/bin/python tests/dashboard/bench_pages.py --jobs 1000000 \\
        --storage sqlite:////tmp/dashboard-bench.db

Fills the storage through the client up to ``--jobs`` jobs (kept between
runs, so the second run starts at once), then asks each page
``--requests`` times through the ASGI app in process and prints p50 and
p95 per page. The target is p95 under 100 ms with 1,000,000 jobs. Meant
to become ``make bench-dashboard``.
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


def percentile(times: list[float], share: float) -> float:
    """The value below which ``share`` of ``times`` fall."""
    ordered = sorted(times)
    return ordered[max(0, round(share * len(ordered)) - 1)]


async def measure(storage: str, jobs: int, requests: int) -> None:
    """Fill the storage, then time every page."""
    async with Client(storage) as client:
        await fill(client, jobs)
        newest = (await client.list_jobs(limit=200)).jobs
        for job in newest[:100]:
            if job.state is not JobState.DELETED:
                await client.delete(job.id)
        middle = newest[-1].id // 2
        paths = [
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
            "/servers",
        ]
        transport = httpx.ASGITransport(
            app=create_dashboard(client), client=("127.0.0.1", 1)
        )
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
                print(
                    f"{path:40} p50 {statistics.median(times):6.1f} ms"
                    f"  p95 {percentile(times, 0.95):6.1f} ms"
                )


def main() -> None:
    """Parse the options and run the measurement."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument(
        "--storage", default="sqlite:////tmp/dashboard-bench.db"
    )
    args = parser.parse_args()
    asyncio.run(measure(args.storage, args.jobs, args.requests))


if __name__ == "__main__":
    main()
