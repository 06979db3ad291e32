"""The server's ``receive``, read for the app and watched for a disconnect.

A request has one reader of the server's ``receive`` at a time, and the
app gets every message, untouched and in order. Who reads changes:

- **The app itself**, while nobody else does: its ``receive`` call goes
  straight to the server's. A disconnect is then seen the moment the
  server reports it, at no cost.
- **A watcher task**, once the app is busy elsewhere: it reads ahead of
  the app (by at most ``max_buffer`` bytes of request body, so the
  server's flow control on uploads still works) and the app's
  ``receive`` takes from what it buffered. Once started, the watcher
  reads until the disconnect, so order is never in doubt.

The watcher starts lazily, when the app's task first suspends: the
middleware takes the app's first step itself and calls
:meth:`ReceiveWatch.look` if the app did not finish in it. If the app is
then inside its own ``receive``, nothing starts, and
:meth:`ReceiveWatch.arm` looks again at the next loop turn after that
call returns. A request that never suspends (a hello-world route) makes
no task and no loop callback at all; the task is paid only by requests
that wait on something else, where one more task is small next to the
wait.
"""

from __future__ import annotations

import asyncio
from collections import deque

from backburner.web._asgi import Message, Receive


class ReceiveWatch:
    """One request's ``receive``: replayed to the app, watched by us.

    The middleware's request cycle extends it and decides, in
    :meth:`_on_disconnect`, what a disconnect means.

    Args:
        receive: the server's ``receive``.
        max_buffer: request body bytes the watcher may read ahead.
    """

    __slots__ = (
        "_buffer",
        "_buffered_bytes",
        "_changed",
        "_disconnect",
        "_error",
        "_look",
        "_max_buffer",
        "_reading",
        "_room",
        "_server_receive",
        "_stopped",
        "_watcher",
    )

    def __init__(self, receive: Receive, max_buffer: int) -> None:
        self._server_receive = receive
        self._max_buffer = max_buffer

        self._reading = False
        self._stopped = False
        self._disconnect: Message | None = None
        self._error: Exception | None = None
        self._look: asyncio.Handle | None = None
        # The rest exists only once a watcher runs.
        self._watcher: asyncio.Task[None] | None = None
        self._buffer: deque[Message] | None = None
        self._buffered_bytes = 0
        self._changed: asyncio.Event | None = None
        self._room: asyncio.Event | None = None

    # -- lifecycle, driven by the middleware -----------------------------

    def _on_disconnect(self) -> bool:
        """The server reported ``http.disconnect``; True if that
        interrupted the task running the app."""
        return False

    def arm(self) -> None:
        """Look at the next loop turn whether a watcher must start."""
        if self._look is None and self._watcher is None and not self._stopped:
            loop = asyncio.get_running_loop()
            self._look = loop.call_soon(self.look)

    def stop_watching(self) -> None:
        """Start no watcher from now on; one that runs reads on.

        Called when a disconnect would no longer be premature: the app
        can still receive, its calls then go to the server directly.
        """
        self._stopped = True
        look, self._look = self._look, None
        if look is not None:
            look.cancel()

    def close_watch(self) -> None:
        """The request is over: stop the look and the watcher."""
        self._stopped = True
        if self._look is not None:
            self._look.cancel()
            self._look = None
        # Dropped, not kept: its traceback would refer back to us, a
        # cycle only the garbage collector could free.
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()

    def look(self) -> None:
        """Start a watcher, unless the app is inside its own receive (or
        there is nothing left to watch for)."""
        self._look = None
        if (
            self._reading
            or self._stopped
            or self._watcher is not None
            or self._disconnect is not None
            or self._error is not None
        ):
            return
        buffer = self._buffer = deque()
        loop = asyncio.get_running_loop()
        self._watcher = loop.create_task(self._watch(buffer))

    # -- the app's receive ------------------------------------------------

    async def receive(self) -> Message:
        """The ``receive`` the app is given."""
        while True:
            buffer = self._buffer
            if buffer:
                return self._take(buffer)
            if self._error is not None:
                raise self._error
            if self._disconnect is not None:
                # Servers keep answering http.disconnect once the client
                # has gone; so do we.
                return self._disconnect
            if self._watcher is None and not self._reading:
                return await self._read_directly()
            # The watcher, or another receive call of the app, is
            # reading: its message (or the end of its call) comes first.
            changed = self._changed_event()
            changed.clear()
            await changed.wait()

    async def _read_directly(self) -> Message:
        self._reading = True
        try:
            message = await self._server_receive()
        except Exception as exc:
            self._error = exc
            raise
        finally:
            self._reading = False
            if self._changed is not None:
                self._changed.set()
            # Whatever the app does next may suspend it elsewhere.
            self.arm()
        if message.get("type") != "http.disconnect":
            return message
        self._disconnect = message
        if self._on_disconnect():
            # The task was cancelled, most likely this very one: let the
            # cancellation land here, in receive, where the app waited.
            await asyncio.sleep(0)
        return message

    def _take(self, buffer: deque[Message]) -> Message:
        message = buffer.popleft()
        if message.get("type") == "http.request" and message.get("more_body"):
            self._buffered_bytes -= len(message.get("body", b""))
            room = self._room
            if room is not None and self._buffered_bytes < self._max_buffer:
                room.set()
        return message

    def _changed_event(self) -> asyncio.Event:
        # Made only when a receive call waits: most requests never do.
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    # -- the watcher --------------------------------------------------------

    async def _watch(self, buffer: deque[Message]) -> None:
        limit = self._max_buffer
        try:
            while True:
                if self._buffered_bytes >= limit:
                    if self._room is None:
                        self._room = asyncio.Event()
                    self._room.clear()
                    await self._room.wait()
                    continue
                message = await self._server_receive()
                buffer.append(message)
                if self._changed is not None:
                    self._changed.set()
                kind = message.get("type")
                if kind == "http.disconnect":
                    self._disconnect = message
                    self._on_disconnect()
                    return
                if kind == "http.request" and message.get("more_body"):
                    self._buffered_bytes += len(message.get("body", b""))
        except Exception as exc:  # noqa: BLE001 - handed to the app
            self._error = exc
            if self._changed is not None:
                self._changed.set()
