"""The database schema as ordered T-SQL migrations, and how to read them.

Files live in `sql/migrations/` as `NNNN_name.sql`; each is split into batches on `GO` lines (as
sqlcmd does) and `$(Variable)` placeholders are substituted by the runner. Every batch is
idempotent: guarded by an existence check, or a GRANT (granting twice is a no-op).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

MIGRATIONS_DIR = Path(__file__).resolve().parent / "sql" / "migrations"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_GO = re.compile(r"^\s*GO\s*$", re.IGNORECASE | re.MULTILINE)
_VARIABLE = re.compile(r"\$\((\w+)\)")
_CREATE_TABLE = re.compile(r"^\s*CREATE TABLE \w+\.\w+ \(.*", re.DOTALL | re.MULTILINE)


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    name: str
    text: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the file: a changed migration runs again."""
        return hashlib.sha256(self.text.encode()).hexdigest()

    def batches(self, variables: dict[str, str] | None = None) -> list[str]:
        """The file's batches with `$(Variable)`s substituted; an unknown variable is an error."""
        values = variables or {}

        def substitute(match: re.Match[str]) -> str:
            if match.group(1) not in values:
                raise KeyError(f"{self.name}: no value for $({match.group(1)})")
            return values[match.group(1)]

        return [
            _VARIABLE.sub(substitute, batch).strip()
            for batch in _GO.split(self.text)
            if _strip_comments(batch)
        ]

    def table_definitions(self) -> list[str]:
        """The CREATE TABLE statements of the file (each from its guard to the end of its batch)."""
        return [
            match.group(0).strip() for batch in _GO.split(self.text) if (match := _CREATE_TABLE.search(batch))
        ]

    def variables(self) -> set[str]:
        """The `$(Variable)` names the file uses."""
        return set(_VARIABLE.findall(self.text))


def _strip_comments(batch: str) -> str:
    return "\n".join(line for line in batch.splitlines() if not line.strip().startswith("--")).strip()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """All migrations in order; a badly named file is an error, not silently skipped."""
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        if not _NAME.match(path.name):
            raise ValueError(f"{path.name}: migration files are named NNNN_lowercase_name.sql")
        migrations.append(Migration(name=path.name, text=path.read_text(encoding="utf-8")))
    numbers = [m.name[:4] for m in migrations]
    if len(numbers) != len(set(numbers)):
        raise ValueError(f"two migrations share a number: {numbers}")
    return migrations
