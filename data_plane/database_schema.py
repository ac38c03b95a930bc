"""Applying the T-SQL migrations during `pulumi up`: the runner, and the dynamic resource around it.

The runner records each applied migration (name, checksum of its text with the variables filled in,
time) in a table of the database, skips what is recorded with the same checksum, and runs a changed
migration again (they are idempotent by construction). An error names the migration file, the batch
and its first line.

Every batch runs in autocommit mode: SQL Server refuses `ALTER DATABASE` inside an explicit or
implicit transaction (error 226), and pyodbc's default `autocommit=False` makes the ODBC driver open
an implicit transaction at the first SELECT (ALTER DATABASE reference; mkleehammer/pyodbc#910). Only
the bookkeeping of one migration (delete and insert its tracking row) is one transaction.

The resource connects with pyodbc and ODBC Driver 18 using an Entra access token of the deploying
identity (no SQL password exists), after the server, database and firewall rules, and before the
Functions app's code starts its SQL triggers.
"""

from __future__ import annotations

import hashlib
import json
import struct
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

from data_plane.azure_http import ARM, SQL_SCOPE, entra_token, urllib_transport
from data_plane.provider_support import diff_on
from functions.migrations import Migration, load_migrations

TRACKING_TABLE = "dbo.SchemaMigrations"
SQL_COPT_SS_ACCESS_TOKEN = 1256  # msodbcsql: pass an Entra access token instead of a password


class MigrationError(RuntimeError):
    """A migration failed; the message names the file and the statement."""


@dataclass(frozen=True)
class Dialect:
    """The statements the runner needs, per database engine."""

    tracking_table: str
    create_tracking_table: str


TSQL = Dialect(
    tracking_table=TRACKING_TABLE,
    create_tracking_table=(
        f"IF OBJECT_ID(N'{TRACKING_TABLE}', N'U') IS NULL CREATE TABLE {TRACKING_TABLE} ("
        "name NVARCHAR(255) NOT NULL PRIMARY KEY, checksum CHAR(64) NOT NULL, "
        "applied_at NVARCHAR(32) NOT NULL)"
    ),
)
SQLITE = Dialect(
    tracking_table="schema_migrations",
    create_tracking_table=(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "name VARCHAR(255) NOT NULL PRIMARY KEY, checksum CHAR(64) NOT NULL, applied_at VARCHAR(32) NOT NULL)"
    ),
)


@dataclass(frozen=True)
class MigrationResult:
    """What one run did."""

    applied: list[str]
    skipped: list[str]


def applied_checksum(migration: Migration, variables: dict[str, str] | None) -> str:
    """What the tracking table records: the file's text and the values of the variables it uses, so
    a new value (say, a recreated identity's id) runs the migration again."""
    used = {name: (variables or {}).get(name, "") for name in sorted(migration.variables())}
    return hashlib.sha256(f"{migration.text}\0{json.dumps(used, sort_keys=True)}".encode()).hexdigest()


def apply_migrations(
    connection: Any,
    migrations: Sequence[Migration],
    variables: dict[str, str] | None = None,
    dialect: Dialect = TSQL,
) -> MigrationResult:
    """Run what is new or changed, in order, recording each; `connection` is a pyodbc connection.

    Batches run in autocommit mode (ALTER DATABASE refuses any transaction); the tracking row of a
    migration is written in one transaction once all its batches succeeded."""
    connection.autocommit = True
    cursor = connection.cursor()
    cursor.execute(dialect.create_tracking_table)
    cursor.execute(f"SELECT name, checksum FROM {dialect.tracking_table}")
    recorded = {str(name): str(checksum) for name, checksum in cursor.fetchall()}
    applied, skipped = [], []
    for migration in migrations:
        checksum = applied_checksum(migration, variables)
        if recorded.get(migration.name) == checksum:
            skipped.append(migration.name)
            continue
        for number, batch in enumerate(migration.batches(variables), start=1):
            try:
                cursor.execute(batch)
                while cursor.nextset():  # drain every result of a multi-statement batch
                    pass
            except Exception as error:
                first_line = next(
                    (
                        line.strip()
                        for line in batch.splitlines()
                        if line.strip() and not line.strip().startswith("--")
                    ),
                    "",
                )
                raise MigrationError(
                    f"{migration.name}: batch {number} failed ({first_line[:120]}): {error}"
                ) from error
        _record(connection, dialect, migration.name, checksum)
        applied.append(migration.name)
    return MigrationResult(applied, skipped)


