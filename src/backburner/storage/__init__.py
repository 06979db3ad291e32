"""Storage for jobs: one interface, one implementation per database.

:func:`open_storage` picks the implementation from a URL:

- ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``
- ``postgresql://user@host/db`` (needs the ``postgres`` extra and the
  ``backburner.storage.postgres`` module)

A backend is a module with an ``open_url(url) -> Storage`` function,
registered in ``_BACKENDS`` under its URL schemes.
"""

from __future__ import annotations

import importlib
import urllib.parse
from typing import cast

from backburner.storage.base import (
    ChangeOutcome,
    ContinuationLink,
    CorruptedJobError,
    HistoryEntry,
    InvalidStorageURLError,
    JobId,
    JobRecord,
    JobsAborted,
    JobsEnqueued,
    JobState,
    Listener,
    MissingParentError,
    NewContinuation,
    NewJob,
    Notification,
    OutcomeCount,
    RecurringDefinition,
    RecurringFiring,
    RecurringRecord,
    SchemaError,
    ServerInfo,
    StateChange,
    StateCount,
    Storage,
    StorageError,
)

__all__ = [
    "ChangeOutcome",
    "ContinuationLink",
    "CorruptedJobError",
    "HistoryEntry",
    "InvalidStorageURLError",
    "JobId",
    "JobRecord",
    "JobState",
    "JobsAborted",
    "JobsEnqueued",
    "Listener",
    "MissingParentError",
    "NewContinuation",
    "NewJob",
    "Notification",
    "OutcomeCount",
    "RecurringDefinition",
    "RecurringFiring",
    "RecurringRecord",
    "SchemaError",
    "ServerInfo",
    "StateChange",
    "StateCount",
    "Storage",
    "StorageError",
    "open_storage",
]

_BACKENDS = {
    "sqlite": "backburner.storage.sqlite",
    "postgresql": "backburner.storage.postgres",
    "postgres": "backburner.storage.postgres",
}


def open_storage(url: str) -> Storage:
    """Return the storage a URL names; it connects on first use.

    Raises:
        InvalidStorageURLError: the URL is malformed, names an unknown kind of
            storage, or one whose backend is not installed.
    """
    if not isinstance(url, str) or "://" not in url:
        raise InvalidStorageURLError(
            f"storage URL must look like sqlite:///path.db or "
            f"postgresql://..., got {url!r}"
        )
    try:
        scheme = urllib.parse.urlsplit(url).scheme.lower()
    except ValueError as error:
        # urlsplit refuses an unbalanced "[" (an IPv6 host cut short).
        # The URL is not repeated: it may hold a password.
        raise InvalidStorageURLError(
            f"malformed storage URL: {error}"
        ) from None
    module_name = _BACKENDS.get(scheme.split("+")[0])
    if module_name is None:
        known = ", ".join(sorted(_BACKENDS))
        raise InvalidStorageURLError(
            f"unknown storage {scheme!r} in {url!r} (known: {known})"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise InvalidStorageURLError(
            f"storage {scheme!r} is not available: {error}"
        ) from error
    return cast(Storage, module.open_url(url))
