"""Retries without duplicates, presence that heals, housekeeping: the unchanged function app on the
local host, driven by real Python SignalR clients (issue 12, items 9 and 10)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from local_support import PUBLISH_KEY, Listener, LocalServer

from functions import queries, wiring
from local.__main__ import DEFAULT_BATCH_SIZE, parse_args, stack_batch_size, stack_polling_ms
from local.__main__ import main as local_main
from local.database import BindingError, Database, translate
from local.schedule import Schedule
from local.server import build_app, start
from settings.declarations import SETTINGS_BY_KEY


@pytest.fixture
def server() -> Iterator[LocalServer]:
    local = LocalServer()
    yield local
    local.stop()


def stored_rows(server: LocalServer, key: str) -> list[dict]:
    return server.mode.database.query(
        "SELECT id, messageKey, text FROM dbo.Messages WHERE messageKey = @Key", {"Key": key}
    )


# item 9: retried publishes


def test_the_same_key_twice_stores_and_broadcasts_one_message(server: LocalServer) -> None:
    key = str(uuid.uuid4())

    async def scenario() -> None:
        async with Listener(server.url + "/api") as listener:
            first = await asyncio.to_thread(server.put, key, "only once", "ada")
            second = await asyncio.to_thread(server.put, key.upper(), "only once", "ada")
            assert first[0] == 202 and first[1]["replayed"] is False
            assert second[0] == 200 and second[1]["replayed"] is True
            assert {k: v for k, v in second[1].items() if k != "replayed"} == {
                k: v for k, v in first[1].items() if k != "replayed"
            }
            # A marker message after both: once it arrives, anything the retry caused has too.
            assert (await asyncio.to_thread(server.publish, "marker"))[0] == 202
            await listener.wait_for(lambda listener: any(m["text"] == "marker" for m in listener.messages))
            assert [m["text"] for m in listener.messages] == ["only once", "marker"]
            assert listener.messages[0]["key"] == key

    asyncio.run(scenario())
    assert len(stored_rows(server, key)) == 1


def test_a_key_reused_for_another_message_is_a_409_and_changes_nothing(server: LocalServer) -> None:
    key = str(uuid.uuid4())
    assert server.put(key, "first")[0] == 202
    status, body = server.put(key, "second")
    assert status == 409 and body["error"]["code"] == "key_reused"
    assert [row["text"] for row in stored_rows(server, key)] == ["first"]


def test_concurrent_retries_of_one_key_store_one_row_and_broadcast_it_once(server: LocalServer) -> None:
    """Ten copies of one request at once (a client retrying in a hurry): exactly one claims the key
    and stores it (202); each other copy is a replay (200) once it is stored, or, while the winner is
    still writing, `409 key_in_use` with `Retry-After` (docs/api.md), whose retry is a replay. One
    row, broadcast once."""
    key = str(uuid.uuid4())

    async def scenario() -> None:
        async with Listener(server.url + "/api") as listener:
            with ThreadPoolExecutor(10) as pool:
                answers = await asyncio.gather(
                    *(asyncio.wrap_future(pool.submit(server.put, key, "hurry")) for _ in range(10))
                )
            statuses = [status for status, _ in answers]
            assert statuses.count(202) == 1 and set(statuses) <= {200, 202, 409}, statuses
            assert {body["error"]["code"] for status, body in answers if status == 409} <= {"key_in_use"}
            assert {body["key"] for status, body in answers if status != 409} == {key}
            if 409 in statuses:
                status, body = await asyncio.to_thread(server.put, key, "hurry")
                assert status == 200 and body["replayed"] is True
            assert (await asyncio.to_thread(server.publish, "marker"))[0] == 202
            await listener.wait_for(lambda listener: any(m["text"] == "marker" for m in listener.messages))
            assert [m["text"] for m in listener.messages] == ["hurry", "marker"]

    asyncio.run(scenario())
    assert len(stored_rows(server, key)) == 1


@pytest.mark.parametrize(
    "path",
    [
        "not-a-key",
        "a,b=c",
        "6ba7b8109dad11d180b400c04fd430c8",
        "{6ba7b810-9dad-11d1-80b4-00c04fd430c8}",
        "6ba7b810-9dad-11d1-80b4-00c04fd430c8/extra",
    ],
)
def test_a_put_to_anything_but_a_uuid_is_the_invalid_key_error(server: LocalServer, path: str) -> None:
    status, body = server.request(
        "PUT",
        f"/api/messages/{path}",
        b'{"text": "x"}',
        {"Content-Type": "application/json", "x-functions-key": PUBLISH_KEY},
    )
    assert status == 400 and body["error"]["code"] == "invalid_key"
    assert server.request("GET", "/api/messages?after=0&take=10")[1]["messages"] == []


def test_a_put_without_the_function_key_is_refused_before_anything_else(server: LocalServer) -> None:
    status, body = server.put(str(uuid.uuid4()), "x", key="wrong")
    assert status == 401 and body["error"]["code"] == "unauthorized"


# item 10: presence that heals


def test_presence_heals_after_a_crash_within_one_run_of_the_check(tmp_path) -> None:
    """A crashed run leaves open rows whose disconnect events never came (kill -9; on Azure, any
    disconnect event that cannot reach the app). After a restart the count is wrong until the
    presence check runs, which closes exactly the connections SignalR no longer holds."""
    path = str(tmp_path / "broadcast.db")
    crashed = LocalServer(db=path)
    try:
        # What a crash leaves behind: connections that were open when the process died.
        ghosts = [
            {"connectionId": f"ghost-{i}", "connectedAt": "2026-11-28T09:00:00.000Z"} for i in range(10)
        ]
        crashed.mode.database.upsert(wiring.CONNECTIONS_TABLE, ghosts)
    finally:
        crashed.stop()
    server = LocalServer(db=path)
    try:

        async def scenario() -> None:
            async with Listener(server.url + "/api") as listener:
                await listener.wait_for(lambda listener: listener.presence[-1:] == [11])
                await asyncio.wrap_future(
                    asyncio.run_coroutine_threadsafe(
                        server.mode.host.run_timer("check_presence"), server.loop
                    )
                )
                await listener.wait_for(lambda listener: listener.presence[-1:] == [1])
                rows = server.mode.database.query(
                    "SELECT connectionId, disconnectedAt FROM dbo.Connections", {}
                )
                assert all(row["disconnectedAt"] for row in rows if row["connectionId"].startswith("ghost-"))
                assert [row["connectionId"] for row in rows if row["disconnectedAt"] is None] == [
                    next(iter(server.mode.hub.connections[wiring.HUB_NAME]))
                ]

        asyncio.run(scenario())
    finally:
        server.stop()


def test_the_check_runs_at_least_once_a_minute() -> None:
    """The bound of the presence guarantee: the next run is never more than 60 s away."""
    schedule = Schedule.parse(wiring.PRESENCE_CHECK_SCHEDULE)
    moment = datetime(2026, 11, 28, 23, 59, 0, 1, tzinfo=UTC)
    for _ in range(200):
        following = schedule.next_after(moment)
        assert timedelta(0) < following - moment <= timedelta(seconds=60)
        moment = following + timedelta(milliseconds=1)


def test_a_live_connection_is_never_closed_by_the_check(server: LocalServer) -> None:
    async def scenario() -> None:
        async with Listener(server.url + "/api"), Listener(server.url + "/api") as second:
            await second.wait_for(lambda listener: listener.presence[-1:] == [2])
            await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(server.mode.host.run_timer("check_presence"), server.loop)
            )
            open_rows = server.mode.database.query(
                "SELECT connectionId FROM dbo.Connections WHERE disconnectedAt IS NULL", {}
            )
            assert len(open_rows) == 2
            assert server.call(lambda: server.mode.hub.online(wiring.HUB_NAME)) == 2

    asyncio.run(scenario())


# housekeeping


def test_the_purge_deletes_old_closed_connections_and_expired_messages(tmp_path) -> None:
    server = LocalServer(message_retention_days=30)
    try:
        now = datetime.now(UTC)

        def stamp(moment: datetime) -> str:
            return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

        database = server.mode.database
        database.upsert(
            wiring.MESSAGES_TABLE,
            [
                {
                    "messageKey": str(uuid.uuid4()),
                    "text": f"{age} days",
                    "author": None,
                    "createdAt": stamp(now - timedelta(days=age)),
                }
                for age in (45, 31, 29, 0)
            ],
        )
        database.upsert(
            wiring.CONNECTIONS_TABLE,
            [
                {
                    "connectionId": "closed-2d",
                    "connectedAt": stamp(now - timedelta(days=3)),
                    "disconnectedAt": stamp(now - timedelta(days=2)),
                },
                {
                    "connectionId": "closed-1h",
                    "connectedAt": stamp(now - timedelta(hours=2)),
                    "disconnectedAt": stamp(now - timedelta(hours=1)),
                },
                {"connectionId": "open-old", "connectedAt": stamp(now - timedelta(days=9))},
            ],
        )
        server.run(server.mode.host.run_timer("purge_expired"))
        messages = database.query("SELECT text FROM dbo.Messages ORDER BY id", {})
        assert [m["text"] for m in messages] == ["29 days", "0 days"]
        connections = database.query("SELECT connectionId FROM dbo.Connections ORDER BY connectionId", {})
        assert [c["connectionId"] for c in connections] == ["closed-1h", "open-old"]
    finally:
        server.stop()


def test_retention_0_keeps_every_message(server: LocalServer) -> None:
    server.mode.database.upsert(
        wiring.MESSAGES_TABLE,
        [
            {
                "messageKey": str(uuid.uuid4()),
                "text": "ancient",
                "author": None,
                "createdAt": "2001-01-01T00:00:00.000Z",
            }
        ],
    )
    server.run(server.mode.host.run_timer("purge_expired"))
    assert [m["text"] for m in server.mode.database.query("SELECT text FROM dbo.Messages", {})] == ["ancient"]


# item 6: the local database refuses what SQL Server refuses


def test_the_local_database_refuses_values_longer_than_their_nvarchar(server: LocalServer) -> None:
    """SQL Server refuses a value longer than its NVARCHAR(n), counted in UTF-16 units, with error
    2628 ("String or binary data would be truncated in table ..., column ...") and stores nothing
    (Microsoft Learn, "MSSQLSERVER_2628"; nchar and nvarchar: n is in byte-pairs)."""
    database = server.mode.database
    row = {"messageKey": str(uuid.uuid4()), "author": None, "createdAt": "2026-11-28T10:00:00.000Z"}
    database.upsert(wiring.MESSAGES_TABLE, [{**row, "text": "\U0001f600" * 1000}])  # 2,000 units: fits
    with pytest.raises(Exception, match=r"column 'text'.*\(2628\)"):
        database.upsert(
            wiring.MESSAGES_TABLE,
            [{**row, "messageKey": str(uuid.uuid4()), "text": "\U0001f600" * 1000 + "x"}],
        )
    with pytest.raises(Exception, match=r"column 'author'"):
        database.upsert(
            wiring.MESSAGES_TABLE,
            [{**row, "messageKey": str(uuid.uuid4()), "text": "t", "author": "\U0001f600" * 33}],
        )
    assert len(database.query("SELECT id FROM dbo.Messages", {})) == 1


# Issue 21, item 10: the SQL trigger polls as Azure's does


def test_the_sql_trigger_reads_one_batch_per_polling_interval() -> None:
    """The SQL extension's change consumption loop reads at most Sql_Trigger_MaxBatchSize changes,
    runs the function, then waits Sql_Trigger_PollingIntervalMs whatever it found
    (SqlTableChangeMonitor.RunChangeConsumptionLoopAsync). Five messages with batches of two need
    three polls, so the last arrives at least two intervals after the first (a trigger woken by
    every write delivers all five within milliseconds)."""
    interval = 0.3

    async def scenario() -> None:
        mode = await start("127.0.0.1", 0, PUBLISH_KEY, sql_polling_ms=round(interval * 1000))
        mode.host.max_batch_size = 2
        try:
            async with Listener(mode.url + "/api") as listener, aiohttp.ClientSession() as session:
                headers = {"x-functions-key": PUBLISH_KEY}
                for index in range(5):
                    body = {"text": f"polled {index}"}
                    async with session.post(f"{mode.url}/api/messages", json=body, headers=headers) as r:
                        assert r.status == 202
                await listener.wait_for(lambda listener: len(listener.messages) >= 1)
                first = time.monotonic()
                await listener.wait_for(lambda listener: len(listener.messages) >= 5)
                spread = time.monotonic() - first
                assert [m["text"] for m in listener.messages] == [f"polled {i}" for i in range(5)]
                assert spread >= 2 * interval * 0.75, f"five messages in {spread:.2f} s"
        finally:
            await mode.stop()

    asyncio.run(scenario())


def test_python_m_local_polls_at_the_stack_setting_unless_told(tmp_path) -> None:
    assert parse_args([]).sql_polling_ms == 100  # Pulumi.dev.yaml
    assert parse_args(["--sql-polling-ms", "0"]).sql_polling_ms == 0
    assert parse_args(["--sql-polling-ms", "250"]).sql_polling_ms == 250
    (tmp_path / "Pulumi.fast.yaml").write_text("config:\n  broadcast:sqlTriggerPollingIntervalMs: 250\n")
    assert stack_polling_ms("fast", tmp_path) == 250
    (tmp_path / "Pulumi.odd.yaml").write_text("config:\n  broadcast:sqlTriggerPollingIntervalMs: 50\n")
    with pytest.raises(ValueError, match=r"sqlTriggerPollingIntervalMs = 50: allowed 100-60000"):
        stack_polling_ms("odd", tmp_path)
    (tmp_path / "Pulumi.unset.yaml").write_text("config:\n  broadcast:environment: prod\n")
    with pytest.raises(ValueError, match=r"does not set broadcast:sqlTriggerPollingIntervalMs"):
        stack_polling_ms("unset", tmp_path)


def test_python_m_local_takes_the_stacks_batch_size_as_the_sql_trigger_does(tmp_path) -> None:
    """Azure's path batch by batch: the stack's Sql_Trigger_MaxBatchSize, or the setting's default."""
    assert SETTINGS_BY_KEY["sqlTriggerMaxBatchSize"].default == DEFAULT_BATCH_SIZE
    assert parse_args([]).sql_max_batch_size == DEFAULT_BATCH_SIZE  # Pulumi.dev.yaml leaves it unset
    (tmp_path / "Pulumi.small.yaml").write_text("config:\n  broadcast:sqlTriggerMaxBatchSize: 7\n")
    assert stack_batch_size("small", tmp_path) == 7
    (tmp_path / "Pulumi.huge.yaml").write_text("config:\n  broadcast:sqlTriggerMaxBatchSize: 5000\n")
    with pytest.raises(ValueError, match=r"sqlTriggerMaxBatchSize = 5000: allowed 1-1000"):
        stack_batch_size("huge", tmp_path)
    _app, _hub, host, _identity = build_app(Database(":memory:"), PUBLISH_KEY, sql_max_batch_size=7)
    assert host.max_batch_size == 7


