"""LISTEN/NOTIFY: notifications between every process on one schema.

A change that enqueues jobs or takes a running job away sends a NOTIFY
on the schema's channel inside its transaction, so PostgreSQL delivers
it at commit and only then. Each storage keeps one dedicated connection
that LISTENs and turns the payloads back into :class:`JobsEnqueued` and
:class:`JobsAborted` for its listeners.

Payloads are JSON: ``{"o": origin, "e": [queue, ...]}``,
``{"o": origin, "a": [job id, ...]}`` or, from an enqueue that handed
its job straight to an idle server, ``{"o": origin, "h": [server, job
id, queue, function, arguments, created at, timeout]}`` (the last four
left out when the arguments are too long; see create_job_handoff in
``queries.sql`` and :mod:`.handoffs`). ``origin`` names
the storage that sent it; a storage tells its own listeners directly
after commit and ignores its own payloads when they come back. A hand
off goes first to the storage (which keeps the job for that server's
next fetch), then to the listeners as the queue's :class:`JobsEnqueued`,
which wakes the server; so does a :class:`JobsAborted` (the storage
drops those jobs from the hand-offs it keeps), then as it is.

Limits: PostgreSQL caps a payload at 8000 bytes, so large sets are
split over several notifications. Notifications sent while the listening
connection is down are lost; the connection is re-opened with backoff,
and the server's polling finds enqueued jobs meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

from backburner.storage.base import (
    JobRecord,
    JobsAborted,
    JobsEnqueued,
    Listener,
    Notification,
)
from backburner.storage.postgres import handoffs

logger = logging.getLogger(__name__)

# Well under PostgreSQL's 8000-byte limit on a payload.
_MAX_PAYLOAD = 7000
_RECONNECT_DELAYS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
# Seconds of silence after which the listening connection is pinged.
_PING_AFTER = 30.0


@dataclass(frozen=True, slots=True)
class JobHandedOff:
    """An enqueue wrote its job in processing, held by ``server``."""

    server: str
    job_id: int
    queue: str
    # None: the NOTIFY could not carry the job; it is to be read.
    record: JobRecord | None


def _chunked(
    origin: str, key: str, items: Iterable[str | int]
) -> Iterator[str]:
    batch: list[str | int] = []
    size = 0
    for item in items:
        item_size = len(json.dumps(item)) + 1
        if batch and size + item_size > _MAX_PAYLOAD:
            yield json.dumps({"o": origin, key: batch})
            batch, size = [], 0
        batch.append(item)
        size += item_size
    if batch:
        yield json.dumps({"o": origin, key: batch})


def encode(origin: str, notification: Notification) -> list[str]:
    """Return the NOTIFY payloads that carry ``notification``."""
    if isinstance(notification, JobsEnqueued):
        return list(_chunked(origin, "e", sorted(notification.queues)))
    return list(_chunked(origin, "a", sorted(notification.job_ids)))


def decode(
    payload: str,
) -> tuple[str, Notification | JobHandedOff] | None:
    """Return the origin and notification of a payload (``None``: junk)."""
    try:
        message = json.loads(payload)
        origin = str(message["o"])
        if "h" in message:
            return origin, _handed_off(message["h"])
        if "e" in message:
            queues = frozenset(str(queue) for queue in message["e"])
            return origin, JobsEnqueued(queues)
        job_ids = frozenset(int(job_id) for job_id in message["a"])
        return origin, JobsAborted(job_ids)
    except (ValueError, TypeError, KeyError):
        return None


def _handed_off(fields: list[object]) -> JobHandedOff:
    server, job_id, queue = str(fields[0]), int(str(fields[1])), str(fields[2])
    if len(fields) == 3:
        return JobHandedOff(server, job_id, queue, None)
    function, arguments, created_at, timeout = fields[3:]
    record = handoffs.handed_record(
        server,
        job_id,
        queue,
        str(function),
        str(arguments),
        datetime.fromisoformat(str(created_at)),
        None if timeout is None else float(str(timeout)),
    )
    return JobHandedOff(server, job_id, queue, record)


class Hub:
    """The listeners of one storage, and the connection feeding them."""

    def __init__(
        self,
        conninfo: str,
        channel: str,
        origin: str,
        handed_off: Callable[[JobHandedOff], None],
        aborted: Callable[[JobsAborted], None],
    ) -> None:
        self._conninfo = conninfo
        self._handed_off = handed_off
        self._aborted = aborted
        self._channel = channel
        self._origin = origin
        self._lock = threading.Lock()
        self._listeners: dict[int, Listener] = {}
        self._next_key = 0
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._listened = False

    @property
    def listened(self) -> bool:
        """Whether the connection was LISTENing at some point."""
        return self._listened

    @property
    def origin(self) -> str:
        """The name this storage signs its own payloads with."""
        return self._origin

    @property
    def listening(self) -> bool:
        """Whether the connection is LISTENing now."""
        return self._listening.is_set()

    @property
    def has_listeners(self) -> bool:
        """Whether anyone subscribed (and the connection is worth it)."""
        with self._lock:
            return bool(self._listeners)

    def add(self, listener: Listener) -> Callable[[], None]:
        """Register ``listener``; return the function that removes it."""
        with self._lock:
            key = self._next_key
            self._next_key += 1
            self._listeners[key] = listener

        def remove() -> None:
            with self._lock:
                self._listeners.pop(key, None)

        return remove

    def publish(self, notification: Notification) -> None:
        """Tell every listener of this storage about ``notification``."""
        with self._lock:
            listeners = list(self._listeners.values())
        for listener in listeners:
            # A faulty listener must neither fail the call whose commit
            # it hears about nor keep the others from hearing it.
            try:
                listener(notification)
            except Exception:
                logger.exception(
                    "notification listener failed",
                    extra={"event": "storage.listener_failed"},
                )

    def start(self) -> None:
        """Start the listening connection if it is not running.

        Must be called from the event loop that the storage runs on.
        """
        if self._task is None or self._task.done():
            self._listening = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(
                self._listen_forever(), name="backburner-postgres-listen"
            )

    async def wait_listening(self) -> None:
        """Return once the connection is LISTENing (start it if needed)."""
        self.start()
        await self._listening.wait()

    async def stop(self) -> None:
        """Close the listening connection."""
        task, self._task = self._task, None
        self._listening.clear()
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _listen_forever(self) -> None:
        failures = 0
        while True:
            try:
                await self._listen_once()
            except (psycopg.Error, OSError) as error:
                if self._listening.is_set():
                    # It was up: this is a new outage, start the
                    # backoff again.
                    failures = 0
                self._listening.clear()
                delay = _RECONNECT_DELAYS[
                    min(failures, len(_RECONNECT_DELAYS) - 1)
                ]
                failures += 1
                logger.debug(
                    "notification connection lost, retrying in %ss",
                    delay,
                    extra={
                        "event": "storage.listen_lost",
                        "error": type(error).__name__,
                    },
                )
                await asyncio.sleep(delay)

    async def _listen_once(self) -> None:
        conn = await psycopg.AsyncConnection.connect(
            self._conninfo, autocommit=True
        )
        async with conn:
            listen = sql.SQL("LISTEN {}").format(sql.Identifier(self._channel))
            await conn.execute(listen)
            self._listening.set()
            self._listened = True
            while True:
                async for notify in conn.notifies(timeout=_PING_AFTER):
                    self._deliver(notify.payload)
                # A quiet channel cannot tell a live connection from one
                # whose network path died without a word: ask.
                await conn.execute("SELECT 1")

    def _deliver(self, payload: str) -> None:
        decoded = decode(payload)
        if decoded is None:
            return
        origin, notification = decoded
        if origin == self._origin:
            return
        if isinstance(notification, JobHandedOff):
            self._handed_off(notification)
            notification = JobsEnqueued(frozenset((notification.queue,)))
        elif isinstance(notification, JobsAborted):
            self._aborted(notification)
        self.publish(notification)
