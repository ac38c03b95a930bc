"""A stand-in for an Azure SQL Database session over pyodbc that keeps SQL Server's transaction
rules, for the deploy-time schema runner (SQLite accepts what SQL Server refuses).

Rules modelled, each from Microsoft's documentation:
- Autocommit off is implicit-transaction mode: "When SQL_AUTOCOMMIT_OFF is set by an ODBC
  application, the SQL Server ODBC driver issues a SET IMPLICIT_TRANSACTION ON statement" (SQL Server
  docs, "API Implicit Transactions"); pyodbc's default is autocommit=False (pyodbc wiki, Connection).
- With @@TRANCOUNT = 0 in that mode, ALTER TABLE, CREATE, DELETE, DENY, DROP, FETCH, GRANT, INSERT,
  MERGE, OPEN, REVOKE, SELECT (from a table), TRUNCATE and UPDATE begin a transaction; "SELECT
  statements that do not select from a table do not start implicit transactions" (SET
  IMPLICIT_TRANSACTIONS). An IF whose condition reads a table reads it, so it begins one too.
- "The ALTER DATABASE statement must run in auto-commit mode ... and is not allowed in an explicit or
  implicit transaction": error 226, "ALTER DATABASE statement not allowed within multi-statement
  transaction." (ALTER DATABASE reference; message as in mkleehammer/pyodbc#910).
- "Switching from manual-commit mode to auto-commit mode automatically commits any open transaction"
  (ODBC, Setting the Commit Mode).
- CREATE USER ... FROM EXTERNAL PROVIDER run by a service principal resolves the name through
  Microsoft Graph with the server's identity; without one that can read the directory it fails with
  error 33134 (Azure SQL: Microsoft Entra service principals). CREATE USER ... WITH SID = <binary(16)>,
  TYPE = E needs no lookup (Azure SQL: managed identities, "Permissions for SMI"); SID must be 16 bytes.
- "CREATE PROCEDURE must be the first statement in the batch" (and so must CREATE TRIGGER, FUNCTION
  and VIEW, with or without OR ALTER): error 111, "'CREATE/ALTER PROCEDURE' must be the first
  statement in a query batch." (CREATE PROCEDURE reference, Limitations; Batches of SQL statements).
- The SQL output binding writes with one MERGE (WHEN MATCHED THEN UPDATE, WHEN NOT MATCHED THEN
  INSERT) per batch of rows (azure-functions-sql-extension, `SqlAsyncCollector.GetMergeQuery`; a
  plain INSERT only when an identity primary key is left out), and SQL Server "fires any
  corresponding AFTER triggers" for every action the MERGE specifies (MERGE reference, "Trigger
  implementation"): every write runs the table's INSERT and UPDATE triggers. What `inserted` holds
  for the action no row took is not documented; the double takes the pessimistic reading, every row
  of the statement (`deleted`: the old version of each matched row). A THROW in a trigger fails the
  statement with its number (THROW reference). Triggers are those the executed batches created
  (local/triggers.py reads and runs them).
- A primary key admits one row per key: "Violation of PRIMARY KEY constraint '%.*ls'. Cannot insert
  duplicate key in object '%.*ls'. The duplicate key value is %ls." is error 2627 (Database engine
  errors 2000-2999), here for the tracking table's key, the migration name.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

import pyodbc

from local.triggers import TriggerError, fire, load_triggers, merge_actions

_STARTS_TRANSACTION = re.compile(
    r"^\s*(ALTER\s+TABLE|CREATE|DELETE|DENY|DROP|FETCH|GRANT|INSERT|MERGE|OPEN|REVOKE|TRUNCATE|UPDATE)\b",
    re.IGNORECASE,
)
_SELECT_FROM = re.compile(r"\bSELECT\b[^;]*?\bFROM\b", re.IGNORECASE | re.DOTALL)
_ALTER_DATABASE = re.compile(r"\bALTER\s+DATABASE\b", re.IGNORECASE)
_FROM_EXTERNAL_PROVIDER = re.compile(
    r"CREATE\s+USER\s+\[([^\]]+)\]\s+FROM\s+EXTERNAL\s+PROVIDER", re.IGNORECASE
)
_WITH_SID = re.compile(
    r"CREATE\s+USER\s+\[([^\]]+)\]\s+WITH\s+SID\s*=\s*(0x[0-9A-Fa-f]*)\s*,\s*TYPE\s*=\s*([EX])\b",
    re.IGNORECASE,
)
_TRACKING_TABLE = "dbo.SchemaMigrations"
_MODULE = re.compile(r"\bCREATE\s+(?:OR\s+ALTER\s+)?(PROCEDURE|PROC|TRIGGER|FUNCTION|VIEW)\b", re.IGNORECASE)


def _error(sqlstate: str, message: str, number: int) -> pyodbc.ProgrammingError:
    return pyodbc.ProgrammingError(
        sqlstate,
        f"[{sqlstate}] [Microsoft][ODBC Driver 18 for SQL Server][SQL Server]{message} ({number}) "
        "(SQLExecDirectW)",
    )


def _strip_comments(batch: str) -> str:
    return "\n".join(line for line in batch.splitlines() if not line.strip().startswith("--"))


class SqlServerSession:
    """A pyodbc-shaped connection (and its cursor) with SQL Server's transaction rules.

    `caller_is_application` and `server_reads_graph` describe who signed in and whether the server
    has an identity allowed to read Microsoft Graph.
    """

    def __init__(
        self, autocommit: bool = False, caller_is_application: bool = True, server_reads_graph: bool = False
    ) -> None:
        self._autocommit = autocommit
        self.caller_is_application = caller_is_application
        self.server_reads_graph = server_reads_graph
        self.trancount = 0
        self.executed: list[str] = []
        self.users: dict[str, bytes] = {}
        self.tracking: dict[str, str] = {}
        self._pending_tracking: dict[str, str | None] = {}
        self._rows: list[tuple[Any, ...]] = []
        self.closed = False
        self.tables: dict[str, dict[Any, dict[str, Any]]] = {}
        """Rows the output binding wrote, per table and key."""

    # the connection

    @property
    def autocommit(self) -> bool:
        return self._autocommit

    @autocommit.setter
    def autocommit(self, value: bool) -> None:
        if value and not self._autocommit and self.trancount:
            self.commit()
        self._autocommit = value

    def cursor(self) -> SqlServerSession:
        return self

    def commit(self) -> None:
        for name, checksum in self._pending_tracking.items():
            if checksum is None:
                self.tracking.pop(name, None)
            else:
                self.tracking[name] = checksum
        self._pending_tracking.clear()
        self.trancount = 0

    def rollback(self) -> None:
        self._pending_tracking.clear()
        self.trancount = 0

    def close(self) -> None:
        self.closed = True

    # the cursor

    def execute(self, sql: str, *params: Any) -> SqlServerSession:
        text = _strip_comments(sql).strip()
        self.executed.append(text)
        self._rows = []
        opens = _STARTS_TRANSACTION.match(text) or _SELECT_FROM.search(text.split("\n", 1)[0])
        if not self._autocommit and self.trancount == 0 and opens:
            self.trancount = 1
        if _ALTER_DATABASE.search(text) and (self.trancount or (not self._autocommit and opens)):
            raise _error(
                "25000", "ALTER DATABASE statement not allowed within multi-statement transaction.", 226
            )
        module = _MODULE.search(text)
        if module and module.start() != 0:
            kind = module.group(1).upper().replace("PROC", "PROCEDURE").replace("PROCEDUREEDURE", "PROCEDURE")
            raise _error("42000", f"'CREATE/ALTER {kind}' must be the first statement in a query batch.", 111)
        self._users(text)
        self._bookkeeping(text, params)
        if self._autocommit:
            self.commit()
        return self

    def _users(self, text: str) -> None:
        match = _FROM_EXTERNAL_PROVIDER.search(text)
        if match and self.caller_is_application and not self.server_reads_graph:
            raise _error(
                "42000",
                f"Principal '{match.group(1)}' could not be resolved. Error message: 'Server identity is "
                'not configured. Please follow the steps in "Assign an Azure AD identity to your server '
                "and add Directory Reader permission to your identity\"'",
                33134,
            )
        if match := _WITH_SID.search(text):
            name, literal = match.group(1), match.group(2)
            sid = bytes.fromhex(literal[2:])
            if len(sid) != 16:
                raise _error("42000", f"Invalid SID {literal}: a Microsoft Entra SID is binary(16).", 15419)
            self.users[name] = sid

    def _bookkeeping(self, text: str, params: tuple[Any, ...]) -> None:
        if text.startswith(f"SELECT name, checksum FROM {_TRACKING_TABLE}"):
            self._rows = sorted(self.tracking.items())
        elif text.startswith(f"DELETE FROM {_TRACKING_TABLE}"):
            self._pending_tracking[str(params[0])] = None
        elif text.startswith(f"INSERT INTO {_TRACKING_TABLE}"):
            name = str(params[0])
            pending = self._pending_tracking.get(name, "absent")
            if pending is not None and (pending != "absent" or name in self.tracking):
                raise pyodbc.IntegrityError(
                    "23000",
                    "[23000] [Microsoft][ODBC Driver 18 for SQL Server][SQL Server]Violation of PRIMARY KEY "
                    "constraint 'PK__SchemaMi' (its generated name). Cannot insert duplicate key in object "
                    f"'{_TRACKING_TABLE}'. The duplicate key value is ({name}). (2627) (SQLExecDirectW)",
                )
            self._pending_tracking[name] = str(params[1])

    def output_binding_write(self, table: str, key: str, rows: list[dict[str, Any]]) -> None:
        """The SQL output binding's one statement on `table` (a MERGE on `key`), with the triggers the
        executed batches created fired once over every row (see the module docstring)."""
        name = table.rsplit(".", 1)[-1].strip("[]")
        stored = self.tables.setdefault(name, {})
        deleted = [stored[row[key]] for row in rows if row.get(key) in stored]
        inserted = [{**stored.get(row.get(key), {}), **row} for row in rows]
        columns = sorted({column for row in inserted for column in row})
        scratch = sqlite3.connect(":memory:")
        try:
            actions = merge_actions(key, rows)
            fire(scratch, load_triggers(self.executed).values(), name, columns, actions, inserted, deleted)
        except TriggerError as error:
            raise _error("42000", str(error).rsplit(" (", 1)[0], error.number) from None
        finally:
            scratch.close()
        stored.update({row[key]: row for row in inserted})

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self._rows)

    def nextset(self) -> bool:
        return False
