"""One process that enqueues and drains at the same time.

``python chaos_child.py URL OUT COUNT NAME`` runs a :class:`Server`
(the tests' short intervals) and, next to it, enqueues ``COUNT`` jobs
one call each as fast as it can, each job appending ``ran <text>`` to
``OUT``. Every error an enqueue raises is written as one line to
``OUT.errors`` (what a user of the client would have seen); the
process serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

_TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_TESTS / "jobs"))

import postgres_fleet  # noqa: E402
from server_helpers import FAST  # noqa: E402

from backburner.jobs import Client, Server  # noqa: E402
from backburner.storage import open_storage  # noqa: E402


def note_error(out: str, text: str, error: Exception) -> None:
    with Path(f"{out}.errors").open("a", encoding="utf-8") as handle:
        handle.write(f"{text} {type(error).__name__}: {error}\n")


def note_done(out: str, name: str) -> None:
    Path(f"{out}.{name}.enqueued").touch()


async def enqueue_all(client: Client, out: str, count: int, name: str) -> None:
    for i in range(count):
        text = f"{name}-{i}"
        try:
            await client.enqueue(postgres_fleet.mark, out, text)
        except Exception as error:  # every error is a finding
            note_error(out, text, error)
    note_done(out, name)


async def main(url: str, out: str, count: int, name: str) -> None:
    storage = open_storage(url)
    server = Server(storage, concurrency=4, name=name, **FAST)
    asyncio.get_running_loop().add_signal_handler(
        signal.SIGTERM, server.shutdown
    )
    feeding = asyncio.create_task(
        enqueue_all(Client(storage), out, count, name)
    )
    try:
        await server.run()
    finally:
        feeding.cancel()
        await storage.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("out")
    parser.add_argument("count", type=int)
    parser.add_argument("name")
    args = parser.parse_args()
    asyncio.run(main(args.url, args.out, args.count, args.name))
