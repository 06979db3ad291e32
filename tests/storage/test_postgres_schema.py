"""PostgreSQL only: the URL, the schema and its migrations."""

from __future__ import annotations

import asyncio
import urllib.parse
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from tests.storage.conftest import with_options

from backburner.storage import (
    InvalidStorageURLError,
    JobState,
    NewJob,
    SchemaError,
    ServerInfo,
    open_storage,
)
from backburner.storage.postgres import PostgresStorage, schema
from backburner.storage.postgres.config import parse_url

pytestmark = pytest.mark.postgres

Admin = Callable[..., list[tuple[object, ...]]]
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
JOB = NewJob(
    function="app.jobs:send",
    arguments='{"args":[],"kwargs":{}}',
    queue="default",
    state=JobState.ENQUEUED,
    reason="enqueued",
    created_at=T0,
)


def opened(url: str) -> PostgresStorage:
    storage = open_storage(url)
    assert isinstance(storage, PostgresStorage)
    return storage


# -- URLs ------------------------------------------------------------------


def test_the_default_schema_is_jobs() -> None:
    settings = parse_url("postgresql://app@db.internal:5432/shop")

    assert settings.schema == "jobs"
    assert settings.channel == "backburner_jobs"


def test_backburner_options_are_taken_out_of_the_connection_string() -> None:
    settings = parse_url(
        "postgres://app@db/shop?schema=queue_2&pool_max_size=20"
        "&pool_timeout=2.5&sslmode=require"
    )

    assert settings.schema == "queue_2"
    assert settings.pool_max_size == 20
    assert settings.pool_timeout == 2.5
    assert settings.conninfo == (
        "postgresql://app@db/shop?sslmode=require&connect_timeout=5"
    )


def test_a_connect_timeout_of_the_url_is_kept() -> None:
    settings = parse_url("postgresql://app@db/shop?connect_timeout=30")

    assert settings.conninfo == "postgresql://app@db/shop?connect_timeout=30"


@pytest.mark.parametrize(
    "query",
    [
        "schema=Jobs",
        "schema=jobs;drop",
        "schema=1jobs",
        "pool_max_size=0",
        "pool_min_size=5&pool_max_size=2",
        "pool_timeout=0",
        "pool_timeout=soon",
        "auto_migrate=perhaps",
        "bogus=1",
        "sslmode=require&connect_timout=3",
    ],
)
def test_bad_options_are_refused_with_a_clear_error(query: str) -> None:
    with pytest.raises(InvalidStorageURLError):
        open_storage(f"postgresql://app@db/shop?{query}")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app:s3cret@db/shop",
        "postgresql://app@db/shop?password=s3cret&sslmode=require",
    ],
)
def test_a_password_never_shows_in_the_storage_repr(url: str) -> None:
    storage = opened(url)

    assert "s3cret" not in repr(storage)
    assert "***" in repr(storage)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app:s3cret@tail@db/shop",
        "postgresql://app@s3cret@db/shop",
    ],
)
def test_an_unescaped_at_sign_in_the_user_information_is_refused(
    url: str,
) -> None:
    # libpq would take what follows the first "@" for the host name.
    with pytest.raises(
        InvalidStorageURLError, match="write it as %40"
    ) as error:
        open_storage(url)

    assert "s3cret" not in str(error.value)
    assert "tail" not in str(error.value)


def test_an_escaped_at_sign_in_a_password_is_kept() -> None:
    storage = opened("postgresql://app:s3cret%40tail@db/shop")

    assert "s3cret%40tail@db" in storage.settings.conninfo


@pytest.mark.parametrize(
    "hosts", ["db:99999", "db:0", "db:abc", "db1:5432,db2:x"]
)
def test_a_port_out_of_range_is_refused_before_connecting(hosts: str) -> None:
    with pytest.raises(InvalidStorageURLError, match="port"):
        open_storage(f"postgresql://app@{hosts}/shop")


@pytest.mark.parametrize(
    "hosts", ["db1:5432,db2:5433", "[::1]:5432", "[::1]", "db"]
)
def test_hosts_and_ports_libpq_reads_are_kept(hosts: str) -> None:
    settings = parse_url(f"postgresql://app@{hosts}/shop")

    assert settings.conninfo.startswith(f"postgresql://app@{hosts}/shop?")


async def test_a_url_without_a_host_names_it_in_the_query(
    postgres_url: str, postgres_schema: str
) -> None:
    # As for a Unix socket: postgresql:///db?host=/run/postgresql. The
    # empty host part must survive, or libpq does not read a URL.
    parts = urllib.parse.urlsplit(postgres_url)
    url = (
        f"postgresql://{parts.path}?host={parts.hostname}"
        f"&port={parts.port or 5432}&user={parts.username}"
        f"&schema={postgres_schema}"
    )
    storage = opened(url)
    try:
        job_id = await storage.create_job(JOB)
        record = await storage.get_job(job_id)
    finally:
        await storage.close()

    assert storage.settings.conninfo.startswith("postgresql:///")
    assert record is not None


def test_options_for_libpq_keep_their_escapes() -> None:
    # libpq decodes %XX only: a "+" is a plus sign, and a space must
    # reach it as %20.
    settings = parse_url(
        "postgresql://app@db/shop?options=-c%20work_mem%3D64MB"
        "&application_name=a+b"
    )

    assert settings.conninfo == (
        "postgresql://app@db/shop?options=-c%20work_mem%3D64MB"
        "&application_name=a%2Bb&connect_timeout=5"
    )


