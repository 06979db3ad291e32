"""PostgreSQL only: an enqueue hands its job straight to an idle server.

The server's fetch on empty queues marks as many of its workers idle as
it would start jobs at once (``idle_workers``); a single enqueue then
writes its job in processing, held by that server, and the server's next
fetch returns it instead of taking one from a queue. These tests pin
when that happens, what the job looks like afterwards, and that nothing
is lost when the server never picks the job up.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from tests.storage.postgres_samples import Admin, new_job

from backburner.storage import (
    JobsAborted,
    JobsEnqueued,
    JobState,
    Notification,
    ServerInfo,
    StateChange,
    open_storage,
)
from backburner.storage.postgres import PostgresStorage
from backburner.storage.postgres import storage as module

pytestmark = pytest.mark.postgres

SERVER = "idle:1"


def idle(admin: Admin) -> list[int]:
    """The server's slots marked idle."""
    rows = admin("SELECT slot FROM idle_workers WHERE idle ORDER BY slot")
    return [int(str(slot)) for (slot,) in rows]


def now() -> datetime:
    """The hand-off looks at heartbeats against the database's clock."""
    return datetime.now(UTC)


async def announce(
    storage: PostgresStorage,
    queues: tuple[str, ...] = ("default",),
    heartbeat: datetime | None = None,
) -> None:
    beat = now() if heartbeat is None else heartbeat
    await storage.announce_server(ServerInfo(SERVER, queues, 4, beat, beat))


async def make_idle(server: PostgresStorage, workers: int) -> None:
    """Register the server; its fetch on the empty queue marks
    ``workers`` of its workers idle."""
    await announce(server)
    await server.fetch(SERVER, ["default"], workers, now())


@pytest.fixture
async def pair(
    postgres_storage_url: str,
) -> AsyncIterator[tuple[PostgresStorage, PostgresStorage]]:
    """A server's storage and a client's, as in two processes."""
    opened = [open_storage(postgres_storage_url) for _ in range(2)]
    typed = [s for s in opened if isinstance(s, PostgresStorage)]
    assert len(typed) == 2
    await typed[0].migrate()
    try:
        yield typed[0], typed[1]
    finally:
        for storage in typed:
            await storage.close()


async def test_an_idle_servers_fetch_marks_workers_idle_as_it_would_take(
    pair: tuple[PostgresStorage, PostgresStorage], admin: Admin
) -> None:
    server, _ = pair
    await announce(server)
    assert admin("SELECT slot, idle FROM idle_workers ORDER BY slot") == [
        (0, False),
        (1, False),
        (2, False),
        (3, False),
    ]

    assert await server.fetch(SERVER, ["default"], 3, now()) == []

    assert idle(admin) == [0, 1, 2]


async def test_polling_empty_queues_writes_nothing_once_workers_are_marked(
    pair: tuple[PostgresStorage, PostgresStorage], admin: Admin
) -> None:
    server, _ = pair
    await make_idle(server, 3)
    written = admin("SELECT slot, xmin::text FROM idle_workers ORDER BY slot")

    for _ in range(3):
        await server.fetch(SERVER, ["default"], 3, now())

    assert (
        admin("SELECT slot, xmin::text FROM idle_workers ORDER BY slot")
        == written
    )


async def test_a_server_done_with_a_handed_job_marks_that_worker_alone_idle(
    pair: tuple[PostgresStorage, PostgresStorage], admin: Admin
) -> None:
    server, client = pair
    await make_idle(server, 3)
    await client.create_job(new_job())
    assert len(idle(admin)) == 2
    before = dict(admin("SELECT slot, xmin::text FROM idle_workers"))

    await server.fetch(SERVER, ["default"], 3, now())

    assert idle(admin) == [0, 1, 2]
    after = dict(admin("SELECT slot, xmin::text FROM idle_workers"))
    assert sum(before[slot] != after[slot] for slot in before) == 1
    # Fewer free workers: the others are marked busy.
    await server.fetch(SERVER, ["default"], 1, now())
    assert idle(admin) == [0]


async def test_announcing_fewer_workers_drops_the_other_slots(
    pair: tuple[PostgresStorage, PostgresStorage], admin: Admin
) -> None:
    server, _ = pair
    await make_idle(server, 4)
    beat = now()

    await server.announce_server(
        ServerInfo(SERVER, ("default",), 2, beat, beat)
    )

    assert admin("SELECT slot, idle FROM idle_workers ORDER BY slot") == [
        (0, False),
        (1, False),
    ]


