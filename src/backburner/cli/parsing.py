"""The argument parser: mistakes become exceptions, not exits.

Every command parser gets ``--storage``, so it may be given before or
after the command name (``backburner --storage URL stats`` and
``backburner stats --storage URL`` mean the same).
"""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from backburner.cli.failures import UsageError
from backburner.cli.session import DEFAULT_STORAGE, STORAGE_ENV


class ArgumentParser(argparse.ArgumentParser):
    """An argparse parser that raises :class:`UsageError` on mistakes.

    The stock parser prints its usage and exits from deep inside
    ``parse_args``; raising lets :func:`backburner.cli.main` print one
    line and return the code instead of ending the interpreter.
    """

    def error(self, message: str) -> NoReturn:
        """Raise the parser's complaint as a :class:`UsageError`.

        Raises:
            UsageError: always.
        """
        raise UsageError(f"{message} (see '{self.prog} --help')")


def storage_option() -> ArgumentParser:
    """A parent parser holding the ``--storage`` option."""
    parent = ArgumentParser(add_help=False)
    # "Absent" by default, so that a value given after the command name
    # is not overwritten by the top-level parser's default, or back.
    parent.add_argument(
        "--storage",
        metavar="URL",
        default=argparse.SUPPRESS,
        help=f"storage URL (default: ${STORAGE_ENV}, else {DEFAULT_STORAGE})",
    )
    return parent


def add_command(
    commands: argparse._SubParsersAction[Any], name: str, **options: Any
) -> argparse.ArgumentParser:
    """Add the command ``name`` (with ``--storage``) to ``commands``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name, parents=[storage_option()], **options
    )
    return parser
