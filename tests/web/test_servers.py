"""The middleware behind real servers (uvicorn, hypercorn), real sockets."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator

import httpx
import pytest

from backburner.cancellation import CancellationReason

from .conftest import Serve
from .probe_app import Probe, build_app

pytestmark = [
    pytest.mark.timeout(20),
    pytest.mark.usefixtures("no_server_errors"),
]

WAIT = 5.0


async def within(awaitable: object, seconds: float = WAIT) -> None:
    await asyncio.wait_for(awaitable, seconds)  # type: ignore[arg-type]


async def send_raw(
    host: str, port: int, request: bytes
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(request)
    await writer.drain()
    return reader, writer


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nhost: test\r\n\r\n".encode()


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    await writer.wait_closed()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = dict(
        line.lower().split(": ", 1) for line in lines[1:] if ": " in line
    )
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, body


async def test_closing_the_socket_cancels_the_blocked_handler(
    serve: Serve,
) -> None:
    probe = Probe()
    async with serve(build_app(probe)) as (host, port):
        _, writer = await send_raw(host, port, get("/block"))
        await within(probe.entered.wait())

        await close(writer)
        await within(probe.cancelled.wait())
        await within(probe.request_ended.wait())

    assert probe.reasons == [CancellationReason.CLIENT_DISCONNECTED]
    assert not probe.finished.is_set()
    [info] = probe.cancelled_requests
    assert (info.status, info.path, info.interrupted) == (499, "/block", True)


async def test_cancelling_an_httpx_request_cancels_the_handler(
    serve: Serve,
) -> None:
    probe = Probe()
    async with (
        serve(build_app(probe)) as (host, port),
        httpx.AsyncClient(base_url=f"http://{host}:{port}") as client,
    ):
        request = asyncio.create_task(client.get("/block"))
        await within(probe.entered.wait())

        request.cancel()
        await within(probe.cancelled.wait())
        await within(probe.request_ended.wait())

    assert request.cancelled()
    assert probe.reasons == ["client disconnected"]


async def test_a_slow_but_connected_client_is_not_cancelled(
    serve: Serve,
) -> None:
    probe = Probe()
    async with (
        serve(build_app(probe)) as (host, port),
        httpx.AsyncClient(base_url=f"http://{host}:{port}") as client,
    ):
        request = asyncio.create_task(client.get("/block"))
        await within(probe.entered.wait())
        # The handler takes its time while the client stays connected.
        await asyncio.sleep(0.2)
        assert probe.reasons == [None]

        probe.release.set()
        response = await within_result(request)

    assert response.status_code == 200
    assert probe.finished.is_set()
    assert probe.reasons == [None]
    assert probe.cancelled_requests == []


async def within_result(
    task: asyncio.Task[httpx.Response],
) -> httpx.Response:
    return await asyncio.wait_for(task, WAIT)


async def test_keep_alive_reuse_cancels_none_of_the_requests(
    serve: Serve,
) -> None:
    probe = Probe()
    async with serve(build_app(probe)) as (host, port):
        reader, writer = await send_raw(host, port, get("/hello"))
        first = await read_response(reader)
        writer.write(get("/hello"))
        second = await read_response(reader)
        await close(writer)
        # A request on a fresh connection proves the server went on
        # after the close; the first two tokens must still be quiet.
        reader, writer = await send_raw(host, port, get("/hello"))
        third = await read_response(reader)
        await close(writer)

    assert [first[0], second[0], third[0]] == [200, 200, 200]
    assert probe.reasons == [None, None, None]
    assert probe.cancelled_requests == []


async def test_background_tasks_after_the_response_are_not_cancelled(
    serve: Serve,
) -> None:
    probe = Probe()
    async with serve(build_app(probe)) as (host, port):
        reader, writer = await send_raw(host, port, get("/background"))
        status, body = await read_response(reader)
        # The client leaves while the background task still runs.
        await close(writer)
        await asyncio.sleep(0.05)
        probe.release.set()
        await within(probe.background_done.wait())

    assert (status, body) == (200, b"sent")
    assert probe.reasons == [None]
    assert probe.cancelled_requests == []


async def test_a_streaming_response_that_completes_is_not_cancelled(
    serve: Serve,
) -> None:
    probe = Probe()
    probe.release.set()
    async with (
        serve(build_app(probe)) as (host, port),
        httpx.AsyncClient(base_url=f"http://{host}:{port}") as client,
    ):
        response = await client.get("/stream", params={"chunks": 50})

    assert response.status_code == 200
    assert response.text.count("chunk") == 50
    assert probe.finished.is_set()
    assert probe.cleanup.is_set()
    assert probe.reasons == [None]


async def test_leaving_mid_stream_runs_the_generator_cleanup(
    serve: Serve,
) -> None:
    probe = Probe()
    async with serve(build_app(probe)) as (host, port):
        reader, writer = await send_raw(host, port, get("/stream"))
        await within(probe.entered.wait())
        await within(reader.readuntil(b"chunk 0\n"))

        await close(writer)
        await within(probe.cleanup.wait())
        await within(probe.request_ended.wait())

    assert not probe.finished.is_set()
    assert probe.reasons == ["client disconnected"]
    assert probe.cancelled_requests[0].response_started


async def test_leaving_before_the_first_chunk_runs_the_generator_cleanup(
    serve: Serve,
) -> None:
    probe = Probe()
    async with serve(build_app(probe)) as (host, port):
        _, writer = await send_raw(host, port, get("/stream?wait_first=true"))
        await within(probe.entered.wait())

        await close(writer)
        await within(probe.cleanup.wait())
        await within(probe.request_ended.wait())

    assert not probe.first_chunk_sent.is_set()
    assert probe.reasons == ["client disconnected"]


async def chunks_of(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
        await asyncio.sleep(0)


@pytest.mark.parametrize("dispatch_stack", [False, True])
async def test_a_multi_chunk_post_arrives_byte_identical(
    serve: Serve, dispatch_stack: bool
) -> None:
    probe = Probe()
    payload = os.urandom(3 * 1024 * 1024 + 17)
    async with (
        serve(build_app(probe, dispatch_stack=dispatch_stack)) as (h, p),
        httpx.AsyncClient(base_url=f"http://{h}:{p}") as client,
    ):
        response = await client.post(
            "/echo",
            content=chunks_of(payload, 64 * 1024 + 3),
            headers={"origin": "http://example.test"},
        )

    assert response.status_code == 200
    assert response.json() == {
        "size": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    assert probe.reasons == [None]


async def test_a_large_body_read_slowly_is_not_cancelled(
    serve: Serve,
) -> None:
    probe = Probe()
    payload = os.urandom(1024 * 1024)
    async with (
        serve(build_app(probe)) as (host, port),
        httpx.AsyncClient(base_url=f"http://{host}:{port}") as client,
    ):
        response = await client.post(
            "/echo", params={"slow": "true"}, content=payload
        )

    assert response.json()["sha256"] == hashlib.sha256(payload).hexdigest()
    assert probe.reasons == [None]


async def test_a_sync_route_blocked_in_wait_blocking_wakes_on_disconnect(
    serve: Serve,
) -> None:
    probe = Probe()
    async with serve(build_app(probe)) as (host, port):
        _, writer = await send_raw(host, port, get("/sync-wait"))
        await within(asyncio.to_thread(probe.thread_entered.wait, WAIT))

        await close(writer)
        await within(asyncio.to_thread(probe.thread_done.wait, WAIT))
        await within(probe.request_ended.wait())

    assert probe.thread_saw == ["fired=True"]
    assert probe.reasons == ["client disconnected"]


async def test_a_sync_route_polling_the_token_stops_on_disconnect(
    serve: Serve,
) -> None:
    probe = Probe()
    async with serve(build_app(probe)) as (host, port):
        _, writer = await send_raw(host, port, get("/sync-poll"))
        await within(asyncio.to_thread(probe.thread_entered.wait, WAIT))

        await close(writer)
        await within(asyncio.to_thread(probe.thread_done.wait, WAIT))
        await within(probe.request_ended.wait())

    assert probe.thread_saw == ["OperationCancelled"]
    assert probe.reasons == ["client disconnected"]
