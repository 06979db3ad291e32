"""The named statements of ``queries.sql``, loaded once."""

from __future__ import annotations

import functools
from importlib import resources

_MARK = "-- name:"


@functools.cache
def _all() -> dict[str, bytes]:
    text = (
        resources.files("backburner.storage.postgres") / "queries.sql"
    ).read_text("utf-8")
    found: dict[str, bytes] = {}
    for block in text.split(_MARK)[1:]:
        name, _, body = block.partition("\n")
        found[name.strip()] = body.strip().encode("utf-8")
    return found


def query(name: str) -> bytes:
    """Return the statement named ``name`` in ``queries.sql``.

    Statements are bytes because psycopg's typing accepts only literal
    strings or bytes as a query.

    Raises:
        KeyError: there is no statement of that name.
    """
    return _all()[name]
