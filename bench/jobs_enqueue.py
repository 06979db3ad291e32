"""Single enqueues in process: ``python -m bench.jobs_enqueue``.

A loop of ``await client.enqueue(noop)`` on a fresh SQLite file, in this
process, with nothing else running: the "enqueue, one call per job" row
of :mod:`bench.jobs` without the client process, so that a change to
the enqueue path shows up without the noise of process start-up.

Each round runs every variant in turn (storage options given as
``name=url-query``, e.g. ``inline=`` and ``thread=inline_enqueue=false``)
on a file of its own, so a busy moment of the machine hits all of them
alike; the median and the range of the rounds are printed, in jobs/s
and microseconds per call. ``--concurrency N`` runs N such loops at
once on the event loop, as the requests of a web application would.
A diagnostic, not part of the benchmark's table.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from backburner.jobs.client import Client
from backburner.storage import open_storage
from bench.jobs_backburner import noop


async def _rate(url: str, count: int, concurrency: int) -> float:
    storage = open_storage(url)
    try:
        client = Client(storage)
        await storage.migrate()
        await client.enqueue(noop)  # warm the statement cache

        async def loop(calls: int) -> None:
            for _ in range(calls):
                await client.enqueue(noop)

        share = count // concurrency
        started = time.perf_counter()
        await asyncio.gather(*(loop(share) for _ in range(concurrency)))
        return share * concurrency / (time.perf_counter() - started)
    finally:
        await storage.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments, run the rounds, print one line per variant."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument(
        "variants",
        nargs="*",
        default=["default="],
        help="name=query: storage URL options of one variant",
    )
    args = parser.parse_args(argv)
    variants = [item.partition("=")[::2] for item in args.variants]
    rates: dict[str, list[float]] = {name: [] for name, _ in variants}
    with tempfile.TemporaryDirectory() as folder:
        for round_number in range(args.rounds):
            for name, query in variants:
                path = Path(folder) / f"{name}-{round_number}.db"
                url = f"sqlite:///{path}" + (f"?{query}" if query else "")
                rates[name].append(
                    asyncio.run(_rate(url, args.jobs, args.concurrency))
                )
    for name, values in rates.items():
        median = statistics.median(values)
        print(
            f"{name:>12}: {median:8,.0f} jobs/s ({1e6 / median:5.0f} us/call)"
            f"  range {min(values):,.0f}-{max(values):,.0f}"
        )


if __name__ == "__main__":
    main()
