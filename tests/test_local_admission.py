"""Issue 30: what an anonymous client can make the local mode hold or refuse to others. Bodies are
read only after routing and the key check, capped per route; HTTP connections are capped in all
and per address (a WebSocket leaves that count for the hub's); a body that cannot be decoded is a
JSON 400 with no traceback."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import struct
import time
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from local_support import raw_request

from functions import wiring
from local.gate import ConnectionLimits
from local.hub import HubLimits
from local.server import start

KEY = "a-publish-key-for-admission-tests"
HUB = wiring.HUB_NAME
ATTACKER = "127.0.0.2"  # Linux routes all of 127.0.0.0/8 to loopback: a second client address


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(body())


async def open_from(url: str, address: str, data: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port), local_addr=(address, 0))
    writer.write(data)
    await writer.drain()
    return reader, writer


def status_and_error(answer: bytes) -> tuple[int, dict[str, str]]:
    head, _, payload = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload)["error"]


def test_a_body_without_the_key_is_refused_at_once_not_read() -> None:
    """The attack of item 1: a 1 MiB body that never ends. The answer (401) comes before the body
    does, long before the body timeout, because nothing reads a body for a caller without the key."""

    async def body() -> None:
        mode = await start("127.0.0.1", 0, KEY, body_timeout=30)
        try:
            head = b"POST /api/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n"
            started = time.monotonic()
            reader, writer = await open_from(mode.url, "127.0.0.1", head + b"x" * 1000)
            status, error = status_and_error(await asyncio.wait_for(reader.read(), timeout=10))
            assert (status, error["code"]) == (401, "unauthorized")
            assert time.monotonic() - started < 5
            writer.close()
        finally:
            await mode.stop()

    run(body)


@pytest.mark.parametrize(
    ("method", "path", "limit"),
    [
        ("POST", "/api/negotiate", 0),
        ("POST", "/client/negotiate?hub=broadcast", 0),
        ("POST", "/api/messages", 16384),
    ],
)
def test_each_route_takes_at_most_the_body_it_accepts(method: str, path: str, limit: int) -> None:
    async def body() -> None:
        mode = await start("127.0.0.1", 0, KEY)
        try:
            head = f"{method} {path} HTTP/1.1\r\nx-functions-key: {KEY}\r\nContent-Type: text/plain".encode()
            status, _headers, payload = await raw_request(mode.url, head, b" " * (limit + 1))
            error = json.loads(payload)["error"]
            assert (status, error["code"]) == (413, "payload_too_large")
            assert ("takes no request body" if limit == 0 else f"{limit} bytes") in error["message"]
        finally:
            await mode.stop()

    run(body)


def test_one_address_cannot_take_every_connection_and_others_are_still_served() -> None:
    async def body() -> None:
        limits = ConnectionLimits(max_connections=10, max_connections_per_address=3)
        mode = await start("127.0.0.1", 0, KEY, connection_limits=limits)
        held = []
        try:
            for _ in range(3):
                held.append(await open_from(mode.url, ATTACKER, b"POST /api/messages HTTP/1.1\r\n"))
            reader, writer = await open_from(mode.url, ATTACKER, b"")
            status, error = status_and_error(await asyncio.wait_for(reader.read(), timeout=5))
            assert (status, error["code"]) == (503, "service_unavailable")
            assert "this address" in error["message"]
            writer.close()
            async with aiohttp.ClientSession() as session, session.get(f"{mode.url}/api/health") as response:
                assert response.status == 200
        finally:
            for _reader, writer in held:
                writer.close()
            await mode.stop()

    run(body)


def test_a_websocket_leaves_the_http_count() -> None:
    """The hub bounds WebSockets itself; an open one does not hold one of its address's HTTP places."""

    async def body() -> None:
        limits = ConnectionLimits(max_connections=10, max_connections_per_address=2)
        mode = await start("127.0.0.1", 0, KEY, connection_limits=limits)
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
                sockets = []
                for _ in range(3):
                    async with session.post(f"{mode.url}/api/negotiate") as response:
                        info = await response.json()
                    url = info["url"].replace("http", "ws", 1) + f"&access_token={info['accessToken']}"
                    sockets.append(await session.ws_connect(url))
                async with session.get(f"{mode.url}/api/health") as response:
                    assert response.status == 200
                for socket in sockets:
                    await socket.close()
        finally:
            await mode.stop()

    run(body)


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("POST", "/api/messages", 400, "malformed_body"),
        ("PUT", "/api/messages/0f8fad5b-d9cb-469f-a165-70867728950e", 400, "malformed_body"),
        ("POST", "/api/health", 405, "method_not_allowed"),
    ],
)
def test_a_body_that_does_not_decode_is_a_json_error_with_no_traceback(
    method: str, path: str, status: int, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Item 5: `Content-Encoding: gzip` on a body that is not gzip."""
    caplog.set_level(logging.INFO)

    async def body() -> None:
        mode = await start("127.0.0.1", 0, KEY)
        try:
            head = (
                f"{method} {path} HTTP/1.1\r\nx-functions-key: {KEY}\r\nContent-Encoding: gzip\r\n"
                "Content-Type: application/json"
            ).encode()
            answer_status, headers, payload = await raw_request(mode.url, head, b"abcd")
            assert answer_status == status
            assert headers["Content-Type"].startswith("application/json")
            assert json.loads(payload)["error"]["code"] == code
        finally:
            await mode.stop()

    run(body)
    assert "Traceback" not in caplog.text and not [r for r in caplog.records if r.exc_info]
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 0


async def open_socket(session: aiohttp.ClientSession, url: str, token: str) -> int:
    """A WebSocket on `token` with negotiate skipped (as a client holding a token may): the status
    of the upgrade (101 when it was taken)."""
    try:
        socket = await session.ws_connect(url.replace("http", "ws", 1) + f"&access_token={token}")
    except aiohttp.WSServerHandshakeError as error:
        return error.status
    session_sockets.append(socket)
    return 101


session_sockets: list[aiohttp.ClientWebSocketResponse] = []


def test_one_address_or_one_token_cannot_take_every_websocket() -> None:
    """Item 2: one token reused, negotiate skipped, from one address: that address gets its share,
    then 429; another address still connects."""

    async def body() -> None:
        hub_limits = HubLimits(max_connections=10, max_connections_per_address=4, max_connections_per_token=3)
        mode = await start("127.0.0.1", 0, KEY, hub_limits=hub_limits)
        attacker = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(ATTACKER, 0)))
        visitor = aiohttp.ClientSession()
        try:
            url = mode.hub.client_url(HUB)
            first, second = mode.hub.issue_token(HUB), mode.hub.issue_token(HUB)
            assert [await open_socket(attacker, url, first) for _ in range(4)] == [101, 101, 101, 429]
            assert [await open_socket(attacker, url, second) for _ in range(2)] == [101, 429]
            assert await open_socket(visitor, url, mode.hub.issue_token(HUB)) == 101
        finally:
            for socket in session_sockets:
                await socket.close()
            session_sockets.clear()
            await attacker.close()
            await visitor.close()
            await mode.stop()

    run(body)


# Item 12: the small ones


def masked(payload: bytes) -> bytes:
    key = os.urandom(4)
    return (
        struct.pack("!BB", 0x81, 0x80 | len(payload))
        + key
        + bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    )


def test_an_unmasked_client_frame_closes_the_connection_with_a_protocol_error() -> None:
    """RFC 6455, 5.1: the server must close the connection on a client frame that is not masked."""

    async def body() -> None:
        mode = await start("127.0.0.1", 0, KEY)
        try:
            key = base64.b64encode(os.urandom(16)).decode()
            upgrade = (
                f"GET /client/?hub={HUB}&access_token={mode.hub.issue_token(HUB)} HTTP/1.1\r\nHost: x\r\n"
                f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            )
            reader, writer = await open_from(mode.url, "127.0.0.1", upgrade.encode())
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            writer.write(masked(json.dumps({"protocol": "json", "version": 1}).encode() + b"\x1e"))
            assert await asyncio.wait_for(reader.readexactly(5), 5) == b"\x81\x03{}\x1e"
            ping = json.dumps({"type": 6}).encode() + b"\x1e"
            writer.write(struct.pack("!BB", 0x81, len(ping)) + ping)  # no mask bit, no key
            rest = await asyncio.wait_for(reader.read(), 10)  # the server closes
            assert b"\x88\x02\x03\xea" in rest  # a close frame with 1002 (protocol error)
            deadline = time.monotonic() + 5
            while mode.hub.online(HUB) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert mode.hub.online(HUB) == 0
            writer.close()
        finally:
            await mode.stop()

    run(body)


def test_the_server_header_names_no_versions_and_a_repeated_query_value_is_not_taken_silently() -> None:
    async def body() -> None:
        mode = await start("127.0.0.1", 0, KEY)
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(f"{mode.url}/api/health") as response:
                    assert response.headers["Server"] == "broadcast-local"
                # As the Functions host, the worker gets "0,5" (not the first value): not an id.
                url = f"{mode.url}/api/messages?after=0&after=5"
                async with session.get(url, allow_redirects=False) as response:
                    assert response.status == 400
                    assert (await response.json())["error"]["code"] == "invalid_after"
        finally:
            await mode.stop()

    run(body)


def test_a_request_line_claiming_http_2_is_answered_505_in_http_1_1() -> None:
    async def body() -> None:
        mode = await start("127.0.0.1", 0, KEY)
        try:
            request = b"GET /api/health HTTP/2.0\r\nHost: x\r\nConnection: close\r\n\r\n"
            reader, writer = await open_from(mode.url, "127.0.0.1", request)
            answer = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            assert answer.startswith(b"HTTP/1.1 505 ")
            assert status_and_error(answer)[1]["code"] == "http_version_not_supported"
        finally:
            await mode.stop()

    run(body)