async def test_a_fetch_that_takes_its_whole_limit_says_it_takes_none_more(
    pair: tuple[PostgresStorage, PostgresStorage], admin: Admin
) -> None:
    server, client = pair
    await make_idle(server, 2)
    # Bulk creates never hand off: both jobs wait in the queue.
    await client.create_jobs([new_job(), new_job()])

    taken = await server.fetch(SERVER, ["default"], 2, now())

    assert len(taken) == 2
    assert idle(admin) == []


async def test_an_enqueue_hands_its_job_to_an_idle_server_in_another_process(
    pair: tuple[PostgresStorage, PostgresStorage], admin: Admin
) -> None:
    server, client = pair
    heard: asyncio.Queue[Notification] = asyncio.Queue()
    server.subscribe(heard.put_nowait)
    await server.wait_listening()
    await make_idle(server, 2)

    job_id = await client.create_job(new_job())

    assert admin(
        "SELECT state, server, version, attempt, reason FROM jobs"
    ) == [("processing", SERVER, 2, 1, f"handed to {SERVER}")]
    assert admin("SELECT count(*) FROM job_queue") == [(0,)]
    assert len(idle(admin)) == 1
    counts = {(c.state, c.queue): c.count for c in await client.counts()}
    assert counts.get((JobState.PROCESSING, "default")) == 1
    assert counts.get((JobState.ENQUEUED, "default"), 0) == 0
    history = await client.get_history(job_id)
    assert [(e.state, e.reason) for e in history] == [
        (JobState.ENQUEUED, "enqueued"),
        (JobState.PROCESSING, f"handed to {SERVER}"),
    ]
    assert history[1].data == {"server": SERVER}

    # The server is woken as by any enqueue on its queue, and its next
    # fetch reads the job: no second move to processing.
    notification = await asyncio.wait_for(heard.get(), 5)
    assert notification == JobsEnqueued(frozenset({"default"}))
    (record,) = await server.fetch(SERVER, ["default"], 2, now())
    assert (record.id, record.state, record.version) == (
        job_id,
        JobState.PROCESSING,
        2,
    )
    assert admin("SELECT count(*) FROM job_history") == [(1,)]
    assert await server.fetch(SERVER, ["default"], 2, now()) == []


async def test_a_job_handed_off_through_the_servers_own_storage_is_fetched(
    pair: tuple[PostgresStorage, PostgresStorage],
) -> None:
    server, _ = pair
    await make_idle(server, 1)

    job_id = await server.create_job(new_job())

    (record,) = await server.fetch(SERVER, ["default"], 1, now())
    assert record.id == job_id


async def test_outcomes_and_the_next_fetch_read_a_handed_job_together(
    pair: tuple[PostgresStorage, PostgresStorage],
) -> None:
    server, _ = pair
    await make_idle(server, 1)
    first = await server.create_job(new_job())
    (record,) = await server.fetch(SERVER, ["default"], 1, now())
    done = StateChange(
        job_id=first,
        to_state=JobState.SUCCEEDED,
        from_states=frozenset({JobState.PROCESSING}),
        reason="done",
        at=now(),
        expected_version=record.version,
        from_worker=True,
    )
    # The job's worker is free again: the fetch that writes its outcome
    # says so, and the next enqueue is handed over.
    outcomes, fetched = await server.apply_changes_and_fetch(
        [done], SERVER, ["default"], 1, now()
    )
    assert [o.applied for o in outcomes] == [True]
    assert fetched == []
    second = await server.create_job(new_job())

    outcomes, fetched = await server.apply_changes_and_fetch(
        [], SERVER, ["default"], 1, now()
    )
    assert [r.id for r in fetched] == [second]


async def test_each_hand_off_takes_one_idle_worker(
    pair: tuple[PostgresStorage, PostgresStorage], admin: Admin
) -> None:
    server, client = pair
    await make_idle(server, 1)

    handed = await client.create_job(new_job())
    queued = await client.create_job(new_job())

    assert admin("SELECT id, state FROM jobs ORDER BY id") == [
        (handed, "processing"),
        (queued, "enqueued"),
    ]
    assert idle(admin) == []


