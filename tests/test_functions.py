"""The Functions app, each function called directly with the objects the host would pass."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin

import azure.functions as func
import contract
import function_app
import pytest
import queries
import wiring
from function_support import FUNCTIONS


def user_function(name: str) -> Callable[..., Any]:
    return FUNCTIONS[name].get_user_function()


class Out:
    """What the host passes for an output binding: something with `set`."""

    def __init__(self) -> None:
        self.value: Any = None
        self.calls = 0

    def set(self, value: Any) -> None:
        self.value = value
        self.calls += 1

    def get(self) -> Any:
        return self.value


def post(body: bytes | str, content_type: str | None = "application/json") -> func.HttpRequest:
    headers = {"Content-Type": content_type} if content_type else {}
    data = body.encode() if isinstance(body, str) else body
    return func.HttpRequest("POST", "http://localhost/api/messages", headers=headers, body=data)


def publish(
    body: bytes | str, content_type: str | None = "application/json"
) -> tuple[func.HttpResponse, Out]:
    row = Out()
    response = user_function("publish")(post(body, content_type), row)
    return response, row


def error_of(response: func.HttpResponse) -> dict[str, str]:
    document = json.loads(response.get_body())
    assert set(document) == {"error"} and set(document["error"]) == {"code", "message"}
    return document["error"]


# negotiate


def test_negotiate_returns_the_binding_json_unchanged() -> None:
    info = '{"url":"https://sigr.service.signalr.net/client/?hub=broadcast","accessToken":"eyJ.x.y"}'
    request = func.HttpRequest("POST", "http://localhost/api/negotiate", body=b"")
    response = user_function("negotiate")(request, info)
    assert response.status_code == 200
    assert response.get_body().decode() == info
    assert response.mimetype == "application/json"


# publish


def test_publish_stores_a_row_and_answers_202_with_the_message() -> None:
    response, row = publish('{"text": "hello, world", "author": "ada"}')
    assert response.status_code == 202
    accepted = json.loads(response.get_body())
    stored = dict(row.value)
    assert row.calls == 1
    assert stored == {
        "messageKey": accepted["key"],
        "text": "hello, world",
        "author": "ada",
        "createdAt": accepted["createdAt"],
    }
    assert accepted["text"] == "hello, world" and accepted["author"] == "ada"
    assert uuid.UUID(accepted["key"]).version == 4
    assert accepted["createdAt"].endswith("Z") and len(accepted["createdAt"]) == 24


def test_publish_without_author_and_with_charset() -> None:
    response, row = publish('{"text": "x"}', "application/json; charset=utf-8")
    assert response.status_code == 202
    assert dict(row.value)["author"] is None


def test_publish_keeps_unicode_and_markup_as_text() -> None:
    text = "<script>alert(1)</script> 😀 日本"
    response, row = publish(json.dumps({"text": text}))
    assert response.status_code == 202 and dict(row.value)["text"] == text


def test_each_publish_gets_its_own_key() -> None:
    keys = {json.loads(publish('{"text": "x"}')[0].get_body())["key"] for _ in range(5)}
    assert len(keys) == 5


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        ('{"text": "x"', "application/json", 400, "malformed_json"),
        ("", "application/json", 400, "empty_body"),
        ("   ", "application/json", 400, "empty_body"),
        ("[1, 2]", "application/json", 400, "invalid_body"),
        ('"text"', "application/json", 400, "invalid_body"),
        ('{"text": 5}', "application/json", 400, "invalid_text"),
        ('{"text": null}', "application/json", 400, "invalid_text"),
        ('{"author": "a"}', "application/json", 400, "invalid_text"),
        ('{"text": "   "}', "application/json", 400, "invalid_text"),
        ('{"text": "a\\u0000b"}', "application/json", 400, "invalid_text"),
        ('{"text": "' + "x" * 2001 + '"}', "application/json", 400, "text_too_long"),
        ('{"text": "x", "author": 7}', "application/json", 400, "invalid_author"),
        ('{"text": "x", "author": "' + "a" * 65 + '"}', "application/json", 400, "invalid_author"),
        ('{"text": "x", "id": 7}', "application/json", 400, "unknown_field"),
        ('{"text": "x"}', "text/plain", 415, "unsupported_media_type"),
        ('{"text": "x"}', None, 415, "unsupported_media_type"),
        ('{"text": "x"}', "application/json; charset=latin-1", 415, "unsupported_charset"),
        (b'{"text": "\xff\xfe"}', "application/json", 400, "invalid_encoding"),
        ('{"text": "' + "x" * 17000 + '"}', "application/json", 413, "payload_too_large"),
        # Issue 12: what used to be a 500.
        ('{"text": "\\ud800"}', "application/json", 400, "invalid_text"),
        ('{"text": "x", "author": "a\\udfff"}', "application/json", 400, "invalid_author"),
        ('{"text": ' + "[" * 8000 + "]" * 8000 + "}", "application/json", 400, "malformed_json"),
        ('{"text": "x", "author": ' + "9" * 5000 + "}", "application/json", 400, "malformed_json"),
        # NVARCHAR(n) counts UTF-16 units: 1,001 emoji are 2,002 of them (SQL would refuse the insert).
        ('{"text": "' + "\U0001f600" * 1001 + '"}', "application/json", 400, "text_too_long"),
        ('{"text": "x", "author": "' + "\U0001f600" * 33 + '"}', "application/json", 400, "invalid_author"),
    ],
)
def test_publish_rejects_bad_input_and_writes_nothing(
    body: str | bytes, content_type: str | None, status: int, code: str
) -> None:
    response, row = publish(body, content_type)
    assert response.status_code == status
    assert error_of(response)["code"] == code
    assert row.calls == 0


def test_publish_error_messages_say_what_to_fix() -> None:
    assert "allowed: author, text" in error_of(publish('{"text": "x", "title": "t"}')[0])["message"]
    assert (
        "2001 characters as SQL Server counts them (UTF-16: most emoji count 2); at most 2000"
        in error_of(publish('{"text": "' + "x" * 2001 + '"}')[0])["message"]
    )


@pytest.mark.parametrize(
    ("body", "code"),
    [
        # Text that renders as nothing (issue 21): zero-width characters, C1 controls, bidi isolates.
        ('{"text": "\\u200b\\u200b"}', "invalid_text"),
        ('{"text": "\\u0085\\u0086\\u009f"}', "invalid_text"),
        ('{"text": " \\u2066\\u2069\\ufeff\\u00ad\\n"}', "invalid_text"),
        ('{"text": "\\ufe0f\\u200d\\u2060"}', "invalid_text"),
        ('{"text": "\\udb40\\udc41"}', "invalid_text"),  # a tag character (U+E0041)
        # Names that pass as others: "adm\u200bin" and "\u202enimda" both display as "admin".
        ('{"text": "hi", "author": "adm\\u200bin"}', "invalid_author"),
        ('{"text": "hi", "author": "\\u202enimda"}', "invalid_author"),
        ('{"text": "hi", "author": "ad\\u2067min"}', "invalid_author"),
        ('{"text": "hi", "author": "ad\\u200emin"}', "invalid_author"),
        ('{"text": "hi", "author": "ad\\u0007min"}', "invalid_author"),
        ('{"text": "hi", "author": "ad\\u0085min"}', "invalid_author"),
        ('{"text": "hi", "author": "ad\\tmin"}', "invalid_author"),
    ],
)
def test_invisible_text_and_disguised_authors_are_refused(body: str, code: str) -> None:
    response, row = publish(body)
    assert response.status_code == 400 and row.calls == 0
    error = error_of(response)
    assert error["code"] == code
    if code == "invalid_author":
        assert re.search(r"U\+[0-9A-F]{4} at character \d+", error["message"]), error


@pytest.mark.parametrize(
    ("text", "author"),
    [
        ("hi\u200b", "Zoë"),
        ("\u2764\ufe0f", "李小龍"),
        ("line one\nline two\ttab", "O'Brien-Smith"),
        ("\u05e9\u05dc\u05d5\u05dd", "\u05d3\u05df"),
    ],
)
def test_visible_text_and_ordinary_names_are_accepted(text: str, author: str) -> None:
    response, row = publish(json.dumps({"text": text, "author": author}))
    assert response.status_code == 202, response.get_body()
    assert dict(row.value)["text"] == text and dict(row.value)["author"] == author


def test_text_of_exactly_2000_characters_is_accepted() -> None:
    assert publish('{"text": "' + "é" * 2000 + '"}')[0].status_code == 202
    # 1,000 emoji are 2,000 UTF-16 units; as Python's ASCII-escaped JSON they are 12 KB, under 16 KiB.
    escaped = json.dumps({"text": "\U0001f600" * 1000, "author": "\U0001f600" * 32})
    assert len(escaped) > 12_000 and publish(escaped)[0].status_code == 202


# publish with a key (PUT /api/messages/{key})

KEY = "3f2b8c4e-1d2a-4c5b-9e7f-0a1b2c3d4e5f"


def put(
    key: str,
    body: str,
    stored: dict[str, Any] | None = None,
    won: bool | None = None,
    claimed_at: str | None = None,
) -> tuple[func.HttpResponse, Out, Out]:
    """Call publish_with_key as the host does: the route's key, and the one row dbo.ClaimMessageKey
    returns (`won`, and the stored message's columns, NULL when none). By default the request wins
    the claim exactly when nothing is stored, as a lone request does."""
    request = func.HttpRequest(
        "PUT",
        f"http://localhost/api/messages/{key}",
        headers={"Content-Type": "application/json"},
        route_params={"key": key},
        body=body.encode(),
    )
    columns = ("id", "messageKey", "text", "author", "createdAt")
    answer = {"won": int(stored is None if won is None else won), **(stored or dict.fromkeys(columns))}
    claim = func.SqlRowList([func.SqlRow.from_dict(answer)])
    row, release = Out(), Out()
    claimed = func.SqlRowList([func.SqlRow.from_dict({"claimedAt": claimed_at})] if claimed_at else [])
    return user_function("publish_with_key")(request, claim, row, release, claimed), row, release


def test_a_new_key_stores_the_message_under_it() -> None:
    response, row, release = put(KEY.upper(), '{"text": "once", "author": "ada"}')
    assert release.calls == 0
    assert response.status_code == 202
    answer = json.loads(response.get_body())
    assert answer["key"] == KEY and answer["replayed"] is False
    assert dict(row.value) == {
        "messageKey": KEY,
        "text": "once",
        "author": "ada",
        "createdAt": answer["createdAt"],
    }


def test_the_same_key_and_message_again_is_a_replay_that_writes_nothing() -> None:
    stored = {
        "id": 7,
        "messageKey": KEY.upper(),
        "text": "once",
        "author": "ada",
        "createdAt": "2026-11-28T10:00:00.1230000",
    }
    response, row, _ = put(KEY, '{"text": "once", "author": " ada "}', stored)
    assert response.status_code == 200 and row.calls == 0
    assert json.loads(response.get_body()) == {
        "key": KEY,
        "text": "once",
        "author": "ada",
        "createdAt": "2026-11-28T10:00:00.123Z",
        "replayed": True,
    }


def test_the_same_key_with_another_message_is_a_conflict() -> None:
    stored = {"id": 7, "messageKey": KEY, "text": "once", "author": None, "createdAt": "2026-11-28T10:00:00"}
    for body in ('{"text": "twice"}', '{"text": "once", "author": "someone"}'):
        response, row, _ = put(KEY, body, stored)
        assert response.status_code == 409 and row.calls == 0
        assert error_of(response)["code"] == "key_reused"


@pytest.mark.parametrize(
    "key",
    [
        "not-a-key",
        KEY.replace("-", ""),  # 32 digits: Python reads it, SQL Server's conversion does not
        "{" + KEY + "}",
        "urn:uuid:" + KEY,
        KEY + "0",
        " " + KEY[1:],
        KEY[:-1] + "g",
        "",
    ],
)
def test_a_key_that_is_not_a_canonical_uuid_is_refused(key: str) -> None:
    response, row, _ = put(key, '{"text": "x"}')
    assert response.status_code == 400 and row.calls == 0
    assert error_of(response)["code"] == "invalid_key"


def test_the_key_route_checks_the_body_like_publish() -> None:
    response, row, _ = put(KEY, '{"text": ""}')
    assert response.status_code == 400 and row.calls == 0
    assert error_of(response)["code"] == "invalid_text"


def test_a_refused_body_releases_the_claim_it_won() -> None:
    """Otherwise the publisher's corrected retry would wait for the claim to go stale."""
    response, row, release = put(KEY, '{"text": ""}', won=True)
    assert response.status_code == 400 and row.calls == 0
    assert dict(release.value) == {"messageKey": KEY, "claimedAt": queries.RELEASED_AT}
    _, _, not_won = put(KEY, '{"text": ""}', won=False)
    assert not_won.calls == 0


def test_a_key_another_request_is_still_writing_is_a_conflict_to_retry() -> None:
    """The race of issue 21: a request that lost the claim, with no message stored yet, must not
    write (the winner's text is what is broadcast and stored) nor answer 202."""
    response, row, release = put(KEY, '{"text": "mine"}', won=False)
    assert response.status_code == 409 and row.calls == 0 and release.calls == 0
    assert error_of(response)["code"] == "key_in_use"
    assert response.headers["Retry-After"] == "1"


@pytest.mark.parametrize(
    ("age_seconds", "retry_after"),
    [(0.2, 1), (4.9, 1), (5.0, 56), (30.5, 30), (59.9, 2), (75, 1)],
)
def test_key_in_use_says_how_long_until_the_claim_can_be_taken_over(
    age_seconds: float, retry_after: int
) -> None:
    """Issue 30, item 8: after a publisher stopped mid-write (kill -9), its claim holds the key for
    60 s; Retry-After: 1 sent clients back 60 times. A young claim is a write in progress (1 s);
    an older one says the seconds until a retry takes it over, as the claim binding reads it
    (DATETIME2 without an offset)."""
    claimed = datetime.now(UTC) - timedelta(seconds=age_seconds)
    response, _, _ = put(
        KEY, '{"text": "mine"}', won=False, claimed_at=claimed.replace(tzinfo=None).isoformat()
    )
    assert response.status_code == 409 and error_of(response)["code"] == "key_in_use"
    assert abs(int(response.headers["Retry-After"]) - retry_after) <= 1
    assert f"retry in {response.headers['Retry-After']} s" in error_of(response)["message"]


def test_a_stored_message_is_never_written_again_even_by_a_winner() -> None:
    stored = {"id": 7, "messageKey": KEY, "text": "once", "author": None, "createdAt": "2026-11-28T10:00:00"}
    for body, status in (('{"text": "once"}', 200), ('{"text": "other"}', 409)):
        response, row, _ = put(KEY, body, stored, won=True)
        assert response.status_code == status and row.calls == 0


def test_the_key_is_claimed_by_the_stored_procedure_before_the_body_runs() -> None:
    claim = bindings("publish_with_key")["claim"]
    assert (claim["direction"], claim["commandType"], claim["commandText"], claim["parameters"]) == (
        "IN",
        "StoredProcedure",
        "dbo.ClaimMessageKey",
        "@Key={key}",
    )
    assert bindings("publish_with_key")["release"]["commandText"] == wiring.MESSAGE_KEYS_TABLE


def test_other_put_paths_get_the_invalid_key_error() -> None:
    request = func.HttpRequest(
        "PUT", "http://localhost/api/messages/x,y", route_params={"path": "x,y"}, body=b""
    )
    response = user_function("reject_message_key")(request)
    assert response.status_code == 400 and error_of(response)["code"] == "invalid_key"


# history


def history(query: dict[str, str]) -> func.HttpResponse:
    request = func.HttpRequest("GET", "http://localhost/api/messages", params=query, body=b"")
    return user_function("history")(request)


def history_after(after: str, take: str, rows: list[dict[str, Any]]) -> func.HttpResponse:
    request = func.HttpRequest(
        "GET",
        f"http://localhost/api/messages/after/{after}/take/{take}",
        route_params={"after": after, "take": take},
        body=b"",
    )
    return user_function("history_after")(request, func.SqlRowList([func.SqlRow.from_dict(r) for r in rows]))


def row(id_: int, text: str = "t") -> dict[str, Any]:
    return {
        "id": id_,
        "messageKey": str(uuid.UUID(int=id_)).upper(),
        "text": text,
        "author": None,
        "createdAt": "2026-11-27T20:41:00.1234567",
    }


def location(response: func.HttpResponse, base: str) -> str:
    assert response.status_code == 307
    return urljoin(base, response.headers["Location"])


@pytest.mark.parametrize(
    ("query", "path"),
    [
        ({"after": "0", "take": "50"}, "/api/messages/after/0/take/50"),
        ({"after": "17"}, "/api/messages/after/17/take/50"),
        ({"after": "", "take": "3"}, "/api/messages/after/0/take/3"),
    ],
)
def test_history_sends_a_valid_query_on_to_its_route_form(query: dict[str, str], path: str) -> None:
    assert location(history(query), "https://app.example/api/messages?x") == "https://app.example" + path


def test_history_after_returns_the_contract_shape_in_id_order() -> None:
    response = history_after("0", "50", [row(3), row(1), row(2)])
    assert response.status_code == 200
    messages = json.loads(response.get_body())["messages"]
    assert [m["id"] for m in messages] == [1, 2, 3]
    assert messages[0] == {
        "id": 1,
        "key": str(uuid.UUID(int=1)),
        "text": "t",
        "author": None,
        "createdAt": "2026-11-27T20:41:00.123Z",
    }


@pytest.mark.parametrize(
    ("query", "code"),
    [
        # No `after`: the Functions host answered 500 binding_failed here (issue 21).
        ({}, "invalid_after"),
        ({"take": "5"}, "invalid_after"),
        ({"after": "1=2", "take": "5"}, "invalid_after"),
        ({"after": "1,@Take=5", "take": "5"}, "invalid_after"),
        ({"after": "abc", "take": "5"}, "invalid_after"),
        ({"after": "-1", "take": "5"}, "invalid_after"),
        ({"after": "1", "take": "0"}, "invalid_take"),
        ({"after": "1", "take": "101"}, "invalid_take"),
        ({"after": "1", "take": "ten"}, "invalid_take"),
        # Digits that str.isdigit accepts and int() or SQL Server read otherwise (issue 12).
        ({"after": "\u00b2", "take": "5"}, "invalid_after"),
        ({"after": "\uff11\uff12", "take": "5"}, "invalid_after"),
        ({"after": "1", "take": "\uff15"}, "invalid_take"),
        ({"after": "1", "take": ""}, "invalid_take"),
        ({"after": " 1", "take": "5"}, "invalid_after"),
    ],
)
def test_history_rejects_bad_query_values(query: dict[str, str], code: str) -> None:
    response = history(query)
    assert response.status_code == 400
    assert error_of(response)["code"] == code


@pytest.mark.parametrize(
    ("after", "take", "code"), [("+1", "5", "invalid_after"), ("1", " 5", "invalid_take")]
)
def test_history_after_refuses_what_the_route_constraint_lets_through(
    after: str, take: str, code: str
) -> None:
    """`long` and `int` admit a sign and white space (Int64.TryParse); the function does not."""
    response = history_after(after, take, [])
    assert response.status_code == 400 and error_of(response)["code"] == code


def history_page(query: dict[str, str]) -> func.HttpResponse:
    request = func.HttpRequest("GET", "http://localhost/api/messages/page", params=query, body=b"")
    return user_function("history_page")(request)


@pytest.mark.parametrize(
    ("query", "path"),
    [
        ({"before": "latest", "take": "3"}, "/api/messages/before/9223372036854775807/take/3"),
        ({"before": "151"}, "/api/messages/before/151/take/50"),
        ({"before": "0", "take": "100"}, "/api/messages/before/0/take/100"),
    ],
)
def test_history_page_sends_a_valid_query_on_to_its_route_form(query: dict[str, str], path: str) -> None:
    base = "https://app.example/api/messages/page?x"
    assert location(history_page(query), base) == "https://app.example" + path


def test_history_before_returns_the_contract_shape_in_id_order() -> None:
    request = func.HttpRequest(
        "GET", "http://localhost/x", route_params={"before": "151", "take": "3"}, body=b""
    )
    rows = func.SqlRowList([func.SqlRow.from_dict(r) for r in (row(150), row(148), row(149))])
    response = user_function("history_before")(request, rows)
    assert response.status_code == 200
    messages = json.loads(response.get_body())["messages"]
    assert [m["id"] for m in messages] == [148, 149, 150]
    assert set(messages[0]) == {"id", "key", "text", "author", "createdAt"}


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({}, "invalid_before"),
        ({"take": "5"}, "invalid_before"),
        ({"before": "", "take": "5"}, "invalid_before"),
        ({"before": "newest", "take": "5"}, "invalid_before"),
        ({"before": "1=2", "take": "5"}, "invalid_before"),
        ({"before": "-3", "take": "5"}, "invalid_before"),
        ({"before": "1" * 19, "take": "5"}, "invalid_before"),
        ({"before": "LATEST", "take": "5"}, "invalid_before"),
        ({"before": "latest", "take": "0"}, "invalid_take"),
        ({"before": "7", "take": "101"}, "invalid_take"),
    ],
)
def test_history_page_rejects_bad_query_values(query: dict[str, str], code: str) -> None:
    response = history_page(query)
    assert response.status_code == 400
    assert error_of(response)["code"] == code
    assert "latest" in error_of(response)["message"] or code == "invalid_take"