@pytest.mark.parametrize("argv", [["--sql-polling-ms", "50"], ["--stack", "no-such-stack"]])
def test_python_m_local_names_a_bad_polling_value(argv: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(argv)
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert argv[0] in error and argv[1] in error


def test_a_sigterm_stops_python_m_local_even_after_the_event_loop_was_busy() -> None:
    """asyncio's own signal handlers learn of a signal through a byte in the loop's self-pipe,
    which call_soon_threadsafe fills too (the host's worker threads use it for every write); while
    the loop is busy the pipe fills, the byte is dropped, and the SIGTERM is lost: the process stays
    up. Python's signal handler does not depend on the pipe."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        running = asyncio.create_task(local_main(["--port", "0", "--sql-polling-ms", "0"]))
        deadline = loop.time() + 30
        while signal.getsignal(signal.SIGTERM) is saved[signal.SIGTERM] and not running.done():
            assert loop.time() < deadline, "python -m local did not start"
            await asyncio.sleep(0.05)

        def flood() -> None:
            for _ in range(400_000):
                loop.call_soon_threadsafe(lambda: None)

        worker = threading.Thread(target=flood)
        worker.start()
        time.sleep(2)  # the loop is busy (blocked) meanwhile: its self-pipe fills up
        os.kill(os.getpid(), signal.SIGTERM)
        worker.join()
        await asyncio.wait_for(running, timeout=20)

    try:
        asyncio.run(scenario())
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


# Issue 30, item 7: keys compare as SQL Server compares them


def test_a_refused_put_to_an_uppercase_key_releases_its_claim(server: LocalServer) -> None:
    """The claim is taken for the key's value; the release used to be written under the URL's
    spelling, which the local table took for another key: the correct retry got 409 key_in_use for a
    minute and a stray uppercase row stayed."""
    key = str(uuid.uuid4())
    status, body = server.put(key.upper(), "")
    assert status == 400 and body["error"]["code"] == "invalid_text"
    status, body = server.put(key.upper(), "the retry")
    assert status == 202, body
    assert [
        row["messageKey"] for row in server.mode.database.query("SELECT messageKey FROM dbo.MessageKeys")
    ] == [key]


@pytest.mark.parametrize(
    ("table", "row", "other_spelling"),
    [
        # UNIQUEIDENTIFIER: one value, whatever the case or braces.
        (
            "dbo.MessageKeys",
            {"messageKey": "0F8FAD5B-D9CB-469F-A165-70867728950E"},
            "{0f8fad5b-d9cb-469f-a165-70867728950e}",
        ),
        # NVARCHAR under the database's collation, SQL_Latin1_General_CP1_CI_AS: case-insensitive.
        ("dbo.Connections", {"connectionId": "Conn-AbC"}, "conn-abc"),
    ],
    ids=["uniqueidentifier", "nvarchar-ci"],
)
def test_a_key_in_another_spelling_is_the_same_row_as_on_sql_server(
    server: LocalServer, table: str, row: dict, other_spelling: str
) -> None:
    database = server.mode.database
    name = table.removeprefix("dbo.")
    key = database.tables[name].primary_key
    complete = {
        column: "2026-01-01T00:00:00.000Z" for column in database.tables[name].not_null if column != key
    }
    database.upsert(table, [{**complete, **row}])
    database.upsert(table, [{**complete, key: other_spelling}])
    assert database.count(table) == 1


def test_a_uniqueidentifier_that_is_not_a_guid_is_refused_as_sql_server_refuses_it(
    server: LocalServer,
) -> None:
    with pytest.raises(BindingError, match=r"uniqueidentifier\. \(8169\)"):
        server.mode.database.upsert(
            "dbo.MessageKeys", [{"messageKey": "not-a-guid", "claimedAt": "2026-01-01T00:00:00.000Z"}]
        )


# Issue 30, item 10 (and issue 32, item 3): what cannot start says so in one line


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--port", "taken", "the port is taken on 127.0.0.1"),
        ("--db", "/no-such-directory/broadcast.db", "cannot use it as a SQLite database"),
        ("--host", "203.0.113.7", "not an address of this machine"),  # TEST-NET-3: never this machine's
    ],
)
def test_python_m_local_that_cannot_start_says_why_in_one_line(
    option: str, value: str, expected: str, capsys: pytest.CaptureFixture
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = str(holder.getsockname()[1])
        argv = ["--sql-polling-ms", "0", "--port", "0", option, taken if value == "taken" else value]
        with pytest.raises(SystemExit) as exited:
            asyncio.run(local_main(argv))
    assert exited.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    shown = taken if value == "taken" else value
    assert lines[0].startswith(f"python -m local: {option} {shown}: {expected}")
    if option == "--port":
        assert "--port 0" in lines[0]


# Issue 30, item 6: connection churn does not grow the database without bound


def test_the_presence_count_reads_the_open_connections_index_not_every_connection(
    server: LocalServer,
) -> None:
    plan = server.mode.database._connection.execute(f"EXPLAIN QUERY PLAN {translate(queries.ONLINE_COUNT)}")
    details = " ".join(row[3] for row in plan.fetchall())
    assert (
        "USING INDEX IX_Connections_open" in details or "USING COVERING INDEX IX_Connections_open" in details
    )


def test_change_tracking_forgets_changes_past_its_retention(server: LocalServer) -> None:
    database = server.mode.database
    assert database.change_retention == timedelta(days=2)  # migration 0001's CHANGE_RETENTION
    for name in ("old", "new"):
        database.upsert(
            "dbo.Connections", [{"connectionId": name, "connectedAt": "2026-01-01T00:00:00.000Z"}]
        )
    with database._locked() as connection:
        connection.execute(
            "UPDATE _changes SET recorded_at = '2000-01-01T00:00:00.000Z' WHERE row_key = 'old'"
        )
    assert database.forget_old_changes() == 1
    with database._locked() as connection:
        left = [
            row[0]
            for row in connection.execute("SELECT row_key FROM _changes WHERE table_name = 'Connections'")
        ]
    assert left == ["new"]


def test_a_claim_left_by_a_stopped_publisher_says_how_long_until_it_is_taken_over(
    server: LocalServer,
) -> None:
    """Issue 30, item 8: the state a `kill -9` mid-write leaves: a claim and no message."""
    key = str(uuid.uuid4())
    claimed = datetime.now(UTC) - timedelta(seconds=20)
    server.mode.database.upsert(
        "dbo.MessageKeys", [{"messageKey": key, "claimedAt": claimed.strftime("%Y-%m-%dT%H:%M:%S.000Z")}]
    )
    status, body = server.put(key, "the retry")
    assert status == 409 and body["error"]["code"] == "key_in_use"
    # 60 s after the claim it can be taken over: about 41 s from now (the Retry-After says the same).
    wait = re.search(r"retry in (\d+) s", body["error"]["message"])
    assert wait is not None and 39 <= int(wait.group(1)) <= 42
