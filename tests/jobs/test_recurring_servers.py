"""Several servers on one storage, one per-second recurring job.

Each occurrence must create exactly one job however many servers wake
for it: the servers race for every occurrence, and the storage's
compare-and-set lets one win. The fast test runs three servers in this
process on one SQLite file for a few seconds; the slow one runs them
for a minute, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import recurring_samples
from psycopg import sql
from server_helpers import FAST, eventually

from backburner.jobs import Call, Client, JobState, Server
from backburner.storage import Storage, open_storage

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(autouse=True)
def fresh_samples() -> None:
    recurring_samples.reset()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'jobs.db'}"


@pytest.fixture
def postgres_schema_url(postgres_url: str) -> Iterator[str]:
    schema = f"test_{uuid.uuid4().hex[:12]}"
    yield f"{postgres_url}?schema={schema}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(schema)
            )
        )


async def occurrences_of(storage: Storage) -> list[datetime]:
    """The occurrence of every job, checked to be one per job."""
    jobs = await storage.list_jobs(limit=10_000)
    found = []
    for job in jobs:
        parameters = await storage.get_parameters(job.id)
        assert parameters["recurring_job"] == '"every-second"'
        text = parameters["occurrence"].strip('"')
        found.append(datetime.fromisoformat(text))
    return sorted(found)


async def run_three_servers(url: str, occurrences: int) -> None:
    storages = [open_storage(url) for _ in range(3)]
    await storages[0].migrate()
    client = Client(storages[0])
    await client.recurring.add_or_update(
        "every-second",
        "* * * * * *",
        Call(recurring_samples.tick, "every-second"),
    )

    async def succeeded() -> int:
        return (await client.counts()).by_state[JobState.SUCCEEDED]

    async def enough_ran() -> bool:
        return await succeeded() >= occurrences

    try:
        async with contextlib.AsyncExitStack() as servers:
            for index in range(3):
                server = Server(
                    storages[index],
                    concurrency=2,
                    name=f"server-{index}",
                    # A loaded machine must not get a server declared
                    # dead: its recovered jobs would run twice.
                    **{**FAST, "dead_after": 30.0},
                )
                await servers.enter_async_context(server)
            await eventually(
                enough_ran,
                within=occurrences + 60,
                what=f"{occurrences} occurrences run",
            )
            await client.recurring.pause("every-second")
        found = await occurrences_of(storages[0])
        states = {job.state for job in await storages[0].list_jobs()}
        ran = await succeeded()
    finally:
        for storage in storages:
            await storage.close()

    assert len(found) >= occurrences
    assert len(set(found)) == len(found), "an occurrence ran twice"
    steps = {b - a for a, b in itertools.pairwise(found)}
    assert steps == {timedelta(seconds=1)}, "an occurrence was skipped"
    # A job created just before the pause may not have run yet.
    assert states <= {JobState.SUCCEEDED, JobState.ENQUEUED}
    assert len(recurring_samples.runs) == ran, "a job ran twice"


async def test_three_servers_create_each_occurrence_once(
    sqlite_url: str,
) -> None:
    await run_three_servers(sqlite_url, 5)


@pytest.mark.slow
async def test_three_servers_for_a_minute_on_sqlite(sqlite_url: str) -> None:
    await run_three_servers(sqlite_url, 60)


@pytest.mark.slow
@pytest.mark.postgres
async def test_three_servers_for_a_minute_on_postgres(
    postgres_schema_url: str,
) -> None:
    await run_three_servers(postgres_schema_url, 60)