def _record(connection: Any, dialect: Dialect, name: str, checksum: str) -> None:
    """Replace a migration's tracking row in one transaction, then return to autocommit."""
    connection.autocommit = False
    try:
        cursor = connection.cursor()
        cursor.execute(f"DELETE FROM {dialect.tracking_table} WHERE name = ?", name)
        cursor.execute(
            f"INSERT INTO {dialect.tracking_table} (name, checksum, applied_at) VALUES (?, ?, ?)",
            name,
            checksum,
            datetime.now(UTC).isoformat(timespec="seconds"),
        )
        connection.commit()
    except Exception:
        connection.rollback()
        raise
    finally:
        connection.autocommit = True


def entra_sid(client_id: str) -> str:
    """The SID of a service principal or managed identity as a T-SQL binary literal: its client
    (application) id as SQL Server stores a uniqueidentifier (the first three fields little-endian,
    as `CONVERT(VARBINARY(16), CAST('<id>' AS UNIQUEIDENTIFIER))` gives)."""
    return "0x" + uuid.UUID(client_id).bytes_le.hex().upper()


def access_token_struct(token: str) -> bytes:
    """The token as msodbcsql wants it for SQL_COPT_SS_ACCESS_TOKEN: length-prefixed UTF-16-LE."""
    encoded = token.encode("utf-16-le")
    return struct.pack(f"<I{len(encoded)}s", len(encoded), encoded)


