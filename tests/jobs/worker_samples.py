"""Job functions for the tests of running one job (``test_perform``)."""

from __future__ import annotations

import asyncio
import threading
from typing import ClassVar

from backburner.cancellation import (
    CancellationToken,
    CancellationTokenSource,
)
from backburner.jobs import JobContext


class StoppedMyWayError(Exception):
    """What a job that watches its token raises when it fires."""


async def ignore_token() -> None:
    """Awaits for a long time and never looks at its token."""
    await asyncio.sleep(30)


async def stop_my_way(token: CancellationToken) -> None:
    """Ends on its own, with its own error, once its token fires."""
    await token.wait()
    raise StoppedMyWayError(token.reason)


async def swallow_interruption() -> None:
    """Catches the interruption and returns as if nothing happened."""
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        return


class Reporter:
    """A runner whose method takes the token and context positionally."""

    seen: ClassVar[list[object]] = []

    async def report(
        self, name: str, token: CancellationToken, context: JobContext
    ) -> None:
        Reporter.seen[:] = [name, token, context]


# Set by the test before the job runs: what cancel_from_thread fires.
to_cancel: list[CancellationTokenSource] = []


async def cancel_from_thread() -> None:
    """Fires its own token from another thread, then returns at once.

    The token's callbacks reach the event loop only after the job ended.
    """
    canceller = threading.Thread(target=to_cancel[0].cancel)
    canceller.start()
    canceller.join()
