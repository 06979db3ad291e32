"""A server whose wall clock jumps forward an hour, then back.

The server runs under libfaketime (Debian's ``faketime`` package), its
offset read from a file at every call, so the test moves the clock of
that one process while it runs; monotonic time is left alone, as a
real clock step (NTP, a virtual machine resumed) leaves it. Meanwhile a
recurring job fires every two seconds and jobs are scheduled a few
seconds ahead. No occurrence may get two jobs, every scheduled job must
run, and the recurring job must fire again within a few of its periods
once the clock is back (the scheduler moves back a plan made while the
clock was ahead).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import postgres_fleet
import pytest
from chaos_fleet import Fleet, count_in, ran, wait_until
from chaos_harness import Record, seconds

from backburner.jobs import Call, Client, JobState
from backburner.jobs.recurring import OCCURRENCE_PARAMETER
from backburner.storage import open_storage

S = JobState
LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")
HAVE_FAKETIME = LIBFAKETIME.exists()
SCHEDULED = 20
STEADY = seconds(60, 6)
PERIOD = 2.0
# Two ticks after the jump back, each within a few periods.
RESUME_WITHIN = 8 * PERIOD

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.timeout(int(STEADY * 3 + 150)),
]


def set_offset(path: Path, offset: str) -> None:
    path.write_text(offset + "\n")


async def test_clock_jumps_neither_repeat_occurrences_nor_strand_jobs(
    tmp_path: Path, record: Record
) -> None:
    # A failure, not a skip: a chaos run that quietly left this
    # scenario out would read as a full pass.
    assert HAVE_FAKETIME, (
        f"libfaketime not found at {LIBFAKETIME} (apt-get install -y faketime)"
    )
    figures = record(
        "server clock jumps +1 h and back",
        storage="sqlite",
        size=f"2 s recurring job, {SCHEDULED} scheduled jobs",
    )
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    out = tmp_path / "out.txt"
    offset = tmp_path / "offset"
    set_offset(offset, "+0")
    storage = open_storage(url)
    await storage.migrate()
    fleet = Fleet(url, tmp_path)
    faked = {
        "LD_PRELOAD": str(LIBFAKETIME),
        "FAKETIME_TIMESTAMP_FILE": str(offset),
        "FAKETIME_NO_CACHE": "1",
        "DONT_FAKE_MONOTONIC": "1",
    }
    try:
        client = Client(storage)
        await client.recurring.add_or_update(
            "tick",
            "*/2 * * * * *",
            Call(postgres_fleet.mark, str(out), "tick"),
        )
        now = datetime.now(UTC)
        for n in range(SCHEDULED):
            at = now + timedelta(seconds=4 + STEADY * 2 * n / SCHEDULED)
            await client.schedule(at, postgres_fleet.mark, str(out), f"s{n}")
        server = fleet.spawn(concurrency=4, extra_env=faked)

        async def ticks(at_least: int) -> bool:
            return ran(out)["tick"] >= at_least

        await wait_until(lambda: ticks(2), 60, "the first ticks")
        await asyncio.sleep(STEADY)
        set_offset(offset, "+3600")
        await asyncio.sleep(STEADY)
        set_offset(offset, "+0")
        after = ran(out)["tick"]
        ticks_ahead = after
        try:
            recovery: float | None = await wait_until(
                lambda: ticks(after + 2), RESUME_WITHIN, "ticks after the jump"
            )
        except AssertionError:
            recovery = None

        async def scheduled_done() -> bool:
            runs = ran(out)
            return all(runs[f"s{n}"] >= 1 for n in range(SCHEDULED))

        await wait_until(scheduled_done, 60, "every scheduled job")
        occurrences = Counter()
        before = None
        for _ in range(100):
            page = await client.list_jobs(limit=1000, before=before)
            for job in page.jobs:
                full = await client.get(job.id)
                occurrence = full.parameters.get(OCCURRENCE_PARAMETER)
                if occurrence is not None:
                    occurrences[occurrence] += 1
            before = page.next_before
            if before is None:
                break
        left = await count_in(client, S.SCHEDULED)
        alive = server.poll() is None
    finally:
        fleet.close()
        await storage.close()

    figures.duplicates = sum(n - 1 for n in occurrences.values())
    figures.recovery_s = recovery
    figures.errors_surfaced = fleet.tracebacks()
    figures.jobs_lost = left
    figures.note(f"{len(occurrences)} occurrences created")
    figures.note(f"{ticks_ahead} ticks before the jump back")
    if recovery is None:
        figures.note(
            f"not two ticks within {RESUME_WITHIN:.0f} s after the jump back"
        )
    else:
        figures.note(f"two ticks {recovery:.1f} s after the jump back")

    assert alive
    assert recovery is not None, "ticks resume after the jump back"
    assert figures.duplicates == 0, occurrences.most_common(3)
    assert left == 0, "no scheduled job stranded"
