"""Just enough HTTP/1.1 for the benchmarks' own clients.

The benchmark clients speak to the server over plain sockets so that
the client side stays cheap, and so that closing a connection is one
``close()`` at a known instant, with no client library in between.
Responses must carry ``content-length`` (uvicorn sets it for the
benchmark routes); chunked bodies are not supported.
"""

from __future__ import annotations

import asyncio
import socket
from typing import BinaryIO


def get_request(target: str) -> bytes:
    """The bytes of a keep-alive ``GET target`` request."""
    return f"GET {target} HTTP/1.1\r\nhost: bench\r\n\r\n".encode()


def _parse_head(head: bytes) -> tuple[int, int]:
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return status, length


class BlockingConnection:
    """One keep-alive connection used from a single thread.

    Raises:
        OSError: the connection failed.
    """

    def __init__(self, host: str, port: int, timeout: float = 15) -> None:
        self._socket = socket.create_connection((host, port), timeout)
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._file: BinaryIO = self._socket.makefile("rb")

    def send_get(self, target: str) -> None:
        """Send ``GET target`` without waiting for the response.

        Raises:
            OSError: the connection failed.
        """
        self._socket.sendall(get_request(target))

    def get(self, target: str) -> tuple[int, bytes]:
        """Send ``GET target`` and read the whole response.

        Raises:
            OSError: the connection failed or timed out.
            ConnectionError: the server closed the connection.
        """
        self.send_get(target)
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            line = self._file.readline()
            if not line:
                raise ConnectionError("server closed the connection")
            head += line
        status, length = _parse_head(head)
        return status, self._file.read(length)

    def close(self) -> None:
        """Close the connection."""
        self._file.close()
        self._socket.close()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Read one response from ``reader``: its status and body.

    Raises:
        asyncio.IncompleteReadError: the server closed the connection.
    """
    head = await reader.readuntil(b"\r\n\r\n")
    status, length = _parse_head(head)
    return status, await reader.readexactly(length)