class SchemaProvider(ResourceProvider):
    """The dynamic provider behind `DatabaseSchema`.

    The machine running `pulumi up` is rarely inside the server's firewall. When Azure SQL refuses
    it ("Client with IP address ... is not allowed"), the provider opens a rule for exactly that
    address through ARM with the same identity, applies the migrations, and removes the rule.
    """

    def __init__(
        self,
        connect: Callable[[dict[str, Any]], Any] | None = None,
        arm: Callable[[str, str, dict[str, Any] | None], int] | None = None,
        sleep: Callable[[float], None] | None = None,
        firewall_wait_seconds: float = 300,
        locks: Callable[[str], list[str]] | None = None,
    ) -> None:
        self._connect = connect
        self._arm = arm
        self._sleep = sleep
        self._firewall_wait = firewall_wait_seconds
        self._locks = locks

    @staticmethod
    def _azure_sql_connection(props: dict[str, Any]) -> Any:
        import pyodbc

        token = entra_token(SQL_SCOPE)
        connection_string = (
            f"Driver={{ODBC Driver 18 for SQL Server}};Server=tcp:{props['server']},1433;"
            f"Database={props['database']};Encrypt=yes;TrustServerCertificate=no;Connection Timeout=60;"
        )
        # autocommit=True: ALTER DATABASE fails with error 226 in the driver's implicit transactions.
        return pyodbc.connect(
            connection_string,
            attrs_before={SQL_COPT_SS_ACCESS_TOKEN: access_token_struct(token)},
            autocommit=True,
        )

    @staticmethod
    def _arm_request(method: str, url: str, body: dict[str, Any] | None) -> int:
        import json

        headers = {"Authorization": f"Bearer {entra_token()}", "Content-Type": "application/json"}
        data = json.dumps(body).encode() if body is not None else None
        status, _, _ = urllib_transport(method, url, data, headers)
        return status

    @staticmethod
    def _lock_levels(resource_id: str) -> list[str]:
        """The levels of the management locks on a resource and above it (ARM: Management Locks -
        List At Resource Level)."""
        import json

        url = f"{ARM}{resource_id}/providers/Microsoft.Authorization/locks?api-version=2020-05-01"
        status, _, body = urllib_transport("GET", url, None, {"Authorization": f"Bearer {entra_token()}"})
        if status != 200:
            return []
        return [str(lock.get("properties", {}).get("level")) for lock in json.loads(body).get("value", [])]

    def _firewall_rule_url(self, props: dict[str, Any], address: str) -> str:
        name = "pulumi-schema-" + address.replace(".", "-")
        return f"{ARM}{props['server_id']}/firewallRules/{name}?api-version=2021-11-01"

    def _connect_through_firewall(self, props: dict[str, Any]) -> tuple[Any, str | None]:
        import re

        connect = self._connect or self._azure_sql_connection
        try:
            return connect(props), None
        except Exception as error:
            if "Deny Public Network Access is set to Yes" in str(error) or "(47073)" in str(error):
                raise MigrationError(
                    f"{props['server']} accepts private connections only (network: private): run `pulumi up` "
                    "from a machine in its virtual network, or in one peered with it whose DNS resolves "
                    "privatelink.database.windows.net (a self-hosted runner; README, Private networking)"
                ) from error
            match = re.search(r"Client with IP address '([0-9.]+)' is not allowed", str(error))
            if not match:
                raise
            address = match.group(1)
        if any(
            level in ("CanNotDelete", "ReadOnly")
            for level in (self._locks or self._lock_levels)(props["server_id"])
        ):
            # A lock is inherited by the firewall rules: a temporary one could never be removed.
            raise MigrationError(
                f"the server refused {address} and is locked against deletion (protectData), so no temporary "
                f"firewall rule is opened: add {address} to sqlClientIpRanges, or apply from a machine the "
                "firewall already admits"
            )
        arm = self._arm or self._arm_request
        url = self._firewall_rule_url(props, address)
        status = arm("PUT", url, {"properties": {"startIpAddress": address, "endIpAddress": address}})
        if status not in (200, 201, 202):
            raise MigrationError(
                f"the server refused {address} and opening its firewall for it failed "
                f"(HTTP {status}); add it to sqlClientIpRanges"
            )
        deadline = time.monotonic() + self._firewall_wait
        while True:  # a new rule can take a few minutes to apply
            try:
                return connect(props), url
            except Exception:
                if time.monotonic() > deadline:
                    arm("DELETE", url, None)
                    raise
                (self._sleep or time.sleep)(15)

    def _apply(self, props: dict[str, Any]) -> dict[str, Any]:
        migrations = load_migrations()
        expected = {m["name"]: m["checksum"] for m in props["migrations"]}
        found = {m.name: m.checksum for m in migrations}
        if found != expected:
            raise MigrationError(
                "the migrations on disk differ from the ones this update planned; run `pulumi up` again"
            )
        connection, temporary_rule = self._connect_through_firewall(props)
        try:
            result = apply_migrations(connection, migrations, dict(props.get("variables") or {}))
        finally:
            connection.close()
            if temporary_rule is not None:
                (self._arm or self._arm_request)("DELETE", temporary_rule, None)
        return {**props, "applied": result.applied}

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=f"{props['server']}/{props['database']}/schema", outs=self._apply(props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return diff_on(olds, news, watched=("migrations", "variables"), replace_on=("server", "database"))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._apply(news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """The schema goes with the database; nothing to undo on its own."""


class DatabaseSchema(pulumi.dynamic.Resource):
    """The broadcast schema, applied with the deploying identity's Entra token."""

    applied: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        server: pulumi.Input[str],
        server_id: pulumi.Input[str],
        database: pulumi.Input[str],
        app_identity_name: pulumi.Input[str],
        app_identity_client_id: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        migrations = [{"name": m.name, "checksum": m.checksum} for m in load_migrations()]
        super().__init__(
            SchemaProvider(),
            name,
            {
                "server": server,
                "server_id": server_id,
                "database": database,
                "migrations": migrations,
                "variables": {
                    "AppIdentityName": app_identity_name,
                    # The user is created from the identity's SID: no Microsoft Graph lookup, which a
                    # service principal could only do through a server identity with Directory Readers.
                    "AppIdentitySid": pulumi.Output.from_input(app_identity_client_id).apply(entra_sid),
                },
                "applied": None,
            },
            opts,
        )
