"""The pull request's cost comment: each stack's monthly estimate on main, on the branch, and the
difference, from the committed price snapshot (no sign-in, no secret).

`python -m pipeline.cost_diff --base <main's tree> --head <the branch's tree>` runs `python -m cost
<stack> --json` in each tree (that tree's program, settings and `cost/prices.json`) for every
committed `Pulumi.<stack>.yaml` of either tree (not the review workflow's `Pulumi.pr-<n>.yaml`), and
prints the Markdown section. A stack whose estimate fails on one side says so with the command's
last line of error; it never stops the others.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeline.review_stack import review_number

TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class Side:
    """One stack's estimate in one tree: its monthly (and, for a review stack, daily) totals per
    currency, or why there is none."""

    monthly: Mapping[str, float] | None = None
    daily: Mapping[str, float] | None = None
    error: str = ""


Estimator = Callable[[Path, str], Side]


def committed_stacks(tree: Path) -> set[str]:
    """The stacks whose `Pulumi.<stack>.yaml` a tree holds (review stacks' files are written by the
    review workflow, never committed)."""
    names = {path.name[len("Pulumi.") : -len(".yaml")] for path in tree.glob("Pulumi.*.yaml")}
    return {name for name in names if review_number(name) is None}


def run_cost(tree: Path, stack: str) -> Side:
    """`python -m cost <stack> --json` with the tree as working directory, so the tree's own `cost`,
    `settings` and price snapshot are imported (`-m` puts the working directory first on sys.path)."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "cost", stack, "--json"],
            cwd=tree,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Side(error=f"`python -m cost {stack}` took over {TIMEOUT_SECONDS} s")
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        return Side(error=lines[-1] if lines else f"`python -m cost {stack}` exited {done.returncode}")
    try:
        document = json.loads(done.stdout)
        return Side(monthly=dict(document["monthly"]), daily=document.get("daily"))
    except (ValueError, KeyError, TypeError):
        return Side(error=f"`python -m cost {stack} --json` printed no estimate")


def currencies(*amounts: Mapping[str, float]) -> list[str]:
    """USD first (most lines are in it), then the others alphabetically."""
    return sorted(set().union(*amounts), key=lambda currency: (currency != "USD", currency))


def money(amounts: Mapping[str, float]) -> str:
    """`262.92 USD + 39.95 EUR`."""
    return " + ".join(f"{amounts[currency]:,.2f} {currency}" for currency in currencies(amounts)) or "0.00"


def difference(base: Mapping[str, float], head: Mapping[str, float]) -> str:
    """The branch minus main per currency, signed; `none` when every currency is within a cent."""
    parts = []
    for currency in currencies(base, head):
        delta = head.get(currency, 0.0) - base.get(currency, 0.0)
        if round(delta, 2) != 0:
            parts.append(f"{delta:+,.2f} {currency}")
    return " ".join(parts) or "none"


def _cell(side: Side, missing: str) -> str:
    if side.monthly is not None:
        return money(side.monthly)
    return f"{missing}: {side.error}" if side.error else missing


def row(stack: str, base: Side | None, head: Side | None) -> str:
    """One table row: main, the branch, the difference."""
    main_cell = _cell(base, "no estimate") if base else "no such stack"
    head_cell = _cell(head, "**no estimate**") if head else "removed"
    if base and head and base.monthly is not None and head.monthly is not None:
        change = difference(base.monthly, head.monthly)
    elif head and head.monthly is not None and not base:
        change = f"new: {difference({}, head.monthly)}"
    elif base and base.monthly is not None and not head:
        change = f"removed: {difference(base.monthly, {})}"
    else:
        change = "unknown"
    return f"| `{stack}` | {main_cell} | {head_cell} | {change} |"


def comment(base: Mapping[str, Side], head: Mapping[str, Side]) -> str:
    """The Markdown section: one row per stack of either tree, then what a review stack costs a day."""
    lines = [
        "### Monthly cost estimate",
        "",
        "From the committed price snapshot (`python -m cost <stack>`; `--live` prices the stack's region).",
        "",
        "| stack | main | this branch | difference |",
        "|---|---|---|---|",
    ]
    for stack in sorted(set(base) | set(head)):
        lines.append(row(stack, base.get(stack), head.get(stack)))
    daily = [(s, side.daily) for s, side in sorted(head.items()) if side.daily]
    for stack, per_day in daily:
        lines += [
            "",
            f"A `{stack}` stack costs {money(per_day)} a day while it exists (monthly / 730 an hour).",
        ]
    return "\n".join(lines) + "\n"


def estimates(tree: Path, estimate: Estimator = run_cost) -> dict[str, Side]:
    """Every committed stack of a tree, estimated there."""
    return {stack: estimate(tree, stack) for stack in sorted(committed_stacks(tree))}


def main(argv: list[str] | None = None, estimate: Estimator = run_cost) -> int:
    """Print the section; 2 with the reason when a tree is not a checkout of this project."""
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.cost_diff", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--base", type=Path, required=True, help="main's tree (the merge commit's first parent)"
    )
    parser.add_argument("--head", type=Path, required=True, help="the branch's tree (the merge commit)")
    arguments = parser.parse_args(argv)
    for side in ("base", "head"):
        tree: Path = getattr(arguments, side)
        if not (tree / "Pulumi.yaml").is_file():
            print(f"python -m pipeline.cost_diff: --{side} {tree} has no Pulumi.yaml", file=sys.stderr)
            return 2
    print(comment(estimates(arguments.base, estimate), estimates(arguments.head, estimate)), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
