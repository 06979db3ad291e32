"""Mutexes: at most N jobs with the same key run at once, on all servers.

Declare it on the job function::

    @mutex("stock-import")              # one at a time
    async def import_stock(file: str) -> None: ...

    @mutex(lambda tenant, month: f"export:{tenant}", limit=2)
    async def export(tenant: str, month: str) -> None: ...

or per job with ``JobOptions(mutex="...", mutex_limit=N)``, which wins
over the declaration. The key is computed at enqueue, from the call's
arguments when it is a callable, and stored with the job.

A job whose mutex already has ``limit`` jobs *processing* stays on its
queue: it is not failed and not retried, and it keeps its place. A slot
is held by being *processing*, so a job that ends in any way, is
requeued, deleted, or recovered from a dead server frees its slot in
the same transaction. Jobs with and without a mutex share the queue;
see ``docs/jobs.md`` for what a long line of waiting jobs costs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from backburner.jobs.uniqueness import check_key

__all__ = ["Mutex", "mutex", "mutex_of"]

F = TypeVar("F", bound=Callable[..., Any])
_ATTRIBUTE = "__backburner_mutex__"


@dataclass(frozen=True, slots=True)
class Mutex:
    """A mutex declared on a job function.

    Attributes:
        key: the mutex name, or a callable that returns it from the
            job's arguments.
        limit: how many jobs holding it may run at once.
    """

    key: str | Callable[..., str]
    limit: int = 1

    def __post_init__(self) -> None:
        if not callable(self.key):
            check_key(self.key, "mutex")
        if isinstance(self.limit, bool) or not isinstance(self.limit, int):
            raise ValueError(f"a mutex limit is an int, got {self.limit!r}")
        if self.limit < 1:
            raise ValueError(f"a mutex limit is at least 1: {self.limit}")

    def key_for(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """The mutex name for one call.

        Raises:
            ValueError: the callable failed on these arguments or did
                not return a usable name.
        """
        if not callable(self.key):
            return self.key
        try:
            key = self.key(*args, **kwargs)
        except Exception as error:
            # Any failure of application code here refuses the enqueue.
            raise ValueError(
                f"the mutex key function failed on the job's arguments: "
                f"{type(error).__name__}: {error}"
            ) from error
        return check_key(key, "mutex")


def mutex(
    key: str | Callable[..., str], *, limit: int = 1
) -> Callable[[F], F]:
    """Declare that at most ``limit`` jobs of ``key`` run at once.

    Raises:
        ValueError: an empty or over-long key, or a limit below 1.
    """
    declared = Mutex(key, limit)

    def decorate(func: F) -> F:
        setattr(getattr(func, "__func__", func), _ATTRIBUTE, declared)
        return func

    return decorate


def mutex_of(func: object) -> Mutex | None:
    """The mutex declared on ``func``, if any."""
    target = getattr(func, "__func__", func)
    found = getattr(target, _ATTRIBUTE, None)
    return found if isinstance(found, Mutex) else None
