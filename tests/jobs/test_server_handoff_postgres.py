"""The server on PostgreSQL starts a job handed to it at enqueue.

An idle server's workers are marked idle in storage; a single enqueue
from another process writes the job in processing for that server and
the NOTIFY carries it there, so the server starts it without fetching.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import job_samples
import psycopg
import pytest
from psycopg import sql
from server_helpers import FAST, eventually, fresh_samples, state_is

from backburner.jobs import Client, JobState, Server
from backburner.storage import Notification, open_storage
from backburner.storage.postgres import PostgresStorage

__all__ = ["fresh_samples"]

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(60)]


@pytest.fixture
async def two(
    postgres_url: str,
) -> AsyncIterator[tuple[PostgresStorage, PostgresStorage]]:
    """The server's storage and a client's, as in two processes."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    opened = [open_storage(f"{postgres_url}?schema={schema}") for _ in "ab"]
    typed = [s for s in opened if isinstance(s, PostgresStorage)]
    assert len(typed) == 2
    await typed[0].migrate()
    try:
        yield typed[0], typed[1]
    finally:
        for storage in typed:
            await storage.close()
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                    sql.Identifier(schema)
                )
            )


async def idle_workers(storage: PostgresStorage) -> int:
    async with await psycopg.AsyncConnection.connect(
        storage.settings.conninfo
    ) as conn:
        cursor = await conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE idle").format(
                sql.Identifier(storage.settings.schema, "idle_workers")
            )
        )
        row = await cursor.fetchone()
    return 0 if row is None else int(row[0])


async def idle_workers_are(storage: PostgresStorage, count: int) -> bool:
    return await idle_workers(storage) == count


async def test_an_idle_server_starts_a_job_handed_to_it_without_a_fetch(
    two: tuple[PostgresStorage, PostgresStorage],
) -> None:
    storage, elsewhere = two
    client = Client(elsewhere)
    fetched: list[int] = []
    combined = storage.apply_changes_and_fetch

    async def counting(*args: object) -> object:
        result = await combined(*args)  # type: ignore[arg-type]
        fetched.append(len(result[1]))
        return result

    storage.apply_changes_and_fetch = counting  # type: ignore[assignment]
    tuning = {**FAST, "poll_interval": 30.0}

    async with Server(storage, concurrency=2, **tuning) as running:
        await eventually(
            lambda: idle_workers(storage), within=10, what="idle workers"
        )
        job_id = await client.enqueue(job_samples.async_record, "handed")
        await eventually(
            lambda: state_is(client, job_id, JobState.SUCCEEDED), within=10
        )
        name = running.name

    job = await client.get(job_id)
    assert [(e.state, e.reason) for e in job.history][:2] == [
        (JobState.ENQUEUED, "enqueued"),
        (JobState.PROCESSING, f"handed to {name}"),
    ]
    assert job_samples.calls == [("async_record", "handed")]
    # No fetch ever returned it.
    assert sum(fetched) == 0


async def test_a_worker_freed_from_a_handed_job_takes_the_queued_one(
    two: tuple[PostgresStorage, PostgresStorage],
) -> None:
    storage, elsewhere = two
    client = Client(elsewhere)
    # No polling to fall back on: a freed worker must wake the fetch.
    tuning = {**FAST, "poll_interval": 30.0, "fetch_ahead": 0.0}

    async with Server(storage, concurrency=2, **tuning):
        await eventually(
            lambda: idle_workers_are(storage, 2), within=10, what="idle"
        )
        await client.enqueue(job_samples.wait_for_token, "long")
        await eventually(lambda: job_samples.event("long:started").is_set())
        await client.enqueue(job_samples.sleep_ignoring_token, "short", 0.3)
        await eventually(lambda: job_samples.event("short:started").is_set())
        # Both workers are taken by hand-offs: this one waits in the queue
        # until the short job's worker is free.
        queued = await client.enqueue(job_samples.async_record, "queued")

        await eventually(
            lambda: state_is(client, queued, JobState.SUCCEEDED), within=5
        )


