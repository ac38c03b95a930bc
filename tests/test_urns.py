"""No refactor replaces a deployed resource: every URN in the committed lists is still declared, or
carried by an alias (how Pulumi keeps a renamed or moved resource), per stack."""

from __future__ import annotations

import pytest

from mocks import ProgramRun, Registration
from mocks.urns import committed, compare, deployed, retired, urn_tail

ROLE = "azure-native:authorization:RoleAssignment"


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_no_deployed_resource_is_lost_and_additions_are_committed(
    stack_name: str, dev: ProgramRun, prod: ProgramRun
) -> None:
    changes = compare({"dev": dev, "prod": prod}[stack_name], committed(stack_name))
    assert not changes.lost, (
        "these resources would be deleted and created again; add `aliases` that name their old URNs:\n"
        + "\n".join(changes.lost)
    )
    assert not changes.added, (
        "new resources: run `.venv/bin/python -m mocks.urns --update dev prod` and commit the lists:\n"
        + "\n".join(changes.added)
    )


def test_a_keyed_role_assignment_carries_its_positional_urn(dev: ProgramRun) -> None:
    (assignment,) = [r for r in dev.of_type(ROLE) if r.name.startswith("signalr-role-")]
    assert assignment.name == "signalr-role-app-signalr-owner"
    old = (
        "urn:pulumi:dev::broadcast::broadcast:signalr:SignalR"
        "$azure-native:authorization:RoleAssignment::signalr-role-0"
    )
    assert old in assignment.aliases
    # A stack deployed before the role assignments were keyed holds the old URN: Pulumi moves it.
    before = [old if urn == assignment.urn else urn for urn in committed("dev")]
    changes = compare(dev, before)
    assert changes.renamed == {old: assignment.urn} and not changes.lost and not changes.added


def test_a_rename_without_an_alias_is_reported_as_lost(dev: ProgramRun) -> None:
    renamed = [
        Registration(r.type, r.name + "-renamed", r.urn + "-renamed", r.parent, [], {})
        if r.type == ROLE
        else r
        for r in dev.resources
    ]
    changes = compare(ProgramRun(renamed, {}, set()), deployed(dev))
    assert changes.lost and all(urn.split("$")[-1].startswith(ROLE) for urn in changes.lost)
    assert len(changes.added) == len(changes.lost)


def test_urns_are_the_engines_top_level_resources_carry_no_stack_type(dev: ProgramRun) -> None:
    group = dev.one("azure-native:resources:ResourceGroup")
    assert group.urn == "urn:pulumi:dev::broadcast::azure-native:resources:ResourceGroup::resource-group"
    site = dev.one("azure-native:storage:StorageAccount", "site-")
    assert site.urn == (
        "urn:pulumi:dev::broadcast::broadcast:static_site:StaticSite$azure-native:storage:StorageAccount::site-storage"
    )


@pytest.mark.parametrize(
    ("old", "now"),
    [
        (
            "broadcast:function_app:FunctionApp$azure-native:operationalinsights:Workspace::functions-logs",
            "workspace",
        ),
        (
            "broadcast:function_app:FunctionApp$azure-native:applicationinsights:Component::functions-insights",
            "insights",
        ),
    ],
)
@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_monitoring_moved_out_of_the_functions_app_without_replacing_anything(
    old: str, now: str, stack_name: str, dev: ProgramRun, prod: ProgramRun
) -> None:
    """The workspace and Application Insights of stacks deployed before Monitoring existed keep their
    identity: the new resources carry the old URNs as aliases, so Pulumi moves them in state."""
    run = {"dev": dev, "prod": prod}[stack_name]
    old_urn = f"urn:pulumi:{stack_name}::broadcast::{old}"
    (moved,) = [r for r in run.resources if r.name == f"monitoring-{now}"]
    assert old_urn in moved.aliases
    before = [old_urn if urn == moved.urn else urn for urn in committed(stack_name)]
    changes = compare(run, before)
    assert changes.renamed == {old_urn: moved.urn} and not changes.lost


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_no_retired_resource_is_still_declared(stack_name: str, dev: ProgramRun, prod: ProgramRun) -> None:
    """tests/snapshots/retired.txt lists what was removed on purpose, each with why its delete is safe;
    a retired entry that a program still declares would be a resource both gone and kept."""
    run = {"dev": dev, "prod": prod}[stack_name]
    declared = {urn_tail(urn) for urn in deployed(run)}
    for resource in run.resources:
        declared |= {urn_tail(alias) for alias in resource.aliases}
    gone = retired()
    assert gone, "tests/snapshots/retired.txt lists the retired FunctionHostKey resources"
    assert all(reason for reason in gone.values()), "every retired entry says why deleting it is safe"
    assert sorted(set(gone) & declared) == []


def test_the_retired_host_keys_are_the_ones_deployed_stacks_hold() -> None:
    """Both URN tails of each FunctionHostKey: under BroadcastSystem, and from before it existed."""
    tails = {tail.rsplit("::", 1)[1] for tail in retired() if "pulumi-python:dynamic:Resource" in tail}
    assert tails == {
        "broadcast-functions-publish-function-key",
        "broadcast-functions-signalr-extension-key",
        "functions-publish-function-key",
        "functions-signalr-extension-key",
    }
