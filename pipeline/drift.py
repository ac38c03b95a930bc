"""Drift: what `pulumi refresh --preview-only --json` found changed in Azure since the last deployment,
as the body of the issue the drift workflow keeps, one per stack.

`python -m pipeline.drift <stack> <refresh.json> --body FILE [--status N --log FILE]` writes the
issue body and prints `drifted=true|false`, `failed=true|false` and the issue's title (for
$GITHUB_OUTPUT). A refresh that failed (status N other than 0) opens the issue too, with the end of
its log: a check that cannot run must not read as "no drift".
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Refresh steps that mean Azure no longer matches the state (a refresh reports a changed resource as an
# update and a vanished one as a delete); `same`, `read` and `refresh` mean it matches.
DRIFT_OPS = frozenset({"update", "delete", "replace", "create", "create-replacement", "delete-replaced"})
ISSUE_LABEL = "drift"


@dataclass(frozen=True)
class Drifted:
    """One resource that changed outside Pulumi."""

    urn: str
    op: str
    properties: tuple[str, ...]

    @property
    def name(self) -> str:
        """`type::name` from the URN."""
        return "::".join(self.urn.split("::")[-2:]).split("$")[-1]


def drifted(refresh: dict[str, Any]) -> list[Drifted]:
    """The resources a refresh preview found changed, with the properties that differ."""
    found = []
    for step in refresh.get("steps") or []:
        op = str(step.get("op", ""))
        if op not in DRIFT_OPS:
            continue
        properties = step.get("diffReasons") or sorted((step.get("detailedDiff") or {}).keys())
        found.append(Drifted(str(step.get("urn", "")), op, tuple(str(p) for p in properties)))
    return found


def issue_title(stack: str) -> str:
    """The one issue per stack (found by this title)."""
    return f"Drift in stack {stack}"


def issue_body(stack: str, changes: list[Drifted], run_url: str = "") -> str:
    """What the issue says: each drifted resource, what changed, and how to resolve it."""
    lines = [
        f"`pulumi refresh --preview-only` of stack `{stack}` found {len(changes)} resource(s) changed "
        "outside Pulumi:",
        "",
        "| resource | change | properties |",
        "|---|---|---|",
    ]
    for change in changes:
        properties = ", ".join(f"`{p}`" for p in change.properties) or "(not reported)"
        lines.append(f"| `{change.name}` | {change.op} | {properties} |")
    lines += [
        "",
        "Either undo the change in Azure, or make it part of the program and deploy; `pulumi refresh "
        f"--stack {stack}` accepts Azure's values into the state (the next `pulumi up` then reverts "
        "whatever the program does not declare).",
    ]
    if run_url:
        lines += ["", f"Found by {run_url}. This issue closes itself when the stack matches again."]
    return "\n".join(lines) + "\n"


def failure_body(stack: str, status: int, log: str, run_url: str = "", lines: int = 30) -> str:
    """The issue when the refresh itself failed: its exit status and the end of its log."""
    tail = "\n".join(log.strip().splitlines()[-lines:]) or "(no output)"
    body = [
        f"`pulumi refresh --preview-only` of stack `{stack}` failed (exit status {status}), so whether "
        "Azure still matches the state is unknown. The end of its output:",
        "",
        "~~~",
        tail.replace("~~~", "~ ~ ~"),
        "~~~",
    ]
    if run_url:
        body += ["", f"Run: {run_url}. This issue closes itself when a later check finds no drift."]
    return "\n".join(body) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the body, print whether the stack drifted or the check failed."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.drift", description=__doc__.split("\n\n")[0])
    parser.add_argument("stack")
    parser.add_argument("refresh", type=Path, help="the JSON of pulumi refresh --preview-only --json")
    parser.add_argument("--body", type=Path, required=True, help="where to write the issue body")
    parser.add_argument("--run-url", default="", help="the workflow run, linked from the issue")
    parser.add_argument("--status", type=int, default=0, help="the refresh's exit status")
    parser.add_argument("--log", type=Path, help="the refresh's stderr, quoted when it failed")
    arguments = parser.parse_args(argv)
    title = f"title={issue_title(arguments.stack)}"
    if arguments.status != 0:
        log = arguments.log.read_text(errors="replace") if arguments.log and arguments.log.is_file() else ""
        arguments.body.write_text(failure_body(arguments.stack, arguments.status, log, arguments.run_url))
        print("drifted=true", "failed=true", title, sep="\n")
        return 0
    try:
        refresh = json.loads(arguments.refresh.read_text())
    except (OSError, ValueError) as error:
        print(f"python -m pipeline.drift: cannot read {arguments.refresh}: {error}", file=sys.stderr)
        return 2
    changes = drifted(refresh)
    arguments.body.write_text(issue_body(arguments.stack, changes, arguments.run_url))
    print(f"drifted={'true' if changes else 'false'}", "failed=false", title, sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
