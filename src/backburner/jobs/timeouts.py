"""The one rule for a job's timeout, wherever a job gets one.

A timeout is a finite number of seconds above 0. Infinity is refused
rather than read as "no timeout" (that is ``None``): it would be stored
as is and then written as ``Infinity`` by ``backburner jobs --json``,
which is not JSON.
"""

from __future__ import annotations

import math

__all__ = ["check_timeout"]


def check_timeout(value: object, what: str = "timeout") -> None:
    """Refuse ``value`` unless it is a usable job timeout.

    Raises:
        TypeError: ``value`` is not an ``int`` or a ``float`` (a bool is
            a mistake, not one second).
        ValueError: ``value`` is not finite or not above 0.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{what} must be a number of seconds, "
            f"got {type(value).__name__} {value!r}"
        )
    try:
        usable = math.isfinite(value) and value > 0
    except OverflowError:
        # An int past the largest float (storage keeps a float); not
        # repeated: its text may be longer than Python will write.
        raise ValueError(
            f"{what} must be a positive number of seconds, "
            "got an int too large for a float"
        ) from None
    if not usable:
        raise ValueError(
            f"{what} must be a positive number of seconds, got {value!r}"
        )
