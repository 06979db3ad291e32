"""Table upkeep: statistics kept fresh where autovacuum does not.

A prepared statement keeps the generic plan PostgreSQL made for it until
something invalidates it. Made while ``jobs`` was nearly empty, the
fetch's plan scans the whole table; without an analyze it keeps doing so
as the table grows, and each fetch costs more than the one before (a
server under steady load fell further behind every minute). These tests
turn autovacuum off for their own tables, so that they behave the same
whatever the server's setting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import psycopg
import pytest

from backburner.jobs import Call, Client, JobState, Server
from backburner.storage import InvalidStorageURLError, Storage, open_storage
from backburner.storage.postgres.config import parse_url
from backburner.storage.postgres.upkeep import Reporter, Tended, due
from conftest import Admin, with_options
from pg_cluster import PrivateCluster, private_cluster

__all__ = ["private_cluster"]

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(90)]
GROWTH = 50_000


async def noop() -> None:
    """A job that does nothing."""


@pytest.fixture
async def storage(
    postgres_storage_url: str, admin: Admin
) -> AsyncIterator[Storage]:
    opened = open_storage(postgres_storage_url)
    await opened.migrate()
    for (table,) in admin(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    ):
        admin(f'ALTER TABLE "{table}" SET (autovacuum_enabled = false)')
    try:
        yield opened
    finally:
        await opened.close()


def table_stats(admin: Admin, table: str) -> dict[str, object]:
    # A statement of its own: no statistics snapshot cached from before.
    (row,) = admin(
        "SELECT seq_scan, n_dead_tup, n_mod_since_analyze, last_analyze, "
        "last_vacuum FROM pg_stat_user_tables "
        "WHERE schemaname = current_schema() AND relname = %s",
        table,
    )
    keys = ("seq_scan", "dead", "changed", "analyzed", "vacuumed")
    return dict(zip(keys, row, strict=True))


def analyzed_since(admin: Admin, table: str, moment: object) -> bool:
    ((later,),) = admin(
        "SELECT last_analyze > %s FROM pg_stat_user_tables "
        "WHERE schemaname = current_schema() AND relname = %s",
        moment,
        table,
    )
    return later is True


def grow_jobs(admin: Admin, rows: int) -> None:
    """Add finished jobs straight into the table, as months of use do."""
    admin(
        "INSERT INTO jobs (id, function, arguments, queue, state, reason, "
        "created_at, state_changed_at) "
        "SELECT g, 'app:f', '[[],{}]', 'default', 'deleted', 'old', now(), "
        "now() FROM generate_series(10000000, 10000000 + %s - 1) AS g",
        rows,
    )
    flush_statistics(admin)


def flush_statistics(admin: Admin) -> None:
    """Send this connection's table counts now, not within ten seconds."""
    admin("SELECT pg_stat_force_next_flush()")


async def closed_and_counted(
    storage: Storage, admin: Admin, schema: str
) -> int:
    """Close ``storage``; return the rows read by full scans of jobs.

    A backend sends its table counts at most once a second, and always
    as it exits: once the storage's connections are gone, every scan
    they made is counted.
    """
    await storage.close()
    deadline = time.monotonic() + 10
    while admin(
        "SELECT 1 FROM pg_stat_activity WHERE application_name = %s", schema
    ):
        assert time.monotonic() < deadline, "connections still open"
        await asyncio.sleep(0.05)
    (row,) = admin(
        "SELECT seq_tup_read FROM pg_stat_user_tables "
        "WHERE schemaname = current_schema() AND relname = 'jobs'"
    )
    return int(str(row[0]))


async def drain(client: Client, count: int) -> None:
    async def succeeded() -> int:
        return (await client.counts()).by_state[JobState.SUCCEEDED]

    before = await succeeded()
    await client.enqueue_many([Call(noop)] * count)
    deadline = time.monotonic() + 60
    while await succeeded() < before + count:
        assert time.monotonic() < deadline, "the jobs were not drained"
        await asyncio.sleep(0.05)