async def test_server_settings_in_the_url_reach_the_storage_connections(
    postgres_url: str, postgres_schema: str, admin: Admin
) -> None:
    name = f"bb_{uuid.uuid4().hex[:12]}"
    storage = opened(
        with_options(
            postgres_url,
            schema=postgres_schema,
            options=f"-c%20application_name%3D{name}",
        )
    )
    try:
        await storage.create_job(JOB)
        seen = admin(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = %s",
            name,
        )
    finally:
        await storage.close()

    assert seen[0][0] >= 1


# -- migrations ------------------------------------------------------------


def shipped_versions() -> list[int]:
    """Every migration version shipped, in order."""
    return [version for version, _ in schema.available()]


async def test_migrate_creates_the_tables_in_the_named_schema(
    postgres_storage_url: str, postgres_schema: str, admin: Admin
) -> None:
    storage = opened(postgres_storage_url)
    try:
        applied = await storage.migrate()
        again = await storage.migrate()
    finally:
        await storage.close()

    tables = admin(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = %s ORDER BY table_name",
        postgres_schema,
    )
    assert applied == shipped_versions()
    assert again == []
    assert {name for (name,) in tables} >= {
        "recurring_jobs",
        "jobs",
        "job_history",
        "job_queue",
        "job_parameters",
        "job_counters",
        "servers",
        "schema_version",
    }


async def test_concurrent_migrations_apply_each_version_once(
    postgres_storage_url: str, admin: Admin
) -> None:
    storages = [opened(postgres_storage_url) for _ in range(6)]
    try:
        results = await asyncio.gather(*(s.migrate() for s in storages))
    finally:
        for storage in storages:
            await storage.close()

    assert sorted(results) == [[]] * 5 + [shipped_versions()]
    assert admin("SELECT version FROM schema_version ORDER BY version") == [
        (version,) for version in shipped_versions()
    ]


async def test_first_use_migrates_when_auto_migrate_is_on(
    postgres_storage_url: str,
) -> None:
    storage = opened(postgres_storage_url)
    try:
        job_id = await storage.create_job(JOB)
        record = await storage.get_job(job_id)
    finally:
        await storage.close()

    assert record is not None


async def test_without_auto_migrate_a_missing_schema_is_a_schema_error(
    postgres_storage_url: str,
) -> None:
    storage = opened(f"{postgres_storage_url}&auto_migrate=false")
    try:
        with pytest.raises(SchemaError, match="migrate"):
            await storage.create_job(JOB)
    finally:
        await storage.close()


async def test_a_newer_schema_refuses_migrate_but_keeps_serving(
    postgres_storage_url: str, admin: Admin
) -> None:
    first = opened(postgres_storage_url)
    await first.migrate()
    await first.close()
    admin("INSERT INTO schema_version (version) VALUES (9999)")

    storage = opened(postgres_storage_url)
    try:
        with pytest.raises(SchemaError, match="9999"):
            await storage.migrate()
        # An older server keeps working while a newer release migrates:
        # migrations only ever add.
        job_id = await storage.create_job(JOB)
    finally:
        await storage.close()

    assert job_id > 0


async def test_a_no_transaction_migration_can_build_an_index_concurrently(
    postgres_storage_url: str,
    admin: Admin,
    postgres_schema: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    storage = opened(postgres_storage_url)
    await storage.migrate()
    extra = (
        "-- backburner: no transaction\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS jobs_by_function"
        " ON jobs (function);\n"
    )
    shipped = schema.available()
    monkeypatch.setattr(schema, "available", lambda: [*shipped, (9000, extra)])
    try:
        applied = await storage.migrate()
    finally:
        await storage.close()

    assert applied == [9000]
    assert admin(
        "SELECT indexname FROM pg_indexes"
        " WHERE schemaname = %s AND indexname = 'jobs_by_function'",
        postgres_schema,
    ) == [("jobs_by_function",)]


async def test_a_running_storage_survives_an_additive_migration(
    postgres_storage_url: str, admin: Admin
) -> None:
    storage = opened(postgres_storage_url)
    await storage.migrate()
    await storage.announce_server(ServerInfo("old:1", ("default",), 1, T0, T0))
    ids = await storage.create_jobs([JOB] * 20)
    # More calls than psycopg's prepare threshold: the statements are
    # prepared on the server when the schema changes under them.
    for job_id in ids[:8]:
        await storage.fetch("old:1", ["default"], 1, T0)
        await storage.get_job(job_id)
        await storage.list_jobs(limit=5)
        await storage.get_history(job_id)

    admin("ALTER TABLE jobs ADD COLUMN priority integer")
    admin("ALTER TABLE job_history ADD COLUMN note text")
    admin("ALTER TABLE servers ADD COLUMN version text")

    try:
        (fetched,) = await storage.fetch("old:1", ["default"], 1, T0)
        record = await storage.get_job(fetched.id)
        listed = await storage.list_jobs(limit=5)
        history = await storage.get_history(fetched.id)
        servers = await storage.list_servers()
    finally:
        await storage.close()

    assert record is not None
    assert record.state is JobState.PROCESSING
    assert len(listed) == 5
    assert len(history) == 2
    assert [s.name for s in servers] == ["old:1"]
