"""Job functions the job tests enqueue (importable by worker processes)."""

from __future__ import annotations

import asyncio
import enum
import os
import threading
import time
from pathlib import Path

from backburner.cancellation import CancellationToken
from backburner.jobs import keep_result, retry


class Colour(enum.Enum):
    RED = "red"
    BLUE = 2


class Size(enum.IntEnum):
    SMALL = 1


class KnownError(Exception):
    """An expected failure that must not be retried."""


# Filled by the functions below when tests run them in-process.
calls: list[tuple[str, object]] = []
events: dict[str, threading.Event] = {}


def event(name: str) -> threading.Event:
    return events.setdefault(name, threading.Event())


def noop() -> None:
    return None


async def async_noop() -> None:
    return None


def record(value: object, *, queue: str = "", func: str = "") -> None:
    calls.append(("record", (value, queue, func)))


async def async_record(value: object) -> None:
    calls.append(("async_record", value))


def append_line(path: str, text: str) -> None:
    """Append one line to a file (used by tests across processes)."""
    with Path(path).open("a", encoding="utf-8") as handle:
        handle.write(f"{text}\n")


def slow_line(path: str, text: str, seconds: float) -> None:
    """Note the start, sleep, then note the end (kill tests)."""
    append_line(path, f"start {text} {os.getpid()}")
    time.sleep(seconds)
    append_line(path, f"end {text} {os.getpid()}")


async def wait_for_token(name: str, token: CancellationToken) -> None:
    """Runs until its token fires; notes why."""
    event(f"{name}:started").set()
    await token.wait()
    calls.append(("cancelled", (name, token.reason)))
    token.raise_if_cancellation_requested()


def sync_wait_for_token(name: str, token: CancellationToken) -> None:
    event(f"{name}:started").set()
    token.wait_blocking(30)
    calls.append(("cancelled", (name, token.reason)))
    token.raise_if_cancellation_requested()


async def sleep_ignoring_token(name: str, seconds: float) -> None:
    event(f"{name}:started").set()
    await asyncio.sleep(seconds)
    calls.append(("slept", name))


async def honour_token_once(path: str, token: CancellationToken) -> None:
    """First run waits for its token (shutdown); later runs succeed."""
    marker = Path(path)
    # Tiny local files: blocking calls are fine in a test sample.
    if not marker.exists():  # noqa: ASYNC240
        marker.write_text(  # noqa: ASYNC240
            "interrupted once", encoding="utf-8"
        )
        append_line(f"{path}.log", "started")
        await token.wait()
        token.raise_if_cancellation_requested()
    append_line(f"{path}.log", "succeeded")


@retry(attempts=3, delays=[0], never_retry=(KnownError,))
def flaky(name: str, failures: int) -> str:
    count = sum(1 for kind, value in calls if value == name)
    calls.append(("flaky", name))
    if count < failures:
        raise RuntimeError(f"boom {count + 1}")
    return "ok"


@retry(attempts=5, delays=[0])
def raises_known() -> None:
    calls.append(("known", None))
    raise KnownError("expected")


@retry(attempts=2, delays=[0], on_exhausted="delete")
def always_fails() -> None:
    raise ValueError("never works")


@retry(attempts=1)
async def too_slow(token: CancellationToken) -> None:
    await asyncio.sleep(30)


class Mailer:
    """A runner class: the activator builds it, one scope per job."""

    built = 0

    def __init__(self, prefix: str = "default") -> None:
        Mailer.built += 1
        self.prefix = prefix

    def send(self, to: str) -> None:
        calls.append(("mailer.send", f"{self.prefix}:{to}"))

    async def send_async(self, to: str) -> None:
        calls.append(("mailer.send_async", f"{self.prefix}:{to}"))

    @staticmethod
    def static(to: str) -> None:
        calls.append(("mailer.static", to))


@keep_result(False)
def issue_code(user: str) -> str:
    """Return a secret that must never be stored."""
    return f"code-s3cret-{user}"
