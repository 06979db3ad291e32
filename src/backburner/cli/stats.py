"""``backburner stats``: job counts per state and queue, live servers.

Counts come from the storage's counters, not from counting rows, so the
command stays cheap on a large job table.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from backburner.cli import session
from backburner.cli.failures import EXIT_OK
from backburner.cli.output import (
    emit,
    emit_json,
    human_time,
    json_time,
    table,
)
from backburner.cli.parsing import add_command
from backburner.jobs.client import Client, Counts
from backburner.storage.base import JobState, ServerInfo


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add the ``stats`` command to the command parser."""
    parser = add_command(
        commands,
        "stats",
        help="job counts per state and queue, and live servers",
    )
    parser.add_argument(
        "--json", action="store_true", help="print JSON (docs/cli.md)"
    )
    parser.set_defaults(handler=run)


@dataclass(frozen=True, slots=True)
class Stats:
    """What ``backburner stats`` reports."""

    counts: Counts
    servers: list[ServerInfo]


def _by_state(counts: dict[JobState, int]) -> dict[str, int]:
    # Every state, in the glossary's order, even at zero: a script can
    # read any key without checking that it exists.
    return {state.value: counts.get(state, 0) for state in JobState}


def stats_document(stats: Stats) -> dict[str, Any]:
    """The JSON form of the statistics (see ``docs/cli.md``)."""
    return {
        "states": _by_state(stats.counts.by_state),
        "queues": {
            queue: _by_state(counts)
            for queue, counts in sorted(stats.counts.by_queue.items())
        },
        "servers": [
            {
                "name": server.name,
                "queues": list(server.queues),
                "workers": server.workers,
                "started_at": json_time(server.started_at),
                "heartbeat_at": json_time(server.heartbeat_at),
            }
            for server in stats.servers
        ],
    }


def run(args: argparse.Namespace) -> int:
    """Print the statistics.

    Raises:
        StorageError: the storage failed.
    """

    async def work(client: Client) -> Stats:
        return Stats(await client.counts(), await client.servers())

    stats = session.with_client(session.open_checked(args), work)
    if args.json:
        emit_json(stats_document(stats))
    else:
        emit(_stats_text(stats))
    return EXIT_OK


def _stats_text(stats: Stats) -> str:
    states = [state.value for state in JobState]
    by_state = _by_state(stats.counts.by_state)
    sections = [
        table(("STATE", "JOBS"), list(by_state.items()), right={1}),
        "",
    ]
    queues = sorted(stats.counts.by_queue.items())
    if queues:
        rows = [
            [queue, *_by_state(counts).values()] for queue, counts in queues
        ]
        headers = ["QUEUE", *(name.upper() for name in states)]
        sections.append(table(headers, rows, right=range(1, len(headers))))
    else:
        sections.append("no queues")
    sections.append("")
    if stats.servers:
        rows = [
            [
                server.name,
                ",".join(server.queues),
                server.workers,
                human_time(server.started_at),
                human_time(server.heartbeat_at),
            ]
            for server in stats.servers
        ]
        headers = ["SERVER", "QUEUES", "WORKERS", "STARTED", "HEARTBEAT"]
        sections.append(table(headers, rows, right={2}))
    else:
        sections.append("no live servers")
    return "\n".join(sections)
