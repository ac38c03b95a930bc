"""The T-SQL schema: parses, creates what the bindings need, and is idempotent by construction."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import contract
import pytest
import queries
import sqlglot
import wiring
from migrations import Migration, load_migrations
from sqlglot import exp

MIGRATIONS = load_migrations()
VARIABLES = {"AppIdentityName": "id-bcast-dev-x7k2q9", "AppIdentitySid": "0x33221100554477668899AABBCCDDEEFF"}
ALL_BATCHES = [(m.name, batch) for m in MIGRATIONS for batch in m.batches(VARIABLES)]


def create_tables() -> dict[str, exp.Create]:
    tables = {}
    for migration in MIGRATIONS:
        for definition in migration.table_definitions():
            statement = sqlglot.parse_one(definition, read="tsql")
            assert isinstance(statement, exp.Create)
            tables[statement.this.this.sql(dialect="tsql")] = statement
    return tables


def test_migrations_are_ordered_and_numbered() -> None:
    numbers = [int(m.name[:4]) for m in MIGRATIONS]
    assert numbers == sorted(set(numbers)) and {1, 2, 3, 4, 5, 6, 7} <= set(numbers)


def test_tables_parse_with_primary_keys() -> None:
    tables = create_tables()
    assert set(tables) == {wiring.MESSAGES_TABLE, wiring.CONNECTIONS_TABLE, wiring.MESSAGE_KEYS_TABLE}
    for name, statement in tables.items():
        text = statement.sql(dialect="tsql")
        assert "PRIMARY KEY" in text, name
    messages = tables[wiring.MESSAGES_TABLE].sql(dialect="tsql")
    assert "IDENTITY(1, 1)" in messages and "NVARCHAR(2000)" in messages and "NVARCHAR(64)" in messages


def test_change_tracking_is_on_for_the_database_and_every_triggered_table() -> None:
    text = "\n".join(batch for _, batch in ALL_BATCHES)
    assert re.search(
        r"^\s*ALTER DATABASE CURRENT SET CHANGE_TRACKING = ON \(CHANGE_RETENTION = \d+ DAYS, "
        r"AUTO_CLEANUP = ON\);$",
        text,
        re.MULTILINE,
    )
    for table in (wiring.MESSAGES_TABLE, wiring.CONNECTIONS_TABLE):
        assert re.search(
            rf"^\s*ALTER TABLE {re.escape(table)} ENABLE CHANGE_TRACKING;$", text, re.MULTILINE
        ), table
    # The database is switched on before any table (a table cannot enable it first).
    names = [name for name, batch in ALL_BATCHES if "CHANGE_TRACKING" in batch]
    assert names[0] == "0001_change_tracking.sql"


def test_every_batch_is_idempotent_by_construction() -> None:
    for name, batch in ALL_BATCHES:
        code = "\n".join(line for line in batch.splitlines() if not line.strip().startswith("--")).strip()
        if code.startswith("GRANT "):
            assert all(
                line.startswith("GRANT ") for line in code.splitlines() if line and not line.startswith("--")
            )
            continue
        guard = code.splitlines()[0]
        if re.match(r"CREATE OR ALTER (PROCEDURE|TRIGGER) ", guard):
            continue  # replaces the module each run
        assert re.match(r"IF (NOT EXISTS|EXISTS|OBJECT_ID|SCHEMA_ID|\(SELECT)", guard), (
            f"{name}: unguarded batch {guard!r}"
        )


def test_app_identity_gets_exactly_the_documented_permissions() -> None:
    grants = [batch for name, batch in ALL_BATCHES if name == "0004_app_identity.sql"]
    text = "\n".join(grants)
    user = "[id-bcast-dev-x7k2q9]"
    sid = VARIABLES["AppIdentitySid"]
    # From the identity's client id: no Graph lookup, which a deploying service principal cannot do.
    assert f"CREATE USER {user} WITH SID = {sid}, TYPE = E;" in text
    code = "\n".join(line for line in text.splitlines() if not line.strip().startswith("--"))
    assert "FROM EXTERNAL PROVIDER" not in code
    assert f"sid <> {sid})\n    DROP USER {user};" in text
    for table in (wiring.MESSAGES_TABLE, wiring.CONNECTIONS_TABLE):
        assert f"GRANT SELECT, INSERT, UPDATE, VIEW CHANGE TRACKING ON OBJECT::{table} TO {user};" in text
    assert f"GRANT SELECT, INSERT, UPDATE, DELETE, ALTER ON SCHEMA::az_func TO {user};" in text
    assert f"GRANT CREATE TABLE TO {user};" in text
    assert "DELETE ON OBJECT" not in text and "db_owner" not in text and "CONTROL" not in text


def test_housekeeping_adds_only_delete_on_the_two_tables() -> None:
    """The purge function's statements delete rows; nothing else is granted for them."""
    (batch,) = [batch for name, batch in ALL_BATCHES if name == "0005_housekeeping.sql"]
    code = [line for line in batch.splitlines() if line and not line.startswith("--")]
    user = "[id-bcast-dev-x7k2q9]"
    assert code == [
        f"GRANT DELETE ON OBJECT::{wiring.MESSAGES_TABLE} TO {user};",
        f"GRANT DELETE ON OBJECT::{wiring.CONNECTIONS_TABLE} TO {user};",
    ]


