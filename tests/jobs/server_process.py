"""A job server in a child process, for the kill and signal tests.

``python server_process.py URL`` calls :func:`run_server` (signals,
exit code, ``--until-empty``, ``--processes``); with ``--tuned`` it runs
a :class:`Server` with the tests' short heartbeat instead, so that a
killed server is declared dead within seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from server_helpers import FAST

from backburner.jobs import Server, run_server
from backburner.storage import open_storage


async def run_tuned(url: str, concurrency: int) -> None:
    storage = open_storage(url)
    server = Server(storage, concurrency=concurrency, **FAST)
    asyncio.get_running_loop().add_signal_handler(
        signal.SIGTERM, server.shutdown
    )
    try:
        await server.run()
    finally:
        await storage.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--tuned", action="store_true")
    parser.add_argument("--until-empty", action="store_true")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--name")
    args = parser.parse_args()
    if args.tuned:
        asyncio.run(run_tuned(args.url, args.concurrency))
        return 0
    return run_server(
        args.url,
        imports=["job_samples", "server_samples"],
        concurrency=args.concurrency,
        processes=args.processes,
        name=args.name,
        until_empty=args.until_empty,
    )


if __name__ == "__main__":
    sys.exit(main())
