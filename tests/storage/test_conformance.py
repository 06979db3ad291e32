"""The storage conformance suite: what every backend must do.

Written only against :class:`backburner.storage.Storage`; the ``storage``
fixture (conftest.py) runs it on each backend.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from datetime import UTC, datetime, timedelta

import pytest

from backburner.jobs import Client, JobNotFoundError
from backburner.storage import (
    ContinuationLink,
    JobsAborted,
    JobsEnqueued,
    JobState,
    MissingParentError,
    NewContinuation,
    NewJob,
    Notification,
    RecurringDefinition,
    RecurringFiring,
    RecurringRecord,
    ServerInfo,
    StateChange,
    Storage,
    StorageError,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
S = JobState
ALL = frozenset(JobState)
FINAL = frozenset({S.SUCCEEDED, S.FAILED, S.DELETED})


def new_job(
    queue: str = "default",
    state: JobState = S.ENQUEUED,
    *,
    scheduled_at: datetime | None = None,
    function: str = "app.jobs:send",
    arguments: str = '{"args":[],"kwargs":{}}',
    parameters: dict[str, str] | None = None,
    at: datetime = T0,
) -> NewJob:
    return NewJob(
        function=function,
        arguments=arguments,
        queue=queue,
        state=state,
        reason=state.value,
        created_at=at,
        scheduled_at=scheduled_at,
        timeout=2.5,
        parameters=parameters or {},
    )


def change(
    job_id: int,
    to_state: JobState,
    from_states: frozenset[JobState] = ALL,
    *,
    at: datetime = T0,
    **kwargs: object,
) -> StateChange:
    return StateChange(
        job_id=job_id,
        to_state=to_state,
        from_states=from_states,
        reason=f"to {to_state.value}",
        at=at,
        **kwargs,  # type: ignore[arg-type]
    )


async def announce(storage: Storage, name: str, at: datetime = T0) -> None:
    await storage.announce_server(
        ServerInfo(
            name=name,
            queues=("default",),
            workers=4,
            started_at=at,
            heartbeat_at=at,
        )
    )


async def counts_by_state(storage: Storage) -> dict[tuple[str, str], int]:
    return {(c.state.value, c.queue): c.count for c in await storage.counts()}


async def actual_counts(storage: Storage) -> dict[tuple[str, str], int]:
    found: dict[tuple[str, str], int] = {}
    for record in await storage.list_jobs(limit=10_000):
        key = (record.state.value, record.queue)
        found[key] = found.get(key, 0) + 1
    return found


# -- schema ----------------------------------------------------------------


async def test_migrating_twice_applies_nothing_the_second_time(
    storage: Storage,
) -> None:
    assert await storage.migrate() == []


# -- creating jobs -----------------------------------------------------------


async def test_created_jobs_get_increasing_ids_in_order(
    storage: Storage,
) -> None:
    ids = await storage.create_jobs([new_job(), new_job("mail"), new_job()])

    assert ids == sorted(ids)
    assert len(set(ids)) == 3


async def test_a_created_job_reads_back_with_every_field(
    storage: Storage,
) -> None:
    job_id = await storage.create_job(
        new_job("mail", function="app.mail:send_ü", arguments='{"a":"é"}')
    )

    record = await storage.get_job(job_id)

    assert record is not None
    assert record.function == "app.mail:send_ü"
    assert record.arguments == '{"a":"é"}'
    assert record.queue == "mail"
    assert record.state is S.ENQUEUED
    assert record.attempt == 0
    assert record.created_at == T0
    assert record.timeout == 2.5
    assert record.server is None


def keeping(keep: bool | None, **kwargs: object) -> NewJob:
    return dataclasses.replace(new_job(), keep_result=keep, **kwargs)  # type: ignore[arg-type]


async def test_keep_result_reads_back_as_created_on_every_path(
    storage: Storage,
) -> None:
    choices = (None, True, False)
    # One job at a time and several at once take different statements.
    alone = [await storage.create_job(keeping(keep)) for keep in choices]
    together = await storage.create_jobs([keeping(keep) for keep in choices])
    (guarded,) = await storage.create_jobs([keeping(False, mutex="m")])
    (child,) = await storage.create_continuations(
        [NewContinuation(alone[0], awaiting(keep_result=False), FINAL)]
    )
    expected = {
        **dict(zip(alone, choices, strict=True)),
        **dict(zip(together, choices, strict=True)),
        guarded: False,
        child: False,
    }

    for job_id, keep in expected.items():
        record = await storage.get_job(job_id)
        assert record is not None
        assert record.keep_result is keep
    listed = await storage.list_jobs()
    assert {r.id: r.keep_result for r in listed} == expected
    await announce(storage, "host:1")
    fetched = await storage.fetch("host:1", ["default"], 20, T0)
    del expected[child]  # awaiting: not on a queue
    assert {r.id: r.keep_result for r in fetched} == expected


async def test_a_created_job_has_one_history_entry(storage: Storage) -> None:
    job_id = await storage.create_job(new_job())

    history = await storage.get_history(job_id)

    assert [(h.state, h.at) for h in history] == [(S.ENQUEUED, T0)]


async def test_a_scheduled_job_without_a_time_is_refused_unwritten(
    storage: Storage,
) -> None:
    with pytest.raises(StorageError):
        await storage.create_jobs([new_job(), new_job(state=S.SCHEDULED)])

    assert await storage.list_jobs() == []
    assert await storage.counts() == []


async def test_an_unknown_job_reads_as_none(storage: Storage) -> None:
    assert await storage.get_job(12345) is None
    assert await storage.get_history(12345) == []


# -- fetching --------------------------------------------------------------


async def test_fetch_moves_jobs_to_processing_for_the_server(
    storage: Storage,
) -> None:
    await announce(storage, "host:1")
    job_id = await storage.create_job(new_job())
    before = await storage.get_job(job_id)

    (fetched,) = await storage.fetch("host:1", ["default"], 10, T0)

    assert before is not None
    assert fetched.id == job_id
    assert fetched.state is S.PROCESSING
    assert fetched.server == "host:1"
    assert fetched.attempt == 1
    assert fetched.version > before.version
    history = await storage.get_history(job_id)
    assert [h.state for h in history] == [S.ENQUEUED, S.PROCESSING]


async def test_fetch_takes_no_more_than_the_limit(storage: Storage) -> None:
    await announce(storage, "host:1")
    await storage.create_jobs([new_job() for _ in range(5)])

    fetched = await storage.fetch("host:1", ["default"], 3, T0)

    assert len(fetched) == 3


async def test_fetch_drains_queues_in_the_order_given_oldest_first(
    storage: Storage,
) -> None:
    await announce(storage, "host:1")
    low1, high1, low2, high2 = await storage.create_jobs(
        [new_job("low"), new_job("high"), new_job("low"), new_job("high")]
    )

    first = await storage.fetch("host:1", ["high", "low"], 3, T0)
    rest = await storage.fetch("host:1", ["high", "low"], 3, T0)

    assert [r.id for r in first] == [high1, high2, low1]
    assert [r.id for r in rest] == [low2]


async def test_fetch_ignores_queues_not_asked_for(storage: Storage) -> None:
    await announce(storage, "host:1")
    await storage.create_job(new_job("other"))

    assert await storage.fetch("host:1", ["default"], 10, T0) == []


async def test_fetch_gives_nothing_to_an_unregistered_server(
    storage: Storage,
) -> None:
    await storage.create_job(new_job())

    assert await storage.fetch("ghost:1", ["default"], 10, T0) == []


async def test_concurrent_fetches_hand_each_job_to_one_server(
    storage: Storage,
) -> None:
    await announce(storage, "a:1")
    await announce(storage, "b:1")
    ids = await storage.create_jobs([new_job() for _ in range(60)])

    async def drain(server: str) -> list[int]:
        taken: list[int] = []
        while batch := await storage.fetch(server, ["default"], 7, T0):
            taken.extend(r.id for r in batch)
        return taken

    a, b = await asyncio.gather(drain("a:1"), drain("b:1"))

    assert sorted(a + b) == ids


async def test_apply_changes_and_fetch_writes_outcomes_then_fetches(
    storage: Storage,
) -> None:
    await announce(storage, "host:1")
    first, second, waiting = await storage.create_jobs(
        [new_job(), new_job(), new_job()]
    )
    one, two = await storage.fetch("host:1", ["default"], 2, T0)
    done = change(
        one.id,
        S.SUCCEEDED,
        frozenset({S.PROCESSING}),
        expected_version=one.version,
        from_worker=True,
    )
    back = change(
        two.id,
        S.ENQUEUED,
        frozenset({S.PROCESSING}),
        expected_version=two.version,
        from_worker=True,
    )
    stale = change(
        one.id, S.FAILED, frozenset({S.PROCESSING}), expected_version=1
    )

    outcomes, fetched = await storage.apply_changes_and_fetch(
        [done, back, stale], "host:1", ["default"], 5, T0
    )

    assert [o.applied for o in outcomes] == [True, True, False]
    # The job put back by the changes is fetched by the same call.
    assert [job.id for job in fetched] == [waiting, second]
    assert (await storage.get_job(first)).state is S.SUCCEEDED  # type: ignore[union-attr]
    assert {job.state for job in fetched} == {S.PROCESSING}


async def test_apply_changes_and_fetch_with_no_changes_is_a_fetch(
    storage: Storage,
) -> None:
    await announce(storage, "host:1")
    job_id = await storage.create_job(new_job())

    outcomes, fetched = await storage.apply_changes_and_fetch(
        [], "host:1", ["default"], 5, T0
    )

    assert outcomes == []
    assert [job.id for job in fetched] == [job_id]


async def test_apply_changes_and_fetch_refuses_bad_changes_unwritten(
    storage: Storage,
) -> None:
    await announce(storage, "host:1")
    first, second = await storage.create_jobs([new_job(), new_job()])
    bad = change(first, S.PROCESSING)

    with pytest.raises(StorageError):
        await storage.apply_changes_and_fetch(
            [change(second, S.DELETED), bad], "host:1", ["default"], 5, T0
        )

    states = await storage.job_states([first, second])
    assert {state for state, _ in states.values()} == {S.ENQUEUED}


async def test_apply_changes_and_fetch_for_an_unregistered_server_applies(
    storage: Storage,
) -> None:
    first, second = await storage.create_jobs([new_job(), new_job()])

    outcomes, fetched = await storage.apply_changes_and_fetch(
        [change(first, S.DELETED)], "host:9", ["default"], 5, T0
    )

    assert [o.applied for o in outcomes] == [True]
    assert fetched == []
    assert (await storage.get_job(second)).state is S.ENQUEUED  # type: ignore[union-attr]


async def test_requeued_jobs_go_to_the_back_of_their_queue(
    storage: Storage,
) -> None:
    await announce(storage, "host:1")
    first, second = await storage.create_jobs([new_job(), new_job()])
    await storage.apply_change(change(first, S.DELETED))
    await storage.apply_change(change(first, S.ENQUEUED))

    fetched = await storage.fetch("host:1", ["default"], 10, T0)

    assert [r.id for r in fetched] == [second, first]


# -- state changes -----------------------------------------------------------


async def test_a_change_is_applied_when_the_job_is_in_an_allowed_state(
    storage: Storage,
) -> None:
    job_id = await storage.create_job(new_job())

    outcome = await storage.apply_change(
        change(job_id, S.DELETED, frozenset({S.ENQUEUED}))
    )

    assert outcome.applied
    assert outcome.previous_state is S.ENQUEUED
    record = await storage.get_job(job_id)
    assert record is not None
    assert record.state is S.DELETED
    assert record.reason == "to deleted"


async def test_a_change_from_the_wrong_state_leaves_the_job_intact(
    storage: Storage,
) -> None:
    job_id = await storage.create_job(new_job())
    before = await storage.get_job(job_id)

    outcome = await storage.apply_change(
        change(job_id, S.SUCCEEDED, frozenset({S.PROCESSING}))
    )

    assert not outcome.applied
    assert outcome.previous_state is S.ENQUEUED
    assert await storage.get_job(job_id) == before
    assert len(await storage.get_history(job_id)) == 1
    assert await counts_by_state(storage) == {("enqueued", "default"): 1}


async def test_a_change_with_a_stale_version_is_refused(
    storage: Storage,
) -> None:
    await announce(storage, "host:1")
    job_id = await storage.create_job(new_job())
    (fetched,) = await storage.fetch("host:1", ["default"], 1, T0)
    await storage.apply_change(change(job_id, S.ENQUEUED))
    (again,) = await storage.fetch("host:1", ["default"], 1, T0)

    stale = await storage.apply_change(
        change(job_id, S.SUCCEEDED, expected_version=fetched.version)
    )
    fresh = await storage.apply_change(
        change(job_id, S.SUCCEEDED, expected_version=again.version)
    )

    assert not stale.applied
    assert stale.previous_state is S.PROCESSING
    assert fresh.applied


async def test_a_change_to_a_missing_job_reports_no_previous_state(
    storage: Storage,
) -> None:
    outcome = await storage.apply_change(change(999, S.DELETED))

    assert not outcome.applied
    assert outcome.previous_state is None


async def test_one_refused_change_does_not_stop_the_others_in_a_batch(
    storage: Storage,
) -> None:
    a, b = await storage.create_jobs([new_job(), new_job()])

    outcomes = await storage.apply_changes(
        [
            change(a, S.DELETED, frozenset({S.FAILED})),
            change(b, S.DELETED, frozenset({S.ENQUEUED})),
        ]
    )

    assert [o.applied for o in outcomes] == [False, True]


async def test_moving_to_processing_outside_fetch_is_refused(
    storage: Storage,
) -> None:
    job_id = await storage.create_job(new_job())

    with pytest.raises(StorageError):
        await storage.apply_change(change(job_id, S.PROCESSING))

    record = await storage.get_job(job_id)
    assert record is not None
    assert record.state is S.ENQUEUED


async def test_a_change_to_scheduled_keeps_its_time(storage: Storage) -> None:
    job_id = await storage.create_job(new_job())
    later = T0 + timedelta(minutes=5)

    await storage.apply_change(change(job_id, S.SCHEDULED, scheduled_at=later))

    record = await storage.get_job(job_id)
    assert record is not None
    assert record.scheduled_at == later


async def test_a_change_to_scheduled_without_a_time_is_refused(
    storage: Storage,
) -> None:
    job_id = await storage.create_job(new_job())

    with pytest.raises(StorageError):
        await storage.apply_change(change(job_id, S.SCHEDULED))


async def test_history_records_reason_time_and_data_of_each_change(
    storage: Storage,
) -> None:
    await announce(storage, "host:1")
    job_id = await storage.create_job(new_job())
    await storage.fetch("host:1", ["default"], 1, T0)
    data = {"server": "host:1", "duration": 0.25, "exception": None}

    await storage.apply_change(
        change(job_id, S.FAILED, at=T0 + timedelta(seconds=1), data=data)
    )

    last = (await storage.get_history(job_id))[-1]
    assert last.state is S.FAILED
    assert last.reason == "to failed"
    assert last.at == T0 + timedelta(seconds=1)
    assert last.data == data


async def test_reset_attempt_starts_the_count_again(storage: Storage) -> None:
    await announce(storage, "host:1")
    job_id = await storage.create_job(new_job())
    await storage.fetch("host:1", ["default"], 1, T0)
    await storage.apply_change(change(job_id, S.FAILED))

    await storage.apply_change(change(job_id, S.ENQUEUED, reset_attempt=True))
    (fetched,) = await storage.fetch("host:1", ["default"], 1, T0)

    assert fetched.attempt == 1


# -- at most one queue entry -------------------------------------------------


async def test_random_changes_never_leave_two_queue_entries(
    storage: Storage,
) -> None:
    await announce(storage, "host:1")
    ids = await storage.create_jobs([new_job() for _ in range(8)])
    rng = random.Random(7)
    targets = [S.ENQUEUED, S.DELETED, S.FAILED, S.SUCCEEDED, S.SCHEDULED]

    for step in range(300):
        if rng.random() < 0.25:
            await storage.fetch("host:1", ["default"], rng.randint(1, 3), T0)
            continue
        target = rng.choice(targets)
        await storage.apply_changes(
            [
                change(
                    rng.choice(ids),
                    target,
                    frozenset(rng.sample(sorted(ALL), 4)),
                    scheduled_at=T0 if target is S.SCHEDULED else None,
                )
                for _ in range(rng.randint(1, 3))
            ]
        )
        if step % 50 == 49:
            enqueued = {
                r.id for r in await storage.list_jobs(state=S.ENQUEUED)
            }
            fetched = await storage.fetch("host:1", ["default"], 100, T0)
            fetched_ids = [r.id for r in fetched]
            assert len(fetched_ids) == len(set(fetched_ids))
            assert set(fetched_ids) == enqueued

    assert await counts_by_state(storage) == await actual_counts(storage)


async def test_concurrent_requeue_and_delete_of_a_running_job_leave_one_entry(
    storage: Storage,
) -> None:
    await announce(storage, "host:1")
    job_id = await storage.create_job(new_job())
    await storage.fetch("host:1", ["default"], 1, T0)

    await asyncio.gather(
        *(
            storage.apply_change(change(job_id, target))
            for target in [S.ENQUEUED, S.DELETED, S.ENQUEUED] * 5
        )
    )

    record = await storage.get_job(job_id)
    fetched = await storage.fetch("host:1", ["default"], 10, T0)
    assert record is not None
    assert len(fetched) == (1 if record.state is S.ENQUEUED else 0)


# -- counters --------------------------------------------------------------


async def test_counters_follow_every_kind_of_change(storage: Storage) -> None:
    await announce(storage, "host:1")
    a, b, c = await storage.create_jobs(
        [new_job(), new_job("mail"), new_job()]
    )
    await storage.create_job(
        new_job(state=S.SCHEDULED, scheduled_at=T0 - timedelta(seconds=1))
    )
    await storage.fetch("host:1", ["default"], 1, T0)
    await storage.apply_change(change(a, S.SUCCEEDED))
    await storage.apply_change(change(b, S.DELETED))
    await storage.promote_scheduled(T0, 10)

    assert await counts_by_state(storage) == {
        ("succeeded", "default"): 1,
        ("deleted", "mail"): 1,
        ("enqueued", "default"): 2,
    }
    assert c > a


# -- scheduled jobs --------------------------------------------------------


async def test_promote_enqueues_only_jobs_that_are_due(
    storage: Storage,
) -> None:
    due, later = await storage.create_jobs(
        [
            new_job(state=S.SCHEDULED, scheduled_at=T0),
            new_job(state=S.SCHEDULED, scheduled_at=T0 + timedelta(hours=1)),
        ]
    )

    moved = await storage.promote_scheduled(T0, 10)

    assert moved == 1
    due_record = await storage.get_job(due)
    later_record = await storage.get_job(later)
    assert due_record is not None
    assert later_record is not None
    assert due_record.state is S.ENQUEUED
    assert later_record.state is S.SCHEDULED


async def test_promote_respects_its_limit(storage: Storage) -> None:
    await storage.create_jobs(
        [new_job(state=S.SCHEDULED, scheduled_at=T0) for _ in range(5)]
    )

    assert await storage.promote_scheduled(T0, 2) == 2
    assert await storage.promote_scheduled(T0, 10) == 3
    assert await storage.promote_scheduled(T0, 10) == 0


# -- expiry ----------------------------------------------------------------


async def test_expire_removes_only_jobs_whose_time_has_passed(
    storage: Storage,
) -> None:
    old, young, kept = await storage.create_jobs(
        [new_job(), new_job(), new_job()]
    )
    await storage.set_parameter(old, "k", "v")
    await storage.apply_change(change(old, S.DELETED, expires_at=T0))
    await storage.apply_change(
        change(young, S.DELETED, expires_at=T0 + timedelta(days=1))
    )

    removed = await storage.expire(T0, 100)

    assert removed == 1
    assert await storage.get_job(old) is None
    assert await storage.get_history(old) == []
    assert await storage.get_parameters(old) == {}
    assert await storage.get_job(young) is not None
    assert await storage.get_job(kept) is not None
    assert await counts_by_state(storage) == {
        ("deleted", "default"): 1,
        ("enqueued", "default"): 1,
    }


async def test_leaving_an_expiring_state_cancels_the_expiry(
    storage: Storage,
) -> None:
    job_id = await storage.create_job(new_job())
    await storage.apply_change(change(job_id, S.DELETED, expires_at=T0))
    await storage.apply_change(change(job_id, S.ENQUEUED))

    assert await storage.expire(T0 + timedelta(days=2), 100) == 0
    assert await storage.get_job(job_id) is not None


# -- parameters ------------------------------------------------------------


async def test_parameters_are_set_overwritten_and_read(
    storage: Storage,
) -> None:
    job_id = await storage.create_job(new_job(parameters={"tenant": '"a"'}))

    assert await storage.set_parameter(job_id, "tenant", '"b"')
    assert await storage.set_parameter(job_id, "trace", '"t1"')

    assert await storage.get_parameters(job_id) == {
        "tenant": '"b"',
        "trace": '"t1"',
    }


async def test_a_parameter_for_a_missing_job_is_refused(
    storage: Storage,
) -> None:
    assert not await storage.set_parameter(404, "k", "v")
    assert await storage.get_parameters(404) == {}


# -- listing ---------------------------------------------------------------


async def test_listing_pages_newest_first_with_a_keyset_cursor(
    storage: Storage,
) -> None:
    ids = await storage.create_jobs([new_job() for _ in range(7)])

    first = await storage.list_jobs(limit=3)
    second = await storage.list_jobs(before=first[-1].id, limit=3)
    third = await storage.list_jobs(before=second[-1].id, limit=3)

    listed = [r.id for r in first + second + third]
    assert listed == sorted(ids, reverse=True)


async def test_listing_filters_by_state_queue_or_both(
    storage: Storage,
) -> None:
    a, b, c, d = await storage.create_jobs(
        [new_job("x"), new_job("y"), new_job("x"), new_job("y")]
    )
    await storage.apply_change(change(a, S.DELETED))
    await storage.apply_change(change(d, S.DELETED))

    by_state = await storage.list_jobs(state=S.DELETED)
    by_queue = await storage.list_jobs(queue="x")
    by_both = await storage.list_jobs(state=S.ENQUEUED, queue="y")

    assert [r.id for r in by_state] == [d, a]
    assert [r.id for r in by_queue] == [c, a]
    assert [r.id for r in by_both] == [b]


async def test_listing_filters_by_exact_function_with_state_and_queue(
    storage: Storage,
) -> None:
    send, mail, other, send_y, deleted = await storage.create_jobs(
        [
            new_job("x", function="app.jobs:send"),
            new_job("x", function="app.jobs:send_mail"),
            new_job("x", function="app.jobs:Sender.send"),
            new_job("y", function="app.jobs:send"),
            new_job("x", function="app.jobs:send"),
        ]
    )
    await storage.apply_change(change(deleted, S.DELETED))

    alone = await storage.list_jobs(function="app.jobs:send")
    by_state = await storage.list_jobs(
        state=S.ENQUEUED, function="app.jobs:send"
    )
    by_queue = await storage.list_jobs(queue="x", function="app.jobs:send")
    by_all = await storage.list_jobs(
        state=S.ENQUEUED, queue="y", function="app.jobs:send"
    )
    paged = await storage.list_jobs(
        function="app.jobs:send", before=send_y, limit=1
    )
    unknown = await storage.list_jobs(function="app.jobs:SEND")

    assert [r.id for r in alone] == [deleted, send_y, send]
    assert [r.id for r in by_state] == [send_y, send]
    assert [r.id for r in by_queue] == [deleted, send]
    assert [r.id for r in by_all] == [send_y]
    assert [r.id for r in paged] == [send]
    assert unknown == []
    assert {mail, other}.isdisjoint(r.id for r in alone)


async def test_job_states_reports_state_and_version_of_existing_jobs(
    storage: Storage,
) -> None:
    a, b = await storage.create_jobs([new_job(), new_job()])
    await storage.apply_change(change(b, S.DELETED))

    found = await storage.job_states([a, b, 777])

    assert set(found) == {a, b}
    assert found[a][0] is S.ENQUEUED
    assert found[b][0] is S.DELETED
    assert found[b][1] > found[a][1]


# -- servers ---------------------------------------------------------------


async def test_an_announced_server_is_listed_and_can_heartbeat(
    storage: Storage,
) -> None:
    await announce(storage, "host:1")

    alive = await storage.heartbeat("host:1", T0 + timedelta(seconds=5))

    assert alive
    (server,) = await storage.list_servers()
    assert server.name == "host:1"
    assert server.queues == ("default",)
    assert server.workers == 4
    assert server.heartbeat_at == T0 + timedelta(seconds=5)


async def test_a_removed_server_is_gone_and_its_heartbeat_says_so(
    storage: Storage,
) -> None:
    await announce(storage, "host:1")

    await storage.remove_server("host:1")

    assert await storage.list_servers() == []
    assert not await storage.heartbeat("host:1", T0)


async def test_recovery_requeues_jobs_of_silent_servers_only(
    storage: Storage,
) -> None:
    await announce(storage, "dead:1", T0)
    await announce(storage, "alive:1", T0)
    ids = await storage.create_jobs([new_job() for _ in range(4)])
    dead_jobs = await storage.fetch("dead:1", ["default"], 2, T0)
    alive_jobs = await storage.fetch("alive:1", ["default"], 2, T0)
    later = T0 + timedelta(seconds=30)
    await storage.heartbeat("alive:1", later)

    recovered = await storage.recover_dead_servers(later, 10, "dead server")

    assert sorted(recovered) == sorted(r.id for r in dead_jobs)
    assert [s.name for s in await storage.list_servers()] == ["alive:1"]
    assert not await storage.heartbeat("dead:1", later)
    for record in dead_jobs:
        current = await storage.get_job(record.id)
        assert current is not None
        assert current.state is S.ENQUEUED
        assert current.reason == "dead server"
    for record in alive_jobs:
        current = await storage.get_job(record.id)
        assert current is not None
        assert current.state is S.PROCESSING
    assert len(ids) == 4


async def test_recovery_requeues_processing_jobs_of_unregistered_servers(
    storage: Storage,
) -> None:
    await announce(storage, "gone:1")
    job_id = await storage.create_job(new_job())
    await storage.fetch("gone:1", ["default"], 1, T0)
    await storage.remove_server("gone:1")

    recovered = await storage.recover_dead_servers(T0, 10, "orphaned")

    assert recovered == [job_id]


async def test_recovered_jobs_go_back_ahead_of_their_queue_in_id_order(
    storage: Storage,
) -> None:
    await announce(storage, "dead:1", T0)
    await storage.create_jobs([new_job() for _ in range(3)])
    held = [r.id for r in await storage.fetch("dead:1", ["default"], 3, T0)]
    backlog = await storage.create_jobs([new_job() for _ in range(4)])
    await announce(storage, "alive:1", T0)
    later = T0 + timedelta(seconds=30)
    await storage.heartbeat("alive:1", later)
    await storage.recover_dead_servers(later, 10, "dead server")
    newer = await storage.create_job(new_job())

    fetched = await storage.fetch("alive:1", ["default"], 8, later)

    assert [r.id for r in fetched] == sorted(held) + backlog + [newer]


async def test_held_jobs_are_a_servers_own_jobs_in_processing(
    storage: Storage,
) -> None:
    await announce(storage, "host:1")
    await announce(storage, "host:2")
    await storage.create_jobs([new_job() for _ in range(5)])
    mine = await storage.fetch("host:1", ["default"], 3, T0)
    later = T0 + timedelta(seconds=7)
    theirs = await storage.fetch("host:2", ["default"], 1, later)
    done = mine[0]
    await storage.apply_change(
        change(
            done.id,
            S.SUCCEEDED,
            frozenset({S.PROCESSING}),
            expected_version=done.version,
            from_worker=True,
        )
    )

    held = await storage.held_jobs("host:1")

    assert held == {r.id: (r.version, T0) for r in mine[1:]}
    assert await storage.held_jobs("host:2") == {
        theirs[0].id: (theirs[0].version, later)
    }
    assert await storage.held_jobs("host:3") == {}


async def test_a_held_job_put_back_on_its_version_is_no_longer_held(
    storage: Storage,
) -> None:
    await announce(storage, "host:1")
    await storage.create_jobs([new_job(), new_job()])
    a, b = await storage.fetch("host:1", ["default"], 2, T0)
    held = await storage.held_jobs("host:1")
    back, stale = (
        change(
            record.id,
            S.ENQUEUED,
            frozenset({S.PROCESSING}),
            expected_version=held[record.id][0] - offset,
        )
        # A stale version (the job moved on meanwhile) is refused.
        for record, offset in ((a, 0), (b, 1))
    )

    outcomes = await storage.apply_changes([back, stale])

    assert [o.applied for o in outcomes] == [True, False]
    assert await storage.held_jobs("host:1") == {b.id: (b.version, T0)}
    assert (await counts_by_state(storage))[("enqueued", "default")] == 1
    (again,) = await storage.fetch("host:1", ["default"], 1, T0)
    assert again.id == a.id


# -- notifications ---------------------------------------------------------


async def test_listeners_hear_enqueued_and_aborted_but_not_worker_outcomes(
    storage: Storage,
) -> None:
    heard: list[Notification] = []
    unsubscribe = storage.subscribe(heard.append)
    await announce(storage, "host:1")
    a, b = await storage.create_jobs([new_job("mail"), new_job("mail")])
    await storage.fetch("host:1", ["mail"], 2, T0)

    await storage.apply_change(change(a, S.SUCCEEDED, from_worker=True))
    await storage.apply_change(change(b, S.DELETED))
    unsubscribe()
    await storage.create_job(new_job())

    assert heard == [
        JobsEnqueued(frozenset({"mail"})),
        JobsAborted(frozenset({b})),
    ]


async def test_a_closed_storage_refuses_work(storage: Storage) -> None:
    await storage.close()

    with pytest.raises(StorageError):
        await storage.get_job(1)


# -- recurring jobs ----------------------------------------------------------


def definition(
    recurring_id: str = "report",
    *,
    cron: str = "0 3 * * *",
    time_zone: str = "UTC",
    queue: str = "default",
    function: str = "app.jobs:report",
) -> RecurringDefinition:
    return RecurringDefinition(
        id=recurring_id,
        function=function,
        arguments='{"args":[1],"kwargs":{}}',
        queue=queue,
        cron=cron,
        time_zone=time_zone,
        missed="run_once",
        timeout=30.0,
    )


def firing(
    record: RecurringRecord,
    jobs: int = 1,
    *,
    next_run_at: datetime | None = T0 + timedelta(days=1),
    at: datetime = T0,
    **kwargs: object,
) -> RecurringFiring:
    return RecurringFiring(
        recurring_id=record.id,
        expected_version=record.version,
        at=at,
        jobs=[new_job(function=record.function) for _ in range(jobs)],
        next_run_at=next_run_at,
        last_run_at=record.next_run_at if jobs else None,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_a_saved_recurring_job_reads_back_with_every_field(
    storage: Storage,
) -> None:
    saved = await storage.save_recurring(definition(), T0, T0)

    assert saved == await storage.get_recurring("report")
    assert (saved.id, saved.function, saved.cron, saved.time_zone) == (
        "report",
        "app.jobs:report",
        "0 3 * * *",
        "UTC",
    )
    assert saved.arguments == '{"args":[1],"kwargs":{}}'
    assert (saved.missed, saved.timeout, saved.paused) == (
        "run_once",
        30.0,
        False,
    )
    assert (saved.next_run_at, saved.last_run_at, saved.last_job_id) == (
        T0,
        None,
        None,
    )
    assert (saved.error, saved.failures, saved.created_at) == (None, 0, T0)
    assert await storage.get_recurring("other") is None


async def test_recurring_jobs_are_listed_by_id(
    storage: Storage,
) -> None:
    for name in ("b", "c", "a"):
        await storage.save_recurring(definition(name), T0, T0)

    assert [r.id for r in await storage.list_recurring()] == [
        "a",
        "b",
        "c",
    ]


async def test_an_update_keeps_the_next_occurrence_of_an_unchanged_schedule(
    storage: Storage,
) -> None:
    first = await storage.save_recurring(definition(), T0, T0)
    later = T0 + timedelta(hours=1)

    same = await storage.save_recurring(definition(queue="mail"), later, later)
    moved = await storage.save_recurring(
        definition(cron="0 4 * * *"), later, later
    )

    assert (same.next_run_at, same.queue) == (T0, "mail")
    assert same.version > first.version
    assert (moved.next_run_at, moved.cron) == (later, "0 4 * * *")
    assert moved.created_at == T0
    assert moved.updated_at == later


async def test_a_firing_creates_jobs_and_moves_the_schedule_in_one_step(
    storage: Storage,
) -> None:
    record = await storage.save_recurring(definition(), T0, T0)

    ids = await storage.fire_recurring(firing(record, 2))

    assert ids is not None
    assert len(ids) == 2
    jobs = [await storage.get_job(job_id) for job_id in ids]
    assert {job.state for job in jobs if job} == {S.ENQUEUED}
    after = await storage.get_recurring("report")
    assert after is not None
    assert after.next_run_at == T0 + timedelta(days=1)
    assert (after.last_run_at, after.last_job_id) == (T0, ids[-1])
    assert after.last_job_state is S.ENQUEUED
    assert after.version == record.version + 1
    assert await counts_by_state(storage) == {("enqueued", "default"): 2}


async def test_a_stale_firing_writes_nothing(
    storage: Storage,
) -> None:
    record = await storage.save_recurring(definition(), T0, T0)
    assert await storage.fire_recurring(firing(record)) is not None

    again = await storage.fire_recurring(
        firing(record, next_run_at=T0 + timedelta(days=2))
    )

    assert again is None
    assert len(await storage.list_jobs()) == 1
    after = await storage.get_recurring("report")
    assert after is not None
    assert after.next_run_at == T0 + timedelta(days=1)
    assert await storage.fire_recurring(firing(definition_record())) is None


def definition_record() -> RecurringRecord:
    """A record of a recurring job that was never saved."""
    return RecurringRecord(
        id="ghost",
        function="app.jobs:report",
        arguments="{}",
        queue="default",
        cron="* * * * *",
        time_zone="UTC",
        missed="run_once",
        timeout=None,
        paused=False,
        next_run_at=T0,
        last_run_at=None,
        last_job_id=None,
        last_job_state=None,
        error=None,
        failures=0,
        version=1,
        created_at=T0,
        updated_at=T0,
    )


async def test_racing_firings_of_one_occurrence_create_one_job(
    storage: Storage,
) -> None:
    record = await storage.save_recurring(definition(), T0, T0)

    results = await asyncio.gather(
        *(storage.fire_recurring(firing(record)) for _ in range(8))
    )

    assert sum(result is not None for result in results) == 1
    assert len(await storage.list_jobs()) == 1


async def test_a_firing_with_a_bad_job_writes_nothing(
    storage: Storage,
) -> None:
    record = await storage.save_recurring(definition(), T0, T0)
    bad = dataclasses.replace(
        firing(record, 2), jobs=[new_job(), new_job(state=S.PROCESSING)]
    )

    with pytest.raises(StorageError):
        await storage.fire_recurring(bad)

    assert await storage.list_jobs() == []
    assert await storage.get_recurring("report") == record


async def test_a_firing_can_record_an_error_and_stop_the_schedule(
    storage: Storage,
) -> None:
    record = await storage.save_recurring(definition(), T0, T0)

    created = await storage.fire_recurring(
        firing(record, 0, next_run_at=None, error="no module", failures=3)
    )

    assert created == []
    stopped = await storage.get_recurring("report")
    assert stopped is not None
    assert (stopped.next_run_at, stopped.error, stopped.failures) == (
        None,
        "no module",
        3,
    )
    assert await storage.next_recurring_due() is None
    assert await storage.due_recurring(T0 + timedelta(days=9), 10) == []

    fixed = await storage.save_recurring(
        definition(), T0 + timedelta(days=1), T0
    )
    assert (fixed.next_run_at, fixed.error, fixed.failures) == (
        T0 + timedelta(days=1),
        None,
        0,
    )


async def test_only_active_due_recurring_jobs_are_handed_out_earliest_first(
    storage: Storage,
) -> None:
    await storage.save_recurring(definition("late"), T0 + timedelta(2), T0)
    await storage.save_recurring(definition("early"), T0, T0)
    await storage.save_recurring(definition("future"), T0 + timedelta(9), T0)
    await storage.save_recurring(definition("paused"), T0, T0)
    await storage.pause_recurring("paused", T0)

    due = await storage.due_recurring(T0 + timedelta(days=3), 10)

    assert [r.id for r in due] == ["early", "late"]
    assert [r.id for r in await storage.due_recurring(T0, 1)] == ["early"]
    assert await storage.next_recurring_due() == T0


async def test_pause_and_resume(storage: Storage) -> None:
    await storage.save_recurring(definition(), T0, T0)
    later = T0 + timedelta(hours=5)

    assert await storage.pause_recurring("report", T0)
    paused = await storage.get_recurring("report")
    assert await storage.resume_recurring("report", later, later)
    resumed = await storage.get_recurring("report")
    assert await storage.resume_recurring("report", T0 + timedelta(9), T0)
    unchanged = await storage.get_recurring("report")

    assert paused is not None
    assert paused.paused
    assert resumed is not None
    assert (resumed.paused, resumed.next_run_at) == (False, later)
    assert unchanged == resumed
    assert not await storage.pause_recurring("other", T0)
    assert not await storage.resume_recurring("other", T0, T0)


async def test_a_paused_recurring_job_keeps_its_definition_on_update(
    storage: Storage,
) -> None:
    await storage.save_recurring(definition(), T0, T0)
    await storage.pause_recurring("report", T0)

    updated = await storage.save_recurring(definition(queue="mail"), T0, T0)

    assert (updated.paused, updated.queue) == (True, "mail")


async def test_removing_a_recurring_job_keeps_its_jobs(
    storage: Storage,
) -> None:
    record = await storage.save_recurring(definition(), T0, T0)
    ids = await storage.fire_recurring(firing(record))

    assert await storage.remove_recurring("report")
    assert not await storage.remove_recurring("report")
    assert await storage.get_recurring("report") is None
    assert [job.id for job in await storage.list_jobs()] == ids


async def test_the_last_jobs_outcome_follows_the_job(
    storage: Storage,
) -> None:
    record = await storage.save_recurring(definition(), T0, T0)
    ids = await storage.fire_recurring(firing(record))
    assert ids is not None

    await storage.apply_change(change(ids[0], S.FAILED))

    after = await storage.get_recurring("report")
    assert after is not None
    assert after.last_job_state is S.FAILED


# -- parameters of many jobs (progress) ---------------------------------------


async def test_parameters_of_many_jobs_are_set_at_once_skipping_gone_ones(
    storage: Storage,
) -> None:
    first, second = await storage.create_jobs(
        [new_job(parameters={"progress": "10"}), new_job()]
    )

    written = await storage.set_parameters(
        {
            first: {"progress": "50", "progress_message": '"half"'},
            second: {"progress": "5"},
            second + 1000: {"progress": "1"},
        }
    )

    assert written == {first, second}
    assert await storage.get_parameters(first) == {
        "progress": "50",
        "progress_message": '"half"',
    }
    assert await storage.get_parameters(second) == {"progress": "5"}
    assert await storage.get_parameters(second + 1000) == {}
    assert await storage.set_parameters({}) == set()


# -- unique keys -------------------------------------------------------------


def keyed(
    key: str | None, state: JobState = S.ENQUEUED, **kwargs: object
) -> NewJob:
    scheduled = T0 + timedelta(hours=1) if state is S.SCHEDULED else None
    return dataclasses.replace(
        new_job(state=state, scheduled_at=scheduled),
        unique_key=key,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("state", [S.ENQUEUED, S.SCHEDULED, S.PROCESSING])
async def test_a_key_held_by_an_active_job_returns_that_job(
    storage: Storage, state: JobState
) -> None:
    created = S.ENQUEUED if state is S.PROCESSING else state
    (holder,) = await storage.create_jobs([keyed("k", created)])
    if state is S.PROCESSING:
        await announce(storage, "s1")
        assert [r.id for r in await storage.fetch("s1", ["default"], 9, T0)]

    again = await storage.create_jobs([keyed("k"), keyed("other")])

    assert again[0] == holder
    assert again[1] != holder
    assert len(await storage.list_jobs()) == 2
    record = await storage.get_job(holder)
    assert record is not None
    assert record.unique_key == "k"


@pytest.mark.parametrize("final", [S.SUCCEEDED, S.FAILED, S.DELETED])
async def test_a_finished_job_releases_its_key(
    storage: Storage, final: JobState
) -> None:
    (first,) = await storage.create_jobs([keyed("k")])
    await storage.apply_changes([change(first, final)])

    (second,) = await storage.create_jobs([keyed("k")])

    assert second != first


async def test_one_call_with_a_key_twice_creates_one_job(
    storage: Storage,
) -> None:
    ids = await storage.create_jobs([keyed("k"), keyed(None), keyed("k")])

    assert ids[0] == ids[2] != ids[1]
    counts = await counts_by_state(storage)
    assert counts == {("enqueued", "default"): 2}


async def test_racing_creators_of_one_key_get_one_job(
    storage: Storage,
) -> None:
    ids = await asyncio.gather(
        *(storage.create_jobs([keyed("race")]) for _ in range(8))
    )

    assert len({job_ids[0] for job_ids in ids}) == 1
    assert len(await storage.list_jobs()) == 1


async def test_requeueing_a_job_whose_key_is_taken_is_refused(
    storage: Storage,
) -> None:
    (old,) = await storage.create_jobs([keyed("k")])
    await storage.apply_changes([change(old, S.FAILED)])
    (new,) = await storage.create_jobs([keyed("k")])

    outcome = await storage.apply_change(change(old, S.ENQUEUED))

    assert not outcome.applied
    assert outcome.previous_state is S.FAILED
    assert outcome.unique_holder == new
    record = await storage.get_job(old)
    assert record is not None
    assert record.state is S.FAILED
    # Once the holder finished, the requeue goes through.
    await storage.apply_changes([change(new, S.SUCCEEDED)])
    assert (await storage.apply_change(change(old, S.ENQUEUED))).applied


async def test_an_awaiting_job_cannot_have_a_key(storage: Storage) -> None:
    with pytest.raises(StorageError, match="unique key"):
        await storage.create_jobs([new_job(), keyed("k", S.AWAITING)])

    assert await storage.list_jobs() == []


# -- continuations -----------------------------------------------------------


def awaiting(**kwargs: object) -> NewJob:
    return dataclasses.replace(new_job(state=S.AWAITING), **kwargs)  # type: ignore[arg-type]


async def continue_on(storage: Storage, parent: int, *states: JobState) -> int:
    (job_id,) = await storage.create_continuations(
        [NewContinuation(parent, awaiting(), frozenset(states))]
    )
    return job_id


async def state_of(storage: Storage, job_id: int) -> JobState:
    record = await storage.get_job(job_id)
    assert record is not None
    return record.state


async def test_a_continuation_waits_then_is_enqueued_when_its_parent_succeeds(
    storage: Storage,
) -> None:
    (parent,) = await storage.create_jobs([new_job()])
    child = await continue_on(storage, parent, S.SUCCEEDED)
    assert await state_of(storage, child) is S.AWAITING
    await announce(storage, "s1")
    fetched = await storage.fetch("s1", ["default"], 9, T0)
    assert [r.id for r in fetched] == [parent]
    heard: list[Notification] = []
    storage.subscribe(heard.append)

    (outcome,) = await storage.apply_changes(
        [
            change(
                parent,
                S.SUCCEEDED,
                frozenset({S.PROCESSING}),
                from_worker=True,
                expires_at=T0 + timedelta(days=1),
            )
        ]
    )

    assert outcome.applied
    assert await state_of(storage, child) is S.ENQUEUED
    history = await storage.get_history(child)
    assert [h.state for h in history] == [S.AWAITING, S.ENQUEUED]
    assert history[-1].reason == f"parent job {parent} succeeded"
    assert history[-1].data == {"parent": parent}
    assert [r.id for r in await storage.fetch("s1", ["default"], 9, T0)] == [
        child
    ]
    assert JobsEnqueued(frozenset({"default"})) in heard
    assert await counts_by_state(storage) == await actual_counts(storage)


async def test_a_failure_fires_failure_continuations_and_keeps_the_others(
    storage: Storage,
) -> None:
    (parent,) = await storage.create_jobs([new_job()])
    on_failure = await continue_on(storage, parent, S.FAILED)
    on_success = await continue_on(storage, parent, S.SUCCEEDED)
    on_any = await continue_on(storage, parent, *FINAL)

    await storage.apply_changes([change(parent, S.FAILED)])

    assert await state_of(storage, on_failure) is S.ENQUEUED
    assert await state_of(storage, on_any) is S.ENQUEUED
    assert await state_of(storage, on_success) is S.AWAITING
    # Requeued, then succeeding, the parent fires the waiting one; the
    # ones that ran already are re-armed by the requeue.
    await storage.apply_changes([change(on_failure, S.SUCCEEDED)])
    await storage.apply_changes([change(parent, S.ENQUEUED)])
    assert await state_of(storage, on_failure) is S.AWAITING
    assert await state_of(storage, on_any) is S.ENQUEUED  # Still queued.
    await storage.apply_changes([change(parent, S.SUCCEEDED)])
    assert await state_of(storage, on_success) is S.ENQUEUED
    assert await state_of(storage, on_failure) is S.DELETED
    assert await counts_by_state(storage) == await actual_counts(storage)


async def test_deleting_a_parent_deletes_success_continuations_in_cascade(
    storage: Storage,
) -> None:
    (parent,) = await storage.create_jobs([new_job()])
    child = await continue_on(storage, parent, S.SUCCEEDED)
    grandchild_on_deleted = await continue_on(storage, child, S.DELETED)
    grandchild_on_success = await continue_on(storage, child, S.SUCCEEDED)
    expires = T0 + timedelta(days=1)

    await storage.apply_changes(
        [change(parent, S.DELETED, expires_at=expires)]
    )

    assert await state_of(storage, child) is S.DELETED
    record = await storage.get_job(child)
    assert record is not None
    assert record.expires_at == expires
    assert "waited for succeeded" in record.reason
    assert await state_of(storage, grandchild_on_deleted) is S.ENQUEUED
    assert await state_of(storage, grandchild_on_success) is S.DELETED


async def test_requeueing_a_parent_re_arms_the_whole_chain(
    storage: Storage,
) -> None:
    (parent,) = await storage.create_jobs([new_job()])
    child = await continue_on(storage, parent, S.SUCCEEDED)
    grandchild = await continue_on(storage, child, S.SUCCEEDED)
    for job_id in (parent, child, grandchild):
        await storage.apply_changes([change(job_id, S.SUCCEEDED)])
    assert await state_of(storage, grandchild) is S.SUCCEEDED

    await storage.apply_changes([change(parent, S.ENQUEUED)])

    assert await state_of(storage, child) is S.AWAITING
    assert await state_of(storage, grandchild) is S.AWAITING
    await storage.apply_changes([change(parent, S.SUCCEEDED)])
    assert await state_of(storage, child) is S.ENQUEUED
    await storage.apply_changes([change(child, S.SUCCEEDED)])
    assert await state_of(storage, grandchild) is S.ENQUEUED
    assert await counts_by_state(storage) == await actual_counts(storage)


async def test_a_continuation_of_a_finished_parent_reacts_at_once(
    storage: Storage,
) -> None:
    (parent,) = await storage.create_jobs([new_job()])
    await storage.apply_changes([change(parent, S.SUCCEEDED)])

    fired = await continue_on(storage, parent, S.SUCCEEDED)
    dropped = await continue_on(storage, parent, S.FAILED)

    assert await state_of(storage, fired) is S.ENQUEUED
    assert await state_of(storage, dropped) is S.DELETED
    assert await counts_by_state(storage) == await actual_counts(storage)


async def test_a_continuation_of_a_missing_parent_writes_nothing(
    storage: Storage,
) -> None:
    (parent,) = await storage.create_jobs([new_job()])

    with pytest.raises(MissingParentError) as caught:
        await storage.create_continuations(
            [
                NewContinuation(parent, awaiting(), FINAL),
                NewContinuation(parent + 99, awaiting(), FINAL),
            ]
        )

    assert caught.value.parent_id == parent + 99
    assert [r.id for r in await storage.list_jobs()] == [parent]


@pytest.mark.parametrize(
    "continuation",
    [
        NewContinuation(1, new_job(), frozenset({S.SUCCEEDED})),
        NewContinuation(1, awaiting(), frozenset()),
        NewContinuation(1, awaiting(), frozenset({S.PROCESSING})),
    ],
)
async def test_an_invalid_continuation_is_refused(
    storage: Storage, continuation: NewContinuation
) -> None:
    await storage.create_jobs([new_job()])

    with pytest.raises(StorageError):
        await storage.create_continuations([continuation])

    assert len(await storage.list_jobs()) == 1


async def test_a_parent_finishing_while_continuations_are_created(
    storage: Storage,
) -> None:
    parents = await storage.create_jobs([new_job() for _ in range(20)])

    async def finish() -> None:
        for parent in parents:
            await storage.apply_changes([change(parent, S.SUCCEEDED)])

    async def add() -> list[int]:
        return [
            await continue_on(storage, parent, S.SUCCEEDED)
            for parent in parents
        ]

    _, children = await asyncio.gather(finish(), add())

    for child in children:
        assert await state_of(storage, child) is S.ENQUEUED


# -- mutexes -----------------------------------------------------------------


def guarded(
    mutex: str | None, limit: int = 1, queue: str = "default"
) -> NewJob:
    return dataclasses.replace(new_job(queue), mutex=mutex, mutex_limit=limit)


async def test_fetch_passes_over_jobs_whose_mutex_is_full(
    storage: Storage,
) -> None:
    ids = await storage.create_jobs(
        [guarded("m"), guarded("m"), guarded(None), guarded("n", 2)]
        + [guarded("n", 2)] * 2
    )
    await announce(storage, "s1")

    fetched = await storage.fetch("s1", ["default"], 10, T0)

    taken = {r.id for r in fetched}
    assert taken == {ids[0], ids[2], ids[3], ids[4]}
    first = next(r for r in fetched if r.id == ids[0])
    assert first.mutex == "m"
    assert first.mutex_limit == 1
    assert await storage.fetch("s1", ["default"], 10, T0) == []
    # A holder that ends frees its slot for the next in line.
    await storage.apply_changes([change(ids[0], S.SUCCEEDED)])
    again = await storage.fetch("s1", ["default"], 10, T0)
    assert [r.id for r in again] == [ids[1]]
    record = await storage.get_job(ids[5])
    assert record is not None
    assert record.state is S.ENQUEUED


async def test_a_dead_servers_jobs_free_their_mutex(storage: Storage) -> None:
    first, second = await storage.create_jobs([guarded("m"), guarded("m")])
    await announce(storage, "dead")
    await storage.fetch("dead", ["default"], 10, T0)
    await announce(storage, "alive", T0 + timedelta(minutes=1))

    recovered = await storage.recover_dead_servers(
        T0 + timedelta(minutes=1), 30, "server died"
    )

    assert recovered == [first]
    fetched = await storage.fetch(
        "alive", ["default"], 10, T0 + timedelta(minutes=1)
    )
    # The mutex is free again; the recovered job, back at the head of
    # the queue, takes it, and the other one still waits.
    assert [r.id for r in fetched] == [first]
    waiting = await storage.get_job(second)
    assert waiting is not None
    assert waiting.state is S.ENQUEUED


async def test_servers_fetching_at_once_respect_the_mutex(
    storage: Storage,
) -> None:
    await storage.create_jobs([guarded("m", 2) for _ in range(20)])
    names = [f"s{i}" for i in range(6)]
    for name in names:
        await announce(storage, name)

    batches = await asyncio.gather(
        *(storage.fetch(name, ["default"], 5, T0) for name in names)
    )

    assert sum(len(batch) for batch in batches) == 2


async def test_continuation_links_name_the_parent_and_the_continuations(
    storage: Storage,
) -> None:
    (parent,) = await storage.create_jobs([new_job()])
    child = await continue_on(storage, parent, S.SUCCEEDED)
    other = await continue_on(storage, parent, *FINAL)
    grandchild = await continue_on(storage, child, S.FAILED)

    links = await storage.continuation_links(child)

    assert links == [
        ContinuationLink(parent, child, frozenset({S.SUCCEEDED})),
        ContinuationLink(child, grandchild, frozenset({S.FAILED})),
    ]
    assert [
        link.job_id for link in await storage.continuation_links(parent)
    ] == [
        child,
        other,
    ]
    assert await storage.continuation_links(parent + 1000) == []


# -- outcome totals ----------------------------------------------------------


async def test_jobs_that_succeed_or_fail_are_totalled_per_hour(
    storage: Storage,
) -> None:
    ids = await storage.create_jobs([new_job() for _ in range(5)])
    await announce(storage, "s1")
    await storage.fetch("s1", ["default"], 5, T0)
    later = T0 + timedelta(hours=1, minutes=59)
    outcomes = await storage.apply_changes(
        [
            change(ids[0], S.SUCCEEDED, at=T0 + timedelta(minutes=5)),
            change(ids[1], S.SUCCEEDED, at=T0 + timedelta(minutes=59)),
            change(ids[2], S.FAILED, at=later),
            change(ids[3], S.SCHEDULED, at=later, scheduled_at=later),
            change(ids[4], S.DELETED, at=later),
        ]
    )
    assert all(outcome.applied for outcome in outcomes)
    # Leaving a finished state takes nothing back.
    await storage.apply_change(change(ids[2], S.ENQUEUED, at=later))
    await storage.expire(T0 + timedelta(days=30), 100)

    totals = await storage.outcome_counts(T0 - timedelta(hours=5))
    since_next_hour = await storage.outcome_counts(T0 + timedelta(hours=1))

    one_hour = T0 + timedelta(hours=1)
    assert [(o.state, o.hour, o.count) for o in totals] == [
        (S.SUCCEEDED, T0, 2),
        (S.FAILED, one_hour, 1),
    ]
    assert [(o.state, o.hour, o.count) for o in since_next_hour] == [
        (S.FAILED, one_hour, 1)
    ]


async def test_no_finished_job_means_no_outcome_totals(
    storage: Storage,
) -> None:
    await storage.create_jobs([new_job()])

    assert await storage.outcome_counts(T0 - timedelta(days=1)) == []


# -- through the client ------------------------------------------------------


@pytest.mark.parametrize("job_id", [2**63, 2**80, 0, -1])
async def test_the_client_reports_an_out_of_range_id_as_a_missing_job(
    storage: Storage, job_id: int
) -> None:
    client = Client(storage)

    with pytest.raises(JobNotFoundError, match=f"job {job_id} does not"):
        await client.get(job_id)
    with pytest.raises(JobNotFoundError):
        await client.requeue(job_id)
    with pytest.raises(JobNotFoundError):
        await client.delete(job_id)
    with pytest.raises(JobNotFoundError):
        await client.set_parameter(job_id, "note", "x")
