"""The embedded database of the local mode: SQLite speaking the functions' T-SQL.

The schema comes from the same T-SQL migrations Azure SQL runs (their CREATE TABLE statements,
translated with sqlglot); the bindings' queries are translated the same way, so no query is
written twice. Azure SQL's change tracking is stood in for by SQLite triggers that append every
insert, update and delete to `_changes`, read in order by the local SQL trigger.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

from functions.contract import author_problem, utc_timestamp, visible
from functions.migrations import load_migrations
from functions.queries import CLAIM_STALE_SECONDS
from local.triggers import TriggerError, fire, load_triggers, merge_actions

INSERT, UPDATE, DELETE = 0, 1, 2


class BindingError(RuntimeError):
    """A binding could not run (as the Functions host would report it)."""


def _strip_schema(expression: exp.Expr) -> exp.Expr:
    """`dbo.Messages` -> `Messages`: SQLite has no schemas (a prefix would name another database)."""
    for table in expression.find_all(exp.Table):
        table.set("db", None)
    return expression


def _uniqueidentifier_as_text(expression: exp.Expr) -> exp.Expr:
    """A conversion to UNIQUEIDENTIFIER compares case-insensitively in SQL Server; keys are stored as
    lowercase text here, so it becomes LOWER(...) (a CAST to UUID would take SQLite's NUMERIC affinity)."""

    def convert(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Cast) and node.to.is_type(exp.DataType.Type.UUID):
            return exp.Lower(this=node.this)
        if (
            isinstance(node, exp.Convert)
            and isinstance(node.this, exp.DataType)
            and node.this.is_type(exp.DataType.Type.UUID)
        ):
            return exp.Lower(this=node.expression)
        return node

    return expression.transform(convert)


_SQLITE_UNITS = {"DAY": "days", "HOUR": "hours", "MINUTE": "minutes", "SECOND": "seconds"}


def _utc_arithmetic(expression: exp.Expr) -> exp.Expr:
    """`DATEADD(unit, n, SYSUTCDATETIME())` as SQLite's `strftime(..., 'now', 'n units')`, in the
    text form timestamps are stored in here (ISO 8601 with milliseconds and `Z`), so that it
    compares with them as SQL Server compares DATETIME2 values. `NEWID()` ordering becomes
    `RANDOM()`."""

    def convert(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Uuid):
            return exp.Anonymous(this="RANDOM", expressions=[])
        if not isinstance(node, exp.DateAdd):
            return node
        now = node.this
        if not (isinstance(now, exp.Anonymous) and str(now.this).upper() == "SYSUTCDATETIME"):
            raise ValueError(f"the local database adds dates to SYSUTCDATETIME() only: {node.sql('tsql')}")
        unit = _SQLITE_UNITS.get(node.text("unit").upper())
        if unit is None:
            raise ValueError(f"the local database has no DATEADD unit {node.text('unit')!r}")
        modifier = exp.DPipe(this=exp.Paren(this=node.expression), expression=exp.Literal.string(f" {unit}"))
        return exp.Anonymous(
            this="strftime",
            expressions=[exp.Literal.string("%Y-%m-%dT%H:%M:%fZ"), exp.Literal.string("now"), modifier],
        )

    return expression.transform(convert)


@lru_cache(maxsize=64)
def translate(tsql: str) -> str:
    """T-SQL as the bindings write it, in SQLite's dialect."""
    statement = _strip_schema(sqlglot.parse_one(tsql, read="tsql"))
    statement = _utc_arithmetic(_uniqueidentifier_as_text(statement))
    return statement.sql(dialect="sqlite")


@dataclass(frozen=True)
class Table:
    """What the local database keeps of a T-SQL table definition to behave like SQL Server."""

    name: str
    columns: list[str]
    primary_key: str
    identity: str | None
    """The IDENTITY column, numbered here on insert (SQLite numbers only INTEGER PRIMARY KEYs)."""
    lengths: dict[str, int]
    """NVARCHAR(n) columns' n: SQL Server refuses a longer value (error 2628) in UTF-16 units."""
    not_null: frozenset[str]
    uuids: frozenset[str] = frozenset()
    """UNIQUEIDENTIFIER columns: SQL Server stores the value, not its spelling, so any case finds it
    and a text that is not a GUID is refused (error 8169). Here they hold lowercase text and compare
    without case."""

    @classmethod
    def from_tsql(cls, tsql: str) -> Table:
        """Read a `CREATE TABLE` (column-level or table-level primary key)."""
        statement = _strip_schema(sqlglot.parse_one(tsql, read="tsql"))
        assert isinstance(statement, exp.Create)
        name = statement.this.this.name
        columns: list[str] = []
        primary_key = identity = None
        lengths: dict[str, int] = {}
        not_null = set()
        uuids = set()
        for element in statement.this.expressions:
            if isinstance(element, exp.ColumnDef):
                column, kind = element.name, element.args["kind"]
                columns.append(column)
                if kind.this == exp.DataType.Type.UUID:
                    uuids.add(column)
                if kind.this in (exp.DataType.Type.NVARCHAR, exp.DataType.Type.VARCHAR) and kind.expressions:
                    lengths[column] = int(kind.expressions[0].this.this)
                for constraint in element.constraints:
                    if isinstance(constraint.kind, exp.PrimaryKeyColumnConstraint):
                        primary_key = column
                    elif isinstance(constraint.kind, exp.GeneratedAsIdentityColumnConstraint):
                        identity = column
                    elif isinstance(
                        constraint.kind, exp.NotNullColumnConstraint
                    ) and not constraint.kind.args.get("allow_null"):
                        not_null.add(column)
            elif isinstance(element, exp.Constraint) and any(
                isinstance(part, exp.PrimaryKeyColumnConstraint) for part in element.expressions
            ):
                (primary_key,) = [column.name for column in element.find_all(exp.Column)]
        if primary_key is None:
            raise ValueError(f"{name}: the SQL trigger needs a primary key")
        return cls(name, columns, primary_key, identity, lengths, frozenset(not_null), frozenset(uuids))

    def sqlite(self) -> str:
        """The table in SQLite: text and numbers, the primary key, and the identity kept unique."""
        definitions = []
        for column in self.columns:
            definition = column
            if column in self.uuids or column in self.lengths:
                # UNIQUEIDENTIFIER compares by value; NVARCHAR under the database's collation
                # (SQL_Latin1_General_CP1_CI_AS, components/sql.py) without case. NOCASE folds ASCII
                # only: the keys and ids these columns hold are ASCII.
                definition += " COLLATE NOCASE"
            if column == self.primary_key:
                definition += " NOT NULL PRIMARY KEY"
            elif column == self.identity:
                definition += " INTEGER NOT NULL UNIQUE"
            elif column in self.not_null:
                definition += " NOT NULL"
            definitions.append(definition)
        return f"CREATE TABLE IF NOT EXISTS {self.name} ({', '.join(definitions)})"

    def normalized(self, row: dict[str, Any]) -> dict[str, Any]:
        """`row` as SQL Server would store it: UNIQUEIDENTIFIER values in one spelling (lowercase,
        as the bindings read them back); a value that is not a GUID is refused (error 8169)."""
        for column in self.uuids & set(row):
            value = row[column]
            if value is None:
                continue
            text = value[1:-1] if isinstance(value, str) and value[:1] + value[-1:] == "{}" else value
            if not isinstance(text, str) or not _CANONICAL_KEY.fullmatch(text):
                raise BindingError(
                    "Conversion failed when converting from a character string to uniqueidentifier. (8169)"
                )
            row[column] = text.lower()
        return row

    def refused(self, row: dict[str, Any]) -> str | None:
        """What SQL Server would say of storing `row`, if it would refuse it."""
        for column, limit in self.lengths.items():
            value = row.get(column)
            if isinstance(value, str) and len(value.encode("utf-16-le", "surrogatepass")) // 2 > limit:
                return (
                    f"String or binary data would be truncated in table '{self.name}', column '{column}' "
                    f"(at most {limit} UTF-16 units). (2628)"
                )
        for (table, column), check in COLUMN_CHECKS.items():
            value = row.get(column)
            if table == self.name and isinstance(value, str) and (problem := check(value)) is not None:
                return (
                    f"The INSERT statement conflicted with the CHECK constraint on table '{self.name}', "
                    f"column '{column}': {problem}. (547)"
                )
        return None


def _text_problem(text: str) -> str | None:
    return None if visible(text) else "text has no visible character"


COLUMN_CHECKS: dict[tuple[str, str], Callable[[str], str | None]] = {
    ("Messages", "author"): author_problem,
    ("Messages", "text"): _text_problem,
}
"""The contract's rules for what a stored message may hold (functions/contract.py), held here as a
CHECK constraint would hold them: a write that breaks one fails like SQL Server's error 547, so a
path that skips the function's own check cannot store a disguised author or an invisible text."""


_CANONICAL_KEY = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


_INDEX = re.compile(
    r"CREATE\s+(?:UNIQUE\s+)?(?:NONCLUSTERED\s+|CLUSTERED\s+)?INDEX\s+(?P<name>\w+)\s+ON\s+(?:dbo\.)?"
    r"(?P<table>\w+)\s*\((?P<columns>[^)]*)\)(?:\s+WHERE\s+(?P<where>[^;\n]+))?",
    re.IGNORECASE,
)
_RETENTION = re.compile(r"CHANGE_RETENTION\s*=\s*(\d+)\s*(DAYS|HOURS|MINUTES)", re.IGNORECASE)
# The form timestamps are stored in (utc_timestamp's), from SQLite's clock.
_SQLITE_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"


def _now() -> str:
    return utc_timestamp(datetime.now(UTC))


def change_retention(migrations: list[Any]) -> timedelta:
    """The change tracking retention the migrations set (`CHANGE_RETENTION = 2 DAYS`)."""
    for migration in migrations:
        if match := _RETENTION.search(migration.text):
            return timedelta(**{match.group(2).lower(): int(match.group(1))})
    raise ValueError("no migration sets CHANGE_RETENTION")


def table_name(qualified: str) -> str:
    """`dbo.Messages` -> `Messages`."""
    return qualified.rsplit(".", 1)[-1].strip("[]")


@dataclass(frozen=True)
class Change:
    """One row change, in commit order."""

    sequence: int
    table: str
    operation: int
    key: str


class Database:
    """A SQLite database with the broadcast schema and a change feed. Safe to share between threads."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self._connection = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._connection.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._listeners: list[Callable[[], None]] = []
        self.tables: dict[str, Table] = {}
        with self._locked() as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(
                "CREATE TABLE IF NOT EXISTS _changes (sequence INTEGER PRIMARY KEY AUTOINCREMENT, "
                "table_name TEXT NOT NULL, operation INTEGER NOT NULL, row_key TEXT NOT NULL, "
                "recorded_at TEXT NOT NULL)"
            )
            # Like the SQL trigger's az_func leases: where each function got to, kept across restarts.
            connection.execute(
                "CREATE TABLE IF NOT EXISTS _leases "
                "(function_name TEXT PRIMARY KEY, sequence INTEGER NOT NULL)"
            )
            # IDENTITY values are never reused, even after a delete: the last one given, per table.
            connection.execute(
                "CREATE TABLE IF NOT EXISTS _identities (table_name TEXT PRIMARY KEY, last INTEGER NOT NULL)"
            )
            if "recorded_at" not in {row[1] for row in connection.execute("PRAGMA table_info(_changes)")}:
                # When each change was recorded: change tracking's retention counts from it. (A file
                # from before this column gets it; its older rows count from now.)
                connection.execute(
                    f"ALTER TABLE _changes ADD COLUMN recorded_at TEXT NOT NULL DEFAULT '{_now()}'"
                )
            connection.execute("CREATE INDEX IF NOT EXISTS _changes_recorded_at ON _changes (recorded_at)")
            migrations = load_migrations()
            for migration in migrations:
                for definition in migration.table_definitions():
                    self._create_table(connection, definition)
            for migration in migrations:
                for index in _INDEX.finditer(migration.text):
                    self._create_index(connection, index)
        self.change_retention = change_retention(migrations)
        """How long change tracking keeps a change (CHANGE_RETENTION of migration 0001)."""
        # The migrations' AFTER triggers (TR_Messages_insert_only), run as SQL Server runs them
        # under the output binding's MERGE (local/triggers.py).
        self._triggers = load_triggers(
            batch
            for migration in migrations
            for batch in migration.batches({name: name for name in migration.variables()})
        )

    def _create_table(self, connection: sqlite3.Connection, tsql: str) -> None:
        table = Table.from_tsql(tsql)
        name, key = table.name, table.primary_key
        connection.execute(table.sqlite())
        self.tables[name] = table
        for event, operation, source in (
            ("INSERT", INSERT, "NEW"),
            ("UPDATE", UPDATE, "NEW"),
            ("DELETE", DELETE, "OLD"),
        ):
            # Made anew each time: a file from before `recorded_at` has triggers that leave it out.
            connection.execute(f"DROP TRIGGER IF EXISTS _track_{name}_{event.lower()}")
            connection.execute(
                f"CREATE TRIGGER _track_{name}_{event.lower()} AFTER {event} ON {name} "
                f"BEGIN INSERT INTO _changes (table_name, operation, row_key, recorded_at) "
                f"VALUES ('{name}', {operation}, {source}.{key}, {_SQLITE_NOW}); END"
            )

    @staticmethod
    def _create_index(connection: sqlite3.Connection, index: re.Match[str]) -> None:
        """A migration's index, filtered ones included (SQLite's partial indexes): what the presence
        count reads (IX_Connections_open) is then read without scanning every connection ever made."""
        name, table, columns, where = index.group("name", "table", "columns", "where")
        condition = f" WHERE {where.strip()}" if where else ""
        connection.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns}){condition}")

    def forget_old_changes(self) -> int:
        """Change tracking's auto-cleanup: delete the changes older than the retention (SQL Server
        does it in the background with AUTO_CLEANUP = ON); returns how many went."""
        cutoff = utc_timestamp(datetime.now(UTC) - self.change_retention)
        with self._locked() as connection:
            return connection.execute("DELETE FROM _changes WHERE recorded_at < ?", (cutoff,)).rowcount

    @contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._connection

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every committed write (the SQL trigger waits on it, not on a timer)."""
        self._listeners.append(listener)

    def _notify(self) -> None:
        for listener in self._listeners:
            listener()

    def query(self, tsql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a binding's T-SQL query; rows as dicts."""
        try:
            sql = translate(tsql)
        except sqlglot.errors.ParseError as error:
            raise BindingError(f"cannot translate the binding's query: {error}") from None
        with self._locked() as connection:
            try:
                rows = connection.execute(sql, parameters or {}).fetchall()
            except sqlite3.Error as error:
                raise BindingError(f"query failed: {error}") from None
        return [dict(row) for row in rows]

    def upsert(self, qualified_table: str, rows: list[dict[str, Any]]) -> None:
        """What the SQL output binding does (a MERGE on the primary key): update the row with the same
        key, else insert it, numbering an IDENTITY column that the row leaves out. Unknown columns,
        and values longer than their NVARCHAR(n), fail like Azure's binding."""
        name = table_name(qualified_table)
        if name not in self.tables:
            raise BindingError(f"table {qualified_table} does not exist")
        table = self.tables[name]
        with self._locked() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                written = [self._merge(connection, table, dict(row)) for row in rows]
                fire(
                    connection,
                    self._triggers.values(),
                    table.name,
                    table.columns,
                    merge_actions(table.primary_key, rows),
                    inserted=[new for _, new in written],
                    deleted=[old for old, _ in written if old is not None],
                )
                connection.execute("COMMIT")
            except TriggerError as error:
                connection.execute("ROLLBACK")
                raise BindingError(str(error)) from None
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        self._notify()

    def _merge(
        self, connection: sqlite3.Connection, table: Table, row: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """One row of the binding's MERGE: the row as it was (None when inserted) and as it is now."""
        unknown = sorted(set(row) - set(table.columns))
        if unknown:
            raise BindingError(f"{table.name} has no column(s) {', '.join(unknown)}")
        row = table.normalized(row)
        if (refusal := table.refused(row)) is not None:
            raise BindingError(refusal)
        key = table.primary_key
        found = (
            connection.execute(f"SELECT * FROM {table.name} WHERE {key} = ?", (row[key],)).fetchone()
            if key in row
            else None
        )
        if found is not None:
            updates = [column for column in row if column != key]
            if updates:
                assignments = ", ".join(f"{column} = :{column}" for column in updates)
                connection.execute(f"UPDATE {table.name} SET {assignments} WHERE {key} = :{key}", row)
            return dict(found), {**dict(found), **row}
        if table.identity and table.identity not in row:
            row[table.identity] = self._next_identity(connection, table.name)
        names = list(row)
        placeholders = ", ".join(f":{column}" for column in names)
        connection.execute(f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({placeholders})", row)
        return None, row

    def call(self, procedure: str, parameters: dict[str, Any]) -> list[dict[str, Any]]:
        """Run a stored procedure, as an input binding with CommandType StoredProcedure does. The
        procedures are those of the migrations, each written here once more for SQLite."""
        procedures = {"ClaimMessageKey": self._claim_message_key}
        name = table_name(procedure)
        if name not in procedures:
            raise BindingError(f"Could not find stored procedure '{procedure}'. (2812)")
        return procedures[name](**parameters)

    def _claim_message_key(self, Key: str | None) -> list[dict[str, Any]]:  # noqa: N803 (T-SQL's @Key)
        """dbo.ClaimMessageKey of migration 0007, in one transaction: claim a key whose message is not
        stored (the primary key admits one INSERT; SQL Server fails the others with error 2627, which
        the procedure catches), or take over a claim older than CLAIM_STALE_SECONDS. One row: `won`
        and the stored message's columns (None when there is none)."""
        key = Key.lower() if Key is not None and _CANONICAL_KEY.fullmatch(Key) else None
        now = datetime.now(UTC)
        won = 0
        with self._locked() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                stored = connection.execute(
                    "SELECT id, messageKey, text, author, createdAt FROM Messages WHERE messageKey = ?",
                    (key,),
                ).fetchone()
                if key is not None and stored is None:
                    try:
                        connection.execute(
                            "INSERT INTO MessageKeys (messageKey, claimedAt) VALUES (?, ?)",
                            (key, utc_timestamp(now)),
                        )
                        won = 1
                    except sqlite3.IntegrityError:  # SQL Server: 2627, a duplicate primary key
                        stale = utc_timestamp(now - timedelta(seconds=CLAIM_STALE_SECONDS))
                        won = connection.execute(
                            "UPDATE MessageKeys SET claimedAt = ? WHERE messageKey = ? AND claimedAt < ?",
                            (utc_timestamp(now), key, stale),
                        ).rowcount
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        columns = ("id", "messageKey", "text", "author", "createdAt")
        return [{"won": won, **(dict(stored) if stored is not None else dict.fromkeys(columns))}]

    @staticmethod
    def _next_identity(connection: sqlite3.Connection, table: str) -> int:
        connection.execute(
            "INSERT INTO _identities (table_name, last) VALUES (?, 1) "
            "ON CONFLICT(table_name) DO UPDATE SET last = last + 1",
            (table,),
        )
        return int(
            connection.execute("SELECT last FROM _identities WHERE table_name = ?", (table,)).fetchone()[0]
        )

    def changes_after(self, table: str, sequence: int, limit: int) -> list[Change]:
        """The next changes to `table` after `sequence`, oldest first."""
        with self._locked() as connection:
            rows = connection.execute(
                "SELECT sequence, table_name, operation, row_key FROM _changes "
                "WHERE table_name = ? AND sequence > ? ORDER BY sequence LIMIT ?",
                (table, sequence, limit),
            ).fetchall()
        return [
            Change(row["sequence"], row["table_name"], row["operation"], str(row["row_key"])) for row in rows
        ]

    def lease(self, function_name: str) -> int:
        """Where a SQL-triggered function got to; a new function starts at the newest change (as
        Azure's trigger starts from the current change tracking version)."""
        with self._locked() as connection:
            row = connection.execute(
                "SELECT sequence FROM _leases WHERE function_name = ?", (function_name,)
            ).fetchone()
        if row is not None:
            return int(row[0])
        start = self.latest_sequence()
        self.set_lease(function_name, start)
        return start

    def set_lease(self, function_name: str, sequence: int) -> None:
        """Record that `function_name` processed every change up to `sequence`."""
        with self._locked() as connection:
            connection.execute(
                "INSERT INTO _leases (function_name, sequence) VALUES (?, ?) "
                "ON CONFLICT(function_name) DO UPDATE SET sequence = excluded.sequence",
                (function_name, sequence),
            )

    def latest_sequence(self) -> int:
        """The newest change's sequence (0 when none)."""
        with self._locked() as connection:
            return int(connection.execute("SELECT COALESCE(MAX(sequence), 0) FROM _changes").fetchone()[0])

    def rows_by_key(self, table: str, keys: list[str]) -> dict[str, dict[str, Any]]:
        """Current rows of `table` by primary key (text form)."""
        if not keys:
            return {}
        key = self.tables[table].primary_key
        marks = ", ".join("?" for _ in keys)
        with self._locked() as connection:
            rows = connection.execute(
                f"SELECT * FROM {table} WHERE CAST({key} AS TEXT) IN ({marks})", keys
            ).fetchall()
        return {str(row[key]): dict(row) for row in rows}

    def count(self, table: str) -> int:
        """Rows in a table (for tests and logs)."""
        with self._locked() as connection:
            return int(connection.execute(f"SELECT COUNT(*) FROM {table_name(table)}").fetchone()[0])

    def close(self) -> None:
        """Close the connection."""
        with self._locked() as connection:
            connection.close()
