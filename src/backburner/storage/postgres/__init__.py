"""PostgreSQL storage: any number of servers on any number of machines.

Open it with a URL such as
``postgresql://user@host:5432/db?schema=jobs&pool_max_size=10`` (see
:func:`~backburner.storage.postgres.config.parse_url`). Everything lives
in one schema (default ``jobs``), created and upgraded by
:meth:`PostgresStorage.migrate` or on first use.

What it relies on, and its limits:

- Fetching locks queue entries with ``FOR UPDATE SKIP LOCKED``: servers
  never wait for each other and never take the same job.
- Enqueues and aborts are announced with NOTIFY at commit and heard by
  every process that subscribed. A notification sent while a listening
  connection is down is lost; servers still find ready jobs when they
  next poll, and an aborted job's outcome is refused by its version.
- The pool sets ``search_path`` and LISTEN holds a session: connection
  poolers in *transaction* mode (PgBouncer's default) break both; point
  backburner at PostgreSQL directly or at a session-mode pool.
- A connection dropped between calls is replaced when it is taken from
  the pool; a call whose connection drops mid-way fails with
  :class:`~backburner.storage.StorageError` (its transaction was rolled
  back, unless the commit itself was under way: then the caller cannot
  tell, which is why delivery is at least once).
- Text cannot hold NUL characters: jobs whose function, queue,
  arguments or parameters contain one are refused whole; in the reason
  of a state change it is replaced by U+FFFD.
"""

from __future__ import annotations

import urllib.parse

from backburner.storage.base import InvalidStorageURLError
from backburner.storage.postgres.config import (
    PostgresSettings,
    join_url,
    parse_url,
    query_options,
    query_string,
)
from backburner.storage.postgres.storage import PostgresStorage

__all__ = ["PostgresSettings", "PostgresStorage", "open_url"]

_FALSE = frozenset({"0", "false", "no", "off"})
_TRUE = frozenset({"1", "true", "yes", "on"})


def open_url(url: str) -> PostgresStorage:
    """Open ``postgresql://...``; it connects on first use.

    Besides the options of :func:`parse_url`, ``auto_migrate=false``
    stops the storage from migrating its schema on first use.

    Raises:
        InvalidStorageURLError: the URL is not a PostgreSQL URL or has a
            bad option.
    """
    parts = urllib.parse.urlsplit(url)
    options = query_options(parts.query)
    auto_migrate = True
    kept = []
    for key, value in options:
        if key != "auto_migrate":
            kept.append((key, value))
        elif value.lower() in _FALSE:
            auto_migrate = False
        elif value.lower() not in _TRUE:
            raise InvalidStorageURLError(
                f"auto_migrate must be true or false, got {value!r}"
            )
    rest = join_url(parts._replace(query=query_string(kept)))
    return PostgresStorage(parse_url(rest), auto_migrate=auto_migrate)
