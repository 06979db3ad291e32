"""PostgreSQL only: dropped connections, unstorable text, clear errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import psycopg
import pytest

from backburner.jobs import Client
from backburner.jobs.errors import JobArgumentError
from backburner.storage import (
    JobState,
    NewJob,
    ServerInfo,
    StateChange,
    StorageError,
    open_storage,
)
from backburner.storage.postgres import PostgresStorage
from backburner.storage.postgres.config import parse_url

pytestmark = pytest.mark.postgres

Admin = Callable[..., list[tuple[object, ...]]]
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def new_job(
    arguments: str = '{"args":[],"kwargs":{}}',
    parameters: dict[str, str] | None = None,
) -> NewJob:
    return NewJob(
        function="app.jobs:send",
        arguments=arguments,
        queue="default",
        state=JobState.ENQUEUED,
        reason="enqueued",
        created_at=T0,
        parameters=parameters or {},
    )


def delete(job_id: int, reason: str = "deleted") -> StateChange:
    return StateChange(
        job_id=job_id,
        to_state=JobState.DELETED,
        from_states=frozenset(JobState),
        reason=reason,
        at=T0,
    )


@pytest.fixture
async def storage(postgres_storage_url: str) -> AsyncIterator[PostgresStorage]:
    opened = open_storage(postgres_storage_url)
    assert isinstance(opened, PostgresStorage)
    await opened.migrate()
    try:
        yield opened
    finally:
        await opened.close()


def kill_pool_connections(admin: Admin, application_name: str) -> int:
    rows = admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = %s AND query NOT LIKE 'LISTEN%%'",
        application_name,
    )
    return len(rows)


# -- dropped connections ---------------------------------------------------


async def test_the_next_call_survives_killed_pool_connections(
    storage: PostgresStorage, admin: Admin, postgres_schema: str
) -> None:
    job_id = await storage.create_job(new_job())

    assert kill_pool_connections(admin, postgres_schema) >= 1

    record = await storage.get_job(job_id)
    second = await storage.create_job(new_job())
    assert record is not None
    assert second > job_id


async def test_enqueues_on_replaced_connections_keep_few_cursors(
    postgres_storage_url: str, admin: Admin, postgres_schema: str
) -> None:
    # One raw cursor per pooled connection; the pool replaces killed
    # connections, and the cursors of the dead ones must not pile up.
    opened = open_storage(f"{postgres_storage_url}&pool_max_size=1")
    assert isinstance(opened, PostgresStorage)
    await opened.migrate()
    try:
        made = [await opened.create_job(new_job())]
        for _ in range(6):
            assert kill_pool_connections(admin, postgres_schema) >= 1
            made.append(await opened.create_job(new_job()))
            made.append(await opened.create_job(new_job()))

        assert len(opened._raw_cursors) <= 2
        assert len(set(made)) == len(made) == 13
        assert len(await opened.list_jobs(limit=20)) == 13
    finally:
        await opened.close()


async def waiting_on_a_lock(
    admin: Admin, application_name: str, not_pid: object = None
) -> object:
    """Return the pid of the storage's backend once it waits on a lock."""
    async with asyncio.timeout(60):
        # PostgreSQL offers no event for "that backend now waits on a
        # lock": poll pg_stat_activity, bounded by the timeout. The admin
        # is mostly inside a transaction, whose first read of
        # pg_stat_activity fixes the set of backends it shows until it
        # ends: clear it, or a backend that connected since (the pool's
        # replacement for a killed connection) is never seen.
        while True:
            admin("SELECT pg_stat_clear_snapshot()")
            rows = admin(
                "SELECT pid FROM pg_stat_activity"
                " WHERE application_name = %s AND wait_event_type = 'Lock'"
                " AND pid IS DISTINCT FROM %s",
                application_name,
                not_pid,
            )
            if rows:
                return rows[0][0]
            await asyncio.sleep(0.02)


