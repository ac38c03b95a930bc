"""The SignalR-compatible endpoint alone: negotiate, tokens, handshake, broadcast, slow clients."""

from __future__ import annotations

import asyncio
import gc
import json
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web
from local_support import raw_request

from local.hub import RECORD_SEPARATOR, Hub, HubLimits

HUB = "broadcast"


@asynccontextmanager
async def serving(hub: Hub) -> AsyncIterator[str]:
    """`hub` alone on a free loopback port; yields its base URL."""
    app = web.Application()
    app.add_routes(hub.routes())
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    hub.base_url = url
    try:
        yield url
    finally:
        await hub.shutdown()
        await runner.cleanup()


@asynccontextmanager
async def running_hub(limits: HubLimits | None = None) -> AsyncIterator[tuple[Hub, str]]:
    hub = Hub({HUB}, limits=limits)
    async with serving(hub) as url:
        yield hub, url


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(body())


async def negotiate(
    session: aiohttp.ClientSession, url: str, token: str, hub: str = HUB
) -> aiohttp.ClientResponse:
    return await session.post(
        f"{url}/client/negotiate?hub={hub}&negotiateVersion=1", headers={"Authorization": f"Bearer {token}"}
    )


async def connect(session: aiohttp.ClientSession, hub: Hub, url: str) -> aiohttp.ClientWebSocketResponse:
    token = hub.issue_token(HUB)
    negotiated = await (await negotiate(session, url, token)).json()
    socket = await session.ws_connect(
        f"{url}/client/?hub={HUB}&id={negotiated['connectionToken']}&access_token={token}"
    )
    await socket.send_str(json.dumps({"protocol": "json", "version": 1}) + RECORD_SEPARATOR)
    assert await socket.receive_str(timeout=5) == "{}" + RECORD_SEPARATOR
    return socket


def test_negotiate_answers_version_1_with_websockets() -> None:
    async def body() -> None:
        async with running_hub() as (hub, url), aiohttp.ClientSession() as session:
            response = await negotiate(session, url, hub.issue_token(HUB))
            assert response.status == 200
            negotiated = await response.json()
            assert negotiated["negotiateVersion"] == 1
            assert negotiated["availableTransports"] == [
                {"transport": "WebSockets", "transferFormats": ["Text"]}
            ]
            assert negotiated["connectionId"] and negotiated["connectionToken"]

    run(body)


@pytest.mark.parametrize("token_kind", ["missing", "garbage", "other-key", "expired", "other-hub"])
def test_bad_tokens_get_401(token_kind: str) -> None:
    async def body() -> None:
        async with running_hub() as (hub, url), aiohttp.ClientSession() as session:
            tokens = {
                "missing": "",
                "garbage": "not.a.jwt",
                "other-key": Hub({HUB}, base_url=url).issue_token(HUB),
                "expired": hub.issue_token(HUB, lifetime=-10),
                "other-hub": Hub(
                    {"chat"}, base_url=url, signing_key="another-signing-key-of-sufficient-length"
                ).issue_token("chat"),
            }
            headers = {"Authorization": f"Bearer {tokens[token_kind]}"} if tokens[token_kind] else {}
            response = await session.post(f"{url}/client/negotiate?hub={HUB}", headers=headers)
            assert response.status == 401
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(f"{url}/client/?hub={HUB}&access_token={tokens[token_kind]}")
            assert refused.value.status == 401

    run(body)


def test_unknown_hub_is_404() -> None:
    async def body() -> None:
        async with running_hub() as (hub, url), aiohttp.ClientSession() as session:
            response = await negotiate(session, url, hub.issue_token(HUB), hub="nope")
            assert response.status == 404

    run(body)


def test_a_connection_token_is_used_once() -> None:
    async def body() -> None:
        async with running_hub() as (hub, url), aiohttp.ClientSession() as session:
            token = hub.issue_token(HUB)
            negotiated = await (await negotiate(session, url, token)).json()
            target = f"{url}/client/?hub={HUB}&id={negotiated['connectionToken']}&access_token={token}"
            first = await session.ws_connect(target)
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(target)
            assert refused.value.status == 404
            await first.close()

    run(body)


