"""The command on PostgreSQL: the same commands, the same answers.

Nothing in the command knows which database it talks to; these tests
prove it by running the main paths against a schema of the test's own.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from types import ModuleType

import psycopg
import pytest
from psycopg import sql

from backburner.jobs import SyncClient
from backburner.storage.postgres import schema

from .conftest import SAMPLES, Run, one_error_line

pytestmark = pytest.mark.postgres


@pytest.fixture
def postgres_storage(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A storage URL on a fresh schema, dropped when the test ends."""
    schema = f"test_cli_{uuid.uuid4().hex[:12]}"
    url = f"{postgres_url}?schema={schema}"
    monkeypatch.setenv("BACKBURNER_STORAGE", url)
    yield url
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(schema)
            )
        )


def test_enqueue_list_show_requeue_delete_and_stats(
    cli: Run, postgres_storage: str, samples: ModuleType
) -> None:
    job_id = int(cli("enqueue", f"{SAMPLES}:record", '"x"').out)
    listed = cli("jobs", "list", "--json").json()["jobs"]
    shown = cli("jobs", "show", str(job_id), "--json").json()
    refused = cli("jobs", "requeue", str(job_id))
    deleted = cli("jobs", "delete", str(job_id))
    requeued = cli("jobs", "requeue", str(job_id))
    stats = cli("stats", "--json").json()

    assert [job["id"] for job in listed] == [job_id]
    assert shown["arguments"] == {"args": ["x"], "kwargs": {}}
    assert refused.code == 1
    assert "is enqueued: cannot move it" in one_error_line(refused)
    assert (deleted.code, requeued.code) == (0, 0)
    with SyncClient(postgres_storage) as client:
        history = client.get(job_id).history
    assert [entry.state.value for entry in history] == [
        "enqueued",
        "deleted",
        "enqueued",
    ]
    assert stats["states"]["enqueued"] == 1
    assert stats["queues"] == {
        "default": {
            "enqueued": 1,
            "scheduled": 0,
            "awaiting": 0,
            "processing": 0,
            "succeeded": 0,
            "failed": 0,
            "deleted": 0,
        }
    }


def test_migrate_says_which_versions_it_applied(
    cli: Run, postgres_storage: str
) -> None:
    first = cli("migrate")
    again = cli("migrate")

    shipped = ", ".join(str(version) for version, _ in schema.available())
    assert (first.code, first.out) == (
        0,
        f"applied schema versions {shipped}\n",
    )
    assert again.out == "storage schema is up to date\n"


def test_an_unknown_job_fails_the_same_way(
    cli: Run, postgres_storage: str
) -> None:
    result = cli("jobs", "show", "9")

    assert result.code == 1
    assert one_error_line(result) == "backburner: error: job 9 does not exist"


def test_a_bad_schema_name_is_a_usage_error(
    cli: Run, postgres_url: str
) -> None:
    result = cli("--storage", f"{postgres_url}?schema=Bad", "stats")

    assert result.code == 2
    assert "schema name 'Bad' is not allowed" in one_error_line(result)


def test_an_unreachable_database_fails_with_the_reason_not_a_pool_timeout(
    cli: Run,
) -> None:
    # A loopback port nobody listens on: connections are refused.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # A pool timeout longer than any test: the error must come from the
    # first connection attempt, not from waiting on the pool.
    url = (
        f"postgresql://postgres:hunter2@127.0.0.1:{port}/postgres"
        "?pool_timeout=3600"
    )

    result = cli("--storage", url, "stats")

    assert result.code == 1
    line = one_error_line(result)
    # The URL as written (password hidden), not with the options that
    # backburner adds for libpq.
    assert line.startswith(
        "backburner: error: cannot connect to PostgreSQL at "
        f"postgresql://postgres:***@127.0.0.1:{port}/postgres"
        "?pool_timeout=3600: "
    ), line
    assert "hunter2" not in line
    assert "refused" in line.lower()