def test_variables_must_be_supplied() -> None:
    identity = next(m for m in MIGRATIONS if m.name == "0004_app_identity.sql")
    with pytest.raises(KeyError, match=r"0004_app_identity.sql: no value for \$\(AppIdentityName\)"):
        identity.batches({})


def test_checksum_follows_the_text() -> None:
    one = Migration(name="0001_a.sql", text="SELECT 1;")
    assert one.checksum == Migration(name="0001_a.sql", text="SELECT 1;").checksum
    assert one.checksum != Migration(name="0001_a.sql", text="SELECT 2;").checksum


def test_badly_named_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "1_first.sql").write_text("SELECT 1;")
    with pytest.raises(ValueError, match=r"1_first\.sql: migration files are named NNNN_lowercase_name\.sql"):
        load_migrations(tmp_path)


@pytest.mark.parametrize(
    "query",
    [queries.HISTORY, queries.HISTORY_PAGE, queries.ONLINE_COUNT, queries.HEALTH],
)
def test_binding_queries_parse_as_tsql(query: str) -> None:
    statement = sqlglot.parse_one(query, read="tsql")
    assert isinstance(statement, exp.Select)


def test_history_query_reads_the_messages_table_in_id_order() -> None:
    statement = sqlglot.parse_one(queries.HISTORY, read="tsql")
    assert statement.find(exp.Table).sql(dialect="tsql") == wiring.MESSAGES_TABLE
    assert statement.args["order"].sql(dialect="tsql") == "ORDER BY id"
    assert {p.name for p in statement.find_all(exp.Parameter)} | set(
        re.findall(r"@(\w+)", queries.HISTORY)
    ) >= {"After", "Take"}


def test_history_page_query_takes_the_newest_below_before_and_returns_them_in_id_order() -> None:
    statement = sqlglot.parse_one(queries.HISTORY_PAGE, read="tsql")
    inner = statement.find(exp.Subquery).this
    assert inner.find(exp.Table).sql(dialect="tsql") == wiring.MESSAGES_TABLE
    assert inner.args["order"].sql(dialect="tsql") == "ORDER BY id DESC"
    assert statement.args["order"].sql(dialect="tsql") == "ORDER BY id"
    assert set(re.findall(r"@(\w+)", queries.HISTORY_PAGE)) == {"Before", "Take"}
    # `latest` arrives as the largest BIGINT (the route form admits numbers only).
    assert "id < TRY_CONVERT(BIGINT, @Before)" in queries.HISTORY_PAGE and str(contract.MAX_ID) == str(
        2**63 - 1
    )


INSERT_ONLY = "0007_insert_only_messages.sql"


def batches_of(name: str) -> list[str]:
    return [
        "\n".join(line for line in batch.splitlines() if not line.strip().startswith("--")).strip()
        for migration, batch in ALL_BATCHES
        if migration == name
    ]


def test_the_claim_procedure_lets_one_caller_win_and_returns_one_row() -> None:
    (procedure,) = [batch for batch in batches_of(INSERT_ONLY) if "PROCEDURE" in batch.split("\n", 1)[0]]
    assert procedure.startswith(f"CREATE OR ALTER PROCEDURE {queries.CLAIM_MESSAGE_KEY} @Key NVARCHAR(36)")
    # The parameter the binding passes is the one the procedure declares.
    assert re.findall(r"@(\w+)=", queries.CLAIM_MESSAGE_KEY_PARAMETERS) == ["Key"]
    # Exactly one INSERT can succeed (the primary key); only a duplicate key (2627) is caught.
    assert "INSERT INTO dbo.MessageKeys (messageKey, claimedAt)" in procedure
    assert "IF ERROR_NUMBER() <> 2627\n                THROW;" in procedure
    assert f"DATEADD(SECOND, -{queries.CLAIM_STALE_SECONDS}, SYSUTCDATETIME())" in procedure
    assert "UPDATE dbo.MessageKeys WITH (READCOMMITTEDLOCK)" in procedure
    # One row, whatever is stored: what the function reads as `won` and the message's columns.
    assert procedure.rstrip().endswith("END") and "LEFT JOIN dbo.Messages AS stored" in procedure
    assert (
        "SELECT @won AS won, stored.id, stored.messageKey, stored.text, stored.author, stored.createdAt"
        in (procedure)
    )


def test_claims_a_day_old_are_purged() -> None:
    statement = sqlglot.parse_one(queries.PURGE_CLAIMS, read="tsql")
    assert isinstance(statement, exp.Delete)
    assert statement.this.sql(dialect="tsql") == wiring.MESSAGE_KEYS_TABLE
    assert "claimedAt < DATEADD(HOUR, -24, SYSUTCDATETIME())" in queries.PURGE_CLAIMS


