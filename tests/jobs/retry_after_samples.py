"""Job functions that ask to be retried after a delay they choose."""

from __future__ import annotations

import math
from datetime import timedelta

from backburner.jobs import RetryAfter, retry

# How often each named job ran, filled when tests run them in-process.
runs: dict[str, int] = {}


def _count(name: str) -> int:
    runs[name] = runs.get(name, 0) + 1
    return runs[name]


# The policy's own delay is an hour, and every exception is "never
# retried": only the job's request can bring it back, and soon.
@retry(attempts=3, delays=[3600], never_retry=(Exception,))
async def rate_limited(name: str, times: int, delay: float) -> str:
    if _count(name) <= times:
        raise RetryAfter(delay, "HTTP 429 Too Many Requests")
    return "sent"


@retry(attempts=3, delays=[3600], never_retry=(Exception,))
def rate_limited_sync(name: str, times: int, delay: float) -> str:
    if _count(name) <= times:
        raise RetryAfter(timedelta(seconds=delay), "HTTP 503")
    return "sent"


@retry(attempts=2, delays=[0])
def always_busy(name: str) -> None:
    _count(name)
    raise RetryAfter(0)


@retry(attempts=2, delays=[0], on_exhausted="delete")
async def always_busy_then_deleted(name: str) -> None:
    _count(name)
    raise RetryAfter(0.01, "still busy")


@retry(attempts=1)
def asks_nan_delay() -> None:
    raise RetryAfter(math.nan, "a bad header")


def noop() -> str:
    return "done"
