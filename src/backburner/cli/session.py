"""Which storage a command talks to, and running it against a client.

The storage URL comes from ``--storage``, else the ``BACKBURNER_STORAGE``
environment variable, else ``sqlite:///backburner.db`` (a file in the
working directory). Storage installs its schema on first use, so a
read-only command pointed at a new SQLite path creates an empty file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from backburner.storage import InvalidStorageURLError, open_storage
from backburner.storage.base import Storage

if TYPE_CHECKING:
    from backburner.jobs.client import Client

T = TypeVar("T")

STORAGE_ENV = "BACKBURNER_STORAGE"
DEFAULT_STORAGE = "sqlite:///backburner.db"


def storage_url(args: argparse.Namespace) -> str:
    """The storage URL this invocation names (flag, environment, default)."""
    given: str | None = getattr(args, "storage", None)
    if given is not None:
        return given  # Even empty: a mistake the storage reports.
    return os.environ.get(STORAGE_ENV) or DEFAULT_STORAGE


def open_checked(args: argparse.Namespace) -> Storage:
    """Open the storage named for this invocation.

    Storage connects on first use, so a storage opened here and then
    dropped (because a later check failed) holds nothing to release.

    Raises:
        InvalidStorageURLError: the URL is malformed, names a storage
            that is not installed, or an SQLite database in memory.
    """
    storage = open_storage(storage_url(args))
    _refuse_memory(storage)
    return storage


def _refuse_memory(storage: Storage) -> None:
    # A database in memory lives as long as this one command: a job
    # enqueued there is lost at once, and every listing is empty.
    from backburner.storage.sqlite import SQLiteStorage

    if isinstance(storage, SQLiteStorage) and (
        storage.path == ":memory:" or storage.path.startswith("file::memory:")
    ):
        raise InvalidStorageURLError(
            "an SQLite database in memory ends with the command; "
            "give a file: sqlite:///path/to/jobs.db"
        )


def with_client(storage: Storage, work: Callable[[Client], Awaitable[T]]) -> T:
    """Run ``work`` with a client on ``storage``, then close the storage.

    Raises:
        StorageError, JobError: whatever ``work`` raises.
    """

    # Imported here: ``backburner worker`` uses this module but no client.
    from backburner.jobs.client import Client

    async def run() -> T:
        async with storage:
            return await work(Client(storage))

    return asyncio.run(run())
