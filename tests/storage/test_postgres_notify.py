"""PostgreSQL only: notifications reach listeners in other storages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest

from backburner.storage import (
    JobsAborted,
    JobsEnqueued,
    JobState,
    NewJob,
    Notification,
    ServerInfo,
    StateChange,
    open_storage,
)
from backburner.storage.postgres import PostgresStorage

pytestmark = pytest.mark.postgres

Admin = Callable[..., list[tuple[object, ...]]]
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def new_job(queue: str = "default") -> NewJob:
    return NewJob(
        function="app.jobs:send",
        arguments='{"args":[],"kwargs":{}}',
        queue=queue,
        state=JobState.ENQUEUED,
        reason="enqueued",
        created_at=T0,
    )


class Heard:
    """A listener that records notifications and wakes waiters."""

    def __init__(self) -> None:
        self.notifications: list[Notification] = []
        self._changed = asyncio.Event()

    def __call__(self, notification: Notification) -> None:
        self.notifications.append(notification)
        self._changed.set()

    async def until(self, found: Callable[[list[Notification]], bool]) -> None:
        """Wait until ``found`` holds (callers bound the wait)."""
        while not found(self.notifications):
            self._changed.clear()
            await self._changed.wait()

    def enqueued(self, queue: str) -> int:
        return sum(
            1
            for n in self.notifications
            if isinstance(n, JobsEnqueued) and queue in n.queues
        )


@pytest.fixture
async def pair(
    postgres_storage_url: str,
) -> AsyncIterator[tuple[PostgresStorage, PostgresStorage]]:
    """Two storages on one schema, as two servers would have."""
    first = open_storage(postgres_storage_url)
    second = open_storage(postgres_storage_url)
    assert isinstance(first, PostgresStorage)
    assert isinstance(second, PostgresStorage)
    await first.migrate()
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_an_enqueue_wakes_a_listener_of_another_storage(
    pair: tuple[PostgresStorage, PostgresStorage],
) -> None:
    sender, receiver = pair
    heard = Heard()
    receiver.subscribe(heard)
    await receiver.wait_listening()

    await sender.create_jobs([new_job("mail"), new_job("sms")])

    async with asyncio.timeout(30):
        await heard.until(lambda n: len(n) >= 1)
    assert heard.notifications == [JobsEnqueued(frozenset({"mail", "sms"}))]


async def test_deleting_a_running_job_aborts_it_on_every_storage(
    pair: tuple[PostgresStorage, PostgresStorage],
) -> None:
    client, server = pair
    await server.announce_server(ServerInfo("s:1", ("default",), 1, T0, T0))
    job_id = await client.create_job(new_job())
    await server.fetch("s:1", ["default"], 1, T0)
    heard = Heard()
    server.subscribe(heard)
    await server.wait_listening()

    await client.apply_change(
        StateChange(
            job_id=job_id,
            to_state=JobState.DELETED,
            from_states=frozenset({JobState.PROCESSING}),
            reason="deleted by a user",
            at=T0,
        )
    )

    async with asyncio.timeout(30):
        await heard.until(lambda n: JobsAborted(frozenset({job_id})) in n)


async def test_a_storage_hears_its_own_changes_once(
    pair: tuple[PostgresStorage, PostgresStorage],
) -> None:
    own, other = pair
    heard = Heard()
    own.subscribe(heard)
    await own.wait_listening()

    await own.create_job(new_job("mine"))
    # NOTIFY delivers in commit order: once the other storage's marker
    # arrives, our own payload has come back too (and was dropped).
    await other.create_job(new_job("marker"))
    async with asyncio.timeout(30):
        await heard.until(lambda n: heard.enqueued("marker") == 1)

    assert heard.enqueued("mine") == 1


async def test_the_listening_connection_comes_back_after_being_killed(
    pair: tuple[PostgresStorage, PostgresStorage],
    admin: Admin,
    postgres_schema: str,
) -> None:
    sender, receiver = pair
    heard = Heard()
    receiver.subscribe(heard)
    await receiver.wait_listening()

    killed = admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = %s AND query LIKE 'LISTEN%%'",
        postgres_schema,
    )
    assert killed == [(True,)]

    # Notifications sent while the connection is down are lost (the
    # documented limit): keep enqueueing until one gets through.
    async def heard_after_reconnect() -> None:
        for attempt in range(200):
            await sender.create_job(new_job(f"after-{attempt}"))
            try:
                async with asyncio.timeout(0.5):
                    await heard.until(
                        lambda n: any(isinstance(x, JobsEnqueued) for x in n)
                    )
            except TimeoutError:
                continue
            return

    await asyncio.wait_for(heard_after_reconnect(), timeout=60)
    assert heard.notifications
