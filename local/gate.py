"""What the local mode admits before it reads a byte: how many HTTP connections it holds, in all and
per client address, and how much a request body may be (per route), read only once the route is
known and the caller authorised.

Why: every connection that is sending a request holds what aiohttp has buffered of it (up to twice
`read_bufsize`, plus one read from the socket), and a route that reads its body holds the body. A
client that opens many connections and never finishes a body would otherwise hold all of it at
once (issue 30: 1,500 such connections took the server from 504 MiB to 1.95 GiB). A connection
upgraded to a WebSocket leaves this count: the hub bounds WebSockets itself (`HubLimits`).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from local.errors import JSON, error_body, error_exception

# aiohttp stops reading a connection whose unread request data reaches twice this (its default is
# 64 KiB): what a connection that never finishes its body can make the server hold.
READ_BUFFER_BYTES = 16 * 1024
# How long a request's body has to arrive once its headers have (the server sets it per request).
BODY_TIMEOUT = web.RequestKey("body_timeout", float)
DEFAULT_BODY_TIMEOUT = 10.0


@dataclass(frozen=True, kw_only=True)
class ConnectionLimits:
    """How many HTTP connections (WebSockets are the hub's) the server holds at once."""

    max_connections: int = 1024
    """Open HTTP connections from all addresses; past it, a new one gets 503 and is closed."""
    max_connections_per_address: int = 250
    """Open HTTP connections from one client address; past it, that address's next one gets 503,
    so one client cannot take the others' share."""


@dataclass
class ConnectionGate:
    """Counts open HTTP connections by client address and admits a new one while both caps allow."""

    limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    by_address: dict[str, int] = field(default_factory=dict)
    total: int = 0
    refused: int = 0

    def admit(self, address: str) -> bool:
        """Count a new connection from `address`, or say no (then nothing is counted)."""
        mine = self.by_address.get(address, 0)
        if self.total >= self.limits.max_connections or mine >= self.limits.max_connections_per_address:
            self.refused += 1
            return False
        self.by_address[address] = mine + 1
        self.total += 1
        return True

    def release(self, address: str) -> None:
        """A counted connection closed (or became a WebSocket)."""
        left = self.by_address.get(address, 0) - 1
        if left > 0:
            self.by_address[address] = left
        else:
            self.by_address.pop(address, None)
        self.total = max(0, self.total - 1)


BUSY_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
    b"Connection: close\r\nContent-Length: %d\r\n\r\n%s"
)


def busy_response(address_full: bool) -> bytes:
    """The whole answer to a connection over a cap, written before a byte of its request is read."""
    message = (
        "too many open connections from this address; retry in a second"
        if address_full
        else "the server holds its most open connections; retry in a second"
    )
    body = json.dumps({"error": {"code": "service_unavailable", "message": message}}).encode()
    return BUSY_RESPONSE % (len(body), body)


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request's body, read only now (after routing and authorisation), at most `limit` bytes
    (413), within the body timeout (408); a body that cannot be decoded (a `Content-Encoding` that
    does not match it) is a 400, not a server error."""
    timeout = request.get(BODY_TIMEOUT, DEFAULT_BODY_TIMEOUT)
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit, request.content_length)
    parts: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.content.iter_any():
                size += len(chunk)
                if size > limit:
                    raise too_large(limit, size)
                parts.append(chunk)
    except TimeoutError:
        raise web.HTTPRequestTimeout(
            text=error_body("request_timeout", f"the request body did not arrive within {timeout:g} s"),
            content_type=JSON,
            headers={"Connection": "close"},
        ) from None
    except (HttpProcessingError, RequestPayloadError) as error:
        raise error_exception(
            web.HTTPBadRequest,
            f"the body cannot be read as its headers describe it ({type(error).__name__}): "
            "check Content-Encoding and Transfer-Encoding",
            "malformed_body",
        ) from None
    return b"".join(parts)


def too_large(limit: int, size: int) -> web.HTTPError:
    """413 naming the route's limit; the connection closes after it (once the rest of the body has
    been read and dropped for a moment, so that the client sees the answer)."""
    message = "this route takes no request body" if limit == 0 else f"the body is larger than {limit} bytes"
    return web.HTTPRequestEntityTooLarge(
        max_size=limit,
        actual_size=size,
        text=error_body("payload_too_large", message),
        content_type=JSON,
        headers={"Connection": "close"},
    )
