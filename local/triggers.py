"""The migrations' AFTER triggers, run the way SQL Server runs them under the SQL output binding.

The binding writes a table with one `MERGE ... WHEN MATCHED THEN UPDATE ... WHEN NOT MATCHED THEN
INSERT` per batch of rows (azure-functions-sql-extension, `SqlAsyncCollector.GetMergeQuery`), and
SQL Server "fires any corresponding AFTER triggers" for every action the MERGE specifies, whether or
not a row took that action (MERGE reference, "Trigger implementation"). Which rows `inserted` then
holds is not documented for the action no row took, so this module takes the pessimistic reading:
on every write each INSERT and UPDATE trigger of the table runs once, with `inserted` holding every
row of the statement and `deleted` the old version of each row that was matched (updated).

A trigger body is read as T-SQL and kept only if this module can run it faithfully: `SET NOCOUNT ON`
and `IF EXISTS (<SELECT>) THROW <number>, N'<message>', <state>;` statements, whose SELECTs run in
SQLite (translated with sqlglot) over the two pseudo tables. Anything else is an error naming the
trigger, so a new kind of trigger cannot be ignored silently.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp

_COMMENT = re.compile(r"--[^\n]*")
_CREATE = re.compile(
    r"^\s*CREATE\s+(?:OR\s+ALTER\s+)?TRIGGER\s+(?:\[?\w+\]?\.)?\[?(\w+)\]?\s+ON\s+(?:\[?\w+\]?\.)?\[?(\w+)\]?"
    r"\s+(?:AFTER|FOR)\s+([A-Z,\s]+?)\s+AS\s+BEGIN\b(.*)\bEND\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_DROP = re.compile(r"^\s*DROP\s+TRIGGER\s+(?:IF\s+EXISTS\s+)?(?:\[?\w+\]?\.)?\[?(\w+)\]?", re.IGNORECASE)
_CHECK = re.compile(
    r"IF\s+EXISTS\s*\((?P<query>.*?)\)\s*THROW\s+(?P<number>\d+)\s*,\s*N'(?P<message>(?:[^']|'')*)'\s*,\s*\d+\s*;",
    re.IGNORECASE | re.DOTALL,
)
_NOCOUNT = re.compile(r"SET\s+NOCOUNT\s+ON\s*;", re.IGNORECASE)
PSEUDO_TABLES = ("inserted", "deleted")


class TriggerError(RuntimeError):
    """A trigger's THROW: SQL Server rolls the statement back and reports `message (number)`."""

    def __init__(self, number: int, message: str) -> None:
        super().__init__(f"{message} ({number})")
        self.number = number


@dataclass(frozen=True)
class Check:
    """`IF EXISTS (<query>) THROW <number>, N'<message>'`, the query in SQLite's dialect."""

    query: str
    number: int
    message: str


@dataclass(frozen=True)
class Trigger:
    """One AFTER trigger: its table, the actions that fire it, and what it checks."""

    name: str
    table: str
    events: frozenset[str]
    checks: tuple[Check, ...]


def _sqlite_query(tsql: str) -> str:
    statement = sqlglot.parse_one(tsql, read="tsql")
    for table in statement.find_all(exp.Table):
        table.set("db", None)  # dbo.X -> X: SQLite has no schemas
    return statement.sql(dialect="sqlite")


def _parse(batch: str) -> Trigger | None:
    match = _CREATE.match(batch)
    if match is None:
        return None
    name, table, events, body = match.groups()
    checks = tuple(
        Check(_sqlite_query(m["query"]), int(m["number"]), m["message"].replace("''", "'"))
        for m in _CHECK.finditer(body)
    )
    rest = _NOCOUNT.sub("", _CHECK.sub("", body)).strip(" \n\t;")
    if rest:
        raise ValueError(
            f"trigger {name}: the emulation runs only SET NOCOUNT ON and IF EXISTS (...) THROW ...; "
            f"it cannot run {rest[:80]!r}"
        )
    return Trigger(name, table, frozenset(e.strip().upper() for e in events.split(",")), checks)


def load_triggers(batches: Iterable[str]) -> dict[str, Trigger]:
    """The triggers the batches leave behind, in order: a later CREATE OR ALTER replaces an earlier
    definition, a DROP TRIGGER removes it."""
    triggers: dict[str, Trigger] = {}
    for batch in batches:
        text = _COMMENT.sub("", batch)
        if dropped := _DROP.match(text):
            triggers.pop(dropped.group(1), None)
        elif (trigger := _parse(text)) is not None:
            triggers[trigger.name] = trigger
    return triggers


def merge_actions(primary_key: str, rows: Sequence[Mapping[str, Any]]) -> frozenset[str]:
    """The actions the binding's statement specifies: MERGE (INSERT and UPDATE) when every row carries
    the primary key, else the plain INSERT the extension uses for an identity key left out."""
    if all(primary_key in row for row in rows):
        return frozenset({"INSERT", "UPDATE"})
    return frozenset({"INSERT"})


def fire(
    connection: sqlite3.Connection,
    triggers: Iterable[Trigger],
    table: str,
    columns: Sequence[str],
    actions: frozenset[str],
    inserted: Sequence[Mapping[str, Any]],
    deleted: Sequence[Mapping[str, Any]],
) -> None:
    """Run every trigger of `table` that one of `actions` fires, once, over the statement's pseudo
    tables (created in SQLite's temp schema for the call); TriggerError at the first THROW."""
    chosen = [t for t in triggers if t.table.lower() == table.lower() and t.events & actions]
    if not chosen:
        return
    names = ", ".join(f'"{c}"' for c in columns)
    try:
        for pseudo, rows in zip(PSEUDO_TABLES, (inserted, deleted), strict=True):
            connection.execute(f"CREATE TEMP TABLE {pseudo} ({names})")
            placeholders = ", ".join("?" for _ in columns)
            connection.executemany(
                f"INSERT INTO temp.{pseudo} VALUES ({placeholders})",
                [tuple(row.get(c) for c in columns) for row in rows],
            )
        for trigger in chosen:
            for check in trigger.checks:
                if connection.execute(f"SELECT EXISTS ({check.query})").fetchone()[0]:
                    raise TriggerError(check.number, check.message)
    finally:
        for pseudo in PSEUDO_TABLES:
            connection.execute(f"DROP TABLE IF EXISTS temp.{pseudo}")
