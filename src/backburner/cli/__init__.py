"""The ``backburner`` command: run workers, create and steer jobs.

::

    backburner [--storage URL] COMMAND ...

    worker    run a job server until stopped
    enqueue   create a job that runs MODULE:FUNCTION
    jobs      list, show, requeue or delete jobs
    recurring list, trigger, pause, resume or remove recurring jobs
    stats     job counts per state and queue, and live servers
    migrate   install or upgrade the storage schema
    dashboard serve the job dashboard (loopback only)

``docs/cli.md`` is the guide, with the JSON shapes. A mistake is one
line on stderr and a non-zero exit code (see
:mod:`backburner.cli.failures`), never a traceback; a traceback means a
bug.

The working directory is put first on the import path, as ``python -m``
does, so ``backburner enqueue myapp.jobs:send`` finds ``myapp`` from the
project folder when run as an installed script too.

Commands other than ``worker`` print no log records: a database driver
retrying a connection would otherwise bury the one line that says what
went wrong. ``worker`` leaves logging to the server, which logs its
lifecycle at INFO.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence

from backburner import __version__
from backburner.cli.failures import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXPECTED,
    CommandError,
    exit_code_of,
)
from backburner.cli.parsing import ArgumentParser, storage_option
from backburner.jobs.errors import JobError
from backburner.storage.base import StorageError

__all__ = ["build_parser", "main"]

# Each command's module, imported only when the command line needs it:
# ``backburner worker`` starts faster without the other commands' code.
_COMMANDS = (
    "worker",
    "enqueue",
    "jobs",
    "recurring",
    "stats",
    "migrate",
    "dashboard",
)


def build_parser(
    commands_named: Sequence[str] = _COMMANDS,
) -> argparse.ArgumentParser:
    """The parser of the whole command, with the subcommands named.

    Args:
        commands_named: the subcommands to register (default: all).
    """
    parser = ArgumentParser(
        prog="backburner",
        description="Durable background jobs: workers, jobs and stats.",
        parents=[storage_option()],
    )
    parser.add_argument(
        "--version", action="version", version=f"backburner {__version__}"
    )
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True
    )
    for name in commands_named:
        module = importlib.import_module(f"backburner.cli.{name}")
        module.register(commands)
    return parser


def _command_named(argv: Sequence[str]) -> Sequence[str]:
    """The one command ``argv`` runs, or all of them when unsure.

    Only the global ``--storage`` option may come before the command;
    anything else (``--help``, a typo) gets the parser of every command,
    which lists them all or reports the mistake.
    """
    words = iter(argv)
    for word in words:
        if word == "--storage":
            next(words, None)
        elif not word.startswith("--storage="):
            return (word,) if word in _COMMANDS else _COMMANDS
    return _COMMANDS


def _put_working_directory_on_path() -> None:
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.insert(0, here)


def _silence_logs() -> None:
    # Only when the application has not configured logging itself (an
    # embedding program, or pytest, already has handlers on the root).
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.NullHandler())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with ``argv`` (default: ``sys.argv[1:]``).

    Returns:
        The exit code: 0 done, 1 could not be done, 2 the command line
        is wrong, 130 interrupted.
    """
    if argv is None:
        argv = sys.argv[1:]
    try:
        args = build_parser(_command_named(argv)).parse_args(argv)
    except SystemExit as exit_:  # --help and --version end here.
        return exit_.code if isinstance(exit_.code, int) else 0
    except EXPECTED as error:
        return _report(error)

    _put_working_directory_on_path()
    if args.command != "worker":
        _silence_logs()
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        _ignore_further_interrupts()
        sys.stderr.write("backburner: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``backburner jobs list | head``): not an
        # error worth a traceback. Python would complain again when it
        # flushes stdout at exit, so point stdout at nothing first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE
    except EXPECTED as error:
        return _report(error)


def _ignore_further_interrupts() -> None:
    # The command ends as interrupted: a Ctrl-C pressed again while it
    # says so, or while Python waits for threads at exit, would print a
    # traceback instead.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


# Messages quote what was given; a 100 KB argument need not come back.
_MESSAGE_LIMIT = 1000


def _report(error: CommandError | JobError | StorageError) -> int:
    # One line, even when the message quotes multi-line text.
    message = " ".join(str(error).split()) or type(error).__name__
    if len(message) > _MESSAGE_LIMIT:
        cut = len(message) - _MESSAGE_LIMIT
        message = f"{message[:_MESSAGE_LIMIT]}… ({cut} more characters)"
    sys.stderr.write(f"backburner: error: {message}\n")
    return exit_code_of(error)
