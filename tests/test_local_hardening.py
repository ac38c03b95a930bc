"""The local mode under attack and under faults (issue 12): forged broadcasts, secrets in the log,
bad input, errors under /api/ in one JSON shape, and a shutdown that a stalled client cannot hold."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import fcntl
import json
import logging
import os
import socket
import struct
import termios
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from local_support import raw_request

from functions import wiring
from local.hub import RECORD_SEPARATOR, HubLimits
from local.server import LocalMode, redact, start

KEY = "a-publish-key-that-must-not-be-logged"
HUB = wiring.HUB_NAME
HANDSHAKE = json.dumps({"protocol": "json", "version": 1}) + RECORD_SEPARATOR


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(body())


@asynccontextmanager
async def local_mode() -> AsyncIterator[LocalMode]:
    mode = await start("127.0.0.1", 0, KEY)
    try:
        yield mode
    finally:
        if mode.runner.server is not None:  # not stopped by the test itself
            await mode.stop()


async def connect(session: aiohttp.ClientSession, mode: LocalMode) -> aiohttp.ClientWebSocketResponse:
    """A client as the site connects: the API's negotiate, then the hub's, then the WebSocket."""
    async with session.post(f"{mode.url}/api/negotiate") as response:
        info = await response.json()
    headers = {"Authorization": f"Bearer {info['accessToken']}"}
    async with session.post(
        f"{mode.url}/client/negotiate?hub={HUB}&negotiateVersion=1", headers=headers
    ) as r:
        token = (await r.json())["connectionToken"]
    socket = await session.ws_connect(info["url"].replace("http", "ws", 1) + f"&id={token}", headers=headers)
    await socket.send_str(HANDSHAKE)
    assert await socket.receive_str(timeout=5) == "{}" + RECORD_SEPARATOR
    return socket


async def next_invocation(socket: aiohttp.ClientWebSocketResponse, target: str) -> dict[str, Any]:
    """The next invocation of `target` (presence and pings pass by)."""
    while True:
        for record in (await socket.receive_str(timeout=5)).split(RECORD_SEPARATOR):
            if record and (frame := json.loads(record)).get("target") == target:
                return frame


# 1. Security: a client's token cannot broadcast


def test_the_token_from_the_anonymous_negotiate_cannot_broadcast_a_forged_message() -> None:
    async def body() -> None:
        async with local_mode() as mode, aiohttp.ClientSession() as session:
            listener = await connect(session, mode)
            async with session.post(f"{mode.url}/api/negotiate") as response:
                client_token = (await response.json())["accessToken"]
            forged = {"target": "newMessage", "arguments": [{"id": 424242, "text": "forged"}]}
            async with session.post(
                f"{mode.url}/api/v1/hubs/{HUB}",
                json=forged,
                headers={"Authorization": f"Bearer {client_token}"},
            ) as response:
                assert response.status == 401
                assert (await response.json())["error"]["code"] == "unauthorized"
            async with session.post(
                f"{mode.url}/api/messages", json={"text": "real"}, headers={"x-functions-key": KEY}
            ) as response:
                assert response.status == 202
            # The first message the client sees is the real one: the forged one never went out.
            message = (await next_invocation(listener, "newMessage"))["arguments"][0]
            assert (message["id"], message["text"]) == (1, "real")
            # A server (the REST URL as audience, as an access key signs on Azure) still can.
            server = {"Authorization": f"Bearer {mode.hub.issue_server_token(HUB)}"}
            ping = {"target": "newMessage", "arguments": [{"id": 2, "text": "from a server"}]}
            async with session.post(f"{mode.url}/api/v1/hubs/{HUB}", json=ping, headers=server) as response:
                assert response.status == 202
            assert (await next_invocation(listener, "newMessage"))["arguments"][0]["id"] == 2
            await listener.close()

    run(body)


# 2. Secrets in the access log


@pytest.mark.parametrize(
    ("sent", "logged"),
    [
        ("/api/messages?code=s3cret", "/api/messages?code=***"),
        ("/client/?hub=broadcast&id=x&access_token=a.b.c", "/client/?hub=***&id=***&access_token=***"),
        ("/x?CODE=1&acc%65ss_token=2&take=3", "/x?***=***&***=***&take=***"),
        ("/x?code&other=code%3D1", "/x?code&***=***"),
        # Issue 30, item 11: near misses carry the key in a name or a value.
        ("/api/messages?code%3dKEY", "/api/messages?***"),
        ("/api/messages;code=KEY", "/api/messages;***"),
        ("/api/messages?co+de=KEY", "/api/messages?***=***"),
        ("/api/messages?code%00=KEY&after=KEY", "/api/messages?***=***&after=***"),
        ("/x", "/x"),
    ],
)
def test_redact_shows_no_query_value_and_only_the_apis_own_names(sent: str, logged: str) -> None:
    assert redact(sent) == logged
    assert "KEY" not in redact(sent) and "s3cret" not in redact(sent)


def test_no_key_or_token_reaches_the_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secrets: list[str] = [KEY]

    async def body() -> None:
        async with local_mode() as mode, aiohttp.ClientSession() as session:
            text = {"text": "hello"}
            async with session.post(f"{mode.url}/api/messages?code={KEY}", json=text) as response:
                assert response.status == 202
            async with session.post(
                f"{mode.url}/api/messages",
                json=text,
                headers={"x-functions-key": KEY, "Referer": f"/?code={KEY}"},
            ) as response:
                assert response.status == 202
            async with session.post(f"{mode.url}/api/negotiate") as response:
                info = await response.json()
            secrets.append(info["accessToken"])
            bearer = {"Authorization": f"Bearer {info['accessToken']}"}
            async with session.post(f"{mode.url}/client/negotiate?hub={HUB}", headers=bearer) as response:
                connection_token = (await response.json())["connectionToken"]
            socket = await session.ws_connect(
                f"{info['url']}&id={connection_token}&access_token={info['accessToken']}".replace(
                    "http", "ws", 1
                )
            )
            await socket.send_str(HANDSHAKE)
            await socket.receive_str(timeout=5)
            await socket.close()
            server_token = mode.hub.issue_server_token(HUB)
            secrets.append(server_token)
            async with session.post(
                f"{mode.url}/api/v1/hubs/{HUB}",
                json={"target": "t", "arguments": []},
                headers={"Authorization": f"Bearer {server_token}"},
            ) as response:
                assert response.status == 202

    run(body)
    logged = [record.getMessage() for record in caplog.records]
    access = [line for line in logged if '"POST ' in line or '"GET ' in line]
    assert any("/api/messages?code=*** " in line for line in access), access
    assert any("access_token=***" in line for line in access), access
    for secret in secrets:
        assert not [line for line in logged if secret in line], "a key or token was logged"


# 3 and 4. Bad input: a clean 4xx, in one JSON error shape under /api/

OVER_1_MIB = b'{"text": "' + b"x" * (1 << 20) + b'"}'


@pytest.mark.parametrize(
    ("request_head", "body", "status", "code"),
    [
        (b"POST /api/messages HTTP/1.1\r\nx-functions-key: \xff\xfe", b'{"text": "x"}', 401, "unauthorized"),
        (b"POST /api/messages HTTP/1.1", b'{"text": "x"}', 401, "unauthorized"),
        (b"POST /api/messages HTTP/1.1\r\nx-functions-key: wrong", b'{"text": "x"}', 401, "unauthorized"),
        (b"POST /api/messages?code=%ff HTTP/1.1", b'{"text": "x"}', 401, "unauthorized"),
        (
            b"POST /api/messages HTTP/1.1\r\nContent-Type: application/json\r\nx-functions-key: "
            + KEY.encode(),
            OVER_1_MIB,
            413,
            "payload_too_large",
        ),
        (b"PUT /api/messages HTTP/1.1", b"", 405, "method_not_allowed"),
        (b"GET /api/negotiate HTTP/1.1", b"", 405, "method_not_allowed"),
        (b"GET /api/nothing-here HTTP/1.1", b"", 404, "not_found"),
        (b"POST /api/nothing/here HTTP/1.1", b"", 404, "not_found"),
        (b"GET /api HTTP/1.1", b"", 404, "not_found"),
        (b"POST /api/v1/hubs/nope HTTP/1.1", b"{}", 404, "not_found"),
        (b"POST /api/v1/hubs/broadcast HTTP/1.1", b"{}", 401, "unauthorized"),
    ],
)
def test_every_error_under_api_is_json_with_a_code_and_a_message(
    request_head: bytes, body: bytes, status: int, code: str
) -> None:
    async def scenario() -> None:
        async with local_mode() as mode:
            answer, headers, payload = await raw_request(mode.url, request_head, body)
            assert answer == status
            assert headers["Content-Type"].startswith("application/json")
            error = json.loads(payload)["error"]
            assert error["code"] == code
            assert isinstance(error["message"], str) and error["message"]
            if status == 405:
                # HEAD comes with every GET route.
                allowed = {method.strip() for method in headers["Allow"].split(",")} - {"HEAD"}
                assert allowed == ({"GET", "POST"} if b"/messages" in request_head else {"POST"})
            assert mode.database.count(wiring.MESSAGES_TABLE) == 0

    run(scenario)


def test_paths_outside_api_keep_the_site_404_page() -> None:
    async def scenario() -> None:
        async with local_mode() as mode:
            status, headers, payload = await raw_request(mode.url, b"GET /no-such-page HTTP/1.1")
            assert status == 404 and headers["Content-Type"].startswith("text/html")
            assert b"<html" in payload.lower()
            status, headers, _ = await raw_request(mode.url, b"GET /apidocs HTTP/1.1")
            assert status == 404 and headers["Content-Type"].startswith("text/html")

    run(scenario)


# 5. Shutdown with a client that stopped reading


async def stalled_client(mode: LocalMode) -> socket.socket:
    """A raw WebSocket client with a tiny receive buffer: it does the handshakes, then never reads."""
    loop = asyncio.get_running_loop()
    host, port = mode.url.removeprefix("http://").split(":")
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.setblocking(False)
    await loop.sock_connect(client, (host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    token = mode.hub.issue_token(HUB)
    upgrade = (
        f"GET /client/?hub={HUB}&access_token={token} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await loop.sock_sendall(client, upgrade.encode())
    payload, mask = HANDSHAKE.encode(), os.urandom(4)
    masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    await loop.sock_sendall(client, struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + masked)
    received = b""
    # The 101 answer, then the handshake answer: a 5-byte text frame holding `{}` + 0x1E.
    while b"\r\n\r\n" not in received or len(received.partition(b"\r\n\r\n")[2]) < 5:
        chunk = await asyncio.wait_for(loop.sock_recv(client, 4096), timeout=5)
        assert chunk, "the server closed during the handshakes"
        received += chunk
    assert received.startswith(b"HTTP/1.1 101")
    assert received.partition(b"\r\n\r\n")[2][:5] == b"\x81\x03{}\x1e"
    return client


async def eventually(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


@pytest.mark.parametrize("dropped", [True, False], ids=["dropped-as-too-slow", "stalled"])
def test_shutdown_takes_under_5_s_with_a_client_that_never_reads(dropped: bool) -> None:
    async def body() -> None:
        mode = await start("127.0.0.1", 0, KEY)
        # A short queue drops the client quickly; a long one keeps it, stalled, with a full buffer.
        queue_bytes = (2 if dropped else 64) << 20
        mode.hub.limits = dataclasses.replace(mode.hub.limits, send_queue_bytes=queue_bytes)
        client = await stalled_client(mode)
        try:
            assert await eventually(lambda: mode.hub.online(HUB) == 1, 5)
            (connection,) = mode.hub.connections[HUB].values()
            big = "x" * (256 * 1024)
            for index in range(200 if dropped else 40):
                mode.hub.broadcast(HUB, "newMessage", [{"id": index, "text": big}])
                await asyncio.sleep(0)
            assert await eventually(
                lambda: connection.dropped or (connection.queue.qsize() > 0 and connection.busy), 10
            )
            assert connection.dropped == dropped
            started = time.monotonic()
            await asyncio.wait_for(mode.stop(), timeout=30)
            elapsed = time.monotonic() - started
            assert elapsed < 5, f"shutdown took {elapsed:.1f} s"
        finally:
            client.close()

    run(body)


def test_a_dropped_client_connection_is_closed_although_its_peer_stays_silent() -> None:
    async def body() -> None:
        async with local_mode() as mode:
            mode.hub.limits = dataclasses.replace(mode.hub.limits, send_queue_bytes=2 << 20)
            client = await stalled_client(mode)
            try:
                assert await eventually(lambda: mode.hub.online(HUB) == 1, 5)
                (connection,) = mode.hub.connections[HUB].values()
                for index in range(200):
                    mode.hub.broadcast(HUB, "newMessage", [{"id": index, "text": "x" * (256 * 1024)}])
                    await asyncio.sleep(0)
                assert await eventually(lambda: connection.dropped, 10)
                # Cut off after the bounded close: gone from the hub, its transport closed.
                assert await eventually(lambda: mode.hub.online(HUB) == 0, 5), (
                    "the dropped client is still held"
                )
                assert connection.transport is not None and connection.transport.is_closing()
            finally:
                client.close()

    run(body)


# Issue 21, item 1: what one anonymous WebSocket can make the server hold


def test_the_send_queue_is_capped_in_bytes_not_in_messages() -> None:
    """40 messages of 256 KiB are far fewer than the old 1,000-message cap, but 10 MiB: a client that
    does not read them is dropped once 1 MiB waits, and what waited is released."""

    async def body() -> None:
        async with local_mode() as mode:
            client = await stalled_client(mode)
            try:
                assert await eventually(lambda: mode.hub.online(HUB) == 1, 5)
                (connection,) = mode.hub.connections[HUB].values()
                most = 0
                for index in range(40):
                    mode.hub.broadcast(HUB, "newMessage", [{"id": index, "text": "x" * (256 * 1024)}])
                    await asyncio.sleep(0)
                    most = max(most, connection.queued_bytes)
                assert await eventually(lambda: connection.dropped, 10)
                assert most <= mode.hub.limits.send_queue_bytes == 1 << 20
                assert connection.queue.empty() and connection.queued_bytes == 0
                assert await eventually(lambda: mode.hub.online(HUB) == 0, 5)
            finally:
                client.close()

    run(body)


def unsent_bytes(connection: Any) -> int:
    """What the kernel holds unsent on the server's side of a connection (Linux SIOCOUTQ)."""
    sock = connection.transport.get_extra_info("socket")
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]


