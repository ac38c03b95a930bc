"""The local mode assembled: one aiohttp application serving the site, the functions under
/api/, and the SignalR-compatible endpoint, over an embedded SQLite database."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http import HttpVersion10, HttpVersion11
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestHandler, RequestPayloadError

from artifacts.site_files import SITE_DIR
from functions import wiring
from local.cors import cors_middleware
from local.database import Database
from local.errors import JSON, error_response
from local.frames import MaskedFramesOnly
from local.gate import (
    BODY_TIMEOUT,
    DEFAULT_BODY_TIMEOUT,
    READ_BUFFER_BYTES,
    ConnectionGate,
    ConnectionLimits,
    busy_response,
    too_large,
)
from local.host import FunctionsHost, site_routes
from local.hub import Hub, HubLimits
from local.identity import PATH as IDENTITY_PATH
from local.identity import ManagedIdentity

log = logging.getLogger("local")
# Query parameter names the API and the hub read: the access log shows these names (never a value);
# any other name is shown as `***` too, since a near miss (`co+de=`, `code%00=`, `?code%3dKEY`)
# carries the key in its name or value.
LOGGED_QUERY_NAMES = frozenset(
    {"code", "access_token", "hub", "id", "after", "before", "take", "negotiateVersion", "api-version"}
    | {"resource", "client_id", "api_version"}
)
# How long the server waits for requests still running at shutdown (after the hub closed its clients).
SHUTDOWN_TIMEOUT_SECONDS = 2.0
# A request's line and headers must arrive within this time of the connection opening (or of the
# previous answer on a kept-alive connection), and its body within this time of its headers; the
# time an idle kept-alive connection stays open is the first one too. Without them a client that
# sends half a request holds a connection and its buffers for minutes.
HEADER_TIMEOUT_SECONDS = 10.0
BODY_TIMEOUT_SECONDS = DEFAULT_BODY_TIMEOUT
# How often the change tracking cleanup runs (SQL Server's runs in the background; its period is
# not documented, and any period under the retention keeps the table bounded).
CHANGE_CLEANUP_SECONDS = 60.0
# After answering a request whose body was not read whole (413, 408), how long the server still reads
# and discards it so the client sees the answer, before closing.
LINGER_SECONDS = 2.0


def redact(path_qs: str) -> str:
    """`path?query` as the log may show it: every query value replaced by `***`, and every name the
    API does not read too; path parameters (`;...`) likewise."""
    path, separator, query = path_qs.partition("?")
    path, semicolon, _parameters = path.partition(";")
    if semicolon:
        path += ";***"
    if not separator:
        return path
    parts = []
    for part in query.split("&"):
        name, equals, _value = part.partition("=")
        shown = name if name in LOGGED_QUERY_NAMES else "***"
        parts.append(f"{shown}=***" if equals else shown)
    return f"{path}?{'&'.join(parts)}"


class AccessLogger(AbstractAccessLogger):
    """One line per request (client, request line, status, size, time), with secret query values
    redacted and no header at all: keys and tokens also travel as `x-functions-key` and
    `Authorization`, and a Referer can carry a `?code=`."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        """Log one request."""
        self.logger.info(
            '%s "%s %s HTTP/%d.%d" %d %d %.6fs',
            request.remote,
            request.method,
            redact(request.raw_path),
            request.version.major,
            request.version.minor,
            response.status,
            response.body_length,
            time,
        )

    @property
    def enabled(self) -> bool:
        """Skip the formatting when nobody listens."""
        return self.logger.isEnabledFor(logging.INFO)


class _RequestHandler(RequestHandler):
    """aiohttp's connection handler, except for requests its parser refuses: their error text holds
    the start of the raw request line (a `?code=` key included), and aiohttp logs it with a traceback
    and answers it as plain text. Here the log gets one line without it, and the client the API's
    JSON error shape (the path is unknown for a request that could not be parsed)."""

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Answer a parser error without repeating the request; anything else as aiohttp does."""
        if not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        log.warning("refused a malformed request from %s (%s)", request.remote, type(exc).__name__)
        if isinstance(exc, LineTooLong):
            text = f"the request line or a header is longer than {self.max_line_size} bytes"
        else:
            text = f"the request is not valid HTTP/1.1 ({type(exc).__name__})"
        response = error_response(exc.code if 400 <= exc.code < 500 else 400, text)
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """A body that cannot be decoded, met again while aiohttp drops the rest of it after the
        answer (the 400 is sent already): one line, not a traceback per request."""
        error = kw.get("exc_info")
        if isinstance(error, RequestPayloadError | HttpProcessingError):
            log.debug("dropped the rest of an unreadable request body (%s)", type(error).__name__)
            return
        super().log_exception(*args, **kw)