@pytest.mark.parametrize(
    "handshake",
    [
        '{"protocol": "messagepack", "version": 1}',
        '{"protocol": "json", "version": 2}',
        "not json",
        "[1]",
        "null",
        '"json"',
        "[" * 8000 + "]" * 8000,
        "1" * 5000,
    ],
)
def test_handshake_errors_are_answered_then_closed(handshake: str, caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        async with running_hub() as (hub, url), aiohttp.ClientSession() as session:
            token = hub.issue_token(HUB)
            socket = await session.ws_connect(f"{url}/client/?hub={HUB}&access_token={token}")
            await socket.send_str(handshake + RECORD_SEPARATOR)
            reply = await socket.receive_str(timeout=5)
            assert "error" in json.loads(reply.rstrip(RECORD_SEPARATOR))
            closing = await socket.receive(timeout=5)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert hub.online(HUB) == 0

    run(body)
    assert not [record for record in caplog.records if record.exc_info], "a bad handshake logged a traceback"


def test_broadcast_reaches_every_connection_and_events_fire() -> None:
    async def body() -> None:
        events: list[str] = []

        async def record(event: str, _connection: object) -> None:
            events.append(event)

        async with running_hub() as (hub, url), aiohttp.ClientSession() as session:
            hub.on_connection_event(record)
            sockets = [await connect(session, hub, url) for _ in range(3)]
            assert hub.online(HUB) == 3
            assert hub.broadcast(HUB, "newMessage", [{"id": 1}]) == 3
            for socket in sockets:
                frame = json.loads((await socket.receive_str(timeout=5)).rstrip(RECORD_SEPARATOR))
                assert frame == {"type": 1, "target": "newMessage", "arguments": [{"id": 1}]}
            await sockets[0].send_str(json.dumps({"type": 7}) + RECORD_SEPARATOR)
            await sockets[0].receive(timeout=5)
            for socket in sockets[1:]:
                await socket.close()
        assert events.count("connected") == 3 and events.count("disconnected") == 3

    run(body)


def test_a_client_that_stops_reading_is_dropped_without_stalling_the_others() -> None:
    async def body() -> None:
        async with running_hub() as (hub, url), aiohttp.ClientSession() as session:
            slow = await connect(session, hub, url)
            (slow_id,) = list(hub.connections[HUB])
            fast = await connect(session, hub, url)
            (fast_id,) = [c for c in hub.connections[HUB] if c != slow_id]
            payload = "x" * 256 * 1024
            received = 0
            for index in range(120):
                hub.broadcast(HUB, "newMessage", [{"id": index, "text": payload}])
                # The fast client keeps reading; the slow one never does.
                frame = await fast.receive_str(timeout=5)
                received += frame.count(RECORD_SEPARATOR)
            assert received == 120
            slow_state = hub.connections[HUB].get(slow_id)
            assert slow_state is None or slow_state.dropped, "the client that stopped reading was kept"
            assert not hub.connections[HUB][fast_id].dropped
            await slow.close()
            await fast.close()

    run(body)


def test_idle_connections_get_keepalive_pings() -> None:
    async def body() -> None:
        limits = HubLimits(keepalive_interval=0.3)
        async with running_hub(limits) as (hub, url), aiohttp.ClientSession() as session:
            socket = await connect(session, hub, url)
            frame = json.loads((await socket.receive_str(timeout=5)).rstrip(RECORD_SEPARATOR))
            assert frame == {"type": 6}
            await socket.close()

    run(body)


def test_rest_broadcast_shape_reaches_clients() -> None:
    async def body() -> None:
        async with running_hub() as (hub, url), aiohttp.ClientSession() as session:
            socket = await connect(session, hub, url)
            headers = {"Authorization": f"Bearer {hub.issue_server_token(HUB)}"}
            payload = {"target": "newMessage", "arguments": [{"id": 7}]}
            response = await session.post(f"{url}/api/v1/hubs/{HUB}", json=payload, headers=headers)
            assert response.status == 202
            frame = json.loads((await socket.receive_str(timeout=5)).rstrip(RECORD_SEPARATOR))
            assert frame == {"type": 1, **payload}
            refused = await session.post(f"{url}/api/v1/hubs/{HUB}", json=payload)
            assert refused.status == 401
            await socket.close()

    run(body)


def test_a_client_token_cannot_broadcast_through_the_rest_api() -> None:
    """The REST API takes server tokens only (audience = its URL), as Azure SignalR's does: the
    client token that anybody gets from the anonymous negotiate is refused there."""

    async def body() -> None:
        async with running_hub() as (hub, url), aiohttp.ClientSession() as session:
            socket = await connect(session, hub, url)
            forged = {"target": "newMessage", "arguments": [{"id": 424242, "text": "forged"}]}
            for token in (hub.issue_token(HUB), hub.issue_token(HUB, user_id="someone")):
                response = await session.post(
                    f"{url}/api/v1/hubs/{HUB}", json=forged, headers={"Authorization": f"Bearer {token}"}
                )
                assert response.status == 401
                assert (await response.json())["error"]["code"] == "unauthorized"
            # Nor in the query, where the client endpoints take it.
            response = await session.post(
                f"{url}/api/v1/hubs/{HUB}?access_token={hub.issue_token(HUB)}", json=forged
            )
            assert response.status == 401
            hub.broadcast(HUB, "marker", [])
            frame = json.loads((await socket.receive_str(timeout=5)).rstrip(RECORD_SEPARATOR))
            assert frame["target"] == "marker", "a forged broadcast reached the client"
            await socket.close()

    run(body)


def test_a_server_token_is_refused_on_the_client_endpoints() -> None:
    async def body() -> None:
        async with running_hub() as (hub, url), aiohttp.ClientSession() as session:
            server_token = hub.issue_server_token(HUB)
            assert (await negotiate(session, url, server_token)).status == 401
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(f"{url}/client/?hub={HUB}&access_token={server_token}")
            assert refused.value.status == 401

    run(body)


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"not json", "malformed_json"),
        (b"\xff\xfe", "malformed_json"),
        (b"[" * 8000 + b"]" * 8000, "malformed_json"),
        (b"[1]", "bad_request"),
        (b"{}", "bad_request"),
        (b'{"target": 1}', "bad_request"),
        (b'{"target": ""}', "bad_request"),
        (b'{"target": "newMessage", "arguments": {"id": 1}}', "bad_request"),
    ],
)
def test_a_bad_rest_body_is_a_400_in_the_api_error_shape(payload: bytes, code: str) -> None:
    async def body() -> None:
        async with running_hub() as (hub, url), aiohttp.ClientSession() as session:
            headers = {
                "Authorization": f"Bearer {hub.issue_server_token(HUB)}",
                "Content-Type": "application/json",
            }
            response = await session.post(f"{url}/api/v1/hubs/{HUB}", data=payload, headers=headers)
            assert response.status == 400
            assert response.content_type == "application/json"
            error = (await response.json())["error"]
            assert error["code"] == code and isinstance(error["message"], str)

    run(body)