def test_other_reads_under_messages_are_a_json_404() -> None:
    request = func.HttpRequest("GET", "http://localhost/api/messages/after/x/take/5", body=b"")
    response = user_function("reject_messages_path")(request)
    assert response.status_code == 404 and error_of(response)["code"] == "not_found"


def test_no_binding_reads_a_query_value() -> None:
    """The host fails the call (500) when a binding expression names an absent query value, and a
    value with `,` or `=` breaks a SQL binding's parameter list: only route values, each under a
    constraint that admits neither character, may reach a binding."""
    for name in FUNCTIONS:
        document = bindings(name)
        route = document.get("req", {}).get("route", "")
        for binding in document.values():
            text = json.dumps(binding)
            assert "Query." not in text and "{query" not in text.lower(), (name, binding)
            for expression in re.findall(r"\{(\w+)\}", binding.get("parameters", "")):
                assert re.search(rf"\{{{expression}:(guid|long|int)\b", route), (name, expression)


# health


def test_health_is_ok_when_the_probe_answers() -> None:
    request = func.HttpRequest("GET", "http://localhost/api/health", body=b"")
    probe = func.SqlRowList([func.SqlRow.from_dict({"ok": 1})])
    response = user_function("health")(request, probe)
    assert response.status_code == 200 and json.loads(response.get_body())["database"] is True
    degraded = user_function("health")(request, func.SqlRowList([]))
    assert degraded.status_code == 503


