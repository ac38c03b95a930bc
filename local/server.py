"""The local mode assembled: one aiohttp application serving the site, the functions under
/api/, and the SignalR-compatible endpoint, over an embedded SQLite database."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestHandler

from artifacts.site_files import SITE_DIR
from functions import wiring
from local.cors import cors_middleware
from local.database import Database
from local.errors import JSON, error_response
from local.host import FunctionsHost, site_routes
from local.hub import Hub, HubLimits
from local.identity import PATH as IDENTITY_PATH
from local.identity import ManagedIdentity

log = logging.getLogger("local")
# Query values that are credentials: the function key (`code`) and the SignalR access token.
SECRET_QUERY_NAMES = frozenset({"code", "access_token"})
# How long the server waits for requests still running at shutdown (after the hub closed its clients).
SHUTDOWN_TIMEOUT_SECONDS = 2.0
# A request's line and headers must arrive within this time of the connection opening (or of the
# previous answer on a kept-alive connection), and its body within this time of its headers; the
# time an idle kept-alive connection stays open is the first one too. Without them a client that
# sends half a request holds a connection and its buffers for minutes.
HEADER_TIMEOUT_SECONDS = 10.0
BODY_TIMEOUT_SECONDS = 10.0
# After answering a request whose body was not read whole (413, 408), how long the server still reads
# and discards it so the client sees the answer, before closing.
LINGER_SECONDS = 2.0


def redact(path_qs: str) -> str:
    """`path?query` with the values of secret query parameters replaced by `***` (the rest as sent)."""
    path, separator, query = path_qs.partition("?")
    if not separator:
        return path
    parts = []
    for part in query.split("&"):
        name, equals, _value = part.partition("=")
        # Decoded as the server decodes it, so `acc%65ss_token=` is redacted too.
        if equals and unquote_plus(name).lower() in SECRET_QUERY_NAMES:
            part = f"{name}=***"
        parts.append(part)
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


class _Server(web.Server):
    def __call__(self) -> RequestHandler:
        return _RequestHandler(self, loop=asyncio.get_running_loop(), **self._handler_options)

    def __init__(self, *args: Any, handler_options: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._handler_options = handler_options


class _AppRunner(web.AppRunner):
    """An AppRunner whose connections use `_RequestHandler`."""

    def __init__(self, app: web.Application, **handler_options: Any) -> None:
        super().__init__(app, shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS, **handler_options)
        self._handler_options = dict(handler_options)

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()  # runs the application's start-up and freezes it
        return _Server(
            server.request_handler,
            request_factory=server.request_factory,
            handler_options=self._handler_options,
        )


def body_deadline(seconds: float) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A middleware that reads a request's body within `seconds` of its headers (the handlers then
    get it from memory), or answers 408 and closes: a client that stops half-way through its body
    holds nothing for long."""

    @web.middleware
    async def read_body_in_time(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.body_exists:
            try:
                async with asyncio.timeout(seconds):
                    await request.read()
            except TimeoutError:
                raise web.HTTPRequestTimeout(
                    text=f"the request body did not arrive within {seconds:g} s",
                    headers={"Connection": "close"},
                ) from None
        return await handler(request)

    return read_body_in_time


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

    async def stop(self) -> None:
        """Close clients, stop the triggers, the server and the database; every step is bounded, so a
        client that stopped reading cannot hold the shutdown."""
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
    app = web.Application(
        client_max_size=1 << 20,
        middlewares=[cors_middleware(lambda: [hub.base_url]), api_errors, body_deadline(body_timeout)],
    )
    app.add_routes(hub.routes())
    app.add_routes(identity.routes())
    app.add_routes(host.routes())
    app.add_routes(
        site_routes(site_dir, lambda: {"apiBaseUrl": f"{hub.base_url}/api", "hub": wiring.HUB_NAME})
    )
    return app, hub, host, identity


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
        app, access_log_class=AccessLogger, keepalive_timeout=header_timeout, lingering_time=LINGER_SECONDS
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_port = runner.addresses[0][1]
    url = f"http://{host}:{bound_port}"
    hub.base_url = url
    functions_host.app_settings.update(identity_settings(url, identity))
    await functions_host.start()
    return LocalMode(url, publish_key, database, hub, functions_host, runner)
