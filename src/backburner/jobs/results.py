"""Job results: a job function's return value, kept and awaited.

When a job function returns something other than ``None``, the server
encodes it with the argument serializer and keeps it in the *succeeded*
history entry's ``data``, under ``"result"``: no column or table of its
own, and it expires with the job (after the retention period, one day by
default). A value that cannot be encoded, or whose encoding takes more
than :data:`MAX_RESULT_BYTES`, does not fail the job: the entry says why
under ``"result_error"`` and a ``job.result_dropped`` warning is logged
(with the job id, never the value). An integer of more digits than
Python's default limit on int-to-text conversion (4300) is such a value,
whatever this process's limit: every reader (a client's ``wait``, the
CLI, the dashboard) parses the result with its own limit, most likely
the default, and would otherwise find the job's history unreadable.

A job function declared ``@keep_result(False)``, or a job created with
``JobOptions(keep_result=False)``, keeps no result at all: its return
value is never encoded (nor looked at), and the entry's
``"result_error"`` says it was not wanted, so that a wait raises
:class:`~backburner.jobs.ResultNotKeptError` rather than return ``None``
as for a function that returned nothing. The job's own option wins over
the declaration, which is read when the job runs (as the retry policy
is).

Cost: the server encodes a scalar result (a number, a short string, a
date...) on its event loop, which takes microseconds; anything else,
such as a list or a dict, on a thread, so that a big one does not hold
the loop (and with it the heartbeat: a server busy encoding for longer
than ``dead_after`` would be declared dead and its jobs run again). A
result whose size plainly passes the limit (a list of more than a
million items, a string of more than a million characters) is dropped
before any encoding. Encoding still takes CPU: a list of 20,000 small
dicts, about 1 MiB, took 0.1-0.16 s on a busy two-core machine. Keep
results small; put bulky output in a table or a file and return where
it is.

:meth:`Client.wait <backburner.jobs.Client.wait>` waits on the client's
shared poller (:mod:`backburner.jobs.waiters`): one query per tick for
all the jobs waited for, every 10 ms at first and then less often, up to
every 0.5 s. Storage notifications cut a tick short when a waited job is
deleted or requeued while it runs; no notification says that a job
succeeded (that would cost a NOTIFY on every outcome written), so a
result is seen by the next tick.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import json
import logging
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from backburner.cancellation import CancellationToken
from backburner.jobs.errors import (
    JobArgumentError,
    JobDeletedError,
    JobFailedError,
    JobNotFinishedError,
    JobNotFoundError,
    ResultNotKeptError,
    WaitTimeoutError,
)
from backburner.jobs.serializer import decode_json, encode_json
from backburner.jobs.waiters import FINISHED
from backburner.storage.base import (
    HistoryEntry,
    JobId,
    JobRecord,
    JobState,
    JSONValue,
)

if TYPE_CHECKING:
    from backburner.jobs.client import Client
    from backburner.jobs.waiters import Waiters

__all__ = [
    "MAX_RESULT_BYTES",
    "NOT_WANTED",
    "RESULT",
    "RESULT_ERROR",
    "cheap_to_keep",
    "keep_result",
    "keeps_result",
    "record_result",
    "result_of",
    "stored_result",
    "wait_for",
]

F = TypeVar("F", bound=Callable[..., Any])

_log = logging.getLogger("backburner.server")

RESULT = "result"
RESULT_ERROR = "result_error"
_RESULT_KEYS = (RESULT, RESULT_ERROR)
MAX_RESULT_BYTES = 1024 * 1024
"""The most an encoded result may take (UTF-8 JSON), as for arguments."""
NOT_WANTED = "keep_result is off for this job"
"""The ``result_error`` of a job whose result was not to be kept."""
_ATTRIBUTE = "__backburner_keep_result__"


def keep_result(keep: bool) -> Callable[[F], F]:
    """Declare whether the server keeps what a job function returns.

    ``@keep_result(False)`` keeps nothing: the return value is never
    encoded, ``wait`` and ``Job.result`` raise
    :class:`~backburner.jobs.ResultNotKeptError`, and the CLI and the
    dashboard have nothing to show. ``JobOptions(keep_result=...)`` wins
    over it for one job. The function is returned unchanged.

    Raises:
        ValueError: ``keep`` is not a bool.
    """
    if not isinstance(keep, bool):
        raise ValueError(f"keep_result takes True or False, got {keep!r}")

    def declare(func: F) -> F:
        setattr(getattr(func, "__func__", func), _ATTRIBUTE, keep)
        return func

    return declare


def keeps_result(func: object) -> bool:
    """Whether ``func`` is declared to keep its result (the default)."""
    target = getattr(func, "__func__", func)
    return getattr(target, _ATTRIBUTE, True) is not False


def record_result(
    data: dict[str, JSONValue],
    value: object,
    job: JobRecord,
    limit: int = MAX_RESULT_BYTES,
) -> None:
    """Put ``value``, encoded, into the ``data`` of ``job``'s succeeded
    entry; or, when it cannot be kept, the reason why.

    Safe to call on any thread (unless :func:`cheap_to_keep` says so,
    the server calls it on one, away from its event loop).
    """
    if _surely_over(value, limit):
        why = f"more than {limit} bytes serialised, over the limit"
    else:
        try:
            # Readers parse the result with their own limit on digits:
            # most likely the default, whatever this server's.
            encoded = encode_json(value, RESULT, default_int_limit=True)
            size = _size(encoded, limit)
        except JobArgumentError as error:
            # The detail names what was refused but, unlike the path
            # into the value (dict keys), nothing of the value itself.
            detail = str(error)[len(f"argument {error.argument}: ") :]
            why = f"{type(value).__qualname__} is not serialisable: {detail}"
        else:
            if size <= limit:
                data[RESULT] = encoded
                return
            why = f"{size} bytes serialised, over the limit of {limit} bytes"
    data[RESULT_ERROR] = why
    _log.warning(
        "job %s: its result was not kept: %s",
        job.id,
        why,
        extra={
            "event": "job.result_dropped",
            "job_id": job.id,
            "function": job.function,
            "queue": job.queue,
            "attempt": job.attempt,
            "server": data.get("server"),
            "worker": data.get("worker"),
        },
    )


_CHEAP_TEXT = 4096
_CHEAP_KINDS = frozenset(
    {
        bool,
        float,
        dt.date,
        dt.datetime,
        dt.time,
        dt.timedelta,
    }
)
# By name: importing uuid and decimal here would slow every worker's
# start, for jobs that may never return either.
_CHEAP_NAMES = frozenset({("uuid", "UUID"), ("decimal", "Decimal")})


def cheap_to_keep(value: object) -> bool:
    """Whether encoding ``value`` surely takes only microseconds.

    True for numbers, short strings, dates, UUIDs and the like: the
    server keeps those on its event loop. Containers (whose size only a
    walk can tell) and long text are kept on a thread.
    """
    if isinstance(value, str | bytes):
        return len(value) <= _CHEAP_TEXT
    if isinstance(value, int):
        return value.bit_length() <= 1024
    kind = type(value)
    return (
        kind in _CHEAP_KINDS
        or (kind.__module__, kind.__qualname__) in _CHEAP_NAMES
        or isinstance(value, enum.Enum)
    )


def _surely_over(value: object, limit: int) -> bool:
    """Whether a lower bound of ``value``'s encoded size passes ``limit``.

    Each container counts its brackets and separators before its items
    are looked at, so a big one is told at once; the walk stops as soon
    as the bound passes ``limit``, so it never takes longer than
    encoding would.
    """
    total = 0
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, bytes | bytearray):
            total += len(item) * 4 // 3
        elif isinstance(item, dict):
            # Each entry takes at least '"":' and one character.
            total += 1 + 4 * len(item)
            if total <= limit:
                pending.extend(item.keys())
                pending.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += 1 + len(item)
            if total <= limit:
                pending.extend(item)
        else:
            total += 1
        if total > limit:
            return True
    return False


def _size(encoded: JSONValue, limit: int) -> int:
    text = json.dumps(encoded, ensure_ascii=False, separators=(",", ":"))
    # A character takes at most 4 bytes: most results need no encoding.
    if len(text) * 4 <= limit:
        return len(text)
    return len(text.encode("utf-8"))


def _latest(
    history: Sequence[HistoryEntry], state: JobState
) -> HistoryEntry | None:
    for entry in reversed(history):
        if entry.state is state:
            return entry
    return None


def stored_result(
    state: JobState, history: Sequence[HistoryEntry]
) -> dict[str, JSONValue]:
    """The result as stored, undecoded: ``{"result": ...}``, or
    ``{"result_error": why}``, or ``{}`` (no value, or not succeeded).

    For showing a job without importing application code.
    """
    entry = _latest(history, state) if state is JobState.SUCCEEDED else None
    if entry is None:
        return {}
    return {k: v for k, v in entry.data.items() if k in _RESULT_KEYS}


def result_of(
    job_id: JobId,
    state: JobState,
    reason: str,
    history: Sequence[HistoryEntry],
) -> Any:
    """The result of a job in ``state`` with ``history`` (oldest first).

    Raises:
        JobNotFinishedError: the job has not finished.
        JobFailedError: it failed for good.
        JobDeletedError: it was deleted.
        ResultNotKeptError: it succeeded but its result was dropped.
        ValueError: the history is missing (a job from a listing), or
            the stored result cannot be decoded.
    """
    if state not in FINISHED:
        raise JobNotFinishedError(job_id, state, reason)
    entry = _latest(history, state)
    if entry is None:
        raise ValueError(
            f"job {job_id} carries no history (listed jobs do not): "
            "read it with Client.get"
        )
    data = entry.data
    if state is JobState.SUCCEEDED:
        if RESULT in data:
            return decode_json(data[RESULT])
        if RESULT_ERROR in data:
            why = str(data[RESULT_ERROR])
            raise ResultNotKeptError(job_id, state, why)
        return None
    kind = data.get("exception_type")
    message = data.get("message")
    error = JobFailedError if state is JobState.FAILED else JobDeletedError
    raise error(
        job_id,
        state,
        entry.reason,
        kind if isinstance(kind, str) else None,
        message if isinstance(message, str) else None,
    )


async def wait_for(
    client: Client,
    waiters: Waiters,
    job_id: JobId,
    *,
    limit: float | None,
    token: CancellationToken = CancellationToken.NONE,
) -> Any:
    """Wait at most ``limit`` seconds for the job to finish; return its
    result (see :meth:`Client.wait <backburner.jobs.Client.wait>`)."""
    if limit is not None and not (math.isfinite(limit) and limit >= 0):
        raise ValueError(
            f"invalid timeout {limit!r}: use a finite number of "
            "seconds >= 0, or None"
        )
    loop = asyncio.get_running_loop()
    deadline = None if limit is None else loop.time() + limit
    while True:
        token.raise_if_cancellation_requested()
        remaining = None if deadline is None else deadline - loop.time()
        try:
            if remaining is not None and remaining <= 0:
                raise TimeoutError
            async with asyncio.timeout(remaining):
                state = await waiters.until_finished(job_id, token)
        except TimeoutError:
            # One read of its own, for the state the error names; a job
            # that finished just now gives its result instead.
            current = (await client.storage.job_states([job_id])).get(job_id)
            if current is None:
                raise JobNotFoundError(job_id) from None
            if current[0] not in FINISHED:
                assert limit is not None
                raise WaitTimeoutError(job_id, current[0], limit) from None
        else:
            if state is None:
                raise JobNotFoundError(job_id)
        # The state and history are all a result needs: no parameters.
        record = await client.storage.get_job(job_id)
        if record is None:
            raise JobNotFoundError(job_id)
        # The job may have been requeued between the two reads.
        if record.state in FINISHED:
            history = await client.storage.get_history(job_id)
            return result_of(job_id, record.state, record.reason, history)
