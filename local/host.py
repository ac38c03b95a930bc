"""A small local host for the unchanged `functions/function_app.py`.

It reads the app's own metadata (`app.get_functions()`) and honours each binding the way the
Azure Functions host does: HTTP triggers with routes (route constraints and catch-alls, ranked as
ASP.NET Core ranks them), methods and auth levels (function keys enforced); `signalRConnectionInfo`
input; `signalR` output to the local hub; `sql` input and output on the embedded database, with
`{Query.x}`, `{routeParameter}` and `%AppSetting%` in binding properties; `sqlTrigger` as an ordered,
at-least-once change feed polled as the SQL extension polls it (or woken by every write, for
tests); `timerTrigger` on its NCRONTAB schedule (UTC); SignalR connection events to
`signalRTrigger` functions. App settings are the process environment, as for
the Python worker on Azure, so one host runs per process. It also serves the site.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import importlib.util
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import azure.functions as func
from aiohttp import web
from azure.functions.timer import TimerRequest

from artifacts.site_files import site_files
from functions.contract import MAX_BODY_BYTES
from local.database import DELETE, INSERT, BindingError, Database, table_name
from local.errors import error_response
from local.gate import read_body
from local.hub import Connection, Hub
from local.schedule import Schedule

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = ROOT / "functions"
_PARAMETER = re.compile(r"^\s*@(\w+)\s*=([^=]*)$")
_EXPRESSION = re.compile(r"\{(Query\.)?(\w+)\}")
_APP_SETTING = re.compile(r"%(\w+)%")
log = logging.getLogger("local.host")
SLOW_TRIGGER_MS = 100
PAST_DUE_SECONDS = 5.0
# The host whose app settings are in the process environment (one at a time).
_active_host: FunctionsHost | None = None


@dataclass
class FunctionSpec:
    """One function as the host sees it: its callable and its bindings by name."""

    name: str
    call: Callable[..., Any]
    bindings: list[dict[str, Any]]
    trigger: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        (self.trigger,) = [b for b in self.bindings if b["type"].endswith("Trigger")]


class Out:
    """The object an output binding parameter receives."""

    def __init__(self) -> None:
        self.value: Any = None

    def set(self, value: Any) -> None:
        self.value = value

    def get(self) -> Any:
        return self.value


def load_function_app(functions_dir: Path = FUNCTIONS_DIR) -> func.FunctionApp:
    """Import `function_app.py` the way the Python worker does: its folder is the script root."""
    if str(functions_dir) not in sys.path:
        sys.path.insert(0, str(functions_dir))
    spec = importlib.util.spec_from_file_location("function_app", functions_dir / "function_app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["function_app"] = module
    spec.loader.exec_module(module)
    return module.app


def resolve_app_settings(text: str, settings: Mapping[str, str]) -> str:
    """`%Name%` replaced by the app setting, as the host does when it indexes the function."""

    def value(match: re.Match[str]) -> str:
        if match.group(1) not in settings:
            raise BindingError(
                f"'%{match.group(1)}%' does not resolve to a value: no app setting {match.group(1)}"
            )
        return settings[match.group(1)]

    return _APP_SETTING.sub(value, text)


def _sql_parameters(text: str | None, query: Mapping[str, str], route: Mapping[str, str]) -> dict[str, Any]:
    """Read a SQL binding's `parameters` as the binding does: first resolve `{Query.name}` and
    `{routeParameter}` in the whole string (app settings are resolved already; a missing value fails
    as Azure's host fails), then split it on `,` into `@Name=value` pairs (`null` is NULL). Because
    the values go in before the split, one holding `,` or `=` breaks the list, on Azure as here:
    what reaches a binding must not contain them."""

    def value(match: re.Match[str]) -> str:
        source = query if match.group(1) else route
        if match.group(2) not in source:
            raise BindingError(f"Error while accessing '{match.group(2)}': property doesn't exist")
        return source[match.group(2)]

    values: dict[str, Any] = {}
    for part in _EXPRESSION.sub(value, text or "").split(","):
        if not part.strip():
            continue
        match = _PARAMETER.match(part)
        if not match:
            raise BindingError(f"cannot parse SQL binding parameter {part!r}: each must be @Name=value")
        name, parameter = match.groups()
        values[name] = None if parameter == "null" else parameter
    return values


_GUID_FORMATS = {
    # Guid.TryParse's formats that a URL segment can carry (N, D, B, P), by length.
    32: r"[0-9A-Fa-f]{32}",
    36: r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}",
    # Braces as \x7b and \x7d: aiohttp's route parser takes a literal brace for a variable's end.
    38: r"\x7b[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\x7d"
    r"|\([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\)",
}
_SEGMENT_PARAMETER = re.compile(r"^\{(\*?)(\w+)((?::[a-z]+(?:\(\d+\))?)*)\}$")
# ASP.NET Core's `long` and `int` constraints: Int64/Int32.TryParse with NumberStyles.Integer and
# the invariant culture (leading and trailing white space, a leading sign, ASCII digits, in range).
# The pattern admits the form; the range is checked on each request (`route_values_fit`).
_INTEGER_FORM = r"[\t-\r ]*[+-]?[0-9]+[\t-\r ]*"
INTEGER_RANGES = {"long": (-(2**63), 2**63 - 1), "int": (-(2**31), 2**31 - 1)}


def route_pattern(template: str) -> tuple[str, tuple[int, ...]]:
    """A Functions route template as an aiohttp path under /api/, and its rank (lower first).

    Supports literal segments, `{name}`, `{*name}` (catch-all) and the constraints `guid`,
    `length(n)` (with `guid`), `long` and `int`, which ASP.NET Core applies to the whole segment;
    anything else is refused rather than matched loosely. The rank orders literal segments before
    constrained parameters, those before plain ones, and a catch-all last, as ASP.NET Core's route
    precedence does.
    """
    parts, rank = [], []
    for segment in template.strip("/").split("/"):
        match = _SEGMENT_PARAMETER.match(segment)
        if match is None:
            if "{" in segment or "}" in segment:
                raise ValueError(f"route {template!r}: the local host cannot read segment {segment!r}")
            parts.append(segment)
            rank.append(1)
            continue
        catch_all, name, constraint_text = match.groups()
        constraints = [c for c in constraint_text.split(":") if c]
        if catch_all:
            if constraints:
                raise ValueError(f"route {template!r}: constraints on a catch-all are not supported here")
            parts.append(f"{{{name}:.*}}")
            rank.append(5)
            continue
        pattern = r"[^{}/]+"
        lengths = None
        if constraints and all(c in INTEGER_RANGES for c in constraints):
            parts.append(f"{{{name}:{_INTEGER_FORM}}}")
            rank.append(2)
            continue
        for constraint in constraints:
            if constraint == "guid":
                lengths = lengths or set(_GUID_FORMATS)
            elif constraint.startswith("length("):
                lengths = (lengths or set(_GUID_FORMATS)) & {int(constraint[7:-1])}
                if "guid" not in constraints:
                    raise ValueError(f"route {template!r}: length() only with guid here")
            else:
                raise ValueError(
                    f"route {template!r}: the local host does not support the constraint {constraint!r}"
                )
        if lengths is not None:
            pattern = "|".join(f"(?:{_GUID_FORMATS[n]})" for n in sorted(lengths)) or "(?!)"
        parts.append(f"{{{name}:{pattern}}}")
        rank.append(2 if constraints else 3)
    return "/api/" + "/".join(parts), tuple(rank)


def route_values_fit(template: str, values: Mapping[str, str]) -> bool:
    """Whether route values are in the range of their `long` or `int` constraints (the form was
    matched by the pattern); a value out of range means the route does not match, as in ASP.NET."""
    for segment in template.strip("/").split("/"):
        match = _SEGMENT_PARAMETER.match(segment)
        if match is None:
            continue
        for constraint in (c for c in match.group(3).split(":") if c in INTEGER_RANGES):
            low, high = INTEGER_RANGES[constraint]
            if not low <= int(values[match.group(2)]) <= high:
                return False
    return True


class FunctionsHost:
    """Runs the function app's functions against the local database and hub."""

    def __init__(
        self,
        database: Database,
        hub: Hub,
        publish_key: str,
        app: func.FunctionApp | None = None,
        max_batch_size: int = 100,
        polling_interval_ms: int = 0,
        app_settings: Mapping[str, str] | None = None,
    ) -> None:
        self.database = database
        self.hub = hub
        self.publish_key = publish_key
        self.max_batch_size = max_batch_size
        self.polling_interval = polling_interval_ms / 1000
        """Seconds between two reads of the change feed (Sql_Trigger_PollingIntervalMs); 0: on every write."""
        self.app_settings = dict(app_settings or {})
        """What the app's process environment holds while the host runs (as App Service sets app
        settings as environment variables); `%Name%` in bindings resolves from it."""
        app = app or load_function_app()
        self.functions: dict[str, FunctionSpec] = {}
        for function in app.get_functions():
            name = str(function.get_function_name())
            bindings = json.loads(function.get_function_json())["bindings"]
            self.functions[name] = FunctionSpec(name, function.get_user_function(), bindings)
        self._body_limits: dict[Callable[..., Any], int] = {}
        self._saved_environment: dict[str, str | None] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._wakeups: list[asyncio.Event] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        hub.on_connection_event(self._on_connection_event)

    # lifecycle

    async def start(self) -> None:
        """Resolve `%AppSetting%` in every binding (a function naming a setting that is missing does
        not start, as on Azure), put the app settings in the environment, and start one change-feed
        consumer per SQL-triggered function and one clock per timer-triggered one."""
        global _active_host
        if _active_host is not None:
            raise RuntimeError("one local host per process: app settings are the process environment")
        for spec in self.functions.values():
            spec.bindings = json.loads(resolve_app_settings(json.dumps(spec.bindings), self.app_settings))
            spec.__post_init__()
        _active_host = self
        for name, value in self.app_settings.items():
            self._saved_environment[name] = os.environ.get(name)
            os.environ[name] = value
        self._loop = asyncio.get_running_loop()
        self.database.on_change(self._wake_all)
        for spec in self.functions.values():
            if spec.trigger["type"] == "sqlTrigger":
                wakeup = asyncio.Event()
                self._wakeups.append(wakeup)
                self._tasks.append(asyncio.create_task(self._sql_trigger_loop(spec, wakeup)))
            elif spec.trigger["type"] == "timerTrigger":
                schedule = Schedule.parse(spec.trigger["schedule"])
                self._tasks.append(asyncio.create_task(self._timer_loop(spec, schedule)))

    async def stop(self) -> None:
        """Stop the consumers and clocks; give the environment back."""
        global _active_host
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for name, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_environment.clear()
        if _active_host is self:
            _active_host = None

    def _wake_all(self) -> None:
        if self._loop is None:
            return
        for wakeup in self._wakeups:
            self._loop.call_soon_threadsafe(wakeup.set)

    # invocation

    def _inputs(
        self, spec: FunctionSpec, query: Mapping[str, str], route: Mapping[str, str]
    ) -> tuple[dict[str, Any], dict[str, Out]]:
        arguments: dict[str, Any] = {}
        outputs: dict[str, Out] = {}
        for binding in spec.bindings:
            name, kind, direction = binding["name"], binding["type"], binding["direction"]
            if binding is spec.trigger or name == "$return":
                continue
            if direction == "OUT":
                outputs[name] = Out()
                arguments[name] = outputs[name]
            elif kind == "signalRConnectionInfo":
                arguments[name] = json.dumps(self.hub.connection_info(binding["hubName"]))
            elif kind == "sql":
                parameters = _sql_parameters(binding.get("parameters"), query, route)
                if binding.get("commandType") == "StoredProcedure":
                    rows = self.database.call(binding["commandText"], parameters)
                else:
                    rows = self.database.query(binding["commandText"], parameters)
                arguments[name] = func.SqlRowList([func.SqlRow(row) for row in rows])
            else:
                raise BindingError(f"{spec.name}: the local host does not support {kind} input bindings")
        return arguments, outputs

    def _apply_outputs(self, spec: FunctionSpec, outputs: dict[str, Out]) -> None:
        for binding in spec.bindings:
            out = outputs.get(binding["name"])
            if out is None or out.value is None:
                continue
            if binding["type"] == "sql":
                value = out.value
                rows = (
                    [dict(value)] if isinstance(value, func.SqlRow | dict) else [dict(row) for row in value]
                )
                self.database.upsert(binding["commandText"], rows)
            elif binding["type"] == "signalR":
                messages = json.loads(out.value)
                for message in messages if isinstance(messages, list) else [messages]:
                    if message.get("userId") or message.get("groupName") or message.get("connectionId"):
                        raise BindingError(
                            "the local hub broadcasts to all clients only (no user/group targets)"
                        )
                    self._broadcast_on_loop(
                        binding["hubName"], message["target"], message.get("arguments", [])
                    )
            else:
                raise BindingError(f"{spec.name}: the local host does not support {binding['type']} outputs")

    def _broadcast_on_loop(self, hub: str, target: str, arguments: list[Any]) -> None:
        """Functions run in worker threads; the hub's queues belong to the event loop's thread.
        call_soon_threadsafe keeps the order in which the functions sent."""

        def send() -> None:
            sent = self.hub.broadcast(hub, target, arguments)
            log.info("broadcast %s to %d connection(s)", target, sent)

        if self._loop is None:
            send()
        else:
            self._loop.call_soon_threadsafe(send)

    def invoke(
        self,
        spec: FunctionSpec,
        trigger_value: Any,
        query: Mapping[str, str] | None = None,
        route: Mapping[str, str] | None = None,
    ) -> Any:
        """Run one function synchronously: inputs, the user code, then outputs (as the host does)."""
        arguments, outputs = self._inputs(spec, query or {}, route or {})
        arguments[spec.trigger["name"]] = trigger_value
        result = spec.call(**arguments)
        self._apply_outputs(spec, outputs)
        return result

    # HTTP

    def routes(self) -> list[web.RouteDef]:
        """One route per (route, method) of the app's HTTP triggers, under /api/, in the order the
        Functions host would try them (aiohttp takes the first that matches)."""
        ranked = []
        for spec in self.functions.values():
            if spec.trigger["type"] != "httpTrigger":
                continue
            path, rank = route_pattern(spec.trigger["route"])
            for method in spec.trigger.get("methods") or ["GET", "POST"]:
                # aiohttp would also route HEAD to a GET route; the Functions host does not.
                options = {"allow_head": False} if method.upper() == "GET" else {}
                ranked.append((rank, web.route(method, path, self._http_handler(spec), **options)))
        return [route for _, route in sorted(ranked, key=lambda pair: pair[0])]

    def body_limits(self) -> dict[Callable[..., Any], int]:
        """The most body each HTTP function's handler reads: a keyed function (publishing) what the
        contract accepts; an anonymous one (negotiate, history, health) none. A body is read only
        after the key was checked (`read_body`), so a caller without one never makes the host hold it."""
        return dict(self._body_limits)

    def _authorized(self, spec: FunctionSpec, request: web.Request) -> bool:
        level = str(spec.trigger.get("authLevel", "FUNCTION")).upper()
        if level == "ANONYMOUS":
            return True
        key = request.headers.get("x-functions-key") or request.query.get("code") or ""
        # A header that is not UTF-8 arrives with surrogate escapes: as bytes it is just a wrong key.
        return hmac.compare_digest(key.encode("utf-8", "surrogateescape"), self.publish_key.encode())

    def _http_handler(self, spec: FunctionSpec) -> Callable[[web.Request], Any]:
        methods = {method.upper() for method in spec.trigger.get("methods") or ["GET", "POST"]}
        anonymous = str(spec.trigger.get("authLevel", "FUNCTION")).upper() == "ANONYMOUS"

        async def handle(request: web.Request) -> web.StreamResponse:
            # aiohttp hands HEAD to a GET route; the Functions host matches a function's own methods
            # only, and a value outside a `long` or `int` constraint's range matches no route.
            if request.method not in methods or not route_values_fit(
                spec.trigger["route"], request.match_info
            ):
                return error_response(404, f"no API at {request.path}")
            if not self._authorized(spec, request):
                return error_response(
                    401, "a valid function key is required: the x-functions-key header or the code parameter"
                )
            body = await read_body(request, self._body_limits[handle])
            query = query_values(request)
            http_request = func.HttpRequest(
                method=request.method,
                url=str(request.url),
                headers=dict(request.headers),
                params=query,
                route_params=dict(request.match_info),
                body=body,
            )
            try:
                response = await asyncio.to_thread(
                    self.invoke, spec, http_request, query, dict(request.match_info)
                )
            except BindingError as error:
                log.error("%s failed: %s", spec.name, error)
                return web.json_response(
                    {"error": {"code": "binding_failed", "message": str(error)}}, status=500
                )
            except Exception:
                log.exception("%s failed", spec.name)
                return error_response(500, f"{spec.name} failed; the local mode's log says why")
            headers = {k: v for k, v in response.headers.items() if k.lower() != "content-type"}
            return web.Response(
                body=response.get_body(),
                status=response.status_code,
                headers=headers,
                content_type=response.mimetype,
                charset=response.charset,
            )

        self._body_limits[handle] = 0 if anonymous else MAX_BODY_BYTES
        return handle

    # SQL trigger

    def _changes_payload(self, table: str, changes: list[Any]) -> str:
        """The trigger's argument: `[{"Item": row, "Operation": 0|1|2}]`, one entry per row changed."""
        net: dict[str, int] = {}
        for change in changes:
            first = net.get(change.key)
            # Change tracking reports the net change: an insert later updated is still an insert.
            net[change.key] = INSERT if first == INSERT and change.operation != DELETE else change.operation
        rows = self.database.rows_by_key(table, [key for key, op in net.items() if op != DELETE])
        key_column = self.database.tables[table].primary_key
        payload = []
        for key, operation in net.items():
            if operation != DELETE and key in rows:
                payload.append({"Item": rows[key], "Operation": operation})
            else:
                payload.append({"Item": {key_column: key}, "Operation": DELETE})
        return json.dumps(payload)

    async def _sql_trigger_loop(self, spec: FunctionSpec, wakeup: asyncio.Event) -> None:
        """The SQL trigger's change consumption loop. With a polling interval, as the SQL extension's
        (SqlTableChangeMonitor.RunChangeConsumptionLoopAsync): read one batch of at most
        `max_batch_size` changes, run the function on it, then wait the interval, whatever was found,
        so a change waits up to an interval and a backlog drains one batch per interval. With 0
        (local only: Azure refuses it), woken by every write and drained at once."""
        table = table_name(spec.trigger["tableName"])
        lease = self.database.lease(spec.name)
        delay = 0.1
        while True:
            # Cleared before the read: a write after it sets it again, so none is missed.
            wakeup.clear()
            changes = self.database.changes_after(table, lease, self.max_batch_size)
            if changes:
                if self._run_sql_trigger(spec, table, changes):
                    delay = 0.1
                    lease = changes[-1].sequence
                    self.database.set_lease(spec.name, lease)
                elif not self.polling_interval:
                    # At least once: the lease stays, the same changes are delivered again.
                    log.info("retrying %s in %.1f s", spec.name, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
            if self.polling_interval:
                await asyncio.sleep(self.polling_interval)
            elif not changes:
                await wakeup.wait()

    def _run_sql_trigger(self, spec: FunctionSpec, table: str, changes: list[Any]) -> bool:
        """Run a SQL-triggered function on one batch; False if it failed (logged)."""
        payload = self._changes_payload(table, changes)
        try:
            # On the event loop's thread, not a worker: the broadcast path then has no thread
            # hop or GIL hand-over (p99 at 1,000 clients drops from ~120 to ~80 ms). Trigger
            # functions here are short; a slow one is reported, since it delays the hub.
            started = time.perf_counter()
            self.invoke(spec, payload)
            elapsed_ms = (time.perf_counter() - started) * 1000
            if elapsed_ms > SLOW_TRIGGER_MS:
                log.warning("%s took %.0f ms; the local hub waited for it", spec.name, elapsed_ms)
        except Exception:
            log.exception("%s failed; its changes will be delivered again", spec.name)
            return False
        return True

    # timer trigger

    async def _timer_loop(self, spec: FunctionSpec, schedule: Schedule) -> None:
        while True:
            due = schedule.next_after(datetime.now(UTC))
            await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()))
            late = (datetime.now(UTC) - due).total_seconds()
            try:
                await self.run_timer(spec.name, past_due=late > PAST_DUE_SECONDS)
            except Exception:
                # As on Azure, a failed run is logged and the schedule goes on.
                log.exception("%s failed", spec.name)

    async def run_timer(self, name: str, past_due: bool = False) -> None:
        """Run a timer-triggered function now, as its schedule would."""
        spec = self.functions[name]
        if spec.trigger["type"] != "timerTrigger":
            raise ValueError(f"{name} is not timer-triggered")
        await asyncio.to_thread(self.invoke, spec, TimerRequest(past_due=past_due))

    # SignalR trigger

    async def _on_connection_event(self, event: str, connection: Connection) -> None:
        for spec in self.functions.values():
            trigger = spec.trigger
            if (
                trigger["type"] == "signalRTrigger"
                and trigger.get("hubName") == connection.hub
                and trigger.get("category") == "connections"
                and trigger.get("event") == event
            ):
                invocation = json.dumps(
                    {
                        "ConnectionId": connection.connection_id,
                        "UserId": connection.user_id,
                        "Hub": connection.hub,
                        "Category": "connections",
                        "Event": event,
                    }
                )
                await asyncio.to_thread(self.invoke, spec, invocation)


