"""Job functions that return values (the results tests enqueue them)."""

from __future__ import annotations

import asyncio
import enum
import threading
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from server_samples import returning_coroutine

from backburner.jobs import keep_result, retry


class Colour(enum.Enum):
    RED = "red"


# Set by the tests to let a waiting job finish.
release = threading.Event()


def rich(label: str) -> dict[str, Any]:
    """A value that only a lossless round trip gives back equal."""
    return {
        "label": label,
        "at": datetime(2026, 3, 29, 1, 30, tzinfo=ZoneInfo("Europe/Paris")),
        "utc": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        "billed": datetime(
            2026, 1, 2, 3, 4, tzinfo=timezone(timedelta(hours=1), "CET")
        ),
        "opens": time(9, 0, tzinfo=ZoneInfo("Europe/Paris")),
        "day": date(2026, 2, 28),
        "price": Decimal("19.990"),
        "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "raw": b"\x00\xffbytes",
        "nested": [(1, 2.5), {3: "three"}, {frozenset({"a"})}],
        "colour": Colour.RED,
        "wait": timedelta(seconds=90),
        "nothing": None,
    }


async def async_rich(label: str) -> dict[str, Any]:
    await asyncio.sleep(0)
    return rich(label)


@returning_coroutine
async def hidden_async_rich(label: str) -> dict[str, Any]:
    """Looks synchronous to ``inspect``; its coroutine is the job."""
    await asyncio.sleep(0)
    return rich(label)


class Pricer:
    """A runner class whose methods return values."""

    def __init__(self, rate: str = "1.2") -> None:
        self.rate = Decimal(rate)

    def price(self, amount: str) -> Decimal:
        return Decimal(amount) * self.rate

    async def price_async(self, amount: str) -> Decimal:
        await asyncio.sleep(0)
        return Decimal(amount) * self.rate


def returns_none() -> None:
    return None


def returns_falsy() -> int:
    return 0


class Opaque:
    """A value the serializer cannot store."""


def unserialisable() -> dict[str, object]:
    return {"secret-key": Opaque()}


def huge_integer() -> list[int]:
    return [10**5000]


def oversized(size: int) -> str:
    return "é" * size


@retry(attempts=2, delays=[0])
def always_fails(message: str) -> None:
    raise LookupError(message)


@retry(attempts=1, on_exhausted="delete")
def fails_then_deleted() -> None:
    raise KeyError("gone")


def after_release(value: str) -> str:
    release.wait(30)
    return value


async def many_items(count: int) -> list[int]:
    return [0] * count


async def small_dict() -> dict[str, list[int]]:
    return {"a": [1, 2]}


async def small_number() -> int:
    return 5


# -- results not to be kept ------------------------------------------------


@keep_result(False)
def secret() -> dict[str, object]:
    """A value that must never be stored (and cannot even be encoded)."""
    return {"token": Opaque()}


@keep_result(False)
def secret_number() -> int:
    return 42


@keep_result(False)
def secret_nothing() -> None:
    return None


@keep_result(False)
def secret_failure() -> int:
    raise LookupError("no such account")


class Vault:
    """A runner class with a method declared not to keep its result."""

    @keep_result(False)
    async def open(self, code: str) -> str:
        await asyncio.sleep(0)
        return f"opened with {code}"


def huge_integer_of(digits: int) -> list[int]:
    """An integer of exactly ``digits`` digits, built without text."""
    return [10 ** (digits - 1)]
