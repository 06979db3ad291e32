"""Printing for people (aligned columns) and for programs (JSON).

Times are UTC in ISO 8601 with a ``Z``: to the second in tables, to the
microsecond in JSON, so every JSON timestamp has the same shape.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Collection, Sequence
from datetime import UTC, datetime

from backburner._text import one_line

EMPTY = "-"


def human_time(moment: datetime | None) -> str:
    """``2026-01-02T03:04:05Z``, or ``-`` for no time."""
    if moment is None:
        return EMPTY
    text = moment.astimezone(UTC).isoformat(timespec="seconds")
    return text.replace("+00:00", "Z")


def json_time(moment: datetime | None) -> str | None:
    """``2026-01-02T03:04:05.000000Z``, or ``None`` for no time."""
    if moment is None:
        return None
    text = moment.astimezone(UTC).isoformat(timespec="microseconds")
    return text.replace("+00:00", "Z")


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    right: Collection[int] = (),
) -> str:
    """Lay out ``rows`` under ``headers`` in aligned columns.

    Columns whose index is in ``right`` (counts, ids) are right-aligned;
    ``None`` cells show as ``-``; control characters are escaped (see
    :func:`one_line`). Trailing spaces are trimmed.
    """
    cells = [list(headers)] + [
        [EMPTY if cell is None else one_line(str(cell)) for cell in row]
        for row in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        padded = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def fields(pairs: Sequence[tuple[str, object]]) -> str:
    """Lay out ``name value`` pairs with the values aligned, each on
    one line (see :func:`one_line`)."""
    width = max((len(name) for name, _ in pairs), default=0)
    return "\n".join(
        f"{name.ljust(width)}  {_value(value)}".rstrip()
        for name, value in pairs
    )


def _value(value: object) -> str:
    return EMPTY if value is None else one_line(str(value))


def emit(text: str) -> None:
    """Write ``text`` and a newline to standard output."""
    sys.stdout.write(f"{text}\n")


def emit_json(document: object) -> None:
    """Write one JSON document (indented, keys in the order built)."""
    emit(json.dumps(document, indent=2, ensure_ascii=False))
