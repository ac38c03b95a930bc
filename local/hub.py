"""A SignalR-compatible endpoint that the official clients accept: the local stand-in for Azure
SignalR Service in Serverless mode.

What it speaks (ASP.NET Core SignalR's transport and hub protocols, as the service does):
- `POST /client/negotiate?hub=<hub>` with the access token as `Authorization: Bearer` (or
  `access_token` in the query): negotiate version 1, WebSockets only;
- `GET /client/?hub=<hub>&id=<connectionToken>&access_token=<jwt>`: the WebSocket, JSON hub
  protocol (handshake, invocation, ping, close), records separated by 0x1E;
- `POST /api/v1/hubs/<hub>`: the service's REST broadcast shape `{"target", "arguments"}`, for
  servers only;
- `HEAD /api/hubs/<hub>/connections/<id>?api-version=2022-06-01`: whether a connection exists
  (200, else 404), for a Microsoft Entra token (audience `https://signalr.azure.com`) of an
  identity that holds a data-plane role, as the app's identity does on Azure.
Tokens are HS256 JWTs signed with a key only this process knows. As with the service's access keys,
a token's audience says where it is valid: a client token's is the client URL, a server token's the
REST URL; a client token (which anyone gets from the anonymous negotiate) cannot broadcast.

Limits (see `HubLimits`), so that no client, however hostile, makes the process hold more than a
bounded amount: each connection's send queue is capped in bytes (a client that stops reading is
dropped once it fills, so it never stalls the others); a client's message is at most 32 KiB and
nothing it sends is echoed unbounded; the number of connections is capped in all, per client address
and per access token, so one client cannot take the others' share; connection tokens are signed
and expiring, not stored, so no flood of negotiations fills a table that others need; and, as Azure
SignalR Service does, the hub pings a connection it has sent nothing for 15 s and drops a client it
has received nothing from for 30 s. Every close is bounded: a peer that does not read or answer is
cut off, so neither a dropped client nor a shutdown waits on it; a closed connection leaves nothing
behind.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import secrets
import socket
import struct
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import WSCloseCode, WSMsgType, web

from local.errors import error_exception, error_response
from local.gate import read_body

RECORD_SEPARATOR = "\x1e"
INVOCATION, STREAM_ITEM, COMPLETION, STREAM_INVOCATION, CANCEL, PING, CLOSE = 1, 2, 3, 4, 5, 6, 7
TOKEN_LIFETIME_SECONDS = 3600
# A close (our close record, the WebSocket close handshake) that takes longer than this is given up
# and the TCP connection aborted: a peer that stopped reading would otherwise hold it for good.
CLOSE_TIMEOUT_SECONDS = 2.0
# Whatever part of a client's message the hub repeats in an answer is cut to this many characters.
ECHO_LIMIT = 64
# The audience of Microsoft Entra tokens for the service's data-plane APIs, and the REST API version
# whose connection check the app calls.
ENTRA_AUDIENCE = "https://signalr.azure.com"
REST_API_VERSION = "2022-06-01"
# While a socket's buffer plus the frame stay below this, the broadcast writes the frame at once: well
# under the transport's 64 KiB high-water mark, so the write never waits. Otherwise (a client that
# reads slowly, a big frame) the frame goes through that client's own queue and writer task.
DIRECT_WRITE_LIMIT = 32 * 1024
# Records queued for the same clients go out together, as one WebSocket message of several records,
# up to this size: one write and one read per client instead of one per record. The protocol frames
# records with 0x1E for this, and ASP.NET Core SignalR's WebSocket transport also sends what has
# piled up in its pipe as one message.
MERGE_LIMIT = 16 * 1024
# The kernel's send buffer of a WebSocket (SO_SNDBUF; Linux doubles it for its bookkeeping). Set, it
# stops the kernel's autotuning, which on loopback grew to about 4 MiB per socket: 300 clients that
# never read held 2.8 MB each there, outside the send queue's count (issue 30, item 4).
KERNEL_SEND_BUFFER_BYTES = 32 * 1024
# The largest REST broadcast body (Azure SignalR Service's REST API takes messages up to 1 MB).
REST_BODY_BYTES = 1 << 20
log = logging.getLogger("local.hub")

ConnectionEvent = Callable[[str, "Connection"], Awaitable[None]]


@dataclass(frozen=True, kw_only=True)
class HubLimits:
    """What one client, or all of them, can make the hub hold, and how long it waits for them.
    The defaults are the service's where it has one (docs/sources/local-hub.md)."""

    send_queue_bytes: int = 1 << 20
    """Bytes that may wait for one connection (about 1,000 typical messages); one more and the
    client is dropped as too slow. Counted in bytes, not messages, so big messages cannot add up."""
    read_pause_bytes: int = 16 * 1024
    """While this much waits for a connection, the hub reads nothing more from it (ASP.NET Core
    SignalR's backpressure), so a client that sends but never reads cannot queue answers."""
    max_message_bytes: int = 32 * 1024
    """The largest message a client may send (ASP.NET Core SignalR's MaximumReceiveMessageSize)."""
    max_connections: int = 2_000
    """Open WebSockets, handshakes included; one more is refused with 429."""
    max_connections_per_address: int = 250
    """Open WebSockets from one client address: past it, that address's next one is refused (429),
    so one client can never take the others' share of `max_connections`."""
    connects_per_second_per_address: float = 10.0
    """New WebSockets one client address may open per second, after a first burst of
    `max_connections_per_address`: each connection leaves rows in the database (Connections, change
    tracking), so an address that churns connections faster gets 429 (issue 30, item 6)."""
    max_connections_per_token: int = 8
    """Open WebSockets on one access token (a page holds one at a time; a reconnect negotiates again)."""
    keepalive_interval: float = 15.0
    """A connection sent nothing for this long gets a ping (Azure SignalR: keepAliveIntervalInSeconds)."""
    client_timeout: float = 30.0
    """A client that sent nothing, pings included, for this long is dropped (Azure SignalR:
    connectionTimeoutInSeconds)."""
    handshake_timeout: float = 15.0
    """The wait for the hub protocol's handshake (ASP.NET Core SignalR's HandshakeTimeout)."""
    pending_ttl: float = 60.0
    """A negotiated connection token not used within this time is refused (negotiate again). Tokens
    are signed, not stored, so however many are negotiated none takes a place from another."""


