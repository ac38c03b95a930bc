"""A SignalR-compatible endpoint that the official clients accept: the local stand-in for Azure
SignalR Service in Serverless mode.

What it speaks (ASP.NET Core SignalR's transport and hub protocols, as the service does):
- `POST /client/negotiate?hub=<hub>` with the access token as `Authorization: Bearer` (or
  `access_token` in the query): negotiate version 1, WebSockets only;
- `GET /client/?hub=<hub>&id=<connectionToken>&access_token=<jwt>`: the WebSocket, JSON hub
  protocol (handshake, invocation, ping, close), records separated by 0x1E;
- `POST /api/v1/hubs/<hub>`: the service's REST broadcast shape `{"target", "arguments"}`.
Tokens are HS256 JWTs whose audience is the client URL, signed with a key only this process knows.

Each connection has a bounded send queue; a client that stops reading is dropped once its queue
fills, so it never stalls the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import WSMsgType, web

RECORD_SEPARATOR = "\x1e"
INVOCATION, STREAM_ITEM, COMPLETION, STREAM_INVOCATION, CANCEL, PING, CLOSE = 1, 2, 3, 4, 5, 6, 7
TOKEN_LIFETIME_SECONDS = 3600
HANDSHAKE_TIMEOUT_SECONDS = 15
KEEPALIVE_SECONDS = 15
SEND_QUEUE_LIMIT = 1000
# While a socket's buffer plus the frame stay below this, the broadcast writes the frame at once: well
# under the transport's 64 KiB high-water mark, so the write never waits. Otherwise (a client that
# reads slowly, a big frame) the frame goes through that client's own queue and writer task.
DIRECT_WRITE_LIMIT = 32 * 1024
log = logging.getLogger("local.hub")

ConnectionEvent = Callable[[str, "Connection"], Awaitable[None]]


@dataclass(eq=False)
class Connection:
    """One connected client."""

    connection_id: str
    hub: str
    user_id: str | None
    socket: web.WebSocketResponse
    queue: asyncio.Queue[str | None]
    transport: asyncio.Transport | None = None
    dropped: bool = False
    last_sent: float = field(default_factory=time.monotonic)
    busy: bool = False
    """True while the connection's writer task is sending its backlog."""