async def test_a_server_keeps_its_plans_fresh_as_the_jobs_table_grows(
    storage: Storage, admin: Admin, postgres_schema: str
) -> None:
    client = Client(storage)
    server = Server(
        storage, concurrency=8, poll_interval=0.05, upkeep_interval=0.3
    )
    running = asyncio.create_task(server.run())
    try:
        # The hot statements get prepared while the tables are tiny:
        # jobs enqueued one by one, each fetched on its own.
        for _ in range(60):
            await client.enqueue(noop)
        await drain(client, 20)
        grow_jobs(admin, GROWTH)
        ((grown_at,),) = admin("SELECT now()")
        deadline = time.monotonic() + 20
        while not analyzed_since(admin, "jobs", grown_at):
            assert time.monotonic() < deadline, "jobs was never analyzed"
            await asyncio.sleep(0.1)
        await drain(client, 300)
    finally:
        server.shutdown()
        await running
    read = await closed_and_counted(storage, admin, postgres_schema)
    # A stale plan reads the whole grown table in every fetch and outcome
    # batch (dozens of times for 300 jobs); fresh ones use the primary
    # key. The scans made while the table was tiny read a few rows each.
    assert read < GROWTH, f"full scans of jobs read {read} rows"


async def test_maintain_analyzes_grown_tables_once(
    storage: Storage, admin: Admin
) -> None:
    grow_jobs(admin, 5_000)
    await storage.maintain()
    first = table_stats(admin, "jobs")
    assert first["analyzed"] is not None
    assert first["changed"] == 0
    await storage.maintain()
    assert table_stats(admin, "jobs")["analyzed"] == first["analyzed"]


async def test_maintain_vacuums_a_queue_table_full_of_dead_rows(
    storage: Storage, admin: Admin
) -> None:
    admin(
        "INSERT INTO job_queue (job_id, queue) "
        "SELECT g, 'default' FROM generate_series(1, 3000) AS g"
    )
    admin("DELETE FROM job_queue")
    flush_statistics(admin)
    assert int(str(table_stats(admin, "job_queue")["dead"])) >= 3000
    await storage.maintain()
    tended = table_stats(admin, "job_queue")
    # How many dead rows it could remove depends on the oldest open
    # transaction of the whole server, so only the vacuum is checked.
    assert tended["vacuumed"] is not None
    # jobs is big and not worth a vacuum here: left to autovacuum.
    assert table_stats(admin, "jobs")["vacuumed"] is None


async def test_only_one_process_tends_a_schema_at_a_time(
    storage: Storage, admin: Admin, postgres_url: str, postgres_schema: str
) -> None:
    grow_jobs(admin, 5_000)
    with psycopg.connect(postgres_url, autocommit=True) as other:
        other.execute(
            "SELECT pg_advisory_lock(%s, hashtext(%s))",
            (0x6276, postgres_schema),
        )
        await storage.maintain()
        assert table_stats(admin, "jobs")["analyzed"] is None
        other.execute(
            "SELECT pg_advisory_unlock(%s, hashtext(%s))",
            (0x6276, postgres_schema),
        )
    await storage.maintain()
    assert table_stats(admin, "jobs")["analyzed"] is not None


async def test_upkeep_false_leaves_the_tables_alone(
    storage: Storage, admin: Admin, postgres_storage_url: str
) -> None:
    grow_jobs(admin, 5_000)
    hands_off = open_storage(
        with_options(postgres_storage_url, upkeep="false")
    )
    try:
        await hands_off.maintain()
    finally:
        await hands_off.close()
    assert table_stats(admin, "jobs")["analyzed"] is None


def test_the_upkeep_option_takes_a_truth_value() -> None:
    assert parse_url("postgresql://db/app").upkeep is True
    assert parse_url("postgresql://db/app?upkeep=off").upkeep is False
    with pytest.raises(
        InvalidStorageURLError, match="upkeep must be true or false"
    ):
        parse_url("postgresql://db/app?upkeep=sometimes")
    assert "upkeep" not in parse_url("postgresql://db/app?upkeep=no").conninfo


def test_analyze_follows_autovacuum_and_vacuum_only_small_tables() -> None:
    assert due("jobs", 1_000, 0, 151) == (True, False)
    assert due("jobs", 1_000, 0, 150) == (False, False)
    assert due("jobs", 0, 5_000, 0) == (False, False)
    assert due("job_queue", 10, 1_001, 0) == (False, True)
    assert due("job_queue", 10, 1_000, 0) == (False, False)


