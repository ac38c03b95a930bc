"""The stacks of pull requests' review deployments: named from the PR's number, configured from
`Pulumi.review.yaml` plus their instance, and found again to destroy them.

`python -m pipeline.review_stack write <pr> [--private]` writes `Pulumi.pr-<pr>.yaml` (config only:
the workflows set `PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER`, so an existing stack keeps the secrets
manager its state was written with, whatever the provider); `--private` (the `review-private` label)
makes it a private stack (`network: private`, docs/private-networking.md). `exists <pr> --stacks
FILE` reads `pulumi stack ls --json` and prints `exists=true|false`; `sweep --stacks FILE --keep FILE
[--keep FILE]` prints the review stacks whose pull request is no longer open with either label.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = "Pulumi.review.yaml"
REVIEW_STACK = re.compile(r"pr-([1-9][0-9]*)")
LABEL = "deploy-review"
PRIVATE_LABEL = "review-private"
"""A pull request with either label gets a review stack; with `review-private`, a private one."""


def stack_name(pull_request: int) -> str:
    """`pr-<number>`: the review stack of one pull request."""
    if pull_request <= 0:
        raise ValueError(f"a pull request number is positive, not {pull_request}")
    return f"pr-{pull_request}"


def instance(pull_request: int) -> str:
    """`pr<number>`: the instance setting that keeps review stacks' resource groups apart."""
    return stack_name(pull_request).replace("-", "")


def stack_file(pull_request: int, root: Path = ROOT, private: bool = False) -> str:
    """The review stack's settings file: the template's config and its instance (and, private,
    `network: private` with the default address space: each review stack has its own virtual network
    in its own resource group), and no secrets settings (Pulumi takes those from the stack's state;
    a new stack gets the provider named by the workflow, never a default)."""
    document = yaml.safe_load((root / TEMPLATE).read_text()) or {}
    config = dict(document.get("config") or {})
    config["broadcast:instance"] = instance(pull_request)
    if private:
        config["broadcast:network"] = "private"
    return (
        "# Written by python -m pipeline.review_stack from Pulumi.review.yaml; not committed.\n"
        + yaml.safe_dump({"config": config}, sort_keys=False)
    )


def listed_stacks(listing: Any) -> set[str]:
    """Stack names from `pulumi stack ls --json` (a list of objects with `name`). A backend may
    qualify names (`org/project/stack`): the last segment is the stack."""
    if not isinstance(listing, list) or not all(isinstance(s, dict) and "name" in s for s in listing):
        raise ValueError("expected the JSON list that `pulumi stack ls --json` prints")
    return {str(entry["name"]).rsplit("/", 1)[-1] for entry in listing}


def review_number(stack: str) -> int | None:
    """The pull request number of a review stack's name, or None for any other stack."""
    match = REVIEW_STACK.fullmatch(stack)
    return int(match.group(1)) if match else None


def to_sweep(stacks: Iterable[str], keep: Iterable[int]) -> list[str]:
    """The review stacks whose pull request is not among `keep` (open and labelled), oldest first."""
    kept = set(keep)
    numbered = [(n, s) for s in stacks if (n := review_number(s)) is not None and n not in kept]
    return [name for _, name in sorted(numbered)]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read {path}: {error}") from error


def _numbers(document: Any) -> set[int]:
    """Pull request numbers from `gh pr list --json number` (a list of `{"number": n}`)."""
    if not isinstance(document, list) or not all(isinstance(p, dict) and "number" in p for p in document):
        raise ValueError("expected the JSON list that `gh pr list --json number` prints")
    return {int(p["number"]) for p in document}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.review_stack", description=__doc__.split("\n\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    write = commands.add_parser("write", help="write Pulumi.pr-<pr>.yaml and print the stack name")
    write.add_argument("pull_request", type=int)
    write.add_argument("--root", type=Path, default=ROOT, help="where Pulumi.review.yaml is")
    write.add_argument("--private", action="store_true", help=f"a private stack (the {PRIVATE_LABEL} label)")
    exists = commands.add_parser("exists", help="print exists=true|false for the PR's stack")
    exists.add_argument("pull_request", type=int)
    exists.add_argument("--stacks", type=Path, required=True, help="the JSON of pulumi stack ls --json")
    sweep = commands.add_parser("sweep", help="print the review stacks to destroy, one a line")
    sweep.add_argument("--stacks", type=Path, required=True, help="the JSON of pulumi stack ls --json")
    sweep.add_argument(
        "--keep",
        type=Path,
        required=True,
        action="append",
        help="gh pr list --json number: PRs to keep (once per label)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; bad input is named on stderr with exit status 2."""
    arguments = _parser().parse_args(argv)
    try:
        if arguments.command == "write":
            name = stack_name(arguments.pull_request)
            root = arguments.root
            text = stack_file(arguments.pull_request, root, arguments.private)
            (root / f"Pulumi.{name}.yaml").write_text(text)
            print(name)
        elif arguments.command == "exists":
            name = stack_name(arguments.pull_request)
            found = name in listed_stacks(_read_json(arguments.stacks))
            print(f"exists={'true' if found else 'false'}")
        else:
            stacks = listed_stacks(_read_json(arguments.stacks))
            keep = set().union(*(_numbers(_read_json(path)) for path in arguments.keep))
            for name in to_sweep(stacks, keep):
                print(name)
    except ValueError as error:
        print(f"python -m pipeline.review_stack {arguments.command}: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
