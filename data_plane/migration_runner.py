"""The T-SQL migration runner, with nothing but the standard library, so the same code runs in two
places: in `pulumi up` on the deploying machine (`database_schema`, with pyodbc), and inside the
stack's virtual network (`python -m data_plane.migration_runner`, in the Azure deployment script of
`components.schema_runner`, with Microsoft's mssql-python driver), where a private server is reached.

The runner records each applied migration (name, checksum of its text with the variables filled in,
time) in a table of the database, skips what is recorded with the same checksum, and runs a changed
migration again (they are idempotent by construction). An error names the migration file, the batch
and its first line.

Every batch runs in autocommit mode: SQL Server refuses `ALTER DATABASE` inside an explicit or
implicit transaction (error 226), and pyodbc's and mssql-python's default `autocommit=False` makes the
driver open an implicit transaction at the first SELECT (ALTER DATABASE reference; mkleehammer/pyodbc#910).
Only the bookkeeping of one migration (delete and insert its tracking row) is one transaction.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import struct
import sys
import uuid
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from functions.migrations import MIGRATIONS_DIR, Migration, load_migrations

TRACKING_TABLE = "dbo.SchemaMigrations"
SQL_COPT_SS_ACCESS_TOKEN = 1256  # msodbcsql and mssql-python: an Entra access token instead of a password
SQL_RESOURCE = "https://database.windows.net/"
PLAN_FILE = "plan.json"
"""In the bundle: the server, database, variables and the migrations' checksums this update planned."""


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


def applied_checksum(migration: Migration, variables: Mapping[str, str] | None) -> str:
    """What the tracking table records: the file's text and the values of the variables it uses, so
    a new value (say, a recreated identity's id) runs the migration again."""
    used = {name: (variables or {}).get(name, "") for name in sorted(migration.variables())}
    return hashlib.sha256(f"{migration.text}\0{json.dumps(used, sort_keys=True)}".encode()).hexdigest()


def apply_migrations(
    connection: Any,
    migrations: Sequence[Migration],
    variables: Mapping[str, str] | None = None,
    dialect: Dialect = TSQL,
) -> MigrationResult:
    """Run what is new or changed, in order, recording each; `connection` is a DB-API connection
    (pyodbc or mssql-python) with a settable `autocommit`.

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
        for number, batch in enumerate(migration.batches(dict(variables or {})), start=1):
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


def verify_planned(migrations: Sequence[Migration], planned: Sequence[Mapping[str, str]]) -> None:
    """Refuse to run migrations other than those the update planned (and `pulumi preview` showed)."""
    expected = {m["name"]: m["checksum"] for m in planned}
    if {m.name: m.checksum for m in migrations} != expected:
        raise MigrationError(
            "the migrations on disk differ from the ones this update planned; run `pulumi up` again"
        )


# The bundle: what the deployment script receives, and how it runs there.

BUNDLED_MODULES = ("functions/migrations.py", "data_plane/migration_runner.py")
"""The runner's own source files, as they lie in the repository (no Pulumi, no third-party imports)."""


def bundle(plan: Mapping[str, Any], root: Path, migrations_dir: Path = MIGRATIONS_DIR) -> str:
    """A base64 zip of the runner, the migration files and the plan: everything the script needs,
    small enough to travel inside the script's content. Deterministic (fixed timestamps), so the
    same inputs give the same text and Pulumi sees no change."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:

        def add(name: str, data: bytes) -> None:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)

        for module in BUNDLED_MODULES:
            add(module, (root / module).read_bytes())
        for path in sorted(migrations_dir.glob("*.sql")):
            add(f"functions/sql/migrations/{path.name}", path.read_bytes())
        add(PLAN_FILE, json.dumps(plan, sort_keys=True).encode())
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _mssql_python_connection(server: str, database: str, token: str) -> Any:
    """A connection with Microsoft's mssql-python driver (it bundles its own driver: nothing to
    install in the operating system), signed in with an Entra access token."""
    import mssql_python  # type: ignore[import-not-found]

    return mssql_python.connect(
        f"Server=tcp:{server},1433;Database={database};Encrypt=yes;TrustServerCertificate=no;",
        attrs_before={SQL_COPT_SS_ACCESS_TOKEN: access_token_struct(token)},
        autocommit=True,
    )


def _cli_token() -> str:
    """A token for Azure SQL from the Azure CLI, which a deployment script runs signed in as its
    user-assigned identity."""
    import subprocess

    return subprocess.run(
        [
            "az",
            "account",
            "get-access-token",
            "--resource",
            SQL_RESOURCE,
            "--query",
            "accessToken",
            "-o",
            "tsv",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def run_plan(
    directory: Path,
    connect: Callable[[str, str, str], Any] = _mssql_python_connection,
    token: Callable[[], str] = _cli_token,
) -> dict[str, Any]:
    """Apply the bundled migrations as the bundled plan says; the script's outputs."""
    plan = json.loads((directory / PLAN_FILE).read_text())
    migrations = load_migrations(directory / "functions" / "sql" / "migrations")
    verify_planned(migrations, plan["migrations"])
    connection = connect(plan["server"], plan["database"], token())
    try:
        result = apply_migrations(connection, migrations, plan["variables"])
    finally:
        connection.close()
    return {"applied": result.applied, "skipped": result.skipped}


REFUSED_ADDRESS = re.compile(r"Client with IP address '([0-9.]+)' is not allowed")
"""Azure SQL's error 40615: the server's firewall has no rule for the address it names."""
REFUSED_BY_FIREWALL = 3
"""The exit status that tells the script to open a firewall rule for the address it was given."""


def refused_address(error: BaseException) -> str | None:
    """The address a firewall refusal (40615) names, as the server saw the client; None for any other
    error."""
    match = REFUSED_ADDRESS.search(str(error))
    return match.group(1) if match else None


def main(argv: Sequence[str] | None = None) -> int:
    """The deployment script's entry point: run the plan beside this package, and write the outputs
    where deployment scripts read them (`AZ_SCRIPTS_OUTPUT_PATH`, a JSON object). With
    `--refused-address-file PATH`, a firewall refusal writes the refused address there and exits
    with REFUSED_BY_FIREWALL, so the script can open a rule for exactly that address."""
    args = list(sys.argv[1:] if argv is None else argv)
    flag = "--refused-address-file"
    refused_file = args[args.index(flag) + 1] if flag in args else None
    try:
        outputs = run_plan(Path(__file__).resolve().parent.parent)
    except Exception as error:
        address = refused_address(error)
        if refused_file is None or address is None:
            raise
        Path(refused_file).write_text(address)
        print(f"the server refused {address} (40615)", file=sys.stderr)
        return REFUSED_BY_FIREWALL
    print(json.dumps(outputs))
    output_path = os.environ.get("AZ_SCRIPTS_OUTPUT_PATH")
    if output_path:
        Path(output_path).write_text(json.dumps(outputs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