@dataclass(eq=False)
class Connection:
    """One connected client."""

    connection_id: str
    hub: str
    user_id: str | None
    socket: web.WebSocketResponse
    queue: asyncio.Queue[bytes]
    """Encoded records waiting for the connection's writer task."""
    transport: asyncio.Transport | None = None
    dropped: bool = False
    last_sent: float = field(default_factory=time.monotonic)
    last_received: float = field(default_factory=time.monotonic)
    """When the client last sent a message (pings included): the client timeout counts from it."""
    busy: bool = False
    """True while the connection's writer task is sending its backlog."""
    queued_bytes: int = 0
    """Bytes in `queue` and in the frame being written: what the send queue limit counts."""
    drained: asyncio.Event = field(default_factory=asyncio.Event)
    """Set while nothing waits for the connection (or it is gone): the reader's backpressure."""


class Hub:
    """Connections by hub, token issuing and checking, broadcast, and connection events."""

    def __init__(
        self,
        hubs: set[str],
        base_url: str = "",
        signing_key: str | None = None,
        limits: HubLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hubs = hubs
        self.limits = limits or HubLimits()
        self.base_url = base_url.rstrip("/")
        self._clock = clock
        self._key = signing_key or secrets.token_urlsafe(32)
        self._used: dict[str, float] = {}
        """Connection ids whose token was used, until the token expires: a token connects once."""
        self._sockets = 0
        """WebSockets open (handshakes included): what `max_connections` counts."""
        self._connect_budget: dict[str, tuple[float, float]] = {}
        """Per client address: (connections it may still open now, when that was counted)."""
        self._sockets_by: collections.Counter[str] = collections.Counter()
        """The same, by client address and by access token (their own key spaces: `a:`, `t:`)."""
        self._closing: set[asyncio.Task[None]] = set()
        self.connections: dict[str, dict[str, Connection]] = {hub: {} for hub in hubs}
        self._listeners: list[ConnectionEvent] = []
        self.delivered = 0
        self.accepting = True
        """False while the endpoint is down (see `go_down`): new connections get 503."""
        self._outbox: collections.deque[tuple[bytes, list[Connection]]] = collections.deque()
        """Broadcasts not sent yet: the records and the connections they go to, in call order."""
        self._outbox_ready: asyncio.Event | None = None
        self._pump: asyncio.Task[None] | None = None
        self._pinger: asyncio.Task[None] | None = None
        self.data_plane_principals: set[str] = set()
        """Client ids of the identities that hold a data-plane role (SignalR Service Owner) here."""

    # tokens

    def client_url(self, hub: str) -> str:
        """The URL a client is redirected to by negotiate (the token's audience)."""
        return f"{self.base_url}/client/?hub={hub}"

    def rest_url(self, hub: str) -> str:
        """The REST API's URL for `hub` (a server token's audience, as on the service)."""
        return f"{self.base_url}/api/v1/hubs/{hub}"

    def _sign(self, audience: str, lifetime: int, user_id: str | None = None) -> str:
        now = int(time.time())
        # `jti` makes each token its own (two issued in one second would otherwise be equal, and the
        # per-token connection limit would count two visitors as one).
        claims: dict[str, Any] = {
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "jti": secrets.token_urlsafe(12),
        }
        if user_id:
            claims["nameid"] = user_id
        return jwt.encode(claims, self._key, algorithm="HS256")

    def issue_token(
        self, hub: str, user_id: str | None = None, lifetime: int = TOKEN_LIFETIME_SECONDS
    ) -> str:
        """A client access token for `hub`, as the signalRConnectionInfo binding hands out."""
        return self._sign(self.client_url(hub), lifetime, user_id)

    def issue_server_token(self, hub: str, lifetime: int = TOKEN_LIFETIME_SECONDS) -> str:
        """A server token for the REST API of `hub`: what an app server signs with the service's
        access key (audience = the REST URL). In-process callers use `broadcast` instead."""
        return self._sign(self.rest_url(hub), lifetime)

    def issue_entra_token(self, client_id: str, lifetime: int = TOKEN_LIFETIME_SECONDS) -> str:
        """What Microsoft Entra would issue `client_id` for the data-plane audience (the local
        managed identity endpoint hands it out); the hub checks it as the service checks Entra's."""
        now = int(time.time())
        claims = {"aud": ENTRA_AUDIENCE, "appid": client_id, "iat": now, "nbf": now, "exp": now + lifetime}
        return jwt.encode(claims, self._key, algorithm="HS256")

    def connection_info(self, hub: str, user_id: str | None = None) -> dict[str, str]:
        """`{url, accessToken}`: the Azure serverless negotiate shape."""
        return {"url": self.client_url(hub), "accessToken": self.issue_token(hub, user_id)}

    def _check_token(self, request: web.Request, hub: str) -> str | None:
        """The client token of a client endpoint (header or, for WebSockets, the query): its user id."""
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else request.query.get("access_token", "")
        if not token:
            raise web.HTTPUnauthorized(text="missing access token")
        try:
            claims = self._decode(token, self.client_url(hub))
        except jwt.PyJWTError as error:
            raise web.HTTPUnauthorized(text=f"invalid access token: {error}") from None
        return claims.get("nameid")

    def _check_server_token(self, request: web.Request, hub: str) -> None:
        """A server token in the Authorization header (the REST API takes no query token)."""
        header = request.headers.get("Authorization", "")
        if not header.lower().startswith("bearer "):
            raise error_exception(
                web.HTTPUnauthorized, "a server token is required: Authorization: Bearer <jwt>"
            )
        try:
            self._decode(header[7:], self.rest_url(hub))
        except jwt.PyJWTError as error:
            # Typically a client token: its audience is the client URL, not this one.
            raise error_exception(web.HTTPUnauthorized, f"invalid server token: {error}") from None

    def _decode(self, token: str, audience: str) -> dict[str, Any]:
        # A header that is not UTF-8 arrives with surrogate escapes; as bytes it is just a bad token.
        raw = token.encode("utf-8", "surrogateescape")
        return jwt.decode(raw, self._key, algorithms=["HS256"], audience=audience)

    def _hub_of(self, request: web.Request) -> str:
        if not self.accepting:
            raise web.HTTPServiceUnavailable(text="the service is restarting; retry")
        hub = request.query.get("hub", "")
        if hub not in self.hubs:
            raise web.HTTPNotFound(text=f"unknown hub {_echo(hub)}")
        return hub

    # events

    def on_connection_event(self, listener: ConnectionEvent) -> None:
        """`listener(event, connection)` for `connected` and `disconnected`."""
        self._listeners.append(listener)

    async def _emit(self, event: str, connection: Connection) -> None:
        for listener in self._listeners:
            try:
                await listener(event, connection)
            except Exception:
                log.exception("connection event %s for %s failed", event, connection.connection_id)

    # HTTP

    def routes(self) -> list[web.RouteDef]:
        """The endpoint's routes, to mount on an aiohttp application."""
        return [
            web.post("/client/negotiate", self.negotiate),
            web.get("/client/", self.websocket),
            web.post("/api/v1/hubs/{hub}", self.rest_broadcast),
            web.head("/api/hubs/{hub}/connections/{connection_id}", self.rest_connection_exists),
        ]

    def body_limits(self) -> dict[Callable[..., Any], int]:
        """The most body each route's handler reads: only the REST broadcast takes one (after its
        server token is checked)."""
        return {self.rest_broadcast: REST_BODY_BYTES}

    async def negotiate(self, request: web.Request) -> web.Response:
        """Negotiate version 1: a connection token for the WebSocket transport."""
        hub = self._hub_of(request)
        user_id = self._check_token(request, hub)
        connection_id = str(uuid.uuid4())
        return web.json_response(
            {
                "negotiateVersion": 1,
                "connectionId": connection_id,
                "connectionToken": self._connection_token(hub, connection_id, user_id),
                "availableTransports": [{"transport": "WebSockets", "transferFormats": ["Text"]}],
            }
        )

    def _connection_token(self, hub: str, connection_id: str, user_id: str | None) -> str:
        """A connection token that proves itself: signed with the hub's key, for this hub's WebSocket,
        expiring `pending_ttl` after negotiate (on the hub's clock). Nothing is stored until it is
        used, so a flood of negotiations holds nothing and shuts nobody out (issue 30, item 3)."""
        claims: dict[str, Any] = {
            "aud": self._connection_audience(hub),
            "cid": connection_id,
            "until": self._clock() + self.limits.pending_ttl,
        }
        if user_id:
            claims["nameid"] = user_id
        return jwt.encode(claims, self._key, algorithm="HS256")

    def _connection_audience(self, hub: str) -> str:
        return f"{self.client_url(hub)}#connection"

    def _redeem(self, hub: str, token: str) -> tuple[str, str | None]:
        """The connection id and user of a connection token, once: a used, expired or forged one is
        a 404 (negotiate again), as the service answers an unknown connection token."""
        now = self._clock()
        self._forget_used(now)
        try:
            claims = self._decode(token, self._connection_audience(hub))
        except jwt.PyJWTError:
            claims = {}
        connection_id, until = claims.get("cid"), claims.get("until")
        if (
            not isinstance(connection_id, str)
            or not isinstance(until, int | float)
            or until <= now
            or connection_id in self._used
        ):
            raise web.HTTPNotFound(text="unknown, used or expired connection token; negotiate again")
        self._used[connection_id] = until
        return connection_id, claims.get("nameid")

    def _forget_used(self, now: float) -> None:
        # Tokens are used in about the order they were issued (one lifetime for all), so the expired
        # ones are at the front; one used out of order stays a little longer, never past its expiry
        # plus the lifetime.
        while self._used:
            oldest = next(iter(self._used))
            if self._used[oldest] > now:
                return
            del self._used[oldest]

    def used_tokens(self) -> int:
        """Connection tokens used and not yet expired: all the hub keeps of negotiations."""
        self._forget_used(self._clock())
        return len(self._used)

    async def rest_broadcast(self, request: web.Request) -> web.Response:
        """The service's REST API shape: broadcast `{target, arguments}` to a hub (server tokens only)."""
        hub = request.match_info["hub"]
        if hub not in self.hubs:
            raise error_exception(web.HTTPNotFound, f"unknown hub {_echo(hub)}")
        self._check_server_token(request, hub)
        target, arguments = _broadcast_body(await read_body(request, REST_BODY_BYTES))
        self.broadcast(hub, target, arguments)
        return web.Response(status=202)

    async def rest_connection_exists(self, request: web.Request) -> web.Response:
        """`HEAD .../connections/{id}`: 200 if the connection is open here, else 404. Entra tokens
        of a principal with a data-plane role only: a client token is refused (401), a principal
        without the role too (403), as the service does."""
        hub = request.match_info["hub"]
        if request.query.get("api-version") != REST_API_VERSION:
            return web.Response(status=400)
        if hub not in self.hubs:
            return web.Response(status=404)
        header = request.headers.get("Authorization", "")
        if not header.lower().startswith("bearer "):
            return web.Response(status=401)
        try:
            claims = self._decode(header[7:], ENTRA_AUDIENCE)
        except jwt.PyJWTError:
            return web.Response(status=401)
        if claims.get("appid") not in self.data_plane_principals:
            return web.Response(status=403)
        if request.match_info["connection_id"] in self.connections[hub]:
            return web.Response(status=200)
        # The service's answer for a connection it does not hold (a bare 404 is another matter).
        return error_response(
            404,
            f"no connection {request.match_info['connection_id']} in hub {hub}",
            headers={"x-ms-error-code": "Warning.Connection.NotExisted"},
        )

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        """The WebSocket transport with the JSON hub protocol."""
        hub = self._hub_of(request)
        user_id = self._check_token(request, hub)
        shares = self._shares(request)
        token = request.query.get("id")
        if token is None:
            # Like Azure SignalR Service, a client holding an access token may skip negotiate.
            connection_id, negotiated_user = str(uuid.uuid4()), None
        else:
            connection_id, negotiated_user = self._redeem(hub, token)
        # `timeout` bounds the wait for the client's answer to our close frame; a bigger message than
        # max_msg_size closes the connection with 1009 (message too big) before it is buffered whole.
        # No permessage-deflate: broadcast frames are built once for all clients (see _fan_out).
        socket = web.WebSocketResponse(
            heartbeat=None,
            max_msg_size=self.limits.max_message_bytes,
            timeout=CLOSE_TIMEOUT_SECONDS,
            compress=False,
        )
        self._sockets += 1
        self._sockets_by.update(shares)
        try:
            await socket.prepare(request)
            # From here the hub's own limits count this connection, not the server's HTTP gate.
            upgraded = getattr(request.protocol, "upgraded_to_websocket", None)
            if upgraded is not None:
                upgraded()
            transport = request.transport
            _limit_kernel_buffer(transport)
            connection = Connection(
                connection_id,
                hub,
                user_id or negotiated_user,
                socket,
                asyncio.Queue(),
                transport if isinstance(transport, asyncio.Transport) else None,
            )
            connection.drained.set()
            if await self._handshake(connection):
                await self._serve(connection)
        finally:
            self._sockets -= 1
            self._sockets_by.subtract(shares)
            for share in shares:
                if self._sockets_by[share] <= 0:
                    del self._sockets_by[share]
        return socket

    def _take_connect_budget(self, address: str) -> bool:
        """A token bucket per address: `max_connections_per_address` at once, refilled at
        `connects_per_second_per_address`. A full bucket is forgotten, so the dict holds only the
        addresses that connected lately."""
        limits = self.limits
        now = self._clock()
        capacity = float(limits.max_connections_per_address)
        left, counted = self._connect_budget.get(address, (capacity, now))
        left = min(capacity, left + (now - counted) * limits.connects_per_second_per_address)
        if left < 1:
            self._connect_budget[address] = (left, now)
            return False
        self._connect_budget[address] = (left - 1, now)
        if len(self._connect_budget) > 4 * limits.max_connections:
            self._connect_budget = {
                key: (budget, at)
                for key, (budget, at) in self._connect_budget.items()
                if budget + (now - at) * limits.connects_per_second_per_address < capacity
            }
        return True

    def _shares(self, request: web.Request) -> tuple[str, str]:
        """The counters a new WebSocket would take (its address's and its token's), or a 429 when
        the hub, the address or the token holds its most already."""
        limits = self.limits
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else request.query.get("access_token", "")
        shares = (f"a:{request.remote or ''}", f"t:{token}")
        if self._sockets >= limits.max_connections:
            text = f"the hub holds its most connections ({limits.max_connections}); retry later"
        elif self._sockets_by[shares[0]] >= limits.max_connections_per_address:
            text = f"too many connections from this address (at most {limits.max_connections_per_address})"
        elif self._sockets_by[shares[1]] >= limits.max_connections_per_token:
            text = f"too many connections on this access token (at most {limits.max_connections_per_token})"
        elif not self._take_connect_budget(shares[0]):
            rate = limits.connects_per_second_per_address
            text = f"this address opens connections too fast (at most {rate:g} a second)"
        else:
            return shares
        raise web.HTTPTooManyRequests(text=text, headers={"Retry-After": "10"})

    async def _serve(self, connection: Connection) -> None:
        """A connection after its handshake: counted online until it closes, then released."""
        hub, connection_id = connection.hub, connection.connection_id
        self.connections[hub][connection_id] = connection
        writer = asyncio.create_task(self._write(connection))
        self._start_background_tasks()
        log.info("connected %s to %s (%d online)", connection_id, hub, len(self.connections[hub]))
        await self._emit("connected", connection)
        try:
            await self._read(connection)
        finally:
            self.connections[hub].pop(connection_id, None)
            writer.cancel()
            await self._close(connection)
            _release(connection)
            log.info("disconnected %s from %s (%d online)", connection_id, hub, len(self.connections[hub]))
            await self._emit("disconnected", connection)

    async def _handshake(self, connection: Connection) -> bool:
        """The hub protocol's handshake; a bad one is answered with its error record, then closed
        (as ASP.NET Core SignalR does)."""
        socket = connection.socket
        try:
            message = await socket.receive(timeout=self.limits.handshake_timeout)
        except TimeoutError:
            await self._close(connection)
            return False
        if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
            await self._close(connection)
            return False
        if message.type != WSMsgType.TEXT or not message.data.endswith(RECORD_SEPARATOR):
            await self._close(connection, handshake_error="handshake must be one JSON record")
            return False
        try:
            request = json.loads(message.data.split(RECORD_SEPARATOR, 1)[0])
        except (ValueError, RecursionError):
            request = None
        if not isinstance(request, dict):
            error = 'handshake must be a JSON object: {"protocol": "json", "version": 1}'
            await self._close(connection, handshake_error=error)
            return False
        if request.get("protocol") != "json" or request.get("version") != 1:
            error = (
                f"unsupported protocol {_echo(request.get('protocol'))} version "
                f"{_echo(request.get('version'))}; only json version 1"
            )
            await self._close(connection, handshake_error=error)
            return False
        await socket.send_str("{}" + RECORD_SEPARATOR)
        return True

    async def _read(self, connection: Connection) -> None:
        async for message in connection.socket:
            if message.type != WSMsgType.TEXT:
                # Binary, or an error: a message over max_message_bytes has closed the socket (1009).
                break
            connection.last_received = time.monotonic()
            for record in message.data.split(RECORD_SEPARATOR):
                if not record:
                    continue
                try:
                    payload = json.loads(record)
                    kind = payload.get("type")
                except (ValueError, RecursionError, AttributeError):
                    await self._close(connection, "invalid hub protocol message")
                    return
                if kind == CLOSE:
                    return
                if kind == INVOCATION and payload.get("invocationId") is not None:
                    invocation_id = payload["invocationId"]
                    # ASP.NET Core SignalR requires a string; a long one is not repeated back.
                    if not isinstance(invocation_id, str) or len(invocation_id) > ECHO_LIMIT:
                        error = f"invalid invocationId: a string of at most {ECHO_LIMIT} characters"
                        await self._close(connection, error)
                        return
                    # Serverless mode has no hub methods here; answer so a client call does not hang.
                    reply = {
                        "type": COMPLETION,
                        "invocationId": invocation_id,
                        "error": "hub methods are not available in serverless mode",
                    }
                    self._enqueue(connection, _record(reply))
                    if connection.queued_bytes > self.limits.read_pause_bytes:
                        # Read nothing more until it has taken its answers (or is dropped).
                        await connection.drained.wait()
                if connection.dropped:
                    return

    async def _close(
        self,
        connection: Connection,
        error: str | None = None,
        allow_reconnect: bool = False,
        code: int = WSCloseCode.OK,
        handshake_error: str | None = None,
    ) -> None:
        """Close the WebSocket, after the protocol's close record when there is something to say (or
        a refused handshake's error record), within CLOSE_TIMEOUT_SECONDS; past that the TCP
        connection is aborted. A peer that stopped reading fills its socket buffer, and both the
        record and the close frame would wait on it for good."""
        record = None
        if handshake_error is not None:
            record = json.dumps({"error": handshake_error}) + RECORD_SEPARATOR
        elif error or allow_reconnect:
            payload: dict[str, Any] = {"type": CLOSE}
            if error:
                payload["error"] = error
            if allow_reconnect:
                payload["allowReconnect"] = True
            record = json.dumps(payload) + RECORD_SEPARATOR
        socket = connection.socket
        closed = False
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):
                if record is not None and not socket.closed:
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        await socket.send_str(record)
                await socket.close(code=code)
                closed = True
        except TimeoutError:
            log.warning(
                "%s did not take its close within %.0f s: cut off",
                connection.connection_id,
                CLOSE_TIMEOUT_SECONDS,
            )
        finally:
            if not closed and connection.transport is not None:
                connection.transport.abort()

    async def _write(self, connection: Connection) -> None:
        queue = connection.queue
        try:
            while True:
                parts = [await queue.get()]
                connection.busy = True
                size = len(parts[0])
                while size < MERGE_LIMIT and not queue.empty():
                    parts.append(queue.get_nowait())
                    size += len(parts[-1])
                # send_frame waits while the client's socket buffer is full (send_str would encode again).
                await connection.socket.send_frame(b"".join(parts), WSMsgType.TEXT)
                # max(): a drop releases the queue while this frame was on its way.
                connection.queued_bytes = max(0, connection.queued_bytes - size)
                connection.last_sent = time.monotonic()
                connection.busy = not queue.empty()
                if not connection.busy:
                    connection.drained.set()
                self.delivered += len(parts)
        except (ConnectionError, RuntimeError):
            pass
        finally:
            # Whatever ends the writer, the reader must not wait for a drain that will not come.
            connection.drained.set()

    async def _keepalive(self) -> None:
        """The service's keep-alive and client timeout: one pass for all connections, instead of a
        timer per connection. A pass runs every sixth of the shorter interval."""
        limits = self.limits
        tick = min(limits.keepalive_interval, limits.client_timeout) / 6
        while True:
            await asyncio.sleep(tick)
            # Used tokens that expired are forgotten here too, not only when the next client connects.
            self._forget_used(self._clock())
            self._keepalive_pass(time.monotonic())

    def _keepalive_pass(self, now: float) -> None:
        # A method of its own: its loop variable goes with the pass, so no closed connection stays
        # referenced (with its queue) while the loop sleeps.
        for connections in self.connections.values():
            for connection in list(connections.values()):
                if connection.dropped:
                    continue  # its bounded close is under way
                if now - connection.last_received >= self.limits.client_timeout:
                    log.info(
                        "dropping %s: nothing received from it for %.0f s",
                        connection.connection_id,
                        now - connection.last_received,
                    )
                    self._drop(connection, "the server timed out waiting for a message from the client")
                elif now - connection.last_sent >= self.limits.keepalive_interval:
                    connection.last_sent = now
                    self._enqueue(connection, PING_RECORD)

    def _start_background_tasks(self) -> None:
        if self._outbox_ready is None:
            self._outbox_ready = asyncio.Event()
            loop = asyncio.get_running_loop()
            self._pump = loop.create_task(self._fan_out(self._outbox_ready))
            self._pinger = loop.create_task(self._keepalive())

    def _enqueue(self, connection: Connection, frame: bytes) -> None:
        if connection.dropped:
            return
        # What waits for the client is its queue and what the transport holds (the kernel's share is
        # kept small by KERNEL_SEND_BUFFER_BYTES).
        held = connection.queued_bytes + _transport_bytes(connection)
        if held + len(frame) > self.limits.send_queue_bytes:
            log.warning("dropping %s: it stopped reading (%d bytes held)", connection.connection_id, held)
            self._drop(connection, "the client did not read its messages fast enough")
            return
        connection.queue.put_nowait(frame)
        connection.queued_bytes += len(frame)
        connection.drained.clear()

    def _drop(self, connection: Connection, reason: str) -> None:
        """Drop a client (it may reconnect): what waits for it is released at once, and its TCP
        connection goes after a bounded close, as a silent peer would otherwise hold it forever."""
        connection.dropped = True
        _release(connection)
        closing = asyncio.get_running_loop().create_task(
            self._close(connection, reason, allow_reconnect=True, code=WSCloseCode.POLICY_VIOLATION)
        )
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    def broadcast(self, hub: str, target: str, arguments: list[Any]) -> int:
        """Send one invocation to every connection of `hub`, in call order; returns how many."""
        payload = _record({"type": INVOCATION, "target": target, "arguments": arguments})
        connections = list(self.connections.get(hub, {}).values())
        self._start_background_tasks()
        assert self._outbox_ready is not None
        self._outbox.append((payload, connections))
        self._outbox_ready.set()
        return len(connections)

    def _next_batch(self) -> tuple[list[bytes], list[Connection]]:
        """The oldest broadcast, with those right behind it that go to the same connections (up to
        MERGE_LIMIT): they leave as one WebSocket message."""
        payload, connections = self._outbox.popleft()
        parts, size = [payload], len(payload)
        while self._outbox:
            following, to = self._outbox[0]
            if size + len(following) > MERGE_LIMIT or (to is not connections and to != connections):
                break
            self._outbox.popleft()
            parts.append(following)
            size += len(following)
        return parts, connections

    async def _fan_out(self, ready: asyncio.Event) -> None:
        """Write each broadcast to every connection in one pass, as a plain broadcast loop would;
        a connection with a backlog gets it through its queue, so it cannot stall the pass.

        The pass is the broadcast's hot path (a thousand clients, one syscall each): the frame is
        encoded and framed once, and written to each transport as it is, with no per-client
        encoding, header or coroutine. That is sound because no connection negotiates compression
        (every frame on the wire is plain) and aiohttp also writes each frame whole."""
        while True:
            await ready.wait()
            ready.clear()
            while self._outbox:
                self._send_next_batch()
                # Let requests and reads in between two passes; what is broadcast meanwhile joins the next.
                await asyncio.sleep(0)

    def _send_next_batch(self) -> None:
        # Not inlined in _fan_out: a local there would keep the last batch's connections (closed ones
        # too, with their queues) referenced while the pump waits for the next broadcast.
        parts, connections = self._next_batch()
        self._write_to_all(b"".join(parts), len(parts), connections)

    def _write_to_all(self, payload: bytes, records: int, connections: list[Connection]) -> None:
        wire = _text_frame(payload)
        now = time.monotonic()
        limit = DIRECT_WRITE_LIMIT - len(wire)
        for connection in connections:
            if connection.dropped or connection.socket.closed:
                continue
            transport = connection.transport
            if (
                transport is not None
                and not connection.busy
                and connection.queue.empty()
                and not transport.is_closing()
                and transport.get_write_buffer_size() < limit
            ):
                transport.write(wire)
                connection.last_sent = now
                self.delivered += records
            else:
                self._enqueue(connection, payload)

    def online(self, hub: str) -> int:
        """Connections currently open on `hub`."""
        return len(self.connections.get(hub, {}))

    async def close_all(self, allow_reconnect: bool = True) -> None:
        """Close every connection, telling clients they may reconnect (a service restart); all at
        once, so the whole takes at most CLOSE_TIMEOUT_SECONDS however many clients stall."""
        connections = [c for by_id in self.connections.values() for c in by_id.values()]
        await asyncio.gather(
            *(self._close(c, "the service is restarting", allow_reconnect) for c in connections),
            *list(self._closing),
            return_exceptions=True,
        )

    async def shutdown(self) -> None:
        """Close every connection and stop broadcasting (server shutdown); bounded, see `close_all`."""
        self.accepting = False
        await self.close_all(allow_reconnect=False)
        for task in (self._pump, self._pinger):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def go_down(self) -> None:
        """Drop every client and refuse new ones until `come_back`: an outage, for testing reconnects."""
        self.accepting = False
        await self.close_all()

    def come_back(self) -> None:
        """Accept connections again after `go_down`."""
        self.accepting = True


