"""The local host's readings of the Functions host's rules: NCRONTAB schedules, route templates
with constraints and their precedence, and app settings in binding expressions.

Sources: Microsoft Learn, "Timer trigger for Azure Functions" (NCRONTAB: six fields, second first;
UTC); "Azure Functions HTTP trigger" (route constraints as in ASP.NET Core routing, catch-all
`{*name}`); ASP.NET Core "Routing" (a segment's constraints all apply, `guid` is Guid.TryParse,
`length(n)` the exact length; literal segments outrank parameters, a catch-all ranks last);
"App settings reference" / binding expressions (`%Name%` resolves from app settings, and a
function whose setting is missing fails to index).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from functions import queries, wiring
from local.database import BindingError, Database
from local.host import FunctionsHost, _sql_parameters, resolve_app_settings, route_pattern, route_values_fit
from local.hub import Hub
from local.schedule import Schedule, ScheduleError
from local.server import build_app


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("0 * * * * *", "2026-11-28T10:00:00", "2026-11-28T10:01:00"),
        ("0 * * * * *", "2026-11-28T10:00:59.999", "2026-11-28T10:01:00"),
        ("0 17 * * * *", "2026-11-28T10:17:00", "2026-11-28T11:17:00"),
        ("0 17 * * * *", "2026-12-31T23:30:00", "2027-01-01T00:17:00"),
        ("*/15 * * * * *", "2026-11-28T10:00:14", "2026-11-28T10:00:15"),
        ("0 0 9-17/4 * * *", "2026-11-28T13:00:00", "2026-11-28T17:00:00"),
        ("0 30 9 * * 1-5", "2026-11-28T10:00:00", "2026-11-30T09:30:00"),  # Saturday -> Monday
        ("0 0 0 29 2 *", "2026-03-01T00:00:00", "2028-02-29T00:00:00"),
        ("5,35 0 0 1 * *", "2026-11-01T00:00:05", "2026-11-01T00:00:35"),
    ],
)
def test_next_occurrence(expression: str, after: str, expected: str) -> None:
    assert Schedule.parse(expression).next_after(at(after)) == at(expected)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * * *", "six fields"),
        ("0 61 * * * *", "minute field"),
        ("0 0 0 * JAN *", "names are not supported"),
        ("0 0 0 1 * 1", "not both"),
        ("0 */0 * * * *", "at least 1"),
        ("0 0 0 31 2 *", "no occurrence"),
    ],
)
def test_schedules_this_host_cannot_read_are_refused(expression: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        Schedule.parse(expression).next_after(at("2026-01-01T00:00:00"))


def _matches(template: str, path: str) -> bool:
    """Whether aiohttp's router, given the host's pattern, takes `path`."""
    pattern, _ = route_pattern(template)
    route = web.Application().router.add_route("PUT", pattern, _never_called)
    return route.resource is not None and route.resource._match("/api/" + path) is not None


async def _never_called(request: web.Request) -> web.Response:
    raise AssertionError("routes are only matched here")


def test_guid_and_length_36_admit_exactly_the_hyphenated_form() -> None:
    template = "messages/{key:guid:length(36)}"
    key = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
    assert _matches(template, "messages/" + key) and _matches(template, "messages/" + key.upper())
    for other in (key.replace("-", ""), "{" + key + "}", "(" + key + ")", key + "0", "a,b", key[:-1] + "g"):
        assert not _matches(template, "messages/" + other), other
    # guid alone: Guid.TryParse's N, D, B and P forms.
    assert _matches("x/{id:guid}", "x/" + key.replace("-", "")) and _matches("x/{id:guid}", "x/{" + key + "}")


def test_routes_rank_literals_then_constrained_then_plain_then_catch_all() -> None:
    ranks = {
        template: route_pattern(template)[1]
        for template in (
            "messages/page",
            "messages/{key:guid:length(36)}",
            "messages/{anything}",
            "messages/{*path}",
        )
    }
    assert sorted(ranks, key=ranks.__getitem__) == [
        "messages/page",
        "messages/{key:guid:length(36)}",
        "messages/{anything}",
        "messages/{*path}",
    ]


@pytest.mark.parametrize(
    "template", ["a/{id:alpha}", "a/{id?}", "a/{*rest:guid}", "a/{id:length(3)}", "a/{id:int:guid}"]
)
def test_route_features_the_host_does_not_implement_are_refused(template: str) -> None:
    with pytest.raises(ValueError, match=r"route 'a/"):
        route_pattern(template)


def test_binding_parameters_take_their_values_before_they_are_split() -> None:
    """The SQL binding resolves the expressions in `parameters`, then splits on `,` and `=`
    (SqlAttribute.Parameters: "neither the parameter name nor the parameter value can have ',' or
    '='"): a value holding either breaks the list instead of passing through."""
    parameters = "@Key={key},@Take={Query.take},@Empty=,@None=null"
    assert _sql_parameters(parameters, {"take": "5"}, {"key": "k"}) == {
        "Key": "k",
        "Take": "5",
        "Empty": "",
        "None": None,
    }
    for key in ("a,b", "a=b"):
        with pytest.raises(BindingError, match="@Name=value"):
            _sql_parameters(parameters, {"take": "5"}, {"key": key})
    with pytest.raises(BindingError, match="'take': property doesn't exist"):
        _sql_parameters(parameters, {}, {"key": "k"})


def test_app_settings_resolve_and_a_missing_one_is_named() -> None:
    assert resolve_app_settings("@Days=%Retention%", {"Retention": "30"}) == "@Days=30"
    with pytest.raises(Exception, match=r"'%Missing%' does not resolve to a value"):
        resolve_app_settings("@Days=%Missing%", {})


def test_a_function_naming_a_missing_setting_stops_the_host_from_starting() -> None:
    async def scenario() -> None:
        host = FunctionsHost(Database(":memory:"), Hub({wiring.HUB_NAME}), "key-12345", app_settings={})
        with pytest.raises(Exception, match=wiring.MESSAGE_RETENTION_DAYS_SETTING):
            await host.start()

    asyncio.run(scenario())


def test_app_settings_are_the_environment_while_the_host_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(wiring.MESSAGE_RETENTION_DAYS_SETTING, raising=False)

    async def scenario() -> None:
        settings = {wiring.MESSAGE_RETENTION_DAYS_SETTING: "7"}
        host = FunctionsHost(Database(":memory:"), Hub({wiring.HUB_NAME}), "key-12345", app_settings=settings)
        await host.start()
        try:
            assert os.environ[wiring.MESSAGE_RETENTION_DAYS_SETTING] == "7"
            second = FunctionsHost(
                Database(":memory:"), Hub({wiring.HUB_NAME}), "key-12345", app_settings=settings
            )
            with pytest.raises(RuntimeError, match="one local host per process"):
                await second.start()
        finally:
            await host.stop()
        assert wiring.MESSAGE_RETENTION_DAYS_SETTING not in os.environ

    asyncio.run(scenario())


def test_long_and_int_admit_what_int64_and_int32_tryparse_admit() -> None:
    """ASP.NET Core's `long`/`int` constraints: Int64/Int32.TryParse, NumberStyles.Integer (white
    space around, a leading sign, ASCII digits) and in range; nothing with `,` or `=` gets through."""
    template = "messages/after/{after:long}/take/{take:int}"
    for after in ("0", "17", "+5", "-5", " 7 ", str(2**63 - 1), str(2**70)):
        assert _matches(template, f"messages/after/{after}/take/5"), after
    for after in ("", "x", "1=2", "1,@Take=5", "1.5", "\u0661", "0x10", "1e3"):
        assert not _matches(template, f"messages/after/{after}/take/5"), after
    assert route_values_fit(template, {"after": str(2**63 - 1), "take": str(2**31 - 1)})
    assert not route_values_fit(template, {"after": str(2**63), "take": "5"})
    assert not route_values_fit(template, {"after": "1", "take": str(2**31)})
    assert not route_values_fit(template, {"after": str(-(2**63) - 1), "take": "5"})


ATTACKS = [
    # Each answered 500 binding_failed, with the binding's internals, before issue 21.
    ("GET", "/api/messages", 400, "invalid_after"),
    ("HEAD", "/api/messages", 400, None),
    ("GET", "/api/messages/page", 400, "invalid_before"),
    ("GET", "/api/messages?after=1=2&take=5", 400, "invalid_after"),
    ("GET", "/api/messages/page?before=1,@Take=5&take=5", 400, "invalid_before"),
    ("GET", "/api/messages/after/1=2/take/5", 404, "not_found"),
    ("GET", f"/api/messages/after/{2**63}/take/5", 404, "not_found"),
    # aiohttp's router answers 405 where the Functions host, matching no route, answers 404.
    ("HEAD", "/api/health", 405, None),
]


@pytest.mark.parametrize(("method", "path", "status", "code"), ATTACKS)
def test_no_anonymous_request_makes_the_api_answer_500(
    method: str, path: str, status: int, code: str | None
) -> None:
    async def scenario() -> tuple[int, str, bytes]:
        application, _, host, _ = build_app(Database(), "publish-key")
        async with TestClient(TestServer(application)) as client:
            await host.start()
            try:
                response = await client.request(method, path, allow_redirects=False)
                return response.status, response.content_type, await response.read()
            finally:
                await host.stop()

    answer_status, content_type, body = asyncio.run(scenario())
    assert answer_status == status and content_type == "application/json"
    if code is not None:
        assert json.loads(body)["error"]["code"] == code


@pytest.mark.parametrize(
    ("row", "column"),
    [
        ({"text": "\u200b\u2060", "author": None}, "text"),
        ({"text": "\u0085", "author": None}, "text"),
        ({"text": "hi", "author": "adm\u200bin"}, "author"),
        ({"text": "hi", "author": "\u202enimda"}, "author"),
    ],
)
def test_the_local_database_refuses_what_the_contract_refuses(
    row: dict[str, str | None], column: str
) -> None:
    database = Database()
    message = {
        "messageKey": "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
        "createdAt": "2026-12-01T00:00:00.000Z",
        **row,
    }
    with pytest.raises(
        BindingError, match=rf"CHECK constraint on table 'Messages', column '{column}'.*\(547\)"
    ):
        database.upsert(wiring.MESSAGES_TABLE, [message])
    assert database.count(wiring.MESSAGES_TABLE) == 0
    database.upsert(wiring.MESSAGES_TABLE, [{**message, "text": "hi", "author": "admin"}])
    assert database.count(wiring.MESSAGES_TABLE) == 1


KEY = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"


def test_concurrent_first_writes_of_one_key_store_and_broadcast_one_message() -> None:
    """Issue 21's race: ten concurrent PUTs of one new key with different texts. Exactly one is
    stored (202); the others are 409 `key_reused` (the stored text differs) or `key_in_use` (the
    winner is still writing); history and the broadcast hold the winner's text. The writes are held
    until every request's input binding has run, the widest window a real race can open: before
    the claim, all ten then got 202 and history kept the last text while clients got the first."""
    requests = 10

    async def scenario() -> tuple[list[tuple[int, dict[str, Any]]], list[str], list[str]]:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(requests + 2))
        application, hub, host, _ = build_app(Database(), "publish-key")
        sent: list[str] = []
        broadcast, inputs, upsert = hub.broadcast, host._inputs, host.database.upsert
        read, all_read = [0], threading.Event()

        def spy(name: str, target: str, arguments: list[Any]) -> int:
            sent.extend(argument["text"] for argument in arguments if target == wiring.NEW_MESSAGE_TARGET)
            return broadcast(name, target, arguments)

        def counted_inputs(*arguments: Any) -> Any:
            result = inputs(*arguments)
            read[0] += 1
            if read[0] == requests:
                all_read.set()
            return result

        def held_upsert(table: str, rows: list[dict[str, Any]]) -> None:
            all_read.wait(timeout=10)
            upsert(table, rows)

        hub.broadcast = spy  # type: ignore[method-assign]
        host._inputs = counted_inputs  # type: ignore[method-assign]
        host.database.upsert = held_upsert  # type: ignore[method-assign]
        async with TestClient(TestServer(application)) as client:
            await host.start()
            try:

                async def put(index: int) -> tuple[int, dict[str, Any]]:
                    response = await client.put(
                        f"/api/messages/{KEY}",
                        json={"text": f"text {index}"},
                        headers={"x-functions-key": "publish-key"},
                    )
                    return response.status, await response.json()

                answers = await asyncio.gather(*(put(index) for index in range(requests)))
                stored = host.database.query("SELECT text FROM dbo.Messages")
                async with asyncio.timeout(10):
                    while not sent:  # the SQL trigger's consumer runs on this loop
                        await asyncio.sleep(0.01)
                await asyncio.sleep(0.2)  # time for a second broadcast, if there were one
                return list(answers), [row["text"] for row in stored], sent
            finally:
                await host.stop()

    answers, stored, sent = asyncio.run(scenario())
    winners = [body["text"] for status, body in answers if status == 202]
    assert len(winners) == 1 and stored == winners and sent == winners, (answers, stored, sent)
    for status, body in answers:
        conflict = status == 409 and body["error"]["code"] in {"key_reused", "key_in_use"}
        assert status == 202 or conflict, body


