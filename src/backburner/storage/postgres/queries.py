"""The named statements of ``queries.sql``, loaded once."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from importlib import resources

_MARK = "-- name:"
_PLACEHOLDER = re.compile(rb"%\((\w+)\)[sb]")


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


def positional(name: str, order: Sequence[str]) -> bytes:
    """Return the statement ``name`` with ``$1``, ``$2``... placeholders.

    Each named placeholder becomes the number of its name in ``order``
    (the first name is ``$1``), so that the statement runs on a raw
    cursor with its parameters as a tuple in that order: for a statement
    run on every enqueue, psycopg then neither parses the query nor
    reorders a dict per call.

    Raises:
        KeyError: there is no statement of that name.
        ValueError: ``order`` does not name exactly the statement's
            placeholders, or the statement holds a ``%`` of its own
            (which only psycopg's named style would read as ``%%``).
    """
    statement = query(name)
    used = {match.decode() for match in _PLACEHOLDER.findall(statement)}
    if used != set(order) or len(order) != len(used):
        raise ValueError(
            f"{name}: parameters {sorted(order)} do not match the "
            f"placeholders {sorted(used)}"
        )
    number = {key: index for index, key in enumerate(order, start=1)}
    numbered = _PLACEHOLDER.sub(
        lambda match: b"$%d" % number[match.group(1).decode()], statement
    )
    if b"%" in numbered:
        raise ValueError(f"{name}: a % outside a placeholder")
    return numbered