@pytest.mark.parametrize(
    "case",
    ["job waiting", "mutex", "scheduled", "other queue", "silent server"],
)
async def test_no_hand_off(
    pair: tuple[PostgresStorage, PostgresStorage], admin: Admin, case: str
) -> None:
    server, client = pair
    queues = ("other",) if case == "other queue" else ("default",)
    beat = now() - timedelta(seconds=30) if case == "silent server" else None
    await announce(server, queues, beat)
    await server.fetch(SERVER, list(queues), 4, now())
    job = new_job()
    if case == "job waiting":
        # A job already waits in the queue: a hand-off would overtake it.
        await client.create_jobs([new_job(), new_job()])
    elif case == "mutex":
        job = dataclasses.replace(job, mutex="m", mutex_limit=1)
    elif case == "scheduled":
        job = dataclasses.replace(
            job,
            state=JobState.SCHEDULED,
            reason="scheduled",
            scheduled_at=now() + timedelta(hours=1),
        )

    job_id = await client.create_job(job)

    ((state, held_by),) = admin(
        "SELECT state, server FROM jobs WHERE id = %s", job_id
    )
    assert state != "processing"
    assert held_by is None
    assert idle(admin) == [0, 1, 2, 3]
    assert admin("SELECT count(*) FROM job_history") == [(0,)]


async def test_a_job_handed_to_a_server_that_is_gone_is_recovered(
    pair: tuple[PostgresStorage, PostgresStorage], admin: Admin
) -> None:
    server, client = pair
    await make_idle(server, 1)
    job_id = await client.create_job(new_job())

    # The server stops (or is declared dead) before it reads the job.
    await client.remove_server(SERVER)
    assert admin("SELECT count(*) FROM idle_workers") == [(0,)]

    recovered = await client.recover_dead_servers(now(), 15, "server died")
    assert recovered == [job_id]
    assert admin("SELECT state, server FROM jobs") == [("enqueued", None)]
    assert admin("SELECT job_id FROM job_queue") == [(job_id,)]


async def listening(server: PostgresStorage) -> asyncio.Queue[Notification]:
    heard: asyncio.Queue[Notification] = asyncio.Queue()
    server.subscribe(heard.put_nowait)
    await server.wait_listening()
    return heard


@pytest.mark.parametrize("arguments", ["short", "too long for a NOTIFY"])
async def test_the_server_gets_the_handed_job_as_storage_holds_it(
    pair: tuple[PostgresStorage, PostgresStorage], arguments: str
) -> None:
    server, client = pair
    heard = await listening(server)
    await make_idle(server, 1)
    text = "x" * (20 if arguments == "short" else 9000)
    job = dataclasses.replace(
        new_job(f'{{"args":["{text}"],"kwargs":{{}}}}'),
        timeout=2.5,
        created_at=datetime(2026, 3, 1, 13, 0, 0, 123456, tzinfo=UTC),
    )
    job_id = await client.create_job(job)
    await asyncio.wait_for(heard.get(), 5)

    (record,) = await server.fetch(SERVER, ["default"], 1, now())

    assert record == await client.get_job(job_id)


@pytest.mark.parametrize("keep", [True, False])
@pytest.mark.parametrize("enqueuer", ["another storage", "the same storage"])
async def test_a_handed_job_keeps_its_keep_result(
    pair: tuple[PostgresStorage, PostgresStorage], keep: bool, enqueuer: str
) -> None:
    server, client = pair
    heard = await listening(server)
    await make_idle(server, 1)
    creator = client if enqueuer == "another storage" else server
    # The NOTIFY names the job alone (see migration 0007): the fetch
    # reads it, keep_result with it.
    job_id = await creator.create_job(
        dataclasses.replace(new_job(), keep_result=keep)
    )
    await asyncio.wait_for(heard.get(), 5)

    (record,) = await server.fetch(SERVER, ["default"], 1, now())

    assert record.reason == f"handed to {SERVER}"
    assert record.keep_result is keep
    assert record == await client.get_job(job_id)


async def test_a_long_job_deleted_before_its_server_reads_it_is_not_started(
    pair: tuple[PostgresStorage, PostgresStorage],
) -> None:
    server, client = pair
    heard = await listening(server)
    await make_idle(server, 1)
    # Too long for the NOTIFY: the server reads the job at its fetch.
    job_id = await client.create_job(new_job(f'["{"x" * 9000}"]'))
    await asyncio.wait_for(heard.get(), 5)
    deleted = StateChange(
        job_id=job_id,
        to_state=JobState.DELETED,
        from_states=frozenset({JobState.PROCESSING}),
        reason="deleted by a user",
        at=now(),
    )
    await client.apply_changes([deleted])

    assert await server.fetch(SERVER, ["default"], 1, now()) == []