async def test_a_call_whose_connection_is_killed_mid_way_runs_again(
    storage: PostgresStorage, admin: Admin, postgres_schema: str
) -> None:
    job_id = await storage.create_job(new_job())
    # Hold the job's row so that the storage's change waits on it.
    admin("BEGIN")
    admin("SELECT 1 FROM jobs WHERE id = %s FOR UPDATE", job_id)
    change = asyncio.create_task(storage.apply_change(delete(job_id)))
    try:
        first = await waiting_on_a_lock(admin, postgres_schema)
        admin("SELECT pg_terminate_backend(%s)", first)
        await waiting_on_a_lock(admin, postgres_schema, not_pid=first)
    finally:
        admin("ROLLBACK")

    outcome = await change
    assert outcome.applied
    history = await storage.get_history(job_id)
    assert [h.state for h in history] == [JobState.ENQUEUED, JobState.DELETED]


async def test_an_enqueue_sent_twice_with_its_id_writes_the_job_once(
    storage: PostgresStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a retry after a lost reply sends: the same statement with the
    # same reserved id, after the first run committed.
    first = await storage.create_job(new_job(parameters={"tenant": "a"}))
    monkeypatch.setattr(storage._spare_ids, "take", lambda: first)

    again = await storage.create_job(new_job(parameters={"tenant": "a"}))

    assert again == first
    assert [job.id for job in await storage.list_jobs()] == [first]
    history = await storage.get_history(first)
    assert [entry.state for entry in history] == [JobState.ENQUEUED]
    assert await storage.get_parameters(first) == {"tenant": "a"}
    (count,) = await storage.counts()
    assert (count.state, count.count) == (JobState.ENQUEUED, 1)
    later = datetime(2026, 1, 1, 13, 0, tzinfo=UTC)
    await storage.announce_server(ServerInfo("s:1", ("default",), 2, T0, T0))
    fetched = await storage.fetch("s:1", ("default",), 5, later)
    assert [job.id for job in fetched] == [first]


async def test_each_enqueue_reserves_the_id_of_the_next(
    storage: PostgresStorage, admin: Admin
) -> None:
    first = await storage.create_job(new_job())
    before = admin("SELECT last_value FROM jobs_id_seq")[0][0]

    second = await storage.create_job(new_job())

    after = admin("SELECT last_value FROM jobs_id_seq")[0][0]
    # The second used the id the first reserved, and reserved one more
    # in the same statement.
    assert second == before
    assert after == before + 1
    assert first < second


async def test_a_call_that_loses_its_connection_twice_is_a_storage_error(
    storage: PostgresStorage, admin: Admin, postgres_schema: str
) -> None:
    job_id = await storage.create_job(new_job())
    admin("BEGIN")
    admin("SELECT 1 FROM jobs WHERE id = %s FOR UPDATE", job_id)
    change = asyncio.create_task(storage.apply_change(delete(job_id)))
    try:
        first = await waiting_on_a_lock(admin, postgres_schema)
        admin("SELECT pg_terminate_backend(%s)", first)
        second = await waiting_on_a_lock(admin, postgres_schema, first)
        admin("SELECT pg_terminate_backend(%s)", second)

        with pytest.raises(StorageError) as raised:
            await change
    finally:
        admin("ROLLBACK")

    assert isinstance(raised.value.__cause__, psycopg.OperationalError)
    record = await storage.get_job(job_id)
    assert record is not None
    assert record.state is JobState.ENQUEUED


def hold_every_counter_shard(admin: Admin) -> None:
    """Lock the enqueued counter rows of the default queue (all shards),
    so that an enqueue waits on one of them, in a transaction left open."""
    admin(
        "INSERT INTO job_counters (state, queue, shard, count)"
        " SELECT 'enqueued', 'default', s, 0 FROM generate_series(0, 15) s"
        " ON CONFLICT DO NOTHING"
    )
    admin("BEGIN")
    admin("SELECT 1 FROM job_counters FOR UPDATE")


async def test_an_enqueue_whose_connection_is_killed_is_written_once(
    storage: PostgresStorage, admin: Admin, postgres_schema: str
) -> None:
    await storage.create_job(new_job())
    hold_every_counter_shard(admin)
    enqueue = asyncio.create_task(storage.create_job(new_job()))
    try:
        first = await waiting_on_a_lock(admin, postgres_schema)
        admin("SELECT pg_terminate_backend(%s)", first)
        await waiting_on_a_lock(admin, postgres_schema, not_pid=first)
    finally:
        admin("ROLLBACK")

    job_id = await enqueue
    assert len(await storage.list_jobs()) == 2
    history = await storage.get_history(job_id)
    assert [entry.state for entry in history] == [JobState.ENQUEUED]
    (count,) = await storage.counts()
    assert count.count == 2


async def test_an_enqueue_that_loses_its_connection_twice_says_so(
    storage: PostgresStorage, admin: Admin, postgres_schema: str
) -> None:
    await storage.create_job(new_job())
    hold_every_counter_shard(admin)
    enqueue = asyncio.create_task(storage.create_job(new_job()))
    try:
        first = await waiting_on_a_lock(admin, postgres_schema)
        admin("SELECT pg_terminate_backend(%s)", first)
        second = await waiting_on_a_lock(admin, postgres_schema, first)
        admin("SELECT pg_terminate_backend(%s)", second)

        with pytest.raises(StorageError, match="may or may not have been"):
            await enqueue
    finally:
        admin("ROLLBACK")

    assert len(await storage.list_jobs()) == 1


async def test_an_unreachable_database_is_a_storage_error(
    postgres_url: str,
) -> None:
    settings = parse_url(
        f"{postgres_url.rsplit('/', 1)[0]}/backburner_no_such_database"
        "?pool_timeout=1"
    )
    storage = PostgresStorage(settings)
    try:
        with pytest.raises(StorageError):
            await storage.get_job(1)
    finally:
        await storage.close()


# -- text PostgreSQL cannot store --------------------------------------------


async def test_a_nul_in_arguments_refuses_the_whole_batch_unwritten(
    storage: PostgresStorage,
) -> None:
    with pytest.raises(StorageError, match=r"job #1 .*arguments.*NUL"):
        await storage.create_jobs([new_job(), new_job('{"a":"x\x00"}')])

    assert await storage.list_jobs() == []
    assert await storage.counts() == []


async def test_a_nul_in_a_parameter_names_the_parameter(
    storage: PostgresStorage,
) -> None:
    with pytest.raises(StorageError, match="parameter 'tenant'"):
        await storage.create_job(new_job(parameters={"tenant": "a\x00"}))
    job_id = await storage.create_job(new_job())

    with pytest.raises(StorageError, match="parameter 'tenant'"):
        await storage.set_parameter(job_id, "tenant", "b\x00")

    assert await storage.get_parameters(job_id) == {}


async def test_enqueueing_a_nul_argument_names_it_and_writes_nothing(
    storage: PostgresStorage,
) -> None:
    client = Client(storage)

    with pytest.raises(JobArgumentError) as raised:
        await client.enqueue(json.dumps, "ok", {"note": "a\x00b"})

    assert raised.value.argument.startswith("args[1]")
    assert await storage.list_jobs() == []


async def test_a_nul_in_a_change_reason_is_replaced_not_refused(
    storage: PostgresStorage,
) -> None:
    job_id = await storage.create_job(new_job())

    outcome = await storage.apply_change(delete(job_id, "boom\x00: bad"))

    assert outcome.applied
    record = await storage.get_job(job_id)
    assert record is not None
    assert record.reason == "boom\ufffd: bad"
    history = await storage.get_history(job_id)
    assert history[-1].reason == "boom\ufffd: bad"