def test_a_token_header_that_is_not_utf8_is_a_401_not_a_500() -> None:
    async def body() -> None:
        async with running_hub() as (_hub, url):
            bad = b"\r\nAuthorization: Bearer \xff\xfe"
            status, fields, payload = await raw_request(
                url, b"POST /api/v1/hubs/" + HUB.encode() + b" HTTP/1.1" + bad, b"{}"
            )
            assert status == 401 and fields.get("Content-Type", "").startswith("application/json")
            assert json.loads(payload)["error"]["code"] == "unauthorized"
            status, _, _ = await raw_request(
                url, b"POST /client/negotiate?hub=" + HUB.encode() + b" HTTP/1.1" + bad
            )
            assert status == 401

    run(body)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_connection_token_expires_and_then_asks_to_negotiate_again() -> None:
    clock = FakeClock()

    async def body() -> None:
        hub = Hub({HUB}, limits=HubLimits(pending_ttl=10), clock=clock)
        async with serving(hub) as url, aiohttp.ClientSession() as session:
            token = hub.issue_token(HUB)
            stale = (await (await negotiate(session, url, token)).json())["connectionToken"]
            clock.now += 5
            fresh = (await (await negotiate(session, url, token)).json())["connectionToken"]
            clock.now += 6  # the first is 11 s old, the second 6 s
            refused = await session.get(f"{url}/client/?hub={HUB}&id={stale}&access_token={token}")
            assert refused.status == 404 and "negotiate again" in await refused.text()
            socket = await session.ws_connect(f"{url}/client/?hub={HUB}&id={fresh}&access_token={token}")
            await socket.close()
            # Used once: the same token is refused the second time; forgotten once it has expired.
            again = await session.get(f"{url}/client/?hub={HUB}&id={fresh}&access_token={token}")
            assert again.status == 404
            assert hub.used_tokens() == 1
            clock.now += 5
            assert hub.used_tokens() == 0

    run(body)


