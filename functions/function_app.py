"""The broadcast Functions app (Python v2 programming model).

negotiate -> SignalR connection info; publish -> a row in dbo.Messages; a SQL trigger on that
table -> `newMessage` to every client; SignalR connection events -> dbo.Connections; a SQL trigger
on that -> `presence`; history (after an id, or the newest page before an id) and health read
SQL through input bindings.

Nothing here reads settings at import time: an import error would mean "0 functions loaded".
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
import contract
import queries
import signalr_rest
import wiring

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
JSON = "application/json"


def _json_response(payload: object, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(payload), status_code=status, mimetype=JSON)


def _error_response(
    error: contract.ContractError, headers: dict[str, str] | None = None
) -> func.HttpResponse:
    return func.HttpResponse(error.body(), status_code=error.status, mimetype=JSON, headers=headers)


@app.function_name("negotiate")
@app.route(route="negotiate", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@app.generic_input_binding(
    arg_name="connection_info",
    type="signalRConnectionInfo",
    hub_name=wiring.HUB_NAME,
    connection_string_setting=wiring.SIGNALR_CONNECTION_SETTING,
)
def negotiate(req: func.HttpRequest, connection_info: str) -> func.HttpResponse:
    """Hand the client the SignalR endpoint and an access token (`{url, accessToken}`) unchanged."""
    return func.HttpResponse(connection_info, status_code=200, mimetype=JSON)


@app.function_name("publish")
@app.route(route="messages", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@app.sql_output(
    arg_name="row",
    command_text=wiring.MESSAGES_TABLE,
    connection_string_setting=wiring.SQL_CONNECTION_SETTING,
)
def publish(req: func.HttpRequest, row: func.Out[func.SqlRow]) -> func.HttpResponse:
    """Store a published message; the SQL trigger broadcasts it once the row exists."""
    try:
        fields = contract.parse_publish(req.get_body(), req.headers.get("Content-Type"))
    except contract.ContractError as error:
        return _error_response(error)
    stored = contract.new_message_row(fields, datetime.now(UTC), uuid.uuid4())
    row.set(func.SqlRow(stored))
    # One line per message: the undelivered-messages alert pairs it with the broadcast's line by key.
    logging.info("%s %s", wiring.ACCEPTED_LOG, stored["messageKey"])
    return _json_response(_accepted(stored, replayed=False), status=202)


def _accepted(row: dict[str, object], replayed: bool) -> dict[str, object]:
    """The publish answer: the message as stored, and whether this request was a replay."""
    return {**contract.accepted_message(row), "replayed": replayed}


@app.function_name("publish_with_key")
@app.route(route="messages/{key:guid:length(36)}", methods=["PUT"], auth_level=func.AuthLevel.FUNCTION)
@app.sql_input(
    arg_name="claim",
    command_text=queries.CLAIM_MESSAGE_KEY,
    command_type="StoredProcedure",
    parameters=queries.CLAIM_MESSAGE_KEY_PARAMETERS,
    connection_string_setting=wiring.SQL_CONNECTION_SETTING,
)
@app.sql_input(
    arg_name="claimed",
    command_text=queries.CLAIMED_AT,
    command_type="Text",
    parameters=queries.CLAIM_MESSAGE_KEY_PARAMETERS,
    connection_string_setting=wiring.SQL_CONNECTION_SETTING,
)
@app.sql_output(
    arg_name="row",
    command_text=wiring.MESSAGES_TABLE,
    connection_string_setting=wiring.SQL_CONNECTION_SETTING,
)
@app.sql_output(
    arg_name="release",
    command_text=wiring.MESSAGE_KEYS_TABLE,
    connection_string_setting=wiring.SQL_CONNECTION_SETTING,
)
def publish_with_key(
    req: func.HttpRequest,
    claim: func.SqlRowList,
    row: func.Out[func.SqlRow],
    release: func.Out[func.SqlRow],
    claimed: func.SqlRowList,
) -> func.HttpResponse:
    """Publish under a key the publisher chose, so that a retry cannot publish twice.

    The input binding has claimed the key (`dbo.ClaimMessageKey`) before this body runs: of
    racing requests with one key, exactly one wins the claim and writes its message (202,
    `"replayed": false`). The others find the stored message, answered as a retry (200,
    `"replayed": true`) when text and author are the same and 409 `key_reused` when not, or
    find the winner still writing: 409 `key_in_use`, with a Retry-After of 1 s while the claim is
    young, else the seconds until it can be taken over (its writer most likely stopped; the
    `claimed` binding reads when it was made). A winner whose body
    is refused releases the claim. The output binding upserts, but only the claim's winner
    writes, and dbo.Messages refuses updates: what is stored is what was broadcast.
    """
    outcome: dict[str, Any] = next((dict(answer) for answer in claim), {"won": 0})
    won = bool(outcome.get("won"))
    try:
        key = contract.parse_message_key(req.route_params.get("key"))
    except contract.ContractError as error:
        return _error_response(error)  # the route admits only UUIDs: no claim was won for this
    try:
        fields = contract.parse_publish(req.get_body(), req.headers.get("Content-Type"))
    except contract.ContractError as error:
        if won:
            # The key as parsed (lowercase), not as the URL spelled it: one spelling everywhere.
            release.set(func.SqlRow({"messageKey": str(key), "claimedAt": queries.RELEASED_AT}))
        return _error_response(error)
    if outcome.get("messageKey") is not None:
        if not contract.is_same_message(outcome, fields):
            return _error_response(
                contract.ContractError(
                    409, "key_reused", f"message key {key} was already used for a different message"
                )
            )
        return _json_response(_accepted(outcome, replayed=True), status=200)
    if not won:
        claimed_at = next((answer["claimedAt"] for answer in claimed), None)
        wait = contract.claim_retry_after(
            claimed_at, datetime.now(UTC), queries.CLAIM_FRESH_SECONDS, queries.CLAIM_STALE_SECONDS
        )
        return _error_response(contract.key_in_use(key, wait), headers={"Retry-After": str(wait)})
    stored = contract.new_message_row(fields, datetime.now(UTC), key)
    row.set(func.SqlRow(stored))
    logging.info("%s %s", wiring.ACCEPTED_LOG, stored["messageKey"])
    return _json_response(_accepted(stored, replayed=False), status=202)


@app.function_name("reject_message_key")
@app.route(route="messages/{*path}", methods=["PUT"], auth_level=func.AuthLevel.FUNCTION)
def reject_message_key(req: func.HttpRequest) -> func.HttpResponse:
    """A PUT whose key is not a UUID: a 400 that says so. (The key route admits only UUIDs so
    that nothing else reaches its SQL binding; this route takes the rest.) The name matters: ASP.NET
    Core's precedence ranks the catch-all last, but the Functions host is reported to try function
    routes in function-name order (Azure/azure-functions-host#9876), and "publish_with_key" sorts
    before "reject_message_key" too, so a UUID reaches publish_with_key either way."""
    return _error_response(contract.invalid_key())


# History. Query-string values never reach a SQL binding: the host answers 500 before the function
# runs when a binding expression names an absent query value, and a value holding `,` or `=` breaks
# the binding's parameter list. So `?after=&take=` and `/page?before=&take=` are checked by functions
# without bindings, which send the client on (307) to a route whose values a route constraint holds
# to a number; those routes' functions read SQL. Every other path is a JSON 404.
HISTORY_METHODS = ["GET", "HEAD"]


def _redirect(location: str) -> func.HttpResponse:
    return func.HttpResponse(status_code=307, headers={"Location": location, "Cache-Control": "no-store"})


@app.function_name("history")
@app.route(route="messages", methods=HISTORY_METHODS, auth_level=func.AuthLevel.ANONYMOUS)
def history(req: func.HttpRequest) -> func.HttpResponse:
    """`?after=<id>&take=<1..100>`: checked here, then answered by `history_after` (307)."""
    try:
        after, take = contract.parse_history_query(req.params.get("after"), req.params.get("take"))
    except contract.ContractError as error:
        return _error_response(error)
    return _redirect(contract.history_after_path(after, take))


@app.function_name("history_after")
@app.route(
    route="messages/after/{after:long}/take/{take:int}",
    methods=HISTORY_METHODS,
    auth_level=func.AuthLevel.ANONYMOUS,
)
@app.sql_input(
    arg_name="rows",
    command_text=queries.HISTORY,
    command_type="Text",
    parameters=queries.HISTORY_PARAMETERS,
    connection_string_setting=wiring.SQL_CONNECTION_SETTING,
)
def history_after(req: func.HttpRequest, rows: func.SqlRowList) -> func.HttpResponse:
    """Messages after a given id, in id order: how a reconnecting client fills its gap."""
    try:
        contract.parse_history_query(req.route_params.get("after"), req.route_params.get("take"))
    except contract.ContractError as error:
        return _error_response(error)
    messages = [contract.message_from_row(dict(row)) for row in rows]
    return _json_response({"messages": sorted(messages, key=lambda message: message["id"])})


@app.function_name("history_page")
@app.route(route="messages/page", methods=HISTORY_METHODS, auth_level=func.AuthLevel.ANONYMOUS)
def history_page(req: func.HttpRequest) -> func.HttpResponse:
    """`/page?before=<id or latest>&take=<1..100>`: checked here, then answered by `history_before`."""
    try:
        before, take = contract.parse_page_query(req.params.get("before"), req.params.get("take"))
    except contract.ContractError as error:
        return _error_response(error)
    return _redirect(contract.history_before_path(before, take))


@app.function_name("history_before")
@app.route(
    route="messages/before/{before:long}/take/{take:int}",
    methods=HISTORY_METHODS,
    auth_level=func.AuthLevel.ANONYMOUS,
)
@app.sql_input(
    arg_name="rows",
    command_text=queries.HISTORY_PAGE,
    command_type="Text",
    parameters=queries.HISTORY_PAGE_PARAMETERS,
    connection_string_setting=wiring.SQL_CONNECTION_SETTING,
)
def history_before(req: func.HttpRequest, rows: func.SqlRowList) -> func.HttpResponse:
    """The newest messages before a given id, in id order: how a client shows the end of the
    history in one request, then reads further back page by page."""
    try:
        contract.parse_page_query(req.route_params.get("before"), req.route_params.get("take"))
    except contract.ContractError as error:
        return _error_response(error)
    messages = [contract.message_from_row(dict(row)) for row in rows]
    return _json_response({"messages": sorted(messages, key=lambda message: message["id"])})


@app.function_name("reject_messages_path")
@app.route(route="messages/{*path}", methods=HISTORY_METHODS, auth_level=func.AuthLevel.ANONYMOUS)
def reject_messages_path(req: func.HttpRequest) -> func.HttpResponse:
    """Any other read under messages/ (a history route whose values are not numbers, say): the
    JSON 404 rather than the host's empty one. Its name sorts after every history function's, so
    it comes last in the host's function-name order as in ASP.NET Core's precedence."""
    del req
    return _error_response(
        contract.ContractError(
            404, "not_found", "no such API; history is /api/messages?after=<id>&take=<1..100>"
        )
    )


@app.function_name("health")
@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@app.sql_input(
    arg_name="probe",
    command_text=queries.HEALTH,
    command_type="Text",
    connection_string_setting=wiring.SQL_CONNECTION_SETTING,
)
def health(req: func.HttpRequest, probe: func.SqlRowList) -> func.HttpResponse:
    """200 when the database answered the probe (the binding fails the call when it cannot)."""
    reachable = any(dict(row).get("ok") == 1 for row in probe)
    return _json_response(
        {"status": "ok" if reachable else "degraded", "database": reachable}, status=200 if reachable else 503
    )


@app.function_name(wiring.BROADCAST_MESSAGES_FUNCTION)
@app.sql_trigger(
    arg_name="changes",
    table_name=wiring.MESSAGES_TABLE,
    connection_string_setting=wiring.SQL_CONNECTION_SETTING,
)
@app.generic_output_binding(
    arg_name="signalr",
    type="signalR",
    hub_name=wiring.HUB_NAME,
    connection_string_setting=wiring.SIGNALR_CONNECTION_SETTING,
)
def broadcast_messages(changes: str, signalr: func.Out[str]) -> None:
    """Send each newly inserted message to every client, in id order, and log each one's lag."""
    messages = [contract.message_from_row(item) for item in contract.inserted_items(changes)]
    if messages:
        signalr.set(contract.signalr_messages(wiring.NEW_MESSAGE_TARGET, messages))
        # The batch's lag, createdAt to the send (the output binding sends when this returns): the
        # service level indicator the broadcast-lag alert and the workbook read.
        sent_at = datetime.now(UTC)
        for message in messages:
            lag = contract.lag_ms(message["createdAt"], sent_at)
            logging.info("%s %s as %d lag %d ms", wiring.BROADCAST_LOG, message["key"], message["id"], lag)


def _connection_event(invocation: str, row: func.Out[func.SqlRow], column: str) -> None:
    row.set(
        func.SqlRow(
            {
                "connectionId": contract.connection_id(invocation),
                column: contract.utc_timestamp(datetime.now(UTC)),
            }
        )
    )


@app.function_name("on_connected")
@app.generic_trigger(
    arg_name="invocation",
    type="signalRTrigger",
    hub_name=wiring.HUB_NAME,
    category="connections",
    event="connected",
    connection_string_setting=wiring.SIGNALR_CONNECTION_SETTING,
)
@app.sql_output(
    arg_name="row",
    command_text=wiring.CONNECTIONS_TABLE,
    connection_string_setting=wiring.SQL_CONNECTION_SETTING,
)
def on_connected(invocation: str, row: func.Out[func.SqlRow]) -> None:
    """Record a client that connected."""
    _connection_event(invocation, row, "connectedAt")


@app.function_name("on_disconnected")
@app.generic_trigger(
    arg_name="invocation",
    type="signalRTrigger",
    hub_name=wiring.HUB_NAME,
    category="connections",
    event="disconnected",
    connection_string_setting=wiring.SIGNALR_CONNECTION_SETTING,
)
@app.sql_output(
    arg_name="row",
    command_text=wiring.CONNECTIONS_TABLE,
    connection_string_setting=wiring.SQL_CONNECTION_SETTING,
)
def on_disconnected(invocation: str, row: func.Out[func.SqlRow]) -> None:
    """Mark a client as gone (an upsert: the output binding cannot delete)."""
    _connection_event(invocation, row, "disconnectedAt")


@app.function_name(wiring.BROADCAST_PRESENCE_FUNCTION)
@app.sql_trigger(
    arg_name="changes",
    table_name=wiring.CONNECTIONS_TABLE,
    connection_string_setting=wiring.SQL_CONNECTION_SETTING,
)
@app.sql_input(
    arg_name="online",
    command_text=queries.ONLINE_COUNT,
    command_type="Text",
    connection_string_setting=wiring.SQL_CONNECTION_SETTING,
)
@app.generic_output_binding(
    arg_name="signalr",
    type="signalR",
    hub_name=wiring.HUB_NAME,
    connection_string_setting=wiring.SIGNALR_CONNECTION_SETTING,
)
def broadcast_presence(changes: str, online: func.SqlRowList, signalr: func.Out[str]) -> None:
    """After any change of connections, tell every client how many are online."""
    del changes  # the count, not the individual change, is what clients show
    count = next((int(dict(row)["online"]) for row in online), 0)
    signalr.set(contract.signalr_messages(wiring.PRESENCE_TARGET, [{"online": count}]))


@app.function_name("check_presence")
@app.timer_trigger(arg_name="timer", schedule=wiring.PRESENCE_CHECK_SCHEDULE, use_monitor=True)
@app.sql_input(
    arg_name="open_connections",
    command_text=queries.OPEN_CONNECTIONS,
    command_type="Text",
    connection_string_setting=wiring.SQL_CONNECTION_SETTING,
)
@app.sql_output(
    arg_name="closed",
    command_text=wiring.CONNECTIONS_TABLE,
    connection_string_setting=wiring.SQL_CONNECTION_SETTING,
)
def check_presence(
    timer: func.TimerRequest, open_connections: func.SqlRowList, closed: func.Out[func.SqlRowList]
) -> None:
    """Close the rows of connections SignalR no longer holds: presence heals after a lost
    disconnect event (an app restart, a failed upstream call) within a run of this timer.

    The close is an ordinary upsert, so the presence trigger recounts and broadcasts as for a
    disconnect event. A check SignalR does not answer leaves its row for the next run.
    """
    del timer  # a late run does the same work as a timely one
    ids = [str(dict(row)["connectionId"]) for row in open_connections]
    if not ids:
        return
    check = signalr_rest.ConnectionCheck.from_settings(
        os.environ, wiring.SIGNALR_CONNECTION_SETTING, wiring.HUB_NAME
    )
    gone, _ = check.gone(ids)
    if gone:
        now = contract.utc_timestamp(datetime.now(UTC))
        closed.set(func.SqlRowList(func.SqlRow({"connectionId": c, "disconnectedAt": now}) for c in gone))


@app.function_name("purge_expired")
@app.timer_trigger(arg_name="timer", schedule=wiring.PURGE_SCHEDULE, use_monitor=True)
@app.sql_input(
    arg_name="purged_connections",
    command_text=queries.PURGE_CONNECTIONS,
    command_type="Text",
    connection_string_setting=wiring.SQL_CONNECTION_SETTING,
)
@app.sql_input(
    arg_name="purged_messages",
    command_text=queries.PURGE_MESSAGES,
    command_type="Text",
    parameters=f"@Days=%{wiring.MESSAGE_RETENTION_DAYS_SETTING}%",
    connection_string_setting=wiring.SQL_CONNECTION_SETTING,
)
@app.sql_input(
    arg_name="purged_claims",
    command_text=queries.PURGE_CLAIMS,
    command_type="Text",
    connection_string_setting=wiring.SQL_CONNECTION_SETTING,
)
def purge_expired(
    timer: func.TimerRequest,
    purged_connections: func.SqlRowList,
    purged_messages: func.SqlRowList,
    purged_claims: func.SqlRowList,
) -> None:
    """Hourly housekeeping. The deletes are the input bindings' statements, run before this body
    (as the SQL binding's documented stored-procedure deletes are): connection rows closed for
    a day, messages past the `MessageRetentionDays` app setting when it is above 0, and message
    key claims a day old (a key's stored message, not its claim, answers its retries)."""
    del timer, purged_connections, purged_messages, purged_claims
    logging.info("purged closed connections and expired messages")
