"""The migration runner against a real database through pyodbc (SQLite's ODBC driver), with test
migrations in SQLite's dialect; against a double that keeps SQL Server's transaction rules, with the
project's T-SQL migrations; and the dynamic resource's provider around it."""

from __future__ import annotations

import base64
import io
import json
import struct
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pyodbc
import pytest
from sql_server_double import SqlServerSession

from data_plane import database_schema, migration_runner
from data_plane.database_schema import (
    SQLITE,
    MigrationError,
    SchemaProvider,
    access_token_struct,
    applied_checksum,
    apply_migrations,
    entra_sid,
)
from functions.migrations import Migration, load_migrations

CLIENT_ID = "00112233-4455-6677-8899-aabbccddeeff"
VARIABLES = {"AppIdentityName": "id-bcast-dev-x", "AppIdentitySid": entra_sid(CLIENT_ID)}


def connect(path: Path) -> pyodbc.Connection:
    return pyodbc.connect(f"Driver=SQLite3;Database={path}", autocommit=False)


def write(directory: Path, name: str, text: str) -> None:
    (directory / name).write_text(text)


@pytest.fixture
def migrations_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "migrations"
    directory.mkdir()
    write(
        directory,
        "0001_messages.sql",
        "CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, text TEXT);\nGO\n",
    )
    write(
        directory,
        "0002_seed.sql",
        "-- a seed row\nINSERT OR IGNORE INTO messages (id, text) VALUES (1, '$(Greeting)');\nGO\n",
    )
    return directory


def tables(connection: pyodbc.Connection) -> dict[str, str]:
    cursor = connection.cursor()
    cursor.execute("SELECT name, checksum FROM schema_migrations ORDER BY name")
    return {name: checksum for name, checksum in cursor.fetchall()}


def test_applies_in_order_records_and_skips_on_the_second_run(tmp_path: Path, migrations_dir: Path) -> None:
    connection = connect(tmp_path / "db.sqlite")
    migrations = load_migrations(migrations_dir)
    first = apply_migrations(connection, migrations, {"Greeting": "hello"}, SQLITE)
    assert (first.applied, first.skipped) == (["0001_messages.sql", "0002_seed.sql"], [])
    assert tables(connection) == {m.name: applied_checksum(m, {"Greeting": "hello"}) for m in migrations}
    second = apply_migrations(connection, migrations, {"Greeting": "hello"}, SQLITE)
    assert (second.applied, second.skipped) == ([], ["0001_messages.sql", "0002_seed.sql"])
    cursor = connection.cursor()
    cursor.execute("SELECT text FROM messages")
    assert cursor.fetchall()[0][0] == "hello"


def test_a_changed_migration_runs_again(tmp_path: Path, migrations_dir: Path) -> None:
    connection = connect(tmp_path / "db.sqlite")
    apply_migrations(connection, load_migrations(migrations_dir), {"Greeting": "hi"}, SQLITE)
    write(
        migrations_dir,
        "0002_seed.sql",
        "INSERT OR REPLACE INTO messages (id, text) VALUES (1, 'changed');\nGO\n",
    )
    result = apply_migrations(connection, load_migrations(migrations_dir), {}, SQLITE)
    assert (result.applied, result.skipped) == (["0002_seed.sql"], ["0001_messages.sql"])
    assert tables(connection)["0002_seed.sql"] == applied_checksum(load_migrations(migrations_dir)[1], {})


def test_a_failing_migration_names_the_file_and_statement_and_is_not_recorded(
    tmp_path: Path, migrations_dir: Path
) -> None:
    write(migrations_dir, "0003_broken.sql", "-- oops\nINSERT INTO no_such_table VALUES (1);\nGO\n")
    connection = connect(tmp_path / "db.sqlite")
    with pytest.raises(MigrationError, match=r"0003_broken\.sql: batch 1 failed \(INSERT INTO no_such_table"):
        apply_migrations(connection, load_migrations(migrations_dir), {"Greeting": "x"}, SQLITE)
    assert "0003_broken.sql" not in tables(connection)
    assert set(tables(connection)) == {"0001_messages.sql", "0002_seed.sql"}