class _GatedRequestHandler(_RequestHandler):
    """A connection counted by the gate from its first byte to its close (or to its upgrade to a
    WebSocket, which the hub counts instead); one over a cap gets a 503 written whole and is closed
    before anything of its request is read."""

    gate: ConnectionGate
    _counted: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Admit the connection, or answer 503 and close it."""
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if peer else ""
        if not self.gate.admit(address):
            assert isinstance(transport, asyncio.Transport)
            address_full = (
                self.gate.by_address.get(address, 0) >= self.gate.limits.max_connections_per_address
            )
            transport.write(busy_response(address_full))
            transport.close()
            return
        self._counted = address
        if hasattr(transport, "max_size"):
            # asyncio's selector transport reads up to 256 KiB per recv() (its `max_size`), all of
            # which the parser takes before it can pause: with 1,024 connections, a quarter of a
            # GiB. Reads of READ_BUFFER_BYTES keep what one connection holds near 3 of them.
            transport.max_size = READ_BUFFER_BYTES  # type: ignore[attr-defined]
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        """Release the connection's place, if it still holds one."""
        self.upgraded_to_websocket()
        super().connection_lost(exc)

    def set_parser(self, parser: Any, data_received_cb: Callable[[], None] | None = None) -> None:
        """The WebSocket reader, behind the check that every client frame is masked."""
        checked: Any = MaskedFramesOnly(parser, self.transport)  # it speaks the reader's interface
        super().set_parser(checked, data_received_cb)

    def upgraded_to_websocket(self) -> None:
        """The hub took this connection over: it counts it among its WebSockets from now on."""
        if self._counted is not None:
            self.gate.release(self._counted)
            self._counted = None


