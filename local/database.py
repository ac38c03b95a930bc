"""The embedded database of the local mode: SQLite speaking the functions' T-SQL.

The schema comes from the same T-SQL migrations Azure SQL runs (their CREATE TABLE statements,
translated with sqlglot); the bindings' queries are translated the same way, so no query is
written twice. Azure SQL's change tracking is stood in for by SQLite triggers that append every
insert, update and delete to `_changes`, read in order by the local SQL trigger.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

from functions.migrations import load_migrations

INSERT, UPDATE, DELETE = 0, 1, 2


class BindingError(RuntimeError):
    """A binding could not run (as the Functions host would report it)."""


def _strip_schema(expression: exp.Expr) -> exp.Expr:
    """`dbo.Messages` -> `Messages`: SQLite has no schemas (a prefix would name another database)."""
    for table in expression.find_all(exp.Table):
        table.set("db", None)
    return expression


@lru_cache(maxsize=64)
def translate(tsql: str) -> str:
    """T-SQL as the bindings write it, in SQLite's dialect."""
    return _strip_schema(sqlglot.parse_one(tsql, read="tsql")).sql(dialect="sqlite")


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
        self.primary_keys: dict[str, str] = {}
        self.columns: dict[str, list[str]] = {}
        with self._locked() as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(
                "CREATE TABLE IF NOT EXISTS _changes (sequence INTEGER PRIMARY KEY AUTOINCREMENT, "
                "table_name TEXT NOT NULL, operation INTEGER NOT NULL, row_key TEXT NOT NULL)"
            )
            # Like the SQL trigger's az_func leases: where each function got to, kept across restarts.
            connection.execute(
                "CREATE TABLE IF NOT EXISTS _leases "
                "(function_name TEXT PRIMARY KEY, sequence INTEGER NOT NULL)"
            )
            for migration in load_migrations():
                for definition in migration.table_definitions():
                    self._create_table(connection, definition)

    def _create_table(self, connection: sqlite3.Connection, tsql: str) -> None:
        statement = _strip_schema(sqlglot.parse_one(tsql, read="tsql"))
        assert isinstance(statement, exp.Create)
        name = statement.this.this.name
        connection.execute(
            statement.sql(dialect="sqlite").replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1)
        )
        info = connection.execute(f"PRAGMA table_info({name})").fetchall()
        self.columns[name] = [row["name"] for row in info]
        (key,) = [row["name"] for row in info if row["pk"]]
        self.primary_keys[name] = key
        for event, operation, source in (
            ("INSERT", INSERT, "NEW"),
            ("UPDATE", UPDATE, "NEW"),
            ("DELETE", DELETE, "OLD"),
        ):
            connection.execute(
                f"CREATE TRIGGER IF NOT EXISTS _track_{name}_{event.lower()} AFTER {event} ON {name} "
                f"BEGIN INSERT INTO _changes (table_name, operation, row_key) "
                f"VALUES ('{name}', {operation}, {source}.{key}); END"
            )

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
        """What the SQL output binding does: insert, or update the row with the same primary key.

        An identity key that is absent means insert; unknown columns fail like Azure's binding.
        """
        table = table_name(qualified_table)
        if table not in self.columns:
            raise BindingError(f"table {qualified_table} does not exist")
        key = self.primary_keys[table]
        with self._locked() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                for row in rows:
                    unknown = sorted(set(row) - set(self.columns[table]))
                    if unknown:
                        raise BindingError(f"{qualified_table} has no column(s) {', '.join(unknown)}")
                    names = list(row)
                    placeholders = ", ".join(f":{name}" for name in names)
                    statement = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({placeholders})"
                    updates = [name for name in names if name != key]
                    if key in row and updates:
                        assignments = ", ".join(f"{name} = excluded.{name}" for name in updates)
                        statement += f" ON CONFLICT({key}) DO UPDATE SET {assignments}"
                    connection.execute(statement, row)
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        self._notify()

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
        key = self.primary_keys[table]
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
