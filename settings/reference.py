"""The config reference, generated from the declarations: `Pulumi.yaml`'s `config:` block (so
`pulumi config` knows each key's type and description) and the table of docs/settings.md.

    .venv/bin/python -m settings.reference --write     # after changing settings/declarations.py

A test fails when either is out of step with the declarations.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from settings.declarations import SETTINGS, Setting

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_PAGE = "docs/settings.md"
TABLE_START = "| key | type | dev | prod | description |"
PULUMI_CONFIG_START = "config:\n"
# Keys whose default is computed rather than a value.
_COMPUTED_DEFAULTS = {"environment": "stack name", "hostingSku": "smallest of the plan"}


def _default_text(setting: Setting, environment: str) -> str:
    if setting.key in _COMPUTED_DEFAULTS:
        return _COMPUTED_DEFAULTS[setting.key]
    value: Any = setting.default_for(environment)
    if value in ("", None):
        return "(unset)"
    return f"`{json.dumps(value) if not isinstance(value, str) else value}`"


def reference_table() -> str:
    """The config reference table of docs/settings.md."""
    rows = [TABLE_START, "|---|---|---|---|---|"]
    for setting in SETTINGS:
        rows.append(
            f"| `{setting.key}` | {setting.type} | {_default_text(setting, 'dev')} | "
            f"{_default_text(setting, 'prod')} | {setting.description} |"
        )
    return "\n".join(rows) + "\n"


def pulumi_config_block() -> str:
    """The `config:` block of Pulumi.yaml (type and description of every key)."""
    lines = [PULUMI_CONFIG_START.rstrip("\n")]
    for setting in SETTINGS:
        lines.append(f"  {setting.key}:")
        lines.append(f"    type: {setting.type}")
        if setting.type == "array":
            lines += ["    items:", "      type: string"]
        lines.append(f"    description: {json.dumps(setting.description)}")
    return "\n".join(lines) + "\n"


def render_reference_page(text: str) -> str:
    """docs/settings.md with its config table replaced."""
    pattern = re.compile(re.escape(TABLE_START) + r"\n(\|.*\n)+")
    if not pattern.search(text):
        raise ValueError(f"{REFERENCE_PAGE} has no config reference table")
    return pattern.sub(lambda _: reference_table(), text, count=1)


def render_pulumi_yaml(text: str) -> str:
    """Pulumi.yaml with its config block replaced (the config block is the file's last section)."""
    head, separator, _ = text.partition(PULUMI_CONFIG_START)
    if not separator:
        raise ValueError("Pulumi.yaml has no config block")
    return head + pulumi_config_block()


def main(argv: list[str] | None = None) -> int:
    """Check (default) or rewrite the generated parts."""
    parser = argparse.ArgumentParser(
        prog="python -m settings.reference", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--write", action="store_true", help=f"rewrite {REFERENCE_PAGE} and Pulumi.yaml")
    arguments = parser.parse_args(argv)
    stale = []
    for path, render in (
        (ROOT / REFERENCE_PAGE, render_reference_page),
        (ROOT / "Pulumi.yaml", render_pulumi_yaml),
    ):
        text = path.read_text()
        wanted = render(text)
        if wanted != text:
            stale.append(str(path.relative_to(ROOT)))
            if arguments.write:
                path.write_text(wanted)
    if stale and not arguments.write:
        print(f"out of date: {', '.join(stale)}; run `python -m settings.reference --write`")
        return 1
    print("written: " + ", ".join(stale) if stale else "up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