def test_what_the_kernel_holds_counts_and_a_client_that_does_not_read_is_dropped_at_1_mib() -> None:
    """Issue 30, item 4: the kernel's send buffer grew by itself to megabytes per socket, outside the
    send queue's count, so a client that never read was not dropped. 1.5 MiB of small messages now
    drop it, and the kernel never holds more than a small fixed buffer for it."""

    async def body() -> None:
        async with local_mode() as mode:
            client = await stalled_client(mode)
            try:
                assert await eventually(lambda: mode.hub.online(HUB) == 1, 5)
                (connection,) = mode.hub.connections[HUB].values()
                most_unsent = 0
                for index in range(256):
                    mode.hub.broadcast(HUB, "newMessage", [{"id": index, "text": "x" * 6144}])
                    await asyncio.sleep(0.001)
                    if not connection.dropped:
                        most_unsent = max(most_unsent, unsent_bytes(connection))
                assert await eventually(lambda: connection.dropped, 10), "not dropped after 1.5 MiB"
                assert most_unsent <= 256 * 1024
            finally:
                client.close()

    run(body)


def masked_text_frame(payload: bytes) -> bytes:
    """A client's WebSocket text frame (masked, as RFC 6455 requires of clients)."""
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    length = len(payload)
    header = struct.pack("!BBH", 0x81, 0x80 | 126, length) if length < 1 << 16 else b""
    assert header, "frames up to 64 KiB here"
    return header + mask + masked