async def test_a_job_handed_to_a_server_with_no_free_worker_runs_once(
    two: tuple[PostgresStorage, PostgresStorage],
) -> None:
    storage, elsewhere = two
    client = Client(elsewhere)
    tuning = {**FAST, "fetch_ahead": 0.0}

    async with Server(storage, concurrency=1, **tuning) as running:
        await eventually(
            lambda: idle_workers_are(storage, 1), within=10, what="idle"
        )
        busy = await client.enqueue(job_samples.wait_for_token, "busy")
        await eventually(lambda: job_samples.event("busy:started").is_set())
        # The server's poll marks its worker idle again, as it does when
        # it runs while the NOTIFY of the hand-off above is on its way.
        await storage.fetch(running.name, ["default"], 1, datetime.now(UTC))
        late = await client.enqueue(job_samples.record, "late")
        # Handed over with no worker free: it goes back on its queue.
        await eventually(
            lambda: state_is(client, late, JobState.ENQUEUED), within=10
        )

        await client.delete(busy)
        await eventually(
            lambda: state_is(client, late, JobState.SUCCEEDED), within=10
        )

    assert job_samples.calls.count(("record", ("late", "", ""))) == 1


async def test_a_server_run_until_empty_runs_the_retry_of_a_handed_job(
    two: tuple[PostgresStorage, PostgresStorage],
) -> None:
    storage, elsewhere = two
    client = Client(elsewhere)
    heard: list[Notification] = []
    storage.subscribe(heard.append)
    await storage.wait_listening()
    promote = storage.promote_scheduled
    enqueued: list[int] = []

    async def enqueuing(now: datetime, limit: int) -> int:
        # A job enqueued elsewhere while the server, idle, promotes
        # before its last fetch: it is handed to the server.
        if not enqueued and await idle_workers_are(storage, 1):
            job_id = await client.enqueue(job_samples.flaky, "handed", 1)
            enqueued.append(job_id)
            await eventually(lambda: bool(heard), within=5, what="hand-off")
        return await promote(now, limit)

    storage.promote_scheduled = enqueuing  # type: ignore[method-assign]
    tuning = {**FAST, "promote_interval": 30.0, "fetch_ahead": 0.0}

    await Server(storage, concurrency=1, **tuning).run(until_empty=True)

    (job_id,) = enqueued
    job = await client.get(job_id)
    assert job.state is JobState.SUCCEEDED
    assert [entry.reason for entry in job.history][1].startswith("handed to")


async def test_a_job_the_reconciler_puts_back_is_not_started_from_its_hand_off(
    two: tuple[PostgresStorage, PostgresStorage],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    storage, elsewhere = two
    client = Client(elsewhere)
    # The enqueuing process's clock runs an hour behind: the job it hands
    # over looks to the server as if it entered processing long ago.
    from backburner.jobs import client as client_module

    real_now = client_module.utc_now
    monkeypatch.setattr(
        client_module, "utc_now", lambda: real_now() - timedelta(hours=1)
    )
    # The hand-off's NOTIFY is held back, then delivered while the
    # server's reconciler reads what storage says the server holds.
    deliver = storage._hub._deliver  # type: ignore[attr-defined]
    held_back: list[str] = []

    def holding_back(payload: str) -> None:
        if '"h"' in payload:
            held_back.append(payload)
        else:
            deliver(payload)

    storage._hub._deliver = holding_back  # type: ignore[attr-defined]
    listed = storage.held_jobs

    async def notice_comes_meanwhile(server: str) -> object:
        jobs = await listed(server)
        if jobs:
            for payload in held_back:
                deliver(payload)
            held_back.clear()
        return jobs

    storage.held_jobs = notice_comes_meanwhile  # type: ignore[assignment]
    tuning = {**FAST, "poll_interval": 30.0, "dead_after": 1.0}

    async with Server(storage, concurrency=1, **tuning):
        await eventually(
            lambda: idle_workers_are(storage, 1), within=10, what="idle"
        )
        job_id = await client.enqueue(job_samples.async_record, "handed")
        await eventually(lambda: bool(held_back), within=5, what="notice")
        await eventually(
            lambda: state_is(client, job_id, JobState.SUCCEEDED), within=10
        )

    # Put back (it looked held for an hour and not running), then
    # fetched: it ran once, not from its hand-off and again from its queue.
    assert job_samples.calls == [("async_record", "handed")]
