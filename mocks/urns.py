"""The URN of every resource a stack declares, against a committed list: the guard that a refactor
does not replace deployed resources.

A resource's URN is its identity in Pulumi state: a new logical name, type token or parent makes
Pulumi delete the old resource and create a new one, unless `aliases` name where it was. The lists
in `tests/snapshots/urns.<stack>.txt` hold what is deployed; a change that renames something must
add an alias to the old URN, and a change that adds resources updates the list:

    .venv/bin/python -m mocks.urns --update dev prod
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from mocks.capture import ROOT, ROOT_STACK_TYPE, ProgramRun, Registration, engine_urn, run_stack

SNAPSHOTS = ROOT / "tests" / "snapshots"


@dataclass(frozen=True)
class UrnChanges:
    """How a run differs from the committed list."""

    lost: list[str]
    """Committed URNs that no resource has, nor names as an alias: Pulumi would delete them."""
    added: list[str]
    """URNs of resources that are new (not committed, no alias to a committed one)."""
    renamed: dict[str, str]
    """Committed URN -> the URN of the resource that now carries it as an alias."""


def snapshot_path(stack: str) -> Path:
    """Where the committed URN list of a stack lives."""
    return SNAPSHOTS / f"urns.{stack}.txt"


RETIRED = SNAPSHOTS / "retired.txt"
"""Resources removed on purpose: `<type chain>::<name>  # why deleting it from a deployed stack is
safe` (what its delete does in Azure, and what replaced it). The URN check does not count them as
lost; another test holds that none of them is still declared."""


def retired() -> dict[str, str]:
    """The retired URN tails (what follows `urn:pulumi:<stack>::<project>::`) and why each may go."""
    entries = {}
    for line in RETIRED.read_text().splitlines() if RETIRED.exists() else []:
        if line.strip() and not line.startswith("#"):
            tail, _, reason = line.partition("  # ")
            entries[tail.strip()] = reason.strip()
    return entries


def urn_tail(urn: str) -> str:
    """A URN without its stack and project: the part that names the resource in every stack."""
    return urn.split("::", 2)[2]


def committed(stack: str) -> list[str]:
    """The committed URNs of a stack that are still meant to exist (retired ones left out)."""
    gone = retired()
    lines = snapshot_path(stack).read_text().splitlines()
    return [line for line in lines if line.strip() and urn_tail(line) not in gone]


def deployed(run: ProgramRun) -> list[str]:
    """The URNs of the resources a run declares (the stack itself is not one)."""
    return sorted(resource.urn for resource in run.resources if resource.type != ROOT_STACK_TYPE)


def _urn_name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def _urn_project_stack(urn: str) -> tuple[str, str]:
    _, _, stack_project = urn.partition("urn:pulumi:")
    stack, project = stack_project.split("::")[:2]
    return stack, project


def inherited_alias(
    child: Registration, child_type: str, child_name: str, parent: Registration, parent_old: str
) -> str:
    """The alias the engine gives a child whose parent was found in state under an alias
    (pulumi/pulumi pkg/resource/deploy/step_generator.go, `inheritedChildAlias`): the child under
    the parent's old URN, and, when the child's name starts with the parent's name (the
    `<parent>-<child>` convention), that prefix replaced by the parent's old name."""
    name = child_name
    if child_name.startswith(parent.name):
        name = _urn_name(parent_old) + child_name[len(parent.name) :]
    stack, project = _urn_project_stack(child.urn)
    return engine_urn(stack, project, parent_old, child_type, name)


def compare(run: ProgramRun, committed_urns: list[str]) -> UrnChanges:
    """Which committed URNs a run keeps, carries by alias, or loses, and what it adds.

    As the engine does (step_generator.go, `generateAliases`), a resource is looked up in state by
    its URN, then by each of its aliases; a parent found under an old URN passes that URN on to its
    children (`inherited_alias`), for their own name and for each of their aliases."""
    known = set(committed_urns)
    by_urn = {resource.urn: resource for resource in run.resources}
    found_as: dict[str, str] = {}  # current URN -> the old URN it was found under, when not its own
    carried: dict[str, str] = {}
    for resource in run.resources:
        candidates = list(resource.aliases)
        parent = by_urn.get(resource.parent)
        if parent is not None and parent.urn in found_as:
            parent_old = found_as[parent.urn]
            candidates.append(inherited_alias(resource, resource.type, resource.name, parent, parent_old))
            for alias in resource.aliases:
                alias_type = alias.rsplit("::", 2)[-2].rsplit("$", 1)[-1]
                candidates.append(inherited_alias(resource, alias_type, _urn_name(alias), parent, parent_old))
        for alias in candidates:
            carried.setdefault(alias, resource.urn)
        if resource.urn not in known:
            old = next((alias for alias in candidates if alias in known), None)
            if old is not None:
                found_as[resource.urn] = old
    current = set(deployed(run))
    lost = sorted(urn for urn in known if urn not in current and urn not in carried)
    renamed = {urn: carried[urn] for urn in sorted(known) if urn not in current and urn in carried}
    added = sorted(urn for urn in current - known if urn not in renamed.values())
    return UrnChanges(lost=lost, added=added, renamed=renamed)


def main(argv: list[str] | None = None) -> int:
    """Print (or with --update, write) the URN list of each stack."""
    parser = argparse.ArgumentParser(prog="python -m mocks.urns", description=__doc__.split("\n\n")[0])
    parser.add_argument("stacks", nargs="+", help="stack names (Pulumi.<stack>.yaml)")
    parser.add_argument("--update", action="store_true", help="write tests/snapshots/urns.<stack>.txt")
    arguments = parser.parse_args(argv)
    os.environ.setdefault("BROADCAST_WHEELHOUSE", str(ROOT / "build" / "wheels"))
    for stack in arguments.stacks:
        urns = deployed(run_stack(stack))
        if arguments.update:
            snapshot_path(stack).write_text("".join(f"{urn}\n" for urn in urns))
            print(f"{snapshot_path(stack).relative_to(ROOT)}: {len(urns)} URNs")
        else:
            print("\n".join(urns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