class RecordingConnection:
    """A DB-API connection double that records the SQL it is given."""

    def __init__(self, executed: list[str]) -> None:
        self.executed = executed
        self.autocommit = False

    def cursor(self) -> RecordingConnection:
        return self

    def execute(self, sql: str, *params: object) -> None:
        self.executed.append(sql)

    def fetchall(self) -> list[tuple[str, str]]:
        return []

    def nextset(self) -> bool:
        return False

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_provider_applies_the_projects_migrations_through_its_connection(tmp_path: Path) -> None:
    connections: list[dict[str, str]] = []
    executed: list[str] = []

    def fake_connect(props: dict[str, str]) -> RecordingConnection:
        connections.append(props)
        return RecordingConnection(executed)

    provider = SchemaProvider(connect=fake_connect)
    migrations = [{"name": m.name, "checksum": m.checksum} for m in load_migrations()]
    props = {
        "server": "sql-x.database.windows.net",
        "database": "sqldb-x",
        "migrations": migrations,
        "variables": VARIABLES,
    }
    result = provider.create(props)
    assert result.outs["applied"] == [m["name"] for m in migrations]
    create_user = f"CREATE USER [id-bcast-dev-x] WITH SID = {VARIABLES['AppIdentitySid']}, TYPE = E;"
    assert any(create_user in sql for sql in executed)
    assert connections[0]["server"] == "sql-x.database.windows.net"
    stale = {**props, "migrations": migrations[:-1]}
    with pytest.raises(MigrationError, match="differ from the ones this update planned"):
        provider.create(stale)


def test_diff_reruns_only_when_migrations_or_target_change() -> None:
    provider = SchemaProvider()
    old = {
        "server": "s",
        "database": "d",
        "migrations": [{"name": "0001_a.sql", "checksum": "1"}],
        "variables": {"AppIdentityName": "id"},
    }
    assert provider.diff("id", old, dict(old)).changes is False
    assert provider.diff("id", old, {**old, "migrations": [{"name": "0001_a.sql", "checksum": "2"}]}).changes
    assert provider.diff("id", old, {**old, "server": "t"}).replaces == ["server"]


def test_access_token_is_length_prefixed_utf16() -> None:
    packed = access_token_struct("ab")
    assert struct.unpack("<I", packed[:4])[0] == 4 and packed[4:] == "ab".encode("utf-16-le")


def test_migration_checksum_is_of_the_file(migrations_dir: Path) -> None:
    (first,) = [m for m in load_migrations(migrations_dir) if m.name.startswith("0001")]
    assert first == Migration(first.name, (migrations_dir / first.name).read_text())