def _limit_kernel_buffer(transport: object) -> None:
    """A small, fixed kernel send buffer for a WebSocket (see KERNEL_SEND_BUFFER_BYTES)."""
    if isinstance(transport, asyncio.Transport):
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, KERNEL_SEND_BUFFER_BYTES)


def _transport_bytes(connection: Connection) -> int:
    """Bytes written to a connection's transport that it has not handed to the kernel yet."""
    transport = connection.transport
    return transport.get_write_buffer_size() if transport is not None else 0


def _release(connection: Connection) -> None:
    """Free what waits for a connection that is gone (its queue can hold a megabyte), and wake its
    reader."""
    while not connection.queue.empty():
        connection.queue.get_nowait()
    connection.queued_bytes = 0
    connection.drained.set()


def _echo(value: object) -> str:
    """A client's value as an answer may repeat it: its repr, cut to ECHO_LIMIT characters."""
    text = repr(value)
    return text if len(text) <= ECHO_LIMIT else text[: ECHO_LIMIT - 3] + "..."


def _broadcast_body(raw: bytes) -> tuple[str, list[Any]]:
    """`{"target": str, "arguments": [...]}` from a REST request, or a 400 in the API's error shape."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise error_exception(web.HTTPBadRequest, "the body must be JSON", "malformed_json") from None
    if not isinstance(body, dict):
        raise error_exception(web.HTTPBadRequest, 'the body must be a JSON object {"target", "arguments"}')
    target, arguments = body.get("target"), body.get("arguments", [])
    if not isinstance(target, str) or not target:
        raise error_exception(web.HTTPBadRequest, '"target" must be a non-empty string')
    if not isinstance(arguments, list):
        raise error_exception(web.HTTPBadRequest, '"arguments" must be a list')
    return target, arguments


def _record(message: dict[str, Any]) -> bytes:
    """One hub protocol record, encoded: JSON and the record separator."""
    return (json.dumps(message) + RECORD_SEPARATOR).encode()


PING_RECORD = _record({"type": PING})


def _text_frame(payload: bytes) -> bytes:
    """A whole WebSocket text frame as a server sends it: final, unmasked, uncompressed (RFC 6455 5.2)."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x81, length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, length)
    else:
        header = struct.pack("!BBQ", 0x81, 127, length)
    return header + payload