class _Server(web.Server):
    def __call__(self) -> RequestHandler:
        handler = _GatedRequestHandler(self, loop=asyncio.get_running_loop(), **self._handler_options)
        handler.gate = self._gate
        return handler

    def __init__(
        self, *args: Any, handler_options: dict[str, Any], gate: ConnectionGate, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._handler_options = handler_options
        self._gate = gate


class _AppRunner(web.AppRunner):
    """An AppRunner whose connections use `_GatedRequestHandler`."""

    def __init__(self, app: web.Application, gate: ConnectionGate, **handler_options: Any) -> None:
        super().__init__(app, shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS, **handler_options)
        self._handler_options = dict(handler_options)
        self.gate = gate

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()  # runs the application's start-up and freezes it
        return _Server(
            server.request_handler,
            request_factory=_http11_only(server.request_factory),
            handler_options=self._handler_options,
            gate=self.gate,
        )


# The HTTP version a request line claimed when it is not 1.0 or 1.1 (the request then reads as 1.1,
# so that the answer's status line is one this server speaks).
CLAIMED_VERSION = web.RequestKey("claimed_version", str)


def _http11_only(factory: Callable[..., web.BaseRequest]) -> Callable[..., web.BaseRequest]:
    """aiohttp's request factory, except that a request line claiming another version than HTTP/1.0
    or 1.1 (`HTTP/2.0`) is answered as HTTP/1.1: aiohttp would echo the claimed version in its
    status line ("HTTP/2.0 200") while speaking HTTP/1.1."""

    def make_request(message: Any, *args: Any, **kwargs: Any) -> web.BaseRequest:
        claimed = message.version
        if claimed in (HttpVersion10, HttpVersion11):
            return factory(message, *args, **kwargs)
        request = factory(message._replace(version=HttpVersion11), *args, **kwargs)
        request[CLAIMED_VERSION] = f"HTTP/{claimed.major}.{claimed.minor}"
        return request

    return make_request


@web.middleware
async def http_version(request: web.Request, handler: Handler) -> web.StreamResponse:
    """505 for a request line of another HTTP version (see `_http11_only`), before anything else."""
    claimed = request.get(CLAIMED_VERSION)
    if claimed is not None:
        response = error_response(505, f"{claimed} is not supported here: this server speaks HTTP/1.1")
        response.force_close()
        return response
    return await handler(request)


def body_policy(
    limits: Mapping[Callable[..., Any], int], timeout: float
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A middleware that reads no body: it tells the handler the most its route accepts (`limits`
    by handler; a route not listed takes none) and the time a body has to arrive, and refuses at once
    a body sent to a route that takes none. A handler reads its body with `read_body` once it has
    checked the caller, so a client without a key never makes the server hold a body."""

    @web.middleware
    async def limit_bodies(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.match_info.http_exception is not None:
            return await handler(request)  # the router's 404 or 405: no body is read
        limit = limits.get(request.match_info.handler, 0)
        request[BODY_TIMEOUT] = timeout
        if limit == 0 and request.body_exists:
            raise too_large(0, request.content_length or 0)
        return await handler(request)

    return limit_bodies


def _is_api(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


@web.middleware
async def api_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error under /api/ in the API's JSON shape, whoever answered it: aiohttp's router (404,
    405), its body limit (413), a handler's exception or plain-text answer. Errors that are
    already JSON (the functions', the hub's) pass unchanged; other paths keep the site's pages."""
    if not _is_api(request.path):
        return await handler(request)
    try:
        response = await handler(request)
    except web.HTTPException as error:
        if error.status < 400 or error.content_type == JSON:
            raise
        return _json_error(request, error.status, error.text or error.reason, error.headers.get("Allow"))
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return error_response(500, "the server failed to answer; its log says why")
    if response.status >= 400 and not response.prepared and response.content_type != JSON:
        text = response.text if isinstance(response, web.Response) and response.body else None
        return _json_error(request, response.status, text or response.reason, response.headers.get("Allow"))
    return response


def _json_error(request: web.Request, status: int, text: str, allow: str | None) -> web.Response:
    if status == 404:
        return error_response(404, f"no API at {request.path}")
    if status == 405:
        return error_response(
            405,
            f"{request.method} is not allowed on {request.path}; allowed: {allow}",
            headers={"Allow": allow or ""},
        )
    return error_response(status, text)


@dataclass
class LocalMode:
    """A running local mode: its URL, publish key and parts (tests reach into them)."""

    url: str
    publish_key: str
    database: Database
    hub: Hub
    host: FunctionsHost
    runner: web.AppRunner
    cleanup: asyncio.Task[None] | None = None

    async def stop(self) -> None:
        """Close clients, stop the triggers, the server and the database; every step is bounded, so a
        client that stopped reading cannot hold the shutdown."""
        if self.cleanup is not None:
            self.cleanup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.cleanup
        await self.hub.shutdown()
        await self.host.stop()
        await self.runner.cleanup()
        self.database.close()


def build_app(
    database: Database,
    publish_key: str,
    site_dir: Path = SITE_DIR,
    message_retention_days: int = 0,
    *,
    hub_limits: HubLimits | None = None,
    body_timeout: float = BODY_TIMEOUT_SECONDS,
    sql_polling_ms: int = 0,
    sql_max_batch_size: int = 100,
) -> tuple[web.Application, Hub, FunctionsHost, ManagedIdentity]:
    """The aiohttp application and its hub, host and app identity (URLs set once the port is known)."""
    hub = Hub({wiring.HUB_NAME}, limits=hub_limits)
    identity = ManagedIdentity(hub)
    # As on Azure, the app's identity holds a data-plane role on SignalR (SignalR Service Owner).
    hub.data_plane_principals.add(identity.client_id)
    host = FunctionsHost(
        database,
        hub,
        publish_key,
        polling_interval_ms=sql_polling_ms,
        max_batch_size=sql_max_batch_size,
        app_settings={
            wiring.MESSAGE_RETENTION_DAYS_SETTING: str(message_retention_days),
            wiring.SQL_TRIGGER_POLLING_INTERVAL_SETTING: str(sql_polling_ms),
            wiring.SQL_TRIGGER_MAX_BATCH_SIZE_SETTING: str(sql_max_batch_size),
        },
    )
    # The API allows the site's origin, as the deployed app's CORS does (here the site is on this
    # one); CORS wraps the JSON errors, so an error answer carries the CORS headers too; the body
    # deadline is inside them, so its 408 is one of those errors.
    routes = [
        *hub.routes(),
        *identity.routes(),
        *host.routes(),
        *site_routes(site_dir, lambda: {"apiBaseUrl": f"{hub.base_url}/api", "hub": wiring.HUB_NAME}),
    ]
    body_limits = {**hub.body_limits(), **host.body_limits()}
    app = web.Application(
        client_max_size=max(body_limits.values()),
        middlewares=[
            http_version,
            cors_middleware(lambda: [hub.base_url]),
            api_errors,
            body_policy(body_limits, body_timeout),
        ],
    )
    app.add_routes(routes)
    app.on_response_prepare.append(_server_header)
    return app, hub, host, identity


# What the Server header says: the product, not the Python and aiohttp versions it runs on.
SERVER_HEADER = "broadcast-local"


async def _server_header(_request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = SERVER_HEADER


def identity_settings(url: str, identity: ManagedIdentity) -> dict[str, str]:
    """The app settings the component sets for SignalR (identity-based), and the variables the
    platform gives an app with a managed identity, pointing at this local mode."""
    prefix = wiring.SIGNALR_CONNECTION_SETTING
    return {
        f"{prefix}__serviceUri": url,
        f"{prefix}__credential": "managedidentity",
        f"{prefix}__clientId": identity.client_id,
        "IDENTITY_ENDPOINT": url + IDENTITY_PATH,
        "IDENTITY_HEADER": identity.secret,
    }


async def start(
    host: str = "127.0.0.1",
    port: int = 7071,
    publish_key: str = "",
    db: str = ":memory:",
    site_dir: Path = SITE_DIR,
    message_retention_days: int = 0,
    *,
    hub_limits: HubLimits | None = None,
    connection_limits: ConnectionLimits | None = None,
    header_timeout: float = HEADER_TIMEOUT_SECONDS,
    body_timeout: float = BODY_TIMEOUT_SECONDS,
    sql_polling_ms: int = 0,
    sql_max_batch_size: int = 100,
) -> LocalMode:
    """Start the local mode and return once it accepts connections (port 0 picks a free port).

    `sql_polling_ms` is the SQL trigger's polling interval (`Sql_Trigger_PollingIntervalMs`, as on
    Azure); 0 runs it on every write instead (immediate, for tests); `sql_max_batch_size` the most
    changes one invocation gets (`Sql_Trigger_MaxBatchSize`). `python -m local` passes the stack's
    values."""
    database = Database(db)
    app, hub, functions_host, identity = build_app(
        database,
        publish_key,
        site_dir,
        message_retention_days,
        hub_limits=hub_limits,
        body_timeout=body_timeout,
        sql_polling_ms=sql_polling_ms,
        sql_max_batch_size=sql_max_batch_size,
    )
    # aiohttp's keep-alive timer closes a connection still waiting for a request's headers when it
    # fires, so it is the header timeout too (it starts when the connection opens).
    runner = _AppRunner(
        app,
        ConnectionGate(connection_limits or ConnectionLimits()),
        access_log_class=AccessLogger,
        keepalive_timeout=header_timeout,
        lingering_time=LINGER_SECONDS,
        read_bufsize=READ_BUFFER_BYTES,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        # A taken port or an address that is not this machine's: nothing is left open.
        await runner.cleanup()
        database.close()
        raise
    bound_port = runner.addresses[0][1]
    url = f"http://{host}:{bound_port}"
    hub.base_url = url
    functions_host.app_settings.update(identity_settings(url, identity))
    await functions_host.start()
    cleanup = asyncio.create_task(_clean_up_change_tracking(database))
    return LocalMode(url, publish_key, database, hub, functions_host, runner, cleanup)


async def _clean_up_change_tracking(database: Database) -> None:
    """Change tracking's auto-cleanup, now and every CHANGE_CLEANUP_SECONDS: without it every
    connection ever made leaves change rows for good (issue 30, item 6)."""
    while True:
        forgotten = await asyncio.to_thread(database.forget_old_changes)
        if forgotten:
            log.info("change tracking cleanup: %d change(s) past the retention deleted", forgotten)
        await asyncio.sleep(CHANGE_CLEANUP_SECONDS)
