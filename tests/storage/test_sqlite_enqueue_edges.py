"""SQLite enqueues whose listeners fail.

A listener hears about jobs after their commit; its error must not
reach the enqueuer nor make a group commit store the jobs again.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest
from sqlite_samples import new_job, stored_jobs

from backburner.storage.base import (
    Notification,
)
from backburner.storage.sqlite import SQLiteStorage


def _open_files(path: Path) -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        target = os.path.realpath(f"/proc/self/fd/{fd}")
        if target.startswith(str(path)):
            found.append(target)
    return found


@pytest.mark.parametrize("inline", [True, False])
async def test_a_raising_listener_neither_fails_nor_repeats_enqueues(
    tmp_path: Path, inline: bool, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "jobs.db"
    storage = SQLiteStorage(str(path), inline_enqueue=inline)
    await storage.migrate()

    def faulty(notification: Notification) -> None:
        raise RuntimeError("listener failed")

    heard: list[Notification] = []
    storage.subscribe(faulty)
    storage.subscribe(heard.append)
    try:
        together = await asyncio.wait_for(
            asyncio.gather(
                *(storage.create_jobs([new_job()]) for _ in range(3))
            ),
            10,
        )
        alone = await asyncio.wait_for(storage.create_jobs([new_job()]), 10)
    finally:
        await storage.close()

    ids = [*(i for ids in together for i in ids), *alone]
    assert len(set(ids)) == 4
    assert stored_jobs(path) == 4
    assert heard  # the faulty listener did not silence the next one
    assert any(
        getattr(r, "event", None) == "storage.listener_failed"
        for r in caplog.records
        if r.levelno >= logging.ERROR
    )
