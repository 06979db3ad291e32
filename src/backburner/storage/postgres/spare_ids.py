"""Job ids reserved ahead, so that one enqueue is one statement.

An enqueue run outside a transaction is a single round trip, but when
its reply is lost the caller cannot tell whether it committed. Running
it again is safe only if the second run recognises the first one's
row: so the id is known before the statement is sent. Each one-job
enqueue reserves the id of the next one in the same statement (a
``nextval`` on the jobs sequence), and the next enqueue uses it.

A row found on the reserved id counts as the first run's only if it
holds the same function, arguments, queue and creation time. A jobs
sequence behind the table (after a data-only restore, a ``setval`` or
a replica switchover) hands out ids of other jobs: the enqueue then
fails with a :class:`StorageError` and writes nothing, rather than
answering with another job's id.

Known cost: a reserved id is older than the moment it is used, so job
ids follow creation order only up to that gap. A spare older than
:data:`MAX_AGE` seconds is dropped (the enqueue then reserves a fresh
id first, one more round trip), which bounds how far an id can lag
behind other processes' jobs. Dropped and unused ids leave gaps, as
rolled back transactions do.
"""

from __future__ import annotations

import time
from collections import deque

# Seconds a spare id stays usable.
MAX_AGE = 1.0
# Spares kept at most (concurrent enqueues each bring one back).
_KEPT = 16


class SpareIds:
    """Ids reserved from the jobs sequence and not used yet."""

    def __init__(self) -> None:
        self._spares: deque[tuple[int, float]] = deque()

    def take(self) -> int | None:
        """Return the oldest spare id still fresh, or ``None``."""
        now = time.monotonic()
        while self._spares:
            job_id, reserved_at = self._spares.popleft()
            if now - reserved_at <= MAX_AGE:
                return job_id
        return None

    def keep(self, job_id: int) -> None:
        """Keep ``job_id``, just reserved, for a later enqueue."""
        if len(self._spares) < _KEPT:
            self._spares.append((job_id, time.monotonic()))
