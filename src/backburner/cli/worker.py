"""``backburner worker``: run a job server in the foreground.

The server itself lives in :mod:`backburner.jobs.server`; this module
checks the command line, imports the modules named by ``--import`` once
here (so a typo is one clear line, not a failure in every worker), then
hands over. The server stops cleanly on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from backburner.cli import arguments, session
from backburner.cli.failures import CommandError
from backburner.cli.parsing import add_command


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add the ``worker`` command to the command parser."""
    parser = add_command(
        commands,
        "worker",
        help="run a job server until stopped",
        description=(
            "Run a job server: workers take jobs from the queues, in the "
            "order given, until SIGTERM or Ctrl-C."
        ),
    )
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import this module first (repeatable)",
    )
    parser.add_argument(
        "--queues",
        type=arguments.queue_list,
        default=["default"],
        metavar="A,B",
        help="queues to drain, in order (default: default)",
    )
    parser.add_argument(
        "--concurrency",
        type=arguments.positive_int,
        metavar="N",
        help="workers per process (default: the server's)",
    )
    parser.add_argument(
        "--processes",
        type=arguments.positive_int,
        default=1,
        metavar="P",
        help="server processes (default 1)",
    )
    parser.add_argument("--name", help="server name (default host:pid)")
    parser.add_argument(
        "--until-empty",
        action="store_true",
        help="exit once no job is ready or running",
    )
    parser.set_defaults(handler=run)


def _import_all(modules: list[str]) -> None:
    for module in modules:
        try:
            importlib.import_module(module)
        # Application code: any error of its import is reported as one
        # line, as the server would (it exits with 2 for the same).
        except Exception as error:  # noqa: BLE001 - reported, not swallowed
            raise CommandError(
                f"cannot import module {module!r}: "
                f"{type(error).__name__}: {error}"
            ) from None


def run(args: argparse.Namespace) -> int:
    """Run the job server; return its exit code.

    Raises:
        InvalidStorageURLError: the storage URL is unusable.
        CommandError: a ``--import`` module does not import.
    """
    url = session.storage_url(args)
    session.open_checked(args)  # A bad URL is reported before any import.
    _import_all(args.imports)
    # Imported here: the server pulls in the whole job engine, which the
    # other commands do not need.
    from backburner.jobs.server import run_server

    return run_server(
        url,
        imports=args.imports,
        queues=args.queues,
        concurrency=args.concurrency,
        processes=args.processes,
        name=args.name,
        until_empty=args.until_empty,
    )