class Hub:
    """Connections by hub, token issuing and checking, broadcast, and connection events."""

    def __init__(
        self,
        hubs: set[str],
        base_url: str = "",
        signing_key: str | None = None,
        send_queue_limit: int = SEND_QUEUE_LIMIT,
    ) -> None:
        self.hubs = hubs
        self.send_queue_limit = send_queue_limit
        self.base_url = base_url.rstrip("/")
        self._key = signing_key or secrets.token_urlsafe(32)
        self._pending: dict[str, tuple[str, str | None, float]] = {}
        self.connections: dict[str, dict[str, Connection]] = {hub: {} for hub in hubs}
        self._listeners: list[ConnectionEvent] = []
        self.delivered = 0
        self.accepting = True
        """False while the endpoint is down (see `go_down`): new connections get 503."""
        self._frames: asyncio.Queue[tuple[str, list[Connection]]] | None = None
        self._pump: asyncio.Task[None] | None = None
        self._pinger: asyncio.Task[None] | None = None

    # tokens

    def client_url(self, hub: str) -> str:
        """The URL a client is redirected to by negotiate (the token's audience)."""
        return f"{self.base_url}/client/?hub={hub}"

    def issue_token(
        self, hub: str, user_id: str | None = None, lifetime: int = TOKEN_LIFETIME_SECONDS
    ) -> str:
        """A client access token for `hub`, as the signalRConnectionInfo binding hands out."""
        now = int(time.time())
        claims: dict[str, Any] = {"aud": self.client_url(hub), "iat": now, "nbf": now, "exp": now + lifetime}
        if user_id:
            claims["nameid"] = user_id
        return jwt.encode(claims, self._key, algorithm="HS256")

    def connection_info(self, hub: str, user_id: str | None = None) -> dict[str, str]:
        """`{url, accessToken}`: the Azure serverless negotiate shape."""
        return {"url": self.client_url(hub), "accessToken": self.issue_token(hub, user_id)}

    def _check_token(self, request: web.Request, hub: str) -> str | None:
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else request.query.get("access_token", "")
        if not token:
            raise web.HTTPUnauthorized(text="missing access token")
        try:
            claims = jwt.decode(token, self._key, algorithms=["HS256"], audience=self.client_url(hub))
        except jwt.PyJWTError as error:
            raise web.HTTPUnauthorized(text=f"invalid access token: {error}") from None
        return claims.get("nameid")

    def _hub_of(self, request: web.Request) -> str:
        if not self.accepting:
            raise web.HTTPServiceUnavailable(text="the service is restarting; retry")
        hub = request.query.get("hub", "")
        if hub not in self.hubs:
            raise web.HTTPNotFound(text=f"unknown hub {hub!r}")
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
        ]

    async def negotiate(self, request: web.Request) -> web.Response:
        """Negotiate version 1: a connection token for the WebSocket transport."""
        hub = self._hub_of(request)
        user_id = self._check_token(request, hub)
        connection_id = str(uuid.uuid4())
        token = secrets.token_urlsafe(24)
        self._pending[token] = (connection_id, user_id, time.monotonic())
        return web.json_response(
            {
                "negotiateVersion": 1,
                "connectionId": connection_id,
                "connectionToken": token,
                "availableTransports": [{"transport": "WebSockets", "transferFormats": ["Text"]}],
            }
        )

    async def rest_broadcast(self, request: web.Request) -> web.Response:
        """The service's REST API shape: broadcast `{target, arguments}` to a hub."""
        hub = request.match_info["hub"]
        if hub not in self.hubs:
            raise web.HTTPNotFound(text=f"unknown hub {hub!r}")
        self._check_token(request, hub)
        body = await request.json()
        self.broadcast(hub, body["target"], body.get("arguments", []))
        return web.Response(status=202)

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        """The WebSocket transport with the JSON hub protocol."""
        hub = self._hub_of(request)
        user_id = self._check_token(request, hub)
        token = request.query.get("id")
        if token is None:
            # Like Azure SignalR Service, a client holding an access token may skip negotiate.
            connection_id, negotiated_user = str(uuid.uuid4()), None
        else:
            pending = self._pending.pop(token, None)
            if pending is None:
                raise web.HTTPNotFound(text="unknown or used connection token; negotiate again")
            connection_id, negotiated_user, _ = pending
        socket = web.WebSocketResponse(heartbeat=None, max_msg_size=1 << 20)
        await socket.prepare(request)
        if not await self._handshake(socket):
            return socket
        transport = request.transport
        connection = Connection(
            connection_id,
            hub,
            user_id or negotiated_user,
            socket,
            asyncio.Queue(self.send_queue_limit),
            transport if isinstance(transport, asyncio.Transport) else None,
        )
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
            await socket.close()
            log.info("disconnected %s from %s (%d online)", connection_id, hub, len(self.connections[hub]))
            await self._emit("disconnected", connection)
        return socket

    async def _handshake(self, socket: web.WebSocketResponse) -> bool:
        try:
            message = await socket.receive(timeout=HANDSHAKE_TIMEOUT_SECONDS)
        except TimeoutError:
            await socket.close()
            return False
        if message.type != WSMsgType.TEXT or not message.data.endswith(RECORD_SEPARATOR):
            await socket.send_str(
                json.dumps({"error": "handshake must be one JSON record"}) + RECORD_SEPARATOR
            )
            await socket.close()
            return False
        try:
            request = json.loads(message.data.split(RECORD_SEPARATOR, 1)[0])
        except json.JSONDecodeError:
            request = {}
        if request.get("protocol") != "json" or request.get("version") != 1:
            error = (
                f"unsupported protocol {request.get('protocol')!r} version {request.get('version')!r}; "
                "only json version 1"
            )
            await socket.send_str(json.dumps({"error": error}) + RECORD_SEPARATOR)
            await socket.close()
            return False
        await socket.send_str("{}" + RECORD_SEPARATOR)
        return True

    async def _read(self, connection: Connection) -> None:
        async for message in connection.socket:
            if message.type != WSMsgType.TEXT:
                break
            for record in message.data.split(RECORD_SEPARATOR):
                if not record:
                    continue
                try:
                    payload = json.loads(record)
                    kind = payload.get("type")
                except (json.JSONDecodeError, AttributeError):
                    await self._close(connection, "invalid hub protocol message")
                    return
                if kind == CLOSE:
                    return
                if kind == INVOCATION and payload.get("invocationId"):
                    # Serverless mode has no hub methods here; answer so a client call does not hang.
                    reply = {
                        "type": COMPLETION,
                        "invocationId": payload["invocationId"],
                        "error": "hub methods are not available in serverless mode",
                    }
                    self._enqueue(connection, json.dumps(reply) + RECORD_SEPARATOR)

    async def _close(
        self, connection: Connection, error: str | None = None, allow_reconnect: bool = False
    ) -> None:
        payload: dict[str, Any] = {"type": CLOSE}
        if error:
            payload["error"] = error
        if allow_reconnect:
            payload["allowReconnect"] = True
        with contextlib.suppress(ConnectionError):
            await connection.socket.send_str(json.dumps(payload) + RECORD_SEPARATOR)
        await connection.socket.close()

    async def _write(self, connection: Connection) -> None:
        try:
            while (frame := await connection.queue.get()) is not None:
                connection.busy = True
                await connection.socket.send_str(frame)
                connection.last_sent = time.monotonic()
                connection.busy = connection.queue.qsize() > 0
                self.delivered += frame.count(RECORD_SEPARATOR)
        except (ConnectionError, RuntimeError):
            pass

    async def _keepalive(self) -> None:
        """Ping the connections that were sent nothing for a while (the protocol's keep-alive): one
        pass for all of them, instead of a timer per connection."""
        ping = json.dumps({"type": PING}) + RECORD_SEPARATOR
        while True:
            await asyncio.sleep(KEEPALIVE_SECONDS / 3)
            idle_since = time.monotonic() - KEEPALIVE_SECONDS
            for connections in self.connections.values():
                for connection in list(connections.values()):
                    if connection.last_sent < idle_since:
                        connection.last_sent = time.monotonic()
                        self._enqueue(connection, ping)

    def _start_background_tasks(self) -> None:
        if self._frames is None:
            self._frames = asyncio.Queue()
            loop = asyncio.get_running_loop()
            self._pump = loop.create_task(self._fan_out(self._frames))
            self._pinger = loop.create_task(self._keepalive())

    def _enqueue(self, connection: Connection, frame: str) -> None:
        if connection.dropped:
            return
        try:
            connection.queue.put_nowait(frame)
        except asyncio.QueueFull:
            connection.dropped = True
            log.warning(
                "dropping %s: it stopped reading (%d messages queued)",
                connection.connection_id,
                connection.queue.maxsize,
            )
            asyncio.get_running_loop().create_task(connection.socket.close(code=1008, message=b"too slow"))

    def broadcast(self, hub: str, target: str, arguments: list[Any]) -> int:
        """Send one invocation to every connection of `hub`, in call order; returns how many."""
        frame = json.dumps({"type": INVOCATION, "target": target, "arguments": arguments}) + RECORD_SEPARATOR
        connections = list(self.connections.get(hub, {}).values())
        self._start_background_tasks()
        assert self._frames is not None
        self._frames.put_nowait((frame, connections))
        return len(connections)

    async def _fan_out(self, frames: asyncio.Queue[tuple[str, list[Connection]]]) -> None:
        """Write each frame to every connection in one pass, as a plain broadcast loop would;
        a connection with a backlog gets it through its queue, so it cannot stall the pass."""
        while True:
            frame, connections = await frames.get()
            for connection in connections:
                if connection.dropped:
                    continue
                transport = connection.transport
                if (
                    connection.queue.empty()
                    and not connection.busy
                    and transport is not None
                    and not transport.is_closing()
                    and transport.get_write_buffer_size() + len(frame) < DIRECT_WRITE_LIMIT
                ):
                    try:
                        await connection.socket.send_str(frame)
                        connection.last_sent = time.monotonic()
                        self.delivered += 1
                    except (ConnectionError, RuntimeError):
                        continue
                else:
                    self._enqueue(connection, frame)

    def online(self, hub: str) -> int:
        """Connections currently open on `hub`."""
        return len(self.connections.get(hub, {}))

    async def close_all(self, allow_reconnect: bool = True) -> None:
        """Close every connection, telling clients they may reconnect (a service restart)."""
        for connections in self.connections.values():
            for connection in list(connections.values()):
                await self._close(connection, "the service is restarting", allow_reconnect)

    async def shutdown(self) -> None:
        """Close every connection and stop broadcasting (server shutdown)."""
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