def query_values(request: web.Request) -> dict[str, str]:
    """The query as the Functions host hands it to a worker: one value per name, a repeated name's
    values joined with `,` (ASP.NET Core's StringValues; Azure/azure-webjobs-sdk#1990,
    Azure/azure-functions-nodejs-library#168), so `after=0&after=5` is "0,5", not silently the first."""
    return {name: ",".join(request.query.getall(name)) for name in dict.fromkeys(request.query.keys())}


def site_routes(site_dir: Path, config: Callable[[], dict[str, Any]]) -> list[web.RouteDef]:
    """Serve the site's files (and the generated config.json) like the static website does."""
    files = site_files(site_dir)

    async def serve(request: web.Request) -> web.StreamResponse:
        path = request.match_info.get("path", "") or "index.html"
        if path == "config.json":
            return web.json_response(config(), headers={"Cache-Control": "no-cache"})
        entry = files.get(path) or files.get(path.rstrip("/") + "/index.html")
        if entry is None:
            not_found = files["404.html"]
            return web.FileResponse(
                not_found.source, status=404, headers={"Content-Type": not_found.content_type}
            )
        return web.FileResponse(
            entry.source, headers={"Content-Type": entry.content_type, "Cache-Control": entry.cache_control}
        )

    # Not under /api/: there the API answers, JSON errors included, for paths it does not have too.
    return [web.get("/", serve), web.get(r"/{path:(?!api(?:/|$)).*}", serve)]