def _session_after(last: str) -> Any:
    """The SQL Server double with every migration up to `last` applied."""
    from sql_server_double import SqlServerSession

    session = SqlServerSession(autocommit=True)
    for migration in load_migrations():
        if migration.name <= last:
            for batch in migration.batches({name: "id-app" for name in migration.variables()}):
                session.execute(batch)
    return session


def test_every_publish_runs_the_update_trigger_and_only_an_update_is_refused() -> None:
    """Under the output binding's MERGE the UPDATE trigger fires on every write, `inserted` holding
    every row (the double's pessimistic reading): the trigger must decide from `deleted`."""
    import pyodbc

    row = {"messageKey": "k1", "text": "first", "author": None, "createdAt": "2026-12-01T00:00:00.000Z"}
    session = _session_after(load_migrations()[-1].name)
    session.output_binding_write(wiring.MESSAGES_TABLE, "messageKey", [row])
    second = {**row, "messageKey": "k2"}
    session.output_binding_write(wiring.MESSAGES_TABLE, "messageKey", [second])  # a new row, again
    with pytest.raises(pyodbc.ProgrammingError, match=r"dbo\.Messages is insert-only\. \(50001\)"):
        session.output_binding_write(wiring.MESSAGES_TABLE, "messageKey", [{**row, "text": "second"}])
    assert session.tables["Messages"]["k1"]["text"] == "first"
    # 0007's trigger read `inserted`: under MERGE it refused the first write of every message.
    with pytest.raises(pyodbc.ProgrammingError, match=r"\(50001\)"):
        _session_after(INSERT_ONLY).output_binding_write(wiring.MESSAGES_TABLE, "messageKey", [row])


def test_the_app_identity_gets_only_what_the_claim_needs() -> None:
    user = "[id-bcast-dev-x7k2q9]"
    grants = [
        line for batch in batches_of(INSERT_ONLY) for line in batch.splitlines() if line.startswith("GRANT")
    ]
    assert grants == [
        f"GRANT EXECUTE ON OBJECT::{queries.CLAIM_MESSAGE_KEY} TO {user};",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON OBJECT::{wiring.MESSAGE_KEYS_TABLE} TO {user};",
    ]


def test_the_double_requires_a_module_to_open_its_batch() -> None:
    """SQL Server's rule, modelled by the double that the schema runner's tests use: a guard before
    CREATE PROCEDURE is error 111, so 0007 puts each CREATE OR ALTER in a batch of its own."""
    import pyodbc
    from sql_server_double import SqlServerSession

    guarded = "IF OBJECT_ID(N'dbo.P') IS NULL\n    CREATE PROCEDURE dbo.P AS SELECT 1;"
    with pytest.raises(
        pyodbc.ProgrammingError, match=r"must be the first statement in a query batch\. \(111\)"
    ):
        SqlServerSession(autocommit=True).execute(guarded)
    session = SqlServerSession(autocommit=True)
    for batch in batches_of(INSERT_ONLY):
        session.execute(batch)
    duplicate = SqlServerSession(autocommit=True)
    statement = "INSERT INTO dbo.SchemaMigrations (name, checksum, applied_at) VALUES (?, ?, ?)"
    duplicate.execute(statement, "0007", "c", "t")
    with pytest.raises(pyodbc.IntegrityError, match=r"Violation of PRIMARY KEY.*\(2627\)"):
        duplicate.execute(statement, "0007", "c", "t")


DATABASE_PERMISSION = re.compile(
    r"^\s*(?:IF .*\n\s*)?(GRANT|REVOKE) ([A-Z ,]+?) (?:TO|FROM) (\[[^\]]+\]);$", re.MULTILINE
)


def test_after_every_migration_the_app_identity_holds_create_table_and_no_create_schema() -> None:
    """Database-wide permissions (GRANT/REVOKE without ON), folded in migration order: the SQL trigger
    needs CREATE TABLE for its leases tables; CREATE SCHEMA it never uses, since 0004 creates az_func
    and the trigger creates it only when missing (SQL trigger binding, "Permissions")."""
    held: set[str] = set()
    for _, batch in ALL_BATCHES:
        for verb, permissions, user in DATABASE_PERMISSION.findall(batch):
            assert user == "[id-bcast-dev-x7k2q9]"
            names = {permission.strip() for permission in permissions.split(",")}
            held = held | names if verb == "GRANT" else held - names
    assert held == {"CREATE TABLE"}


def test_the_revoke_runs_again_whenever_0004_grants_again() -> None:
    """0004 runs again (and grants again) for a recreated identity, whose SID differs: 0006 must too,
    so its recorded checksum has to follow the SID as 0004's does."""
    from data_plane.database_schema import applied_checksum

    grant, revoke = (next(m for m in MIGRATIONS if m.name.startswith(n)) for n in ("0004", "0006"))
    recreated = {**VARIABLES, "AppIdentitySid": "0x00112233445566778899AABBCCDDEEFF"}
    for migration in (grant, revoke):
        assert applied_checksum(migration, VARIABLES) != applied_checksum(migration, recreated)