async def test_a_retried_enqueue_hands_off_once(
    pair: tuple[PostgresStorage, PostgresStorage],
    admin: Admin,
    postgres_storage_url: str,
) -> None:
    server, client = pair
    await make_idle(server, 2)
    (reserved,) = admin("SELECT nextval(pg_get_serial_sequence('jobs', 'id'))")
    job = new_job()
    params = (
        reserved[0],
        job.function,
        job.arguments,
        job.queue,
        "enqueued",
        job.reason,
        job.created_at,
        None,  # scheduled_at
        None,  # timeout
        None,  # mutex
        None,  # mutex_limit
        None,  # keep_result
        "[]",
        0,
        client.settings.channel,
        '{"o": "elsewhere", "e": ["default"]}',
    )
    conninfo = postgres_storage_url.split("?")[0]
    schema = client.settings.schema
    async with await psycopg.AsyncConnection.connect(
        conninfo, autocommit=True
    ) as conn:
        await conn.execute(f'SET search_path TO "{schema}"')
        cursor = psycopg.AsyncRawCursor(conn)
        # The same statement twice, as after a reply lost in transit.
        await cursor.execute(module._CREATE_HANDOFF, params)
        first = await cursor.fetchone()
        await cursor.execute(module._CREATE_HANDOFF, params)
        second = await cursor.fetchone()

    assert first is not None
    assert second is not None
    assert (first[0], first[3]) == (1, SERVER)
    assert (second[0], second[3]) == (0, None)
    assert len(idle(admin)) == 1
    assert admin("SELECT count(*) FROM job_history") == [(1,)]


async def test_a_server_takes_whole_handed_jobs_without_a_fetch(
    pair: tuple[PostgresStorage, PostgresStorage],
) -> None:
    server, client = pair
    heard = await listening(server)
    await make_idle(server, 2)
    whole = await client.create_job(new_job())
    await asyncio.wait_for(heard.get(), 5)
    # Too long for its NOTIFY: left for the fetch, which reads it.
    long = await client.create_job(new_job(f'["{"x" * 9000}"]'))
    await asyncio.wait_for(heard.get(), 5)

    assert [r.id for r in server.take_handed_jobs(SERVER, 2)] == [whole]
    assert server.take_handed_jobs(SERVER, 2) == []
    assert [
        r.id for r in await server.fetch(SERVER, ["default"], 2, now())
    ] == [long]


async def test_a_server_that_ends_hand_offs_gets_its_untaken_jobs_back(
    pair: tuple[PostgresStorage, PostgresStorage], admin: Admin
) -> None:
    server, client = pair
    heard = await listening(server)
    await make_idle(server, 3)
    handed = [await client.create_job(new_job()) for _ in range(2)]
    for _ in handed:
        await asyncio.wait_for(heard.get(), 5)

    untaken = await server.end_handoffs(SERVER)

    assert [record.id for record in untaken] == handed
    assert idle(admin) == []
    later = await client.create_job(new_job())
    assert admin("SELECT state FROM jobs WHERE id = %s", later) == [
        ("enqueued",)
    ]
    assert server.take_handed_jobs(SERVER, 3) == []


async def test_a_server_whose_process_is_gone_is_handed_nothing(
    postgres_storage_url: str,
    pair: tuple[PostgresStorage, PostgresStorage],
    admin: Admin,
) -> None:
    _, client = pair
    gone = open_storage(postgres_storage_url)
    assert isinstance(gone, PostgresStorage)
    await announce(gone)
    await gone.fetch(SERVER, ["default"], 2, now())
    # As a kill -9 ends it: its connections close, and nothing else
    # changes (its workers are still marked idle, its heartbeat is new).
    await gone.close()
    assert idle(admin) == [0, 1]

    job_id = await client.create_job(new_job())

    assert admin("SELECT state FROM jobs WHERE id = %s", job_id) == [
        ("enqueued",)
    ]


@pytest.mark.parametrize("pause", [0.0, 60.0])
async def test_an_enqueue_that_hands_nothing_off_pauses_the_look(
    pair: tuple[PostgresStorage, PostgresStorage],
    admin: Admin,
    monkeypatch: pytest.MonkeyPatch,
    pause: float,
) -> None:
    monkeypatch.setattr(module, "_HANDOFF_PAUSE", pause)
    server, client = pair
    await announce(server)
    # No worker is idle yet: this one goes to the queue...
    first = await client.create_job(new_job())
    (taken,) = await server.fetch(SERVER, ["default"], 2, now())
    assert taken.id == first
    assert idle(admin) == [0]

    # ... and the next looks for an idle worker again only after the
    # pause.
    second = await client.create_job(new_job())

    handed = pause == 0.0
    assert admin("SELECT state FROM jobs WHERE id = %s", second) == [
        ("processing" if handed else "enqueued",)
    ]