def test_where_autovacuum_runs_only_a_table_far_behind_is_due() -> None:
    assert due("jobs", 1_000, 0, 151, autovacuum=True) == (False, False)
    assert due("jobs", 1_000, 0, 601, autovacuum=True) == (True, False)
    assert due("job_queue", 10, 3_000, 0, autovacuum=True) == (False, False)
    assert due("job_queue", 10, 4_001, 0, autovacuum=True) == (False, True)


async def test_tables_autovacuum_tends_are_left_to_it(
    postgres_storage_url: str, admin: Admin
) -> None:
    """With autovacuum on for the table (the fixture is not used: it
    turns autovacuum off), a table past the plain threshold is left to
    autovacuum. Only meaningful where the server runs autovacuum."""
    opened = open_storage(postgres_storage_url)
    await opened.migrate()
    try:
        ((server_autovacuum,),) = admin("SELECT current_setting('autovacuum')")
        if server_autovacuum != "on":
            # This server has autovacuum off for everything: turn it off
            # for jobs too and check that upkeep then steps in at once.
            admin('ALTER TABLE "jobs" SET (autovacuum_enabled = false)')
            grow_jobs(admin, 1_000)
            await opened.maintain()
            assert table_stats(admin, "jobs")["analyzed"] is not None
            return
        admin('ALTER TABLE "jobs" SET (autovacuum_enabled = true)')
        grow_jobs(admin, 1_000)
        await opened.maintain()
        assert table_stats(admin, "jobs")["analyzed"] is None
    finally:
        await opened.close()


def test_standing_problems_are_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG", logger="backburner.storage")
    reporter = Reporter("shop")
    found = Tended(
        analyzed=("job_queue",),
        not_owned=("jobs",),
        unattended=("jobs", "job_queue"),
    )
    reporter.round(found, 0.01)
    reporter.round(found, 0.01)
    events = [getattr(r, "event", None) for r in caplog.records]
    assert events.count("storage.autovacuum_off") == 1
    assert events.count("storage.upkeep_not_owner") == 1
    assert events.count("storage.tables_tended") == 2
    (not_owner,) = [
        r
        for r in caplog.records
        if r.event == "storage.upkeep_not_owner"  # type: ignore[attr-defined]
    ]
    assert "jobs" in not_owner.getMessage()
    assert "shop" in not_owner.getMessage()


async def test_a_role_that_owns_no_table_says_so_and_touches_nothing(
    private_cluster: PrivateCluster, caplog: pytest.LogCaptureFixture
) -> None:
    owner_url = f"{private_cluster.url}?schema=shop"
    with psycopg.connect(private_cluster.url, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET autovacuum = off")
        conn.execute("SELECT pg_reload_conf()")
        conn.execute("CREATE ROLE app LOGIN")
    owner = open_storage(owner_url)
    await owner.migrate()
    await owner.close()
    with psycopg.connect(private_cluster.url, autocommit=True) as conn:
        conn.execute("GRANT USAGE ON SCHEMA shop TO app")
        conn.execute(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES "
            "IN SCHEMA shop TO app"
        )
        conn.execute(
            "INSERT INTO shop.jobs (id, function, arguments, queue, state, "
            "reason, created_at, state_changed_at) "
            "SELECT g, 'app:f', '[[],{}]', 'default', 'deleted', 'old', "
            "now(), now() FROM generate_series(1, 5000) AS g"
        )
        conn.execute("SELECT pg_stat_force_next_flush()")
    caplog.set_level("WARNING", logger="backburner.storage")
    app_url = private_cluster.url.replace("postgres@", "app@", 1)
    app = open_storage(f"{app_url}?schema=shop&auto_migrate=false")
    try:
        await app.maintain()
    finally:
        await app.close()
    with psycopg.connect(private_cluster.url) as conn:
        (analyzed,) = conn.execute(
            "SELECT last_analyze FROM pg_stat_user_tables "
            "WHERE schemaname = 'shop' AND relname = 'jobs'"
        ).fetchone() or (None,)
    assert analyzed is None
    events = {getattr(r, "event", None) for r in caplog.records}
    assert "storage.upkeep_not_owner" in events
