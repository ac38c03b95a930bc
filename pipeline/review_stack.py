"""The stacks of pull requests' review deployments: named from the PR's number, configured from
`Pulumi.review.yaml` plus their instance, and found again to destroy them.

`python -m pipeline.review_stack write <pr> [--private]` writes `Pulumi.pr-<pr>.yaml` (config only:
the workflows set `PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER`, so an existing stack keeps the secrets
manager its state was written with, whatever the provider); `--private` (the `review-private` label)
makes it a private stack (`network: private`, docs/private-networking.md). `exists <pr> --stacks
FILE` reads `pulumi stack ls --json` and prints `exists=true|false`; `sweep --stacks FILE --keep FILE
[--keep FILE]` prints the review stacks whose pull request is no longer open with either label (as a
JSON list with `--json`, for a matrix); both count only this project's stacks. `wanted <pr> --pr FILE
--sha SHA` reads `gh pr view --json state,labels,baseRefName,headRefOid` just before `up` and prints
`deploy=true|false` and why: a run queued before a close, a label removal or a newer push (its
payload is from when it fired) deploys nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = "Pulumi.review.yaml"
REVIEW_STACK = re.compile(r"pr-([1-9][0-9]*)")
LABEL = "deploy-review"
PRIVATE_LABEL = "review-private"
"""A pull request with either label gets a review stack; with `review-private`, a private one."""
BASE = "main"
"""Only pull requests into main get a review stack: `pull_request_target` runs the base branch's
workflow, so the destroy of a pull request into another branch would be that branch's, if any."""


def project_name(root: Path = ROOT) -> str:
    """The `name` of Pulumi.yaml: the project whose stacks the workflows may touch."""
    import yaml  # here, not at the top: `wanted` runs before the virtualenv exists (no PyYAML)

    document = yaml.safe_load((root / "Pulumi.yaml").read_text()) or {}
    return str(document["name"])


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
    import yaml

    document = yaml.safe_load((root / TEMPLATE).read_text()) or {}
    config = dict(document.get("config") or {})
    config["broadcast:instance"] = instance(pull_request)
    if private:
        config["broadcast:network"] = "private"
    return (
        "# Written by python -m pipeline.review_stack from Pulumi.review.yaml; not committed.\n"
        + yaml.safe_dump({"config": config}, sort_keys=False)
    )


def listed_stacks(listing: Any, project: str | None = None) -> set[str]:
    """This project's stack names from `pulumi stack ls --json` (a list of objects with `name`).
    A qualified name (`org/project/stack`) counts only when its project is ours; a bare name is one
    of the listing's project (the workflows list with `--project <ours>`); `org/stack` says no
    project, so it is refused rather than guessed."""
    if not isinstance(listing, list) or not all(isinstance(s, dict) and "name" in s for s in listing):
        raise ValueError("expected the JSON list that `pulumi stack ls --json` prints")
    ours = project or project_name()
    names = set()
    for entry in listing:
        parts = str(entry["name"]).split("/")
        if len(parts) == 2:
            raise ValueError(f"stack {entry['name']!r} names no project: list with --project {ours}")
        if len(parts) == 1 or (len(parts) == 3 and parts[1] == ours):
            names.add(parts[-1])
    return names


def review_number(stack: str) -> int | None:
    """The pull request number of a review stack's name, or None for any other stack."""
    match = REVIEW_STACK.fullmatch(stack)
    return int(match.group(1)) if match else None


def to_sweep(stacks: Iterable[str], keep: Iterable[int]) -> list[str]:
    """The review stacks whose pull request is not among `keep` (open and labelled), oldest first."""
    kept = set(keep)
    numbered = [(n, s) for s in stacks if (n := review_number(s)) is not None and n not in kept]
    return [name for _, name in sorted(numbered)]


def wanted(pull_request: Any, sha: str) -> tuple[bool, str]:
    """Whether the pull request, as GitHub has it now (`gh pr view --json
    state,labels,baseRefName,headRefOid`), still wants this run's commit deployed, and why not."""
    if not isinstance(pull_request, dict) or not {"state", "labels", "baseRefName", "headRefOid"} <= set(
        pull_request
    ):
        raise ValueError("expected `gh pr view --json state,labels,baseRefName,headRefOid`")
    labels = {str(label.get("name")) for label in pull_request["labels"] or []}
    if pull_request["state"] != "OPEN":
        return False, f"the pull request is {str(pull_request['state']).lower()}"
    if pull_request["baseRefName"] != BASE:
        return False, f"the pull request is into {pull_request['baseRefName']}, not {BASE}"
    if not labels & {LABEL, PRIVATE_LABEL}:
        return False, f"the pull request has neither {LABEL} nor {PRIVATE_LABEL}"
    if pull_request["headRefOid"] != sha:
        return False, f"superseded: the pull request's head is now {pull_request['headRefOid']}"
    return True, "the pull request is open, labelled and at this commit"


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
    check = commands.add_parser("wanted", help="print deploy=true|false: does the PR still want this commit")
    check.add_argument("pull_request", type=int)
    check.add_argument("--pr", type=Path, required=True, help="the JSON of gh pr view")
    check.add_argument("--sha", required=True, help="the commit this run would deploy")
    sweep = commands.add_parser("sweep", help="print the review stacks to destroy, one a line")
    sweep.add_argument("--json", action="store_true", help="print them as one JSON list (a matrix)")
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
        elif arguments.command == "wanted":
            stack_name(arguments.pull_request)
            deploy, why = wanted(_read_json(arguments.pr), arguments.sha)
            print(f"deploy={'true' if deploy else 'false'}", f"reason={why}", sep="\n")
        else:
            stacks = listed_stacks(_read_json(arguments.stacks))
            keep = set().union(*(_numbers(_read_json(path)) for path in arguments.keep))
            names = to_sweep(stacks, keep)
            if arguments.json:
                print(json.dumps(names))
            for name in [] if arguments.json else names:
                print(name)
    except ValueError as error:
        print(f"python -m pipeline.review_stack {arguments.command}: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