def test_a_client_that_sends_invocations_but_never_reads_holds_a_bounded_backlog() -> None:
    """The issue's attack: negotiate, connect, stop reading, send invocations. Each one's answer
    waits for the client; once 16 KiB wait the hub reads nothing more from it, so its backlog stays
    bounded, and with nothing received the client timeout drops it and everything is released."""

    async def body() -> None:
        mode = await start("127.0.0.1", 0, KEY, hub_limits=HubLimits(client_timeout=1.5))
        client = await stalled_client(mode)
        loop = asyncio.get_running_loop()
        try:
            assert await eventually(lambda: mode.hub.online(HUB) == 1, 5)
            (connection,) = mode.hub.connections[HUB].values()
            record = json.dumps({"type": 1, "invocationId": "i" * 64, "target": "t", "arguments": []})
            per_frame = 200  # about 24 KiB: under the 32 KiB a client's message may have
            frame = masked_text_frame(((record + RECORD_SEPARATOR) * per_frame).encode())
            sent, most = 0, 0

            async def flood() -> None:
                nonlocal sent
                while True:
                    await loop.sock_sendall(client, frame)
                    sent += per_frame

            flooding = asyncio.create_task(flood())
            deadline = loop.time() + 20
            while not connection.dropped and loop.time() < deadline:
                most = max(most, connection.queued_bytes)
                await asyncio.sleep(0.01)
            flooding.cancel()
            assert connection.dropped, "the client was neither dropped nor timed out"
            # Never more queued than the pause threshold plus one frame's answers (~160 bytes each),
            # however many invocations were sent.
            assert most <= mode.hub.limits.read_pause_bytes + per_frame * 160, most
            assert sent * 160 > 4 * most
            assert await eventually(lambda: mode.hub.online(HUB) == 0, 5)
            assert connection.queued_bytes == 0 and connection.queue.empty()
        finally:
            client.close()
            await mode.stop()

    run(body)


