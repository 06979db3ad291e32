"""The activator: how the server gets a runner for a runner-class job.

A job function that is a method of a *runner class* needs an instance
to run on. For every execution the server asks its activator for a
scope, uses the runner the scope yields, and closes the scope when the
job ends, however it ends. The default activator builds the class with
no arguments; an application plugs in its own to hand runners their
dependencies (a database session, an HTTP client, settings) the way its
request handlers get them::

    class AppActivator(Activator):
        def __init__(self, settings: Settings) -> None:
            self.settings = settings

        @contextlib.asynccontextmanager
        async def scope(self, runner_class: type[T]) -> AsyncIterator[T]:
            async with make_session(self.settings) as session:
                yield runner_class(session)
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TypeVar

T = TypeVar("T")

__all__ = ["Activator"]


class Activator:
    """Builds runners, one scope per job execution.

    Subclass it and override :meth:`scope` to build runners your way.
    """

    @contextlib.asynccontextmanager
    async def scope(self, runner_class: type[T]) -> AsyncIterator[T]:
        """Yield a runner for one execution; clean up when it ends.

        The default builds ``runner_class()`` and has nothing to clean up.

        Raises:
            TypeError: the runner class needs constructor arguments (use
                an activator of your own that supplies them).
        """
        yield runner_class()
