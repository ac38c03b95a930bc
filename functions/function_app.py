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
import uuid
from datetime import UTC, datetime

import azure.functions as func
import contract
import queries
import wiring

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
JSON = "application/json"


def _json_response(payload: object, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(payload), status_code=status, mimetype=JSON)


def _error_response(error: contract.ContractError) -> func.HttpResponse:
    return func.HttpResponse(error.body(), status_code=error.status, mimetype=JSON)


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
    accepted = {
        "key": stored["messageKey"],
        "text": stored["text"],
        "author": stored["author"],
        "createdAt": stored["createdAt"],
    }
    return _json_response(accepted, status=202)


@app.function_name("history")
@app.route(route="messages", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@app.sql_input(
    arg_name="rows",
    command_text=queries.HISTORY,
    command_type="Text",
    parameters=queries.HISTORY_PARAMETERS,
    connection_string_setting=wiring.SQL_CONNECTION_SETTING,
)
def history(req: func.HttpRequest, rows: func.SqlRowList) -> func.HttpResponse:
    """Messages after a given id, in id order: how a reconnecting client fills its gap."""
    try:
        contract.parse_history_query(req.params.get("after"), req.params.get("take"))
    except contract.ContractError as error:
        return _error_response(error)
    messages = [contract.message_from_row(dict(row)) for row in rows]
    return _json_response({"messages": sorted(messages, key=lambda message: message["id"])})


@app.function_name("history_page")
@app.route(route="messages/page", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@app.sql_input(
    arg_name="rows",
    command_text=queries.HISTORY_PAGE,
    command_type="Text",
    parameters=queries.HISTORY_PAGE_PARAMETERS,
    connection_string_setting=wiring.SQL_CONNECTION_SETTING,
)
def history_page(req: func.HttpRequest, rows: func.SqlRowList) -> func.HttpResponse:
    """The newest messages before a given id (or of all: `before=latest`), in id order: how a
    client shows the end of the history in one request, then reads further back page by page.

    A route of its own: naming `{Query.before}` in the `history` binding would make the Functions
    host refuse every `?after=&take=` request that does not also send `before`.
    """
    try:
        contract.parse_page_query(req.params.get("before"), req.params.get("take"))
    except contract.ContractError as error:
        return _error_response(error)
    messages = [contract.message_from_row(dict(row)) for row in rows]
    return _json_response({"messages": sorted(messages, key=lambda message: message["id"])})


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
    """Send each newly inserted message to every client, in id order."""
    messages = [contract.message_from_row(item) for item in contract.inserted_items(changes)]
    if messages:
        signalr.set(contract.signalr_messages(wiring.NEW_MESSAGE_TARGET, messages))
        for message in messages:
            logging.info("%s %s as %d", wiring.BROADCAST_LOG, message["key"], message["id"])


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
