"""A scripted ASGI server side: receive and send without sockets."""

from __future__ import annotations

import asyncio
from typing import Any

Message = dict[str, Any]


def http_scope(method: str = "GET", path: str = "/") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


class ScriptedServer:
    """Plays the server: messages to hand out, messages the app sent.

    Like uvicorn, it answers ``http.disconnect`` once the response is
    complete.
    """

    def __init__(self, *messages: Message) -> None:
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        for message in messages or (
            {"type": "http.request", "body": b"", "more_body": False},
        ):
            self.inbox.put_nowait(message)
        self.sent: list[Message] = []
        self.receive_calls = 0
        self.response_complete = asyncio.Event()

    def disconnect(self) -> None:
        self.inbox.put_nowait({"type": "http.disconnect"})

    async def receive(self) -> Message:
        self.receive_calls += 1
        return await self.inbox.get()

    async def send(self, message: Message) -> None:
        self.sent.append(message)
        if message["type"] == "http.response.body" and not message.get(
            "more_body", False
        ):
            self.response_complete.set()
            self.disconnect()

    @property
    def status(self) -> int | None:
        for message in self.sent:
            if message["type"] == "http.response.start":
                return int(message["status"])
        return None
