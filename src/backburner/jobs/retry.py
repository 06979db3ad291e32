"""Retry policy, declared on the job function with :func:`retry`.

Without a declaration :data:`DEFAULT_RETRY` applies: 10 attempts, with
delays that grow (15 s, 30 s, 1 min, ... capped at 1 h) and a +-25 %
jitter so that many failing jobs do not come back in lockstep.

A running job can also choose the delay before its next attempt itself
by raising :class:`RetryAfter` (an API answered 429 with a Retry-After
header): the attempt still counts against the policy's ``attempts``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

from backburner._picklable import PicklableException
from backburner.jobs.states import LATEST_READY_AT

F = TypeVar("F", bound=Callable[..., Any])

OnExhausted = Literal["fail", "delete"]
_ATTRIBUTE = "__backburner_retry__"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often a failing job runs again, and how long in between.

    Attributes:
        attempts: executions in total, the first one included.
        delays: seconds before each retry; the last value repeats. Empty
            means the default growing, jittered delays.
        never_retry: exception types that end the job at once (known,
            expected failures): ``on_exhausted`` applies immediately.
        on_exhausted: ``"fail"`` leaves the job *failed* (it stays until
            someone acts); ``"delete"`` moves it to *deleted*.

    Raises:
        ValueError: a delay is negative, not finite or ends after year
            9999.
    """

    attempts: int = 10
    delays: tuple[float, ...] = ()
    never_retry: tuple[type[BaseException], ...] = ()
    on_exhausted: OnExhausted = "fail"

    def __post_init__(self) -> None:
        # A nan or infinite delay would otherwise only fail in the server
        # at the job's first failure, leaving the job stuck in processing.
        if not all(_fits(delay) for delay in self.delays):
            raise ValueError(
                f"invalid delays {list(self.delays)!r:.200}: use finite "
                f"numbers of seconds >= 0 that end before year 9999"
            )
        delays = tuple(float(delay) for delay in self.delays)
        object.__setattr__(self, "delays", delays)

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before ``attempt`` (2 for the first retry)."""
        retry_index = max(attempt - 2, 0)
        if self.delays:
            return self.delays[min(retry_index, len(self.delays) - 1)]
        base = min(15.0 * 2.0**retry_index, 3600.0)
        # Imported at the first retry, not with the module: most worker
        # starts would import it for nothing.
        import random

        return base * random.uniform(0.75, 1.25)

    def should_retry(self, error: BaseException, attempt: int) -> bool:
        """Whether a job that raised ``error`` on ``attempt`` runs again."""
        if isinstance(error, self.never_retry):
            return False
        return attempt < self.attempts


DEFAULT_RETRY = RetryPolicy()


# Not named ...Error: it is a request of the job, not a failure of it.
class RetryAfter(PicklableException, Exception):  # noqa: N818
    """Raised by a job function to be retried after ``delay``.

    ``delay`` is seconds (an ``int`` or ``float``) or a ``timedelta``;
    it replaces the policy's delay for this one retry. The attempt
    counts like a failed one: once the policy's ``attempts`` are used up
    the job ends as its ``on_exhausted`` says. ``never_retry`` does not
    apply: the job asked for the retry. The job's history records
    ``reason`` and the delay.

    Attributes:
        delay: seconds before the next attempt (a finite float, 0 or
            more).
        reason: why the job asked (``"Twilio answered 429"``), or ``""``.

    Raises:
        TypeError: ``delay`` is neither a number nor a ``timedelta``,
            or ``reason`` is not a string.
        ValueError: ``delay`` is negative, not finite, or ends after the
            latest date a job can be scheduled at (year 9999).
    """

    def __init__(self, delay: float | timedelta, reason: str = "") -> None:
        seconds = _retry_seconds(delay)
        if not isinstance(reason, str):
            raise TypeError(
                f"RetryAfter: reason must be a str, got "
                f"{type(reason).__name__}"
            )
        told = f"retry after {seconds:g} s"
        super().__init__(f"{told}: {reason}" if reason else told)
        self.delay = seconds
        self.reason = reason


def _retry_seconds(delay: object) -> float:
    """``delay`` as seconds, or a clear error for what cannot be one."""
    if isinstance(delay, timedelta):
        seconds = delay.total_seconds()
    elif isinstance(delay, int | float) and not isinstance(delay, bool):
        # An int too large for a float is far past year 9999 anyway.
        seconds = float(delay) if abs(delay) < 1e300 else math.inf
    else:
        # A bool is an int to Python, but a flag passed as a delay is a
        # mistake; so is a header value still in its string.
        raise TypeError(
            f"RetryAfter: delay must be seconds (int or float) or a "
            f"timedelta, got {type(delay).__name__} {delay!r:.100}"
        )
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(
            f"RetryAfter: invalid delay {delay!r:.100}: use a finite number "
            f"of seconds >= 0"
        )
    try:
        late = datetime.now(UTC) + timedelta(seconds=seconds) > LATEST_READY_AT
    except OverflowError:
        late = True
    if late:
        raise ValueError(
            f"RetryAfter: invalid delay {delay!r:.100}: it ends after the "
            f"latest date a job can be scheduled at ({LATEST_READY_AT.date()})"
        )
    return seconds


def retry(
    attempts: int = 3,
    delays: Sequence[float] = (30,),
    never_retry: tuple[type[BaseException], ...] = (),
    on_exhausted: OnExhausted = "fail",
) -> Callable[[F], F]:
    """Declare the retry policy of a job function (returned unchanged).

    ``attempts`` counts executions, the first one included, so
    ``attempts=3`` means up to two retries. ``delays`` are seconds before
    each retry; the last one repeats.

    Raises:
        ValueError: ``attempts`` is below 1, a delay is negative, not
            finite or ends after year 9999, or ``on_exhausted`` is
            neither ``"fail"`` nor ``"delete"``.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    if on_exhausted not in ("fail", "delete"):
        raise ValueError('on_exhausted must be "fail" or "delete"')
    policy = RetryPolicy(
        attempts=attempts,
        delays=tuple(delays),
        never_retry=tuple(never_retry),
        on_exhausted=on_exhausted,
    )

    def declare(func: F) -> F:
        setattr(func, _ATTRIBUTE, policy)
        return func

    return declare


def _fits(delay: object) -> bool:
    """Whether ``delay`` is seconds a retry can wait."""
    if isinstance(delay, timedelta):
        return False
    try:
        _retry_seconds(delay)
    except (TypeError, ValueError):
        return False
    return True


def policy_of(func: object) -> RetryPolicy:
    """Return the policy declared on ``func``, or :data:`DEFAULT_RETRY`."""
    target = getattr(func, "__func__", func)
    policy = getattr(target, _ATTRIBUTE, None)
    return policy if isinstance(policy, RetryPolicy) else DEFAULT_RETRY
