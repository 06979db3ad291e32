"""Retry policy, declared on the job function with :func:`retry`.

Without a declaration :data:`DEFAULT_RETRY` applies: 10 attempts, with
delays that grow (15 s, 30 s, 1 min, ... capped at 1 h) and a +-25 %
jitter so that many failing jobs do not come back in lockstep.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

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
    """

    attempts: int = 10
    delays: tuple[float, ...] = ()
    never_retry: tuple[type[BaseException], ...] = ()
    on_exhausted: OnExhausted = "fail"

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
        ValueError: ``attempts`` is below 1, a delay is negative, or
            ``on_exhausted`` is neither ``"fail"`` nor ``"delete"``.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    if any(delay < 0 for delay in delays):
        raise ValueError("delays cannot be negative")
    if on_exhausted not in ("fail", "delete"):
        raise ValueError('on_exhausted must be "fail" or "delete"')
    policy = RetryPolicy(
        attempts=attempts,
        delays=tuple(float(d) for d in delays),
        never_retry=tuple(never_retry),
        on_exhausted=on_exhausted,
    )

    def declare(func: F) -> F:
        setattr(func, _ATTRIBUTE, policy)
        return func

    return declare


def policy_of(func: object) -> RetryPolicy:
    """Return the policy declared on ``func``, or :data:`DEFAULT_RETRY`."""
    target = getattr(func, "__func__", func)
    policy = getattr(target, _ATTRIBUTE, None)
    return policy if isinstance(policy, RetryPolicy) else DEFAULT_RETRY
