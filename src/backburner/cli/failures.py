"""What the command does with a mistake: one line on stderr, an exit code.

Exit codes:

- ``0``: done.
- ``1``: the command was well formed but could not be carried out (the
  job function does not import, no job has that id, the job's state
  does not allow the change, the storage failed).
- ``2``: the command line itself is wrong (unknown option, malformed
  JSON, invalid state or queue name, unusable storage URL); nothing was
  read or written.
- ``3``: a command acting on several jobs changed some of them and
  skipped the others (missing, or not in a state that allows the
  change); it printed how many of each.
- ``130``: interrupted by Ctrl-C.
"""

from __future__ import annotations

from backburner.jobs.errors import JobError
from backburner.storage.base import InvalidStorageURLError, StorageError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_INTERRUPTED = 130


class CommandError(Exception):
    """A mistake to report as one line, with the exit code it maps to."""

    exit_code = EXIT_FAILURE


class UsageError(CommandError):
    """The command line is wrong; raised before anything is touched."""

    exit_code = EXIT_USAGE


EXPECTED = (CommandError, JobError, StorageError)
"""Errors that are the user's mistake or the storage's, not a bug."""


def exit_code_of(error: CommandError | JobError | StorageError) -> int:
    """The exit code for one of the :data:`EXPECTED` errors."""
    if isinstance(error, CommandError):
        return error.exit_code
    if isinstance(error, InvalidStorageURLError):
        return EXIT_USAGE
    return EXIT_FAILURE
