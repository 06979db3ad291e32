"""The reference app under many clients that hang up at random.

Clients run product searches that take a while on purpose (the
development ``slow`` parameter) and close their connection after a
random pause, before or after the answer. Once they are gone, every
search that started has either finished or been cancelled, the server
has no more tasks than before, the catalogue's connection pool has
nothing checked out, and no write transaction is left open.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from collections import deque
from pathlib import Path

import pytest
from chaos_app import Running, running_catalogue
from chaos_harness import Record, seconds, size

CLIENTS = size(5_000, 150)
AT_ONCE = 40

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.timeout(int(seconds(900, 120))),
]


async def one_client(url: str, n: int, rng: random.Random) -> bool:
    """One search, hung up after a random pause; True if answered."""
    port = int(url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    slow = rng.choice([0, 0.2, 0.5, 1.0])
    writer.write(
        f"GET /api/products?q=d{n}&slow={slow} HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    )
    await writer.drain()
    answered = False
    try:
        async with asyncio.timeout(rng.uniform(0, 1.2)):
            answered = bool(await reader.read())
    except TimeoutError:
        pass
    writer.close()
    return answered


def counts(running: Running) -> dict[str, int]:
    found: dict[str, int] = {}
    for event in list(running.api.state.activity.events):
        found[event.kind] = found.get(event.kind, 0) + 1
    return found


def write_lock_free(database: Path) -> bool:
    with sqlite3.connect(database, timeout=1) as conn:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            return False
        conn.execute("ROLLBACK")
        return True


@pytest.mark.chaos_smoke
def test_every_handler_ends_and_nothing_leaks(
    tmp_path: Path, record: Record
) -> None:
    figures = record(
        "reference app, clients hang up at random",
        size=f"{CLIENTS:,} searches, {AT_ONCE} at once",
    )
    with running_catalogue(tmp_path) as running:
        activity = running.api.state.activity
        activity.events = deque(maxlen=CLIENTS * 4 + 1000)
        tasks_before = running.tasks()
        rng = random.Random(7)

        async def storm() -> int:
            gate = asyncio.Semaphore(AT_ONCE)

            async def client(n: int) -> bool:
                async with gate:
                    return await one_client(running.url, n, rng)

            answers = await asyncio.gather(
                *(client(n) for n in range(CLIENTS))
            )
            return sum(answers)

        answered = asyncio.run(storm())
        deadline = time.monotonic() + 60
        while True:
            seen = counts(running)
            ended = seen.get("search.finished", 0) + seen.get(
                "search.cancelled", 0
            )
            if ended >= seen.get("search.started", 0):
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        settle = time.monotonic() + 30
        while running.tasks() > tasks_before and time.monotonic() < settle:
            time.sleep(0.1)
        tasks_after = running.tasks()
        left = running.task_names() if tasks_after > tasks_before else []
        checked_out = running.api.state.services.db.engine.pool.checkedout()
        lock_free = write_lock_free(tmp_path / "catalogue.db")

    started = seen.get("search.started", 0)
    cancelled = seen.get("search.cancelled", 0)
    figures.errors_surfaced = started - ended
    figures.note(f"{answered} answered, {cancelled} cancelled")
    figures.note(f"tasks {tasks_before} -> {tasks_after}")
    figures.note(f"pool checked out {checked_out}")
    if left:
        figures.note(f"tasks left: {left}")

    assert started > 0
    assert cancelled > 0, "some clients hung up mid-search"
    assert ended == started, "every handler finished or was cancelled"
    assert tasks_after <= tasks_before
    assert checked_out == 0
    assert lock_free, "no write transaction left open"
