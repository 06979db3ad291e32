"""A SQLite statement that keeps the database busy, and stops on cancel.

The demo's slow query is a recursive count that runs until a deadline,
so that it takes the same time on every machine. What matters is how
it stops early: the request's token is registered to call
:meth:`sqlite3.Connection.interrupt`, which SQLite allows from any
thread, and the statement fails with ``interrupted`` at its next step.
The same recipe works for any blocking driver that offers a
thread-safe "cancel this statement" call.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from backburner.cancellation import CancellationToken, OperationCancelled

_BUSY_QUERY = """
WITH RECURSIVE ticks(n) AS (
    SELECT 1
    UNION ALL
    SELECT n + 1 FROM ticks WHERE demo_clock() < :deadline
)
SELECT count(*) FROM ticks
"""

# VM instructions between two looks at the token by the progress handler.
_PROGRESS_STEPS = 10_000


def run_busy_query(
    database: Path,
    seconds: float,
    token: CancellationToken,
    *,
    on_started: Callable[[], object] | None = None,
    on_interrupted: Callable[[], object] | None = None,
) -> int:
    """Run a statement for about ``seconds``; return the rows it counted.

    Blocking: call it in a worker thread, e.g. with
    :func:`asyncio.to_thread`.

    Args:
        database: the SQLite file to open.
        seconds: how long the statement runs when nobody cancels it.
        token: interrupts the statement when it fires.
        on_started: called just before the statement starts.
        on_interrupted: called when the token interrupted the statement.

    Raises:
        OperationCancelled: the token fired before or during the query.
        sqlite3.Error: the database failed for another reason.
    """
    token.raise_if_cancellation_requested()
    connection = sqlite3.connect(database)
    try:
        connection.create_function("demo_clock", 0, time.monotonic)
        # interrupt() stops a running statement at once, but is a no-op
        # when called before the statement starts: a token firing in
        # that instant would be missed. The progress handler, called
        # every few thousand VM steps, closes the gap.
        connection.set_progress_handler(
            lambda: token.is_cancellation_requested, _PROGRESS_STEPS
        )
        deadline = time.monotonic() + seconds
        with token.register(connection.interrupt):
            if on_started is not None:
                on_started()
            try:
                row = connection.execute(
                    _BUSY_QUERY, {"deadline": deadline}
                ).fetchone()
            except sqlite3.OperationalError as exc:
                reason = token.reason
                if reason is None:
                    raise
                if on_interrupted is not None:
                    on_interrupted()
                raise OperationCancelled(reason, token) from exc
        return int(row[0])
    finally:
        connection.close()