async def test_only_the_storage_of_the_server_keeps_the_jobs_handed_to_it(
    pair: tuple[PostgresStorage, PostgresStorage],
    postgres_storage_url: str,
) -> None:
    server, client = pair
    bystander = open_storage(postgres_storage_url)
    assert isinstance(bystander, PostgresStorage)
    try:
        # A third process listening, as any other server does.
        heard = await listening(bystander)
        await announce(server)
        await server.fetch(SERVER, ["default"], 2, now())

        await client.create_job(new_job())
        await asyncio.wait_for(heard.get(), 5)

        # Neither the enqueuing storage nor the bystander runs the
        # server: they must not keep its jobs (nothing would take them).
        assert client.take_handed_jobs(SERVER, 2) == []
        assert bystander.take_handed_jobs(SERVER, 2) == []
    finally:
        await bystander.close()


async def test_a_server_run_again_is_not_given_jobs_handed_to_its_last_run(
    pair: tuple[PostgresStorage, PostgresStorage],
) -> None:
    server, client = pair
    heard = await listening(server)
    await make_idle(server, 1)
    job_id = await client.create_job(new_job())
    # Heard only after the stopping server had taken its hand-offs back.
    await asyncio.wait_for(heard.get(), 5)
    await server.remove_server(SERVER)
    assert await client.recover_dead_servers(now(), 15, "gone") == [job_id]

    await announce(server)

    assert server.take_handed_jobs(SERVER, 1) == []
    assert await server.fetch(SERVER, ["default"], 1, now()) != []


async def test_a_fetch_whose_handed_jobs_are_gone_takes_from_the_queue(
    pair: tuple[PostgresStorage, PostgresStorage],
) -> None:
    server, client = pair
    heard = await listening(server)
    await make_idle(server, 2)
    # Too long for the NOTIFY: the server reads the job at its fetch.
    handed = await client.create_job(new_job(f'["{"x" * 9000}"]'))
    await asyncio.wait_for(heard.get(), 5)
    queued = await client.create_jobs([new_job(), new_job()])
    deleted = StateChange(
        job_id=handed,
        to_state=JobState.DELETED,
        from_states=frozenset({JobState.PROCESSING}),
        reason="deleted by a user",
        at=now(),
    )
    await client.apply_changes([deleted])

    # A server stopping once a fetch finds nothing (until empty) would
    # stop here with a job waiting.
    fetched = await server.fetch(SERVER, ["default"], 2, now())

    assert [record.id for record in fetched] == queued


@pytest.mark.parametrize("deleted_by", ["another process", "the same"])
async def test_a_job_deleted_before_its_server_takes_it_is_not_given_to_it(
    pair: tuple[PostgresStorage, PostgresStorage], deleted_by: str
) -> None:
    server, client = pair
    heard = await listening(server)
    await make_idle(server, 1)
    job_id = await client.create_job(new_job())
    await asyncio.wait_for(heard.get(), 5)
    deleted = StateChange(
        job_id=job_id,
        to_state=JobState.DELETED,
        from_states=frozenset({JobState.PROCESSING}),
        reason="deleted by a user",
        at=now(),
    )

    deleter = client if deleted_by == "another process" else server
    await deleter.apply_changes([deleted])
    assert await asyncio.wait_for(heard.get(), 5) == JobsAborted(
        frozenset({job_id})
    )

    assert server.take_handed_jobs(SERVER, 1) == []


async def test_a_fetch_that_takes_its_limit_in_jobs_with_a_mutex_takes_no_more(
    pair: tuple[PostgresStorage, PostgresStorage], admin: Admin
) -> None:
    server, client = pair
    await announce(server)
    await client.create_jobs(
        [
            dataclasses.replace(new_job(), mutex=f"m{i}", mutex_limit=1)
            for i in range(2)
        ]
    )

    taken = await server.fetch(SERVER, ["default"], 2, now())

    assert len(taken) == 2
    assert idle(admin) == []


async def test_no_worker_is_marked_idle_while_hand_offs_cannot_be_heard(
    pair: tuple[PostgresStorage, PostgresStorage], admin: Admin
) -> None:
    server, _ = pair
    await listening(server)
    await announce(server)
    # The listening connection is down (as while it reconnects): a job
    # handed over now would wait for the reconcile loop.
    await server._hub.stop()

    await server.fetch(SERVER, ["default"], 2, now())
    assert idle(admin) == []

    await server.wait_listening()
    await server.fetch(SERVER, ["default"], 2, now())
    assert idle(admin) == [0, 1]