def test_the_claim_admits_one_caller_then_answers_with_the_stored_message() -> None:
    database = Database()
    first, second = (
        database.call("dbo.ClaimMessageKey", {"Key": KEY.upper()}),
        database.call("dbo.ClaimMessageKey", {"Key": KEY}),
    )
    assert (first[0]["won"], second[0]["won"], first[0]["messageKey"]) == (1, 0, None)
    database.upsert(
        wiring.MESSAGES_TABLE, [{"messageKey": KEY, "text": "t", "author": None, "createdAt": "x"}]
    )
    (answer,) = database.call("dbo.ClaimMessageKey", {"Key": KEY})
    assert answer["won"] == 0 and answer["messageKey"] == KEY and answer["text"] == "t"
    assert database.call("dbo.ClaimMessageKey", {"Key": "not-a-key"})[0]["won"] == 0
    with pytest.raises(BindingError, match=r"\(2812\)"):
        database.call("dbo.NoSuchProcedure", {})


def test_a_released_or_stale_claim_is_taken_over_once() -> None:
    database = Database()
    assert database.call("dbo.ClaimMessageKey", {"Key": KEY})[0]["won"] == 1
    database.upsert(wiring.MESSAGE_KEYS_TABLE, [{"messageKey": KEY, "claimedAt": queries.RELEASED_AT}])
    assert [database.call("dbo.ClaimMessageKey", {"Key": KEY})[0]["won"] for _ in range(2)] == [1, 0]


def test_a_stored_message_never_changes() -> None:
    """Migration 0007's trigger refuses every UPDATE of dbo.Messages (the output binding's MERGE
    would otherwise overwrite a stored message, and the trigger never broadcasts an update)."""
    database = Database()
    message = {"messageKey": KEY, "text": "first", "author": None, "createdAt": "2026-12-01T00:00:00.000Z"}
    database.upsert(wiring.MESSAGES_TABLE, [message])
    with pytest.raises(BindingError, match=r"insert-only\. \(50001\)"):
        database.upsert(wiring.MESSAGES_TABLE, [{**message, "text": "second"}])
    assert database.query("SELECT text FROM dbo.Messages") == [{"text": "first"}]