# broadcast


def changes(*entries: tuple[int, int]) -> str:
    return json.dumps([{"Item": row(id_, f"m{id_}"), "Operation": operation} for id_, operation in entries])


def test_broadcast_sends_inserted_rows_in_id_order() -> None:
    signalr = Out()
    user_function(wiring.BROADCAST_MESSAGES_FUNCTION)(changes((5, 0), (3, 0), (4, 0)), signalr)
    sent = json.loads(signalr.value)
    assert [m["target"] for m in sent] == [wiring.NEW_MESSAGE_TARGET] * 3
    assert [m["arguments"][0]["id"] for m in sent] == [3, 4, 5]
    assert all(len(m["arguments"]) == 1 for m in sent)
    assert sent[0]["arguments"][0]["text"] == "m3"


def test_broadcast_logs_each_messages_lag_from_created_at_to_the_send(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The line the undelivered alert parses (the key is word 2) now ends `lag <ms> ms` (the value is
    word 6)."""
    created = datetime.now(UTC) - timedelta(milliseconds=400)
    item = {**row(7, "late"), "createdAt": created.isoformat().replace("+00:00", "Z")}
    caplog.set_level(logging.INFO)
    user_function(wiring.BROADCAST_MESSAGES_FUNCTION)(json.dumps([{"Item": item, "Operation": 0}]), Out())
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith(wiring.BROADCAST_LOG))
    words = line.split(" ")
    assert words[2] == item["messageKey"].lower() and words[4] == "7" and words[5] == "lag"
    assert 400 <= int(words[6]) < 5_000 and words[7] == "ms"


def test_lag_is_never_negative_when_clocks_differ() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, 100_000, tzinfo=UTC)
    assert contract.lag_ms("2026-01-01T12:00:00.000Z", now) == 100
    assert contract.lag_ms("2026-01-01T12:00:00.500Z", now) == 0


def test_updates_and_deletes_are_not_broadcast_as_new_messages() -> None:
    signalr = Out()
    user_function(wiring.BROADCAST_MESSAGES_FUNCTION)(changes((1, 1), (2, 2), (3, 0)), signalr)
    assert [m["arguments"][0]["id"] for m in json.loads(signalr.value)] == [3]
    only_updates = Out()
    user_function(wiring.BROADCAST_MESSAGES_FUNCTION)(changes((1, 1)), only_updates)
    assert only_updates.calls == 0


# presence


def invocation(connection: str) -> str:
    return json.dumps({"ConnectionId": connection, "Hub": "broadcast", "Category": "connections"})


def test_connected_and_disconnected_upsert_the_connection_row() -> None:
    row_out = Out()
    user_function("on_connected")(invocation("c-1"), row_out)
    assert set(dict(row_out.value)) == {"connectionId", "connectedAt"}
    assert dict(row_out.value)["connectionId"] == "c-1"
    gone = Out()
    user_function("on_disconnected")(invocation("c-1"), gone)
    assert set(dict(gone.value)) == {"connectionId", "disconnectedAt"}


def test_connection_event_without_an_id_fails_loudly() -> None:
    with pytest.raises(ValueError, match="no ConnectionId"):
        user_function("on_connected")("{}", Out())


@pytest.mark.parametrize("online", [0, 1, 42])
def test_presence_broadcasts_the_online_count(online: int) -> None:
    signalr = Out()
    count = func.SqlRowList([func.SqlRow.from_dict({"online": online})])
    user_function(wiring.BROADCAST_PRESENCE_FUNCTION)("[]", count, signalr)
    assert json.loads(signalr.value) == [
        {"target": wiring.PRESENCE_TARGET, "arguments": [{"online": online}]}
    ]


# metadata: what the host reads; a renamed setting fails here, not in Azure


def bindings(name: str) -> dict[str, dict[str, Any]]:
    document = json.loads(FUNCTIONS[name].get_function_json())
    return {binding["name"]: binding for binding in document["bindings"]}


def test_every_function_the_design_needs_is_registered() -> None:
    assert set(FUNCTIONS) == {
        "negotiate",
        "publish",
        "publish_with_key",
        "reject_message_key",
        "history",
        "history_after",
        "history_page",
        "history_before",
        "reject_messages_path",
        "health",
        "on_connected",
        "on_disconnected",
        "check_presence",
        "purge_expired",
        *wiring.SQL_TRIGGERED_FUNCTIONS,
    }


@pytest.mark.parametrize(
    ("name", "route", "methods", "auth"),
    [
        ("negotiate", "negotiate", ["POST"], "ANONYMOUS"),
        ("publish", "messages", ["POST"], "FUNCTION"),
        # Only the 36-character UUID form reaches the SQL binding (Guid.TryParse, then the length);
        # the catch-all, ranked after it, answers 400 for every other key.
        ("publish_with_key", "messages/{key:guid:length(36)}", ["PUT"], "FUNCTION"),
        ("reject_message_key", "messages/{*path}", ["PUT"], "FUNCTION"),
        ("history", "messages", ["GET", "HEAD"], "ANONYMOUS"),
        ("history_after", "messages/after/{after:long}/take/{take:int}", ["GET", "HEAD"], "ANONYMOUS"),
        ("history_page", "messages/page", ["GET", "HEAD"], "ANONYMOUS"),
        ("history_before", "messages/before/{before:long}/take/{take:int}", ["GET", "HEAD"], "ANONYMOUS"),
        ("reject_messages_path", "messages/{*path}", ["GET", "HEAD"], "ANONYMOUS"),
        ("health", "health", ["GET"], "ANONYMOUS"),
    ],
)
def test_http_triggers(name: str, route: str, methods: list[str], auth: str) -> None:
    trigger = bindings(name)["req"]
    assert (trigger["type"], trigger["route"], trigger["methods"], trigger["authLevel"]) == (
        "httpTrigger",
        route,
        methods,
        auth,
    )


def test_the_key_route_comes_first_in_every_order_the_host_may_use() -> None:
    """ASP.NET Core precedence (constrained parameter before catch-all) and the order of function
    names (Azure/azure-functions-host#9876: routes tried in function order) agree."""
    puts = {
        name: bindings(name)["req"]["route"]
        for name in FUNCTIONS
        if "PUT" in (bindings(name).get("req", {}).get("methods") or [])
    }
    (keyed,) = [name for name, route in puts.items() if ":guid" in route]
    (catch_all,) = [name for name, route in puts.items() if "{*" in route]
    assert keyed < catch_all


def test_the_read_catch_all_comes_last_in_every_order_the_host_may_use() -> None:
    gets = {
        name: bindings(name)["req"]["route"]
        for name in FUNCTIONS
        if "GET" in (bindings(name).get("req", {}).get("methods") or [])
    }
    (catch_all,) = [name for name, route in gets.items() if "{*" in route]
    assert all(
        name < catch_all
        for name, route in gets.items()
        if route.startswith("messages/") and name != catch_all
    )


def test_signalr_bindings_use_the_shared_hub_and_setting() -> None:
    expected = {"hubName": wiring.HUB_NAME, "connectionStringSetting": wiring.SIGNALR_CONNECTION_SETTING}
    found = [
        ("negotiate", "connection_info", "signalRConnectionInfo"),
        (wiring.BROADCAST_MESSAGES_FUNCTION, "signalr", "signalR"),
        (wiring.BROADCAST_PRESENCE_FUNCTION, "signalr", "signalR"),
        ("on_connected", "invocation", "signalRTrigger"),
        ("on_disconnected", "invocation", "signalRTrigger"),
    ]
    for function, binding, type_ in found:
        declared = bindings(function)[binding]
        assert declared["type"] == type_
        assert {key: declared[key] for key in expected} == expected, function
    assert bindings("on_connected")["invocation"]["event"] == "connected"
    assert bindings("on_disconnected")["invocation"]["event"] == "disconnected"
    assert bindings("on_connected")["invocation"]["category"] == "connections"


def test_sql_bindings_use_the_shared_setting_and_tables() -> None:
    assert bindings("publish")["row"]["commandText"] == wiring.MESSAGES_TABLE
    assert bindings("on_connected")["row"]["commandText"] == wiring.CONNECTIONS_TABLE
    assert bindings(wiring.BROADCAST_MESSAGES_FUNCTION)["changes"]["tableName"] == wiring.MESSAGES_TABLE
    assert bindings(wiring.BROADCAST_PRESENCE_FUNCTION)["changes"]["tableName"] == wiring.CONNECTIONS_TABLE
    assert bindings("history_after")["rows"]["parameters"] == "@After={after},@Take={take}"
    assert bindings("history_before")["rows"]["parameters"] == "@Before={before},@Take={take}"
    assert "rows" not in bindings("history") and "rows" not in bindings("history_page")
    sql_types = {"sql", "sqlTrigger"}
    for name in FUNCTIONS:
        for binding in bindings(name).values():
            if binding["type"] in sql_types:
                assert binding["connectionStringSetting"] == wiring.SQL_CONNECTION_SETTING


def test_host_json_uses_a_bundle_with_the_sql_and_signalr_extensions() -> None:
    from pathlib import Path

    host = json.loads((Path(function_app.__file__).parent / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensionBundle"] == {
        "id": "Microsoft.Azure.Functions.ExtensionBundle",
        "version": "[4.*, 5.0.0)",
    }


def test_the_program_sets_every_setting_the_bindings_read() -> None:
    from mocks import run_stack

    settings = {
        pair["name"]
        for pair in run_stack("dev").one("azure-native:web:WebApp").inputs["siteConfig"]["appSettings"]
    }
    read = set()
    for name in FUNCTIONS:
        for binding in bindings(name).values():
            if "connectionStringSetting" in binding:
                read.add(binding["connectionStringSetting"])
            # `%Name%` in any binding property is an app setting the host resolves at startup.
            read.update(re.findall(r"%(\w+)%", json.dumps(binding)))
    assert wiring.MESSAGE_RETENTION_DAYS_SETTING in read
    for setting in read:
        # An identity-based connection is a group of settings under the prefix.
        assert setting in settings or f"{setting}__serviceUri" in settings, setting
