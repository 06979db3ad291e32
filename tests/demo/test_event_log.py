"""The live log behind the demo page."""

from __future__ import annotations

import asyncio
import threading

import pytest

from backburner.demo.events import EventLog

pytestmark = pytest.mark.timeout(10)


def test_only_the_latest_events_are_kept() -> None:
    log = EventLog(capacity=3)
    for number in range(5):
        log.record(None, "/x", "progress", str(number))

    assert [e.detail for e in log.since(0)] == ["2", "3", "4"]
    assert [e.id for e in log.since(4)] == [5]
    assert log.last_id == 5


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        EventLog(capacity=0)


async def test_a_long_poll_wakes_on_an_event_from_another_thread() -> None:
    log = EventLog()
    waiting = asyncio.create_task(log.wait_newer(0, 30))
    await asyncio.sleep(0)  # let the waiter register

    thread = threading.Thread(
        target=log.record, args=(1, "/x", "started", "from a thread")
    )
    thread.start()
    await asyncio.wait_for(waiting, 5)
    thread.join()

    assert [e.detail for e in log.since(0)] == ["from a thread"]


async def test_a_long_poll_returns_at_once_when_newer_events_exist() -> None:
    log = EventLog()
    log.record(None, "/x", "started")

    await asyncio.wait_for(log.wait_newer(0, 30), 5)


async def test_a_long_poll_ends_empty_after_its_time() -> None:
    log = EventLog()

    await asyncio.wait_for(log.wait_newer(0, 0.01), 5)

    assert log.since(0) == []
