"""``backburner migrate``: install or upgrade the storage's schema.

Storage also migrates itself on first use; this command is for doing it
on purpose, before the first server starts (a deployment step). It
prints the schema versions it applied, including those an SQLite
storage applied as it opened the file.
"""

from __future__ import annotations

import argparse
from typing import Any

from backburner.cli import session
from backburner.cli.failures import EXIT_OK
from backburner.cli.output import emit
from backburner.cli.parsing import add_command
from backburner.jobs.client import Client


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add the ``migrate`` command to the command parser."""
    parser = add_command(
        commands, "migrate", help="install or upgrade the storage schema"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Migrate the storage and say which versions were applied.

    Raises:
        SchemaError: the storage was migrated by a newer backburner.
        StorageError: the storage failed.
    """

    async def work(client: Client) -> list[int]:
        return await client.storage.migrate()

    applied = session.with_client(session.open_checked(args), work)
    if applied:
        emit("applied schema versions " + ", ".join(map(str, applied)))
    else:
        emit("storage schema is up to date")
    return EXIT_OK
