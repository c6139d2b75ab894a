"""The client over real sockets on loopback: refused connections, timeouts, broken responses.

Each test runs a small asyncio TCP server on 127.0.0.1 that misbehaves in one way.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from experio_sso.sidecar import (
    SidecarClient,
    SidecarClientSettings,
    SidecarTimeoutError,
    SidecarUnavailableError,
    UnexpectedResponseError,
)

from .helpers import INTEGRATION_KEY

ConnectionHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

FAST_TIMEOUTS = SidecarClientSettings(
    connect_timeout=2.0, read_timeout=0.3, write_timeout=2.0, pool_timeout=2.0
)


async def _read_request_head(reader: asyncio.StreamReader) -> None:
    await reader.readuntil(b"\r\n\r\n")


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[ConnectionHandler], Awaitable[str]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: ConnectionHandler) -> str:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    yield start

    for server in servers:
        server.close()
        await server.wait_closed()


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_refused_connection_is_unavailable() -> None:
    client = SidecarClient(f"http://127.0.0.1:{_closed_port()}", settings=FAST_TIMEOUTS)
    async with client:
        with pytest.raises(SidecarUnavailableError) as caught:
            await client.ping(INTEGRATION_KEY)

    assert type(caught.value) is SidecarUnavailableError
    assert caught.value.retryable is True
    assert "127.0.0.1" in str(caught.value)


async def test_silent_sidecar_times_out(
    serve: Callable[[ConnectionHandler], Awaitable[str]],
) -> None:
    release = asyncio.Event()

    async def never_respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request_head(reader)
        await release.wait()
        writer.close()

    url = await serve(never_respond)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        async with SidecarClient(url, settings=FAST_TIMEOUTS) as client:
            with pytest.raises(SidecarTimeoutError) as caught:
                await client.ping(INTEGRATION_KEY)
    finally:
        release.set()
    elapsed = loop.time() - started

    assert "waiting for the response" in str(caught.value)
    assert caught.value.retryable is True
    assert 0.3 <= elapsed < 2.0


async def test_truncated_body_is_unexpected(
    serve: Callable[[ConnectionHandler], Awaitable[str]],
) -> None:
    async def cut_off(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request_head(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            b'{"timest'
        )
        await writer.drain()
        writer.close()

    url = await serve(cut_off)
    async with SidecarClient(url, settings=FAST_TIMEOUTS) as client:
        with pytest.raises(UnexpectedResponseError) as caught:
            await client.ping(INTEGRATION_KEY)

    assert caught.value.retryable is True


async def test_dropped_connection_is_not_silent(
    serve: Callable[[ConnectionHandler], Awaitable[str]],
) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request_head(reader)
        writer.close()

    url = await serve(hang_up)
    async with SidecarClient(url, settings=FAST_TIMEOUTS) as client:
        with pytest.raises((SidecarUnavailableError, UnexpectedResponseError)) as caught:
            await client.ping(INTEGRATION_KEY)

    assert caught.value.retryable is True


async def test_proxy_page_over_http_is_unexpected(
    serve: Callable[[ConnectionHandler], Awaitable[str]],
) -> None:
    page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"

    async def bad_gateway(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request_head(reader)
        writer.write(
            b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: "
            + str(len(page)).encode()
            + b"\r\nConnection: close\r\n\r\n"
            + page
        )
        await writer.drain()
        writer.close()

    url = await serve(bad_gateway)
    async with SidecarClient(url, settings=FAST_TIMEOUTS) as client:
        with pytest.raises(UnexpectedResponseError) as caught:
            await client.ping(INTEGRATION_KEY)

    assert caught.value.status_code == 502
    assert "502 Bad Gateway" in str(caught.value)