# Issue 21, item 5: a request the parser refuses


@pytest.mark.parametrize(
    "head",
    [
        f"GET /api/messages?code={KEY}&pad={'p' * 9000} HTTP/1.1".encode(),
        f"GET /api/messages HTTP/1.1\r\nReferer: /?code={KEY}&pad={'p' * 9000}".encode(),
        f"GET /api/messages?code={KEY} HTTP/1.1\r\nBad Header: x".encode(),
    ],
    ids=["request-line-over-8-KB", "header-over-8-KB", "malformed-header"],
)
def test_a_request_the_parser_refuses_is_answered_in_json_and_logged_without_it(
    head: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    async def scenario() -> None:
        async with local_mode() as mode:
            status, headers, payload = await raw_request(mode.url, head)
            assert status == 400
            assert headers["Content-Type"].startswith("application/json")
            error = json.loads(payload)["error"]
            assert error["code"] == "bad_request" and error["message"]
            assert KEY.encode() not in payload

    run(scenario)
    assert "refused a malformed request" in caplog.text
    assert KEY not in caplog.text, "the key reached the log"


# Issue 21, item 7: half-sent requests


async def open_raw(url: str, data: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(data)
    await writer.drain()
    return reader, writer


def test_a_request_whose_headers_stop_half_way_is_closed_after_the_header_timeout() -> None:
    async def body() -> None:
        mode = await start("127.0.0.1", 0, KEY, header_timeout=0.5)
        try:
            started = time.monotonic()
            reader, writer = await open_raw(mode.url, b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Half: ")
            assert await asyncio.wait_for(reader.read(), timeout=5) == b""  # closed, nothing answered
            assert 0.5 <= time.monotonic() - started < 3
            writer.close()
            # A connection that sends nothing at all goes the same way.
            reader, writer = await open_raw(mode.url, b"")
            assert await asyncio.wait_for(reader.read(), timeout=5) == b""
            writer.close()
        finally:
            await mode.stop()

    run(body)


def test_a_request_whose_body_stops_half_way_gets_408_after_the_body_timeout() -> None:
    async def body() -> None:
        mode = await start("127.0.0.1", 0, KEY, body_timeout=0.5)
        try:
            head = (
                f"POST /api/messages HTTP/1.1\r\nHost: x\r\nx-functions-key: {KEY}\r\n"
                "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            )
            started = time.monotonic()
            reader, writer = await open_raw(mode.url, head.encode() + b'{"text": "hal')
            answer = await asyncio.wait_for(reader.read(), timeout=10)  # the answer, then closed
            assert 0.5 <= time.monotonic() - started < 5
            status_line, _, rest = answer.partition(b"\r\n")
            assert status_line.split()[1] == b"408"
            error = json.loads(rest.partition(b"\r\n\r\n")[2])["error"]
            assert error["code"] == "request_timeout" and "0.5 s" in error["message"]
            writer.close()
            assert mode.database.count(wiring.MESSAGES_TABLE) == 0
        finally:
            await mode.stop()

    run(body)
