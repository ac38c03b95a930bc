"""The stack of a pull request's review deployment: named from the PR's number, configured from
`Pulumi.review.yaml` plus its instance, and keeping the encryption salt its state was written with.

`python -m pipeline.review_stack <pr> [--export FILE]` writes `Pulumi.pr-<pr>.yaml`. With the JSON of
`pulumi stack export` (an existing stack on a self-managed backend with the passphrase provider), the
salt recorded in the state goes into the file: the file is made anew on each run, and a stack file
without its salt would make Pulumi start another one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = "Pulumi.review.yaml"


def stack_name(pull_request: int) -> str:
    """`pr-<number>`: the review stack of one pull request."""
    if pull_request <= 0:
        raise ValueError(f"a pull request number is positive, not {pull_request}")
    return f"pr-{pull_request}"


def instance(pull_request: int) -> str:
    """`pr<number>`: the instance setting that keeps review stacks' resource groups apart."""
    return stack_name(pull_request).replace("-", "")


def passphrase_salt(exported: dict[str, Any]) -> str | None:
    """The passphrase provider's salt recorded in an exported deployment, if that is its provider."""
    providers = (exported.get("deployment") or {}).get("secrets_providers") or {}
    if providers.get("type") != "passphrase":
        return None
    salt = (providers.get("state") or {}).get("salt")
    return str(salt) if salt else None


def stack_file(pull_request: int, exported: dict[str, Any] | None = None, root: Path = ROOT) -> str:
    """The review stack's settings file: the template's config, its instance, and its salt."""
    document = yaml.safe_load((root / TEMPLATE).read_text()) or {}
    config = dict(document.get("config") or {})
    config["broadcast:instance"] = instance(pull_request)
    result: dict[str, Any] = {}
    salt = passphrase_salt(exported or {})
    if salt:
        result["encryptionsalt"] = salt
    result["config"] = config
    return (
        "# Written by python -m pipeline.review_stack from Pulumi.review.yaml; not committed.\n"
        + yaml.safe_dump(result, sort_keys=False)
    )


def main(argv: list[str] | None = None) -> int:
    """Write Pulumi.pr-<number>.yaml and print the stack name."""
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.review_stack", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("pull_request", type=int, help="the pull request's number")
    parser.add_argument("--export", type=Path, help="`pulumi stack export` of the existing stack (JSON)")
    arguments = parser.parse_args(argv)
    exported = None
    if arguments.export and arguments.export.is_file() and arguments.export.stat().st_size:
        exported = json.loads(arguments.export.read_text())
    name = stack_name(arguments.pull_request)
    (ROOT / f"Pulumi.{name}.yaml").write_text(stack_file(arguments.pull_request, exported))
    print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
