"""Reading a provider's ``Retry-After`` header (RFC 9110, 10.2.3).

A provider that answers 429 (too many requests) or 503 (unavailable)
may say when to come back, in seconds (``Retry-After: 120``) or as an
HTTP date. The jobs turn that into backburner's ``RetryAfter``, capped
at :data:`MAX_RETRY_AFTER`: a provider's word should not park a
message for hours (a confirmation code inside is dead after two
minutes anyway, and the user can ask for a new one).
"""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime

__all__ = ["BUSY_STATUSES", "MAX_RETRY_AFTER", "retry_after_seconds"]

BUSY_STATUSES = frozenset({429, 503})
"""HTTP statuses whose ``Retry-After`` the jobs follow."""

MAX_RETRY_AFTER = 300.0
"""The longest wait a provider can ask for, in seconds."""

# Longer than any header a provider means: more digits are not parsed.
_MAX_DIGITS = 12


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Seconds to wait that ``value`` asks for, capped; ``None`` when
    there is no header or it is neither seconds nor an HTTP date.

    A date in the past means now (0 seconds).
    """
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        if len(text) > _MAX_DIGITS:
            return MAX_RETRY_AFTER
        return min(float(int(text)), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        # HTTP dates are GMT; a date without a zone means GMT here.
        when = when.replace(tzinfo=UTC)
    wait = (when - now).total_seconds()
    return min(max(wait, 0.0), MAX_RETRY_AFTER)
