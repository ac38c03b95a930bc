"""The component package's schema, as the provider serves it, and the committed copy of it.

The provider (package/__main__.py) infers its schema from `BroadcastSystem`'s type hints with
`pulumi.provider.experimental` (the installed SDK, no CLI). `package/schema.json` is that schema,
committed so that a change to the args or outputs shows in review as a change of the public API;
`python -m system.schema --write` regenerates it and a test keeps it current.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = ROOT / "package" / "schema.json"
PACKAGE_NAME = "broadcast"


def package_schema() -> dict[str, Any]:
    """The schema the provider serves (the analyzer's, at pyproject.toml's version)."""
    from pulumi.provider.experimental.component import ComponentProvider

    from settings.version import project_version
    from system.component import BroadcastSystem

    provider = ComponentProvider([BroadcastSystem], PACKAGE_NAME, version=project_version())
    schema: dict[str, Any] = json.loads(provider.schema or "{}")
    return schema


def render(schema: dict[str, Any]) -> str:
    """The committed form: sorted keys, two-space indentation, a final newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """`--write` regenerates package/schema.json; `--compare FILE` checks a schema the CLI read
    (`pulumi package get-schema ./package`); without either, exit 1 when the committed one is stale."""
    parser = argparse.ArgumentParser(prog="python -m system.schema", description=__doc__)
    parser.add_argument("--write", action="store_true", help="write package/schema.json")
    parser.add_argument("--compare", type=Path, help="exit 1 unless this schema equals the committed one")
    options = parser.parse_args(argv)
    if options.compare:
        if json.loads(options.compare.read_text()) != json.loads(SCHEMA_FILE.read_text()):
            print(f"{options.compare} differs from {SCHEMA_FILE}", file=sys.stderr)
            return 1
        return 0
    text = render(package_schema())
    if options.write:
        SCHEMA_FILE.write_text(text)
        return 0
    if not SCHEMA_FILE.exists() or SCHEMA_FILE.read_text() != text:
        print(f"{SCHEMA_FILE} is stale: run `python -m system.schema --write`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