class RefusingConnection:
    """A connect() that refuses the first call as Azure SQL does for an address outside the firewall."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.calls = 0

    def __call__(self, props: dict[str, str]) -> object:
        self.calls += 1
        if self.calls <= self.refusals:
            raise RuntimeError(
                "[42000] Cannot open server 'sql-x' requested by the login. Client with IP address "
                "'203.0.113.9' is not allowed to access the server."
            )
        return RecordingConnection([])


def test_opens_a_temporary_firewall_rule_for_the_deploying_machine_and_removes_it() -> None:
    calls: list[tuple[str, str, object]] = []
    connect = RefusingConnection(refusals=2)
    provider = SchemaProvider(
        connect=connect,
        arm=lambda m, u, b: calls.append((m, u, b)) or 200,
        sleep=lambda s: None,
        locks=lambda resource_id: [],
    )
    migrations = [{"name": m.name, "checksum": m.checksum} for m in load_migrations()]
    props = {
        "server": "sql-x.database.windows.net",
        "server_id": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Sql/servers/sql-x",
        "database": "d",
        "migrations": migrations,
        "variables": VARIABLES,
    }
    provider.create(props)
    rule = (
        "https://management.azure.com/subscriptions/s/resourceGroups/r/providers/Microsoft.Sql/servers/sql-x/"
        "firewallRules/pulumi-schema-203-0-113-9?api-version=2021-11-01"
    )
    assert calls == [
        ("PUT", rule, {"properties": {"startIpAddress": "203.0.113.9", "endIpAddress": "203.0.113.9"}}),
        ("DELETE", rule, None),
    ]
    assert connect.calls == 3


def test_other_connection_errors_are_not_hidden() -> None:
    def refuse(props: dict[str, str]) -> object:
        raise RuntimeError("Login failed for user '<token-identified principal>'")

    provider = SchemaProvider(connect=refuse, arm=lambda m, u, b: pytest.fail("no firewall change expected"))
    migrations = [{"name": m.name, "checksum": m.checksum} for m in load_migrations()]
    with pytest.raises(RuntimeError, match="Login failed"):
        provider.create(
            {
                "server": "s",
                "server_id": "/x",
                "database": "d",
                "migrations": migrations,
                "variables": VARIABLES,
            }
        )


def test_the_projects_migrations_pass_sql_servers_transaction_rules_from_pyodbcs_default() -> None:
    """pyodbc connects with autocommit=False unless told otherwise; the runner must still run every
    ALTER DATABASE outside a transaction (ALTER DATABASE reference: error 226 otherwise)."""
    session = SqlServerSession(autocommit=False)
    result = apply_migrations(session, load_migrations(), VARIABLES)
    assert result.applied == [m.name for m in load_migrations()]
    assert set(session.tracking) == set(result.applied)
    assert session.trancount == 0 and session.autocommit is True
    assert any(sql.startswith("IF NOT EXISTS") and "ALTER DATABASE" in sql for sql in session.executed)
    again = apply_migrations(session, load_migrations(), VARIABLES)
    assert again.applied == [] and again.skipped == result.applied


def test_the_double_refuses_alter_database_inside_an_implicit_transaction() -> None:
    """The double is as strict as SQL Server: the first SELECT from a table opens an implicit
    transaction when autocommit is off, and ALTER DATABASE then fails with 226 (pyodbc#910)."""
    session = SqlServerSession(autocommit=False)
    session.execute("SELECT name, checksum FROM dbo.SchemaMigrations")
    with pytest.raises(
        pyodbc.ProgrammingError, match=r"not allowed within multi-statement transaction\. \(226\)"
    ):
        session.execute("ALTER DATABASE CURRENT SET CHANGE_TRACKING = ON")
    guarded = "IF (SELECT compatibility_level FROM sys.databases) < 130\n ALTER DATABASE CURRENT SET X"
    with pytest.raises(pyodbc.ProgrammingError, match=r"\(226\)"):
        SqlServerSession(autocommit=False).execute(guarded)
    SqlServerSession(autocommit=True).execute(guarded)
    committed = SqlServerSession(autocommit=False)
    committed.execute("SELECT 1 FROM sys.databases")
    committed.autocommit = True  # ODBC commits the open transaction when autocommit is switched on
    committed.execute("ALTER DATABASE CURRENT SET CHANGE_TRACKING = ON")


def test_the_deploy_time_connection_is_opened_in_autocommit(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[dict[str, Any]] = []

    def fake_connect(connection_string: str, **kwargs: Any) -> object:
        opened.append({"connection_string": connection_string, **kwargs})
        return object()

    monkeypatch.setattr(pyodbc, "connect", fake_connect)
    monkeypatch.setattr(database_schema, "entra_token", lambda scope: "token")
    SchemaProvider._azure_sql_connection({"server": "sql-x.database.windows.net", "database": "d"})
    (connection,) = opened
    assert connection["autocommit"] is True
    assert (
        "Driver={ODBC Driver 18 for SQL Server};Server=tcp:sql-x.database.windows.net,1433;"
        in (connection["connection_string"])
    )
    assert database_schema.SQL_COPT_SS_ACCESS_TOKEN in connection["attrs_before"]


def test_the_app_user_is_created_from_its_client_id_without_a_graph_lookup() -> None:
    """A service principal deploys: FROM EXTERNAL PROVIDER would need the server to read Microsoft
    Graph (error 33134); WITH SID = <client id as binary(16)>, TYPE = E needs nothing."""
    session = SqlServerSession(autocommit=False, caller_is_application=True, server_reads_graph=False)
    apply_migrations(session, load_migrations(), VARIABLES)
    assert session.users == {"id-bcast-dev-x": uuid.UUID(CLIENT_ID).bytes_le}
    with pytest.raises(pyodbc.ProgrammingError, match=r"could not be resolved.*\(33134\)"):
        SqlServerSession(autocommit=True).execute("CREATE USER [id-x] FROM EXTERNAL PROVIDER;")


def test_entra_sid_is_the_client_id_in_sql_servers_uniqueidentifier_byte_order() -> None:
    # CONVERT(VARBINARY(16), CAST('00112233-4455-6677-8899-aabbccddeeff' AS UNIQUEIDENTIFIER))
    assert entra_sid(CLIENT_ID) == "0x33221100554477668899AABBCCDDEEFF"


def test_a_new_identity_runs_the_user_migration_again() -> None:
    """And 0006, which takes back what 0004 grants again (CREATE SCHEMA), with it."""
    identity, revoke = [m for m in load_migrations() if "AppIdentitySid" in m.variables()]
    assert (identity.name, revoke.name) == ("0004_app_identity.sql", "0006_least_privilege.sql")
    other = {**VARIABLES, "AppIdentitySid": entra_sid(str(uuid.uuid4()))}
    assert applied_checksum(identity, VARIABLES) != applied_checksum(identity, other)
    session = SqlServerSession(autocommit=True)
    apply_migrations(session, load_migrations(), VARIABLES)
    rerun = apply_migrations(session, load_migrations(), other)
    assert rerun.applied == [identity.name, revoke.name]


def schema_props() -> dict[str, Any]:
    return {
        "server": "sql-x.database.windows.net",
        "server_id": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Sql/servers/sql-x",
        "database": "d",
        "migrations": [{"name": m.name, "checksum": m.checksum} for m in load_migrations()],
        "variables": VARIABLES,
    }


def test_a_locked_server_gets_no_temporary_firewall_rule() -> None:
    """A CanNotDelete lock is inherited by the server's firewall rules, whose deletion then fails with
    ScopeLocked (Azure: "Lock your resources"; Azure/azure-cli#21753): a temporary rule opened for
    the deploying machine could never be removed, so none is opened."""
    provider = SchemaProvider(
        connect=RefusingConnection(refusals=1),
        arm=lambda m, u, b: pytest.fail("no firewall change on a locked server"),
        locks=lambda resource_id: ["CanNotDelete"],
    )
    with pytest.raises(
        MigrationError, match=r"locked against deletion .* add 203\.0\.113\.9 to sqlClientIpRanges"
    ):
        provider.create(schema_props())


def test_a_private_server_says_where_to_run_from() -> None:
    def refuse(props: dict[str, str]) -> object:
        raise pyodbc.OperationalError(
            "42000",
            "[42000] [Microsoft][ODBC Driver 18 for SQL Server][SQL Server]Reason: An instance-specific "
            "error occurred while establishing a connection to SQL Server. Connection was denied since Deny "
            "Public Network Access is set to Yes (47073) (SQLDriverConnect)",
        )

    provider = SchemaProvider(connect=refuse, arm=lambda m, u, b: pytest.fail("no firewall change"))
    with pytest.raises(
        MigrationError, match=r"private connections only .* privatelink\.database\.windows\.net"
    ):
        provider.create(schema_props())


def test_the_odbc_driver_is_needed_only_when_a_schema_change_is_applied() -> None:
    """Issue 24, item 4: an unchanged schema is no change (Pulumi then calls neither create nor
    update, so nothing connects); the driver is asked for when the provider is about to connect."""
    provider = SchemaProvider(drivers=lambda: ["SQLite3"])
    assert provider.diff("id", schema_props(), schema_props()).changes is False
    with pytest.raises(
        MigrationError, match=r"lacks ODBC Driver 18 for SQL Server; install it: .*msodbcsql18"
    ):
        provider.create(schema_props())


def test_the_bundle_carries_the_same_runner_and_migrations_and_is_deterministic(tmp_path: Path) -> None:
    """What the in-network script runs: this repository's runner and migration files, with the plan."""
    plan = {
        "server": "sql-x.database.windows.net",
        "database": "d",
        "variables": VARIABLES,
        "migrations": [{"name": m.name, "checksum": m.checksum} for m in load_migrations()],
    }
    root = Path(__file__).resolve().parent.parent
    text = migration_runner.bundle(plan, root)
    assert text == migration_runner.bundle(plan, root)
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(text))) as archive:
        archive.extractall(tmp_path)
        names = set(archive.namelist())
    assert names == {
        "functions/migrations.py",
        "data_plane/migration_runner.py",
        "plan.json",
        *(f"functions/sql/migrations/{m.name}" for m in load_migrations()),
    }
    assert (tmp_path / "data_plane/migration_runner.py").read_bytes() == Path(
        migration_runner.__file__
    ).read_bytes()
    sessions: list[SqlServerSession] = []

    def connect(server: str, database: str, token: str) -> SqlServerSession:
        assert (server, database, token) == ("sql-x.database.windows.net", "d", "tok")
        sessions.append(SqlServerSession(autocommit=False))  # the driver's default, as pyodbc's
        return sessions[-1]

    outputs = migration_runner.run_plan(tmp_path, connect=connect, token=lambda: "tok")
    assert outputs == {"applied": [m.name for m in load_migrations()], "skipped": []}
    assert sessions[0].closed and set(sessions[0].tracking) == set(outputs["applied"])
    stale = {**plan, "migrations": plan["migrations"][:-1]}
    (tmp_path / "plan.json").write_text(json.dumps(stale))
    with pytest.raises(MigrationError, match="differ from the ones this update planned"):
        migration_runner.run_plan(tmp_path, connect=connect, token=lambda: "tok")