async def negotiate_from(url: str, token: str, address: str) -> str:
    """A negotiate from a client at `address` (loopback: 127.0.0.0/8 is all this machine's)."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    async with aiohttp.ClientSession(connector=connector) as session:
        response = await negotiate(session, url, token)
        assert response.status == 200, await response.text()
        return (await response.json())["connectionToken"]


def test_a_negotiate_flood_holds_nothing_and_shuts_nobody_out() -> None:
    """Issue 30, item 3: 10,000 negotiates from five addresses used to fill the table of unused
    tokens, and everyone got 429 for a minute. Tokens are signed now: a flood stores nothing, every
    token of it still connects, and a new client negotiates and connects at once."""

    async def body() -> None:
        hub = Hub({HUB})
        async with serving(hub) as url, aiohttp.ClientSession() as session:
            token = hub.issue_token(HUB)
            flood = []
            for address in ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"):
                connector = aiohttp.TCPConnector(local_addr=(address, 0))
                async with aiohttp.ClientSession(connector=connector) as attacker:
                    for _ in range(2_001):
                        async with await negotiate(attacker, url, token) as response:
                            assert response.status == 200
                            flood.append((await response.json())["connectionToken"])
            assert hub.used_tokens() == 0
            for connection_token in (await negotiate_from(url, token, "127.0.0.7"), flood[0], flood[-1]):
                socket = await session.ws_connect(
                    f"{url}/client/?hub={HUB}&id={connection_token}&access_token={token}"
                )
                await socket.close()

    run(body)


def test_broadcasts_queued_together_leave_as_one_message_of_records_in_order() -> None:
    """Records that pile up for the same clients go out as one WebSocket message (as ASP.NET Core
    SignalR sends what its pipe holds); a record too big to join goes alone, still in order."""

    async def body() -> None:
        async with running_hub() as (hub, url), aiohttp.ClientSession() as session:
            socket = await connect(session, hub, url)
            big = "x" * (20 * 1024)
            for index in range(3):
                hub.broadcast(HUB, "newMessage", [{"id": index}])
            hub.broadcast(HUB, "newMessage", [{"id": 3, "text": big}])
            frames = [await socket.receive_str(timeout=5), await socket.receive_str(timeout=5)]
            records = [[json.loads(r) for r in frame.split(RECORD_SEPARATOR) if r] for frame in frames]
            assert [[record["arguments"][0]["id"] for record in frame] for frame in records] == [
                [0, 1, 2],
                [3],
            ]
            assert all(frame.endswith(RECORD_SEPARATOR) for frame in frames)
            await socket.close()

    run(body)


# Issue 21, items 1 and 4: what one client can make the hub hold, and for how long


async def frames_until_closed(socket: aiohttp.ClientWebSocketResponse) -> list[str]:
    """Every text frame the server sends until it closes the connection."""
    frames = []
    while True:
        message = await socket.receive(timeout=5)
        if message.type != aiohttp.WSMsgType.TEXT:
            assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), message
            return frames
        frames.append(message.data)


@pytest.mark.parametrize("invocation_id", ["x" * 30_000, 12345, ["a"]])
def test_an_invocation_id_that_is_long_or_not_a_string_is_not_echoed(invocation_id: object) -> None:
    async def body() -> None:
        async with running_hub() as (hub, url), aiohttp.ClientSession() as session:
            socket = await connect(session, hub, url)
            invocation = {"type": 1, "invocationId": invocation_id, "target": "send", "arguments": []}
            await socket.send_str(json.dumps(invocation) + RECORD_SEPARATOR)
            frames = await frames_until_closed(socket)
            assert sum(len(frame) for frame in frames) < 500, "the answer repeated the client's input"
            close = json.loads(frames[-1].rstrip(RECORD_SEPARATOR))
            assert close["type"] == 7 and "invocationId" in close["error"]
            assert await eventually(lambda: hub.online(HUB) == 0)

    run(body)


def test_a_short_invocation_id_gets_its_completion() -> None:
    async def body() -> None:
        async with running_hub() as (hub, url), aiohttp.ClientSession() as session:
            socket = await connect(session, hub, url)
            invocation = {"type": 1, "invocationId": "7", "target": "send", "arguments": []}
            await socket.send_str(json.dumps(invocation) + RECORD_SEPARATOR)
            reply = json.loads((await socket.receive_str(timeout=5)).rstrip(RECORD_SEPARATOR))
            assert reply["type"] == 3 and reply["invocationId"] == "7" and reply["error"]
            await socket.close()

    run(body)


def test_a_message_over_32_kib_closes_the_connection_with_1009() -> None:
    """ASP.NET Core SignalR's MaximumReceiveMessageSize (32 KB): the hub never buffers more."""

    async def body() -> None:
        async with running_hub() as (hub, url), aiohttp.ClientSession() as session:
            socket = await connect(session, hub, url)
            ping = json.dumps({"type": 6}) + RECORD_SEPARATOR
            await socket.send_str(ping * (32 * 1024 // len(ping)))  # just under: fine
            await socket.send_str(ping * (33 * 1024 // len(ping)))
            closing = await socket.receive(timeout=5)
            assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 1009
            await socket.close()
            assert await eventually(lambda: hub.online(HUB) == 0)

    run(body)


def test_connections_past_the_limit_are_refused_with_429() -> None:
    async def body() -> None:
        async with (
            running_hub(HubLimits(max_connections=2)) as (hub, url),
            aiohttp.ClientSession() as session,
        ):
            sockets = [await connect(session, hub, url) for _ in range(2)]
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await connect(session, hub, url)
            assert refused.value.status == 429
            await sockets[0].close()
            assert await eventually(lambda: hub.online(HUB) == 1)
            sockets[0] = await connect(session, hub, url)  # a freed slot is taken again
            for socket in sockets:
                await socket.close()

    run(body)


async def eventually(condition: Callable[[], bool], timeout: float = 5) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def test_a_closed_connection_is_released_whole() -> None:
    """The keep-alive loop and the broadcast pump used to keep the last connection they handled,
    queue included, for as long as they then waited."""

    async def body() -> None:
        limits = HubLimits(keepalive_interval=0.1)
        async with running_hub(limits) as (hub, url), aiohttp.ClientSession() as session:
            socket = await connect(session, hub, url)
            (connection,) = hub.connections[HUB].values()
            gone = weakref.ref(connection)
            del connection
            hub.broadcast(HUB, "newMessage", [{"id": 1}])
            assert "newMessage" in await socket.receive_str(timeout=5)
            assert await socket.receive_str(timeout=5) == json.dumps({"type": 6}) + RECORD_SEPARATOR
            await socket.close()
            assert await eventually(lambda: hub.online(HUB) == 0)
            assert await eventually(lambda: gc.collect() >= 0 and gone() is None), "still referenced"

    run(body)


def test_a_silent_client_is_dropped_after_the_client_timeout_and_a_pinging_one_is_kept() -> None:
    """Azure SignalR: the service drops a client it has received no message from (keep-alive pings
    included) within connectionTimeoutInSeconds (30 s; here 0.6 s)."""

    async def body() -> None:
        limits = HubLimits(keepalive_interval=0.2, client_timeout=0.6)
        async with running_hub(limits) as (hub, url), aiohttp.ClientSession() as session:
            started = asyncio.get_running_loop().time()
            silent = await connect(session, hub, url)
            talking = await connect(session, hub, url)

            async def keep_pinging() -> None:
                while True:
                    await talking.send_str(json.dumps({"type": 6}) + RECORD_SEPARATOR)
                    await asyncio.sleep(0.1)

            pinger = asyncio.create_task(keep_pinging())
            frames = await frames_until_closed(silent)
            elapsed = asyncio.get_running_loop().time() - started
            assert 0.6 <= elapsed < 3, f"dropped after {elapsed:.2f} s"
            close = json.loads(frames[-1].rstrip(RECORD_SEPARATOR))
            assert close["type"] == 7 and close["allowReconnect"] is True and "timed out" in close["error"]
            assert frames[0] == json.dumps({"type": 6}) + RECORD_SEPARATOR  # it was pinged meanwhile
            assert await eventually(lambda: hub.online(HUB) == 1)
            # The client that pings stays, well past the timeout.
            await asyncio.sleep(1.0)
            assert not talking.closed and hub.online(HUB) == 1
            pinger.cancel()
            await talking.close()

    run(body)


def test_an_address_that_churns_connections_is_held_to_its_rate() -> None:
    """Issue 30, item 6: 584 connections a second each left rows in the database. One address may
    open its share at once, then `connects_per_second_per_address`; another address is not held."""
    clock = FakeClock()

    async def body() -> None:
        limits = HubLimits(max_connections_per_address=3, connects_per_second_per_address=2)
        hub = Hub({HUB}, limits=limits, clock=clock)
        async with serving(hub) as url, aiohttp.ClientSession() as session:
            token = hub.issue_token(HUB)

            async def churn() -> int:
                try:
                    socket = await session.ws_connect(f"{url}/client/?hub={HUB}&access_token={token}")
                except aiohttp.WSServerHandshakeError as error:
                    return error.status
                await socket.close()
                return 101

            assert [await churn() for _ in range(4)] == [101, 101, 101, 429]
            clock.now += 0.5  # one more connection's worth of budget
            assert [await churn() for _ in range(2)] == [101, 429]
            connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
            async with aiohttp.ClientSession(connector=connector) as other:
                socket = await other.ws_connect(
                    f"{url}/client/?hub={HUB}&access_token={hub.issue_token(HUB)}"
                )
                await socket.close()

    run(body)
