"""``backburner stats`` and ``backburner migrate``."""

from __future__ import annotations

import re
from importlib import resources
from types import ModuleType

from backburner.jobs import JobOptions, SyncClient

from . import arrange
from .conftest import Run

STATES = [
    "enqueued",
    "scheduled",
    "awaiting",
    "processing",
    "succeeded",
    "failed",
    "deleted",
]


def _arrange_jobs(
    client: SyncClient, samples: ModuleType, storage_url: str
) -> None:
    # The failed job first: a worker fetches the oldest enqueued job.
    arrange.fail(storage_url, client.enqueue(samples.noop))
    client.enqueue(samples.noop)
    client.enqueue(samples.noop)
    client.enqueue_with(JobOptions(queue="mail", delay=60), samples.noop)
    client.delete(client.enqueue_with(JobOptions(queue="mail"), samples.noop))


def test_stats_json_counts_every_state_per_queue_and_servers(
    cli: Run, client: SyncClient, samples: ModuleType, storage_url: str
) -> None:
    _arrange_jobs(client, samples, storage_url)
    arrange.announce(storage_url, "web-1:42", ("mail", "default"))

    result = cli("stats", "--json")

    assert result.code == 0, result.err
    document = result.json()
    assert list(document) == ["states", "queues", "servers"]
    assert document["states"] == dict(
        zip(STATES, [2, 1, 0, 0, 0, 1, 1], strict=True)
    )
    assert list(document["queues"]) == ["default", "mail"]
    assert document["queues"]["default"] == dict(
        zip(STATES, [2, 0, 0, 0, 0, 1, 0], strict=True)
    )
    assert document["queues"]["mail"] == dict(
        zip(STATES, [0, 1, 0, 0, 0, 0, 1], strict=True)
    )
    (server,) = document["servers"]
    assert list(server) == [
        "name",
        "queues",
        "workers",
        "started_at",
        "heartbeat_at",
    ]
    assert server["name"] == "web-1:42"
    assert server["queues"] == ["mail", "default"]
    assert server["workers"] == 3
    assert server["heartbeat_at"].endswith("Z")


def test_stats_json_of_an_empty_storage_has_every_state(cli: Run) -> None:
    assert cli("stats", "--json").json() == {
        "states": dict.fromkeys(STATES, 0),
        "queues": {},
        "servers": [],
    }


def test_stats_tables(
    cli: Run, client: SyncClient, samples: ModuleType, storage_url: str
) -> None:
    _arrange_jobs(client, samples, storage_url)
    arrange.announce(storage_url, "web-1:42", ("default",))

    out = cli("stats").out

    states, queues, servers = out.split("\n\n")
    assert states.splitlines()[0].split() == ["STATE", "JOBS"]
    assert [line.split() for line in states.splitlines()[1:]] == [
        [state, str(count)]
        for state, count in zip(STATES, [2, 1, 0, 0, 0, 1, 1], strict=True)
    ]
    header, *rows = queues.splitlines()
    assert header.split() == ["QUEUE", *(s.upper() for s in STATES)]
    assert rows[1].split() == ["mail", "0", "1", "0", "0", "0", "0", "1"]
    # Counts are right-aligned under their header.
    end = header.index("DELETED") + len("DELETED")
    assert all(row[end - 1] != " " for row in rows)
    server_header, server_row = servers.splitlines()
    assert server_header.split()[0] == "SERVER"
    assert re.fullmatch(r"web-1:42 +default +3 +\S+Z +\S+Z", server_row), (
        server_row
    )


def test_stats_says_when_nothing_runs(cli: Run) -> None:
    out = cli("stats").out

    assert out.endswith("no queues\n\nno live servers\n")


def test_migrate_says_which_versions_it_applied(cli: Run) -> None:
    first = cli("migrate")
    again = cli("migrate")

    folder = resources.files("backburner.storage.sqlite") / "migrations"
    versions = sorted(
        int(entry.name[:4])
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    )
    shipped = ", ".join(map(str, versions))
    assert (first.code, first.out) == (
        0,
        f"applied schema versions {shipped}\n",
    ), first.err
    assert again.out == "storage schema is up to date\n"


def test_migrate_leaves_a_usable_storage(cli: Run) -> None:
    first = cli("migrate")

    assert first.code == 0, first.err
    assert cli("stats", "--json").json()["states"]["enqueued"] == 0
