"""The local mode end to end: real Python SignalR clients against the unchanged function app."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from local_support import PUBLISH_KEY, Listener, LocalServer


@pytest.fixture
def server() -> Iterator[LocalServer]:
    local = LocalServer()
    yield local
    local.stop()


async def publish_async(server: LocalServer, text: str, author: str | None = None) -> tuple[int, dict]:
    return await asyncio.to_thread(server.publish, text, author)


def test_a_published_message_reaches_a_python_signalr_client(server: LocalServer) -> None:
    async def scenario() -> None:
        async with Listener(server.url + "/api") as listener:
            status, accepted = await publish_async(server, "hello from python", "py")
            assert status == 202
            await listener.wait_for(lambda listener: len(listener.messages) == 1)
            (message,) = listener.messages
            assert message == {
                "id": 1,
                "key": accepted["key"],
                "text": "hello from python",
                "author": "py",
                "createdAt": accepted["createdAt"],
            }

    asyncio.run(scenario())


def test_burst_of_200_messages_reaches_20_clients_exactly_once_in_order(server: LocalServer) -> None:
    async def scenario() -> None:
        listeners = [Listener(server.url + "/api") for _ in range(20)]
        for listener in listeners:
            await listener.__aenter__()
        try:
            await asyncio.gather(*(publish_async(server, f"burst {i}") for i in range(200)))
            for listener in listeners:
                await listener.wait_for(lambda listener: len(listener.messages) >= 200, timeout=30)
            for listener in listeners:
                ids = [message["id"] for message in listener.messages]
                assert ids == list(range(1, 201))
        finally:
            for listener in listeners:
                await listener.__aexit__()

    asyncio.run(scenario())
    assert server.call(lambda: server.mode.database.count("dbo.Messages")) == 200


def test_a_client_that_was_away_gets_the_gap_from_history(server: LocalServer) -> None:
    async def scenario() -> None:
        async with Listener(server.url + "/api") as listener:
            await publish_async(server, "before")
            await listener.wait_for(lambda listener: len(listener.messages) == 1)
            last_seen = listener.messages[-1]["id"]
        for text in ("while away 1", "while away 2"):
            await publish_async(server, text)
        async with Listener(server.url + "/api") as listener:
            status, page = await asyncio.to_thread(
                server.request, "GET", f"/api/messages?after={last_seen}&take=50"
            )
            assert status == 200
            assert [m["text"] for m in page["messages"]] == ["while away 1", "while away 2"]
            await publish_async(server, "after")
            await listener.wait_for(lambda listener: len(listener.messages) == 1)
            assert listener.messages[0]["text"] == "after"

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b'{"text": ', "application/json", 400, "malformed_json"),
        (b'{"text": "x", "extra": 1}', "application/json", 400, "unknown_field"),
        (b'{"text": "x"}', "text/plain", 415, "unsupported_media_type"),
        (b'{"text": "' + b"x" * 20000 + b'"}', "application/json", 413, "payload_too_large"),
    ],
)
def test_bad_publish_input_gets_the_documented_error_and_writes_nothing(
    server: LocalServer, body: bytes, content_type: str, status: int, code: str
) -> None:
    answer, error = server.request(
        "POST", "/api/messages", body, {"Content-Type": content_type, "x-functions-key": PUBLISH_KEY}
    )
    assert (answer, error["error"]["code"]) == (status, code)
    assert server.call(lambda: server.mode.database.count("dbo.Messages")) == 0


@pytest.mark.parametrize("key", ["", "wrong-key"])
def test_a_wrong_or_missing_key_gets_401(server: LocalServer, key: str) -> None:
    status, _ = server.publish("x", key=key)
    assert status == 401
    assert server.call(lambda: server.mode.database.count("dbo.Messages")) == 0


def test_key_in_the_code_query_parameter_is_accepted(server: LocalServer) -> None:
    status, _ = server.request(
        "POST",
        f"/api/messages?code={PUBLISH_KEY}",
        json.dumps({"text": "x"}).encode(),
        {"Content-Type": "application/json"},
    )
    assert status == 202


def test_presence_counts_go_up_and_down(server: LocalServer) -> None:
    async def scenario() -> None:
        async with Listener(server.url + "/api") as first:
            await first.wait_for(lambda listener: listener.presence[-1:] == [1])
            async with Listener(server.url + "/api"):
                await first.wait_for(lambda listener: listener.presence[-1:] == [2])
            await first.wait_for(lambda listener: listener.presence[-1:] == [1])

    asyncio.run(scenario())


def test_history_contract_on_the_local_host(server: LocalServer) -> None:
    for index in range(5):
        server.publish(f"m{index}")
    status, page = server.request("GET", "/api/messages?after=2&take=2")
    assert status == 200 and [m["id"] for m in page["messages"]] == [3, 4]
    assert server.request("GET", "/api/messages?after=x&take=2")[0] == 400
    # No query value reaches a binding (issue 21): `take` defaults to 50, a missing `after` is a 400.
    assert [m["id"] for m in server.request("GET", "/api/messages?after=0")[1]["messages"]] == [1, 2, 3, 4, 5]
    assert server.request("GET", "/api/messages")[1]["error"]["code"] == "invalid_after"
    assert server.request("GET", "/api/health") == (200, {"status": "ok", "database": True})


def test_history_pages_on_the_local_host(server: LocalServer) -> None:
    for index in range(7):
        server.publish(f"m{index}")

    def ids(path: str) -> list[int]:
        status, page = server.request("GET", path)
        assert status == 200, page
        return [m["id"] for m in page["messages"]]

    assert ids("/api/messages/page?before=latest&take=3") == [5, 6, 7]
    assert ids("/api/messages/page?before=5&take=3") == [2, 3, 4]
    assert ids("/api/messages/page?before=2&take=3") == [1]
    assert ids("/api/messages/page?before=1&take=3") == []
    status, error = server.request("GET", "/api/messages/page?before=newest&take=3")
    assert status == 400 and error["error"]["code"] == "invalid_before"
    # No query value reaches a binding (issue 21): `before` is required, `take` defaults to 50.
    assert server.request("GET", "/api/messages/page?take=3")[1]["error"]["code"] == "invalid_before"
    assert ids("/api/messages/page?before=latest") == [1, 2, 3, 4, 5, 6, 7]
    # The after= contract is unchanged: no `before` needed there.
    assert ids("/api/messages?after=5&take=50") == [6, 7]


def test_messages_survive_a_restart_with_a_database_file(tmp_path) -> None:
    path = str(tmp_path / "broadcast.db")
    first = LocalServer(db=path)
    try:
        first.publish("kept")
    finally:
        first.stop()
    second = LocalServer(db=path)
    try:
        status, page = second.request("GET", "/api/messages?after=0&take=10")
        assert status == 200
        assert [m["text"] for m in page["messages"]] == ["kept"]
    finally:
        second.stop()
