"""Queue names: the default queue, and which names are valid.

Shared by the client, which writes jobs to queues, and the server, which
drains them; a module of its own so that a server starts without the
client's code.
"""

from __future__ import annotations

import re

__all__ = ["DEFAULT_QUEUE", "check_queue_name"]

DEFAULT_QUEUE = "default"

_QUEUE_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,100}")


def check_queue_name(queue: str) -> str:
    """Return ``queue`` if it is a valid queue name.

    Raises:
        ValueError: the name is empty, longer than 100 characters, or has
            characters other than letters, digits and ``_.:-``.
    """
    if not isinstance(queue, str) or not _QUEUE_NAME.fullmatch(queue):
        raise ValueError(
            f"invalid queue name {queue!r}: use 1-100 letters, digits or _.:-"
        )
    return queue
