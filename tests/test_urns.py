"""No refactor replaces a deployed resource: every URN in the committed lists is still declared, or
carried by an alias (how Pulumi keeps a renamed or moved resource), per stack."""

from __future__ import annotations

import dataclasses

import pytest

from mocks import ProgramRun, Registration
from mocks.urns import SNAPSHOTS, committed, compare, deployed, retired, urn_tail

ROLE = "azure-native:authorization:RoleAssignment"
SYSTEM = "broadcast:index:BroadcastSystem"
HOST_KEY_ADDITIONS = {
    "broadcast-functions-host-key-master",
    "broadcast-functions-host-key-publish",
    "broadcast-functions-host-key-signalr",
    "broadcast-functions-master-key",
    "broadcast-functions-identity-host-keys",
}
"""What the host keys in Key Vault added (issue 33) to a stack deployed before them."""

DEPLOYMENT_SCRIPT_STEPS = (
    "broadcast-site-upload",
    "broadcast-functions-code-deployment",
    "broadcast-functions-signalr-key-readable",
)
"""The components of the site upload, code deployment and key read check scripts (issue 33), new to
deployed stacks."""


def before_system(stack: str) -> list[str]:
    """The URNs of a stack deployed before `BroadcastSystem` (issue 33): every building block at the
    top of the stack, under its old name (the committed lists of the commit before it), less the
    resources retired since (tests/snapshots/retired.txt)."""
    path = SNAPSHOTS / "before-system" / f"urns.{stack}.txt"
    gone = retired()
    return [line for line in path.read_text().splitlines() if line.strip() and urn_tail(line) not in gone]


def not_host_key_additions(urns: list[str]) -> list[str]:
    """The URNs that are not what the host keys in Key Vault added."""
    return [urn for urn in urns if urn.rsplit("::", 1)[-1] not in HOST_KEY_ADDITIONS]


def test_no_retired_resource_is_declared_and_each_says_why_its_delete_is_safe(
    dev: ProgramRun, prod: ProgramRun, private: ProgramRun
) -> None:
    """Issue 33: the dynamic schema and subnet release are gone from every stack; the retired list
    names them (its URN tails, deployed and before BroadcastSystem) with why their delete is safe."""
    gone = retired()
    declared = {urn_tail(r.urn) for run in (dev, prod, private) for r in run.resources}
    assert not declared & set(gone)
    assert all(reason for reason in gone.values())
    sql = {tail.rsplit("::", 1)[1] for tail in gone if "SqlDatabase$" in tail}
    assert sql == {
        "broadcast-sql-schema",
        "broadcast-sql-schema-runner-subnet-release",
        "sql-schema",
        "sql-schema-runner-subnet-release",
    }


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_a_stack_deployed_before_the_system_component_replaces_nothing(
    stack_name: str, dev: ProgramRun, prod: ProgramRun
) -> None:
    """Every resource moved under `BroadcastSystem` and renamed `broadcast-...`: the direct children
    carry their top-level URNs as aliases, and their own children inherit them (as the engine does),
    so a deployed stack only gains the component itself."""
    run = {"dev": dev, "prod": prod}[stack_name]
    before = before_system(stack_name)
    changes = compare(run, before)
    assert not changes.lost, "\n".join(changes.lost)
    # Besides the component, only what the host keys in Key Vault and the schema's deployment script
    # need are new (issue 33: they replace retired dynamic resources).
    added = not_host_key_additions(changes.added)
    schema = [urn for urn in added if urn.rsplit("::", 1)[-1].startswith("broadcast-sql-schema")]
    # The site upload and the code deployment as deployment scripts (issue 33), each with its identity.
    scripts = [urn for urn in added if urn.rsplit("::", 1)[-1].startswith(DEPLOYMENT_SCRIPT_STEPS)]
    assert {urn.rsplit("::", 1)[-1] for urn in scripts} == {
        "broadcast-site-upload",
        "broadcast-site-upload-identity",
        "broadcast-site-upload-blob-writer",
        "broadcast-site-upload-reader",
        "broadcast-site-upload-script",
        "broadcast-functions-code-deployment",
        "broadcast-functions-code-deployment-identity",
        "broadcast-functions-code-deployment-publisher",
        "broadcast-functions-code-deployment-script",
        "broadcast-functions-signalr-key-readable",
        "broadcast-functions-signalr-key-readable-reader",
        "broadcast-functions-signalr-key-readable-script",
    }
    # The server's Entra admin through its own API: a deployed server takes the schema identity.
    admin = [
        urn
        for urn in added
        if urn.endswith("$azure-native:sql:ServerAzureADAdministrator::broadcast-sql-entra-admin")
    ]
    assert len(admin) == 1
    assert sorted(set(added) - set(schema) - set(admin) - set(scripts)) == [
        f"urn:pulumi:{stack_name}::broadcast::{SYSTEM}::broadcast"
    ]
    assert {urn.rsplit("::", 1)[-1] for urn in schema} == {
        "broadcast-sql-schema-identity",
        "broadcast-sql-schema-runner",
        "broadcast-sql-schema-runner-firewall-role",
        "broadcast-sql-schema-runner-script",
    }
    assert sorted(changes.renamed) == sorted(before)
    for old, now in changes.renamed.items():
        assert now.endswith(f"::broadcast-{old.rsplit('::', 1)[-1]}"), (old, now)


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
    (assignment,) = [r for r in dev.of_type(ROLE) if r.name.startswith("broadcast-signalr-role-")]
    assert assignment.name == "broadcast-signalr-role-app-signalr-owner"
    # The alias names the positional name under SignalR's current URN...
    assert (
        f"urn:pulumi:dev::broadcast::{SYSTEM}$broadcast:signalr:SignalR"
        "$azure-native:authorization:RoleAssignment::signalr-role-0"
    ) in assignment.aliases
    # ...and a stack deployed before the role assignments were keyed holds it under the top-level
    # SignalR: SignalR is found under its old URN, and the assignment inherits that parent.
    keyed = (
        "urn:pulumi:dev::broadcast::broadcast:signalr:SignalR"
        "$azure-native:authorization:RoleAssignment::signalr-role-app-signalr-owner"
    )
    old = (
        "urn:pulumi:dev::broadcast::broadcast:signalr:SignalR"
        "$azure-native:authorization:RoleAssignment::signalr-role-0"
    )
    assert keyed in before_system("dev")
    baseline = compare(dev, before_system("dev"))
    before = [old if urn == keyed else urn for urn in before_system("dev")]
    changes = compare(dev, before)
    expected = {urn: now for urn, now in baseline.renamed.items() if urn != keyed}
    assert changes.renamed == {**expected, old: assignment.urn}
    assert not changes.lost and changes.added == baseline.added


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
    system = dev.one(SYSTEM)
    assert system.urn == f"urn:pulumi:dev::broadcast::{SYSTEM}::broadcast"
    group = dev.one("azure-native:resources:ResourceGroup")
    assert group.urn == (
        f"urn:pulumi:dev::broadcast::{SYSTEM}$azure-native:resources:ResourceGroup::broadcast-resource-group"
    )
    site = dev.one("azure-native:storage:StorageAccount", "broadcast-site-")
    assert site.urn == (
        f"urn:pulumi:dev::broadcast::{SYSTEM}$broadcast:static_site:StaticSite"
        "$azure-native:storage:StorageAccount::broadcast-site-storage"
    )
    # Where they were at the top of the stack: the group's alias has no parent type, and the
    # storage account is found under its parent's old URN.
    old_group = "urn:pulumi:dev::broadcast::azure-native:resources:ResourceGroup::resource-group"
    old_site = (
        "urn:pulumi:dev::broadcast::broadcast:static_site:StaticSite"
        "$azure-native:storage:StorageAccount::site-storage"
    )
    assert old_group in group.aliases
    renamed = compare(dev, before_system("dev")).renamed
    assert renamed[old_group] == group.urn and renamed[old_site] == site.urn


def test_a_child_whose_parent_carries_no_old_urn_is_lost(dev: ProgramRun) -> None:
    """The inherited aliases come from the parent: a StaticSite that forgot its alias to the top-level
    `site` is not found in state, so neither is anything it holds, and Pulumi would replace them all."""
    site = dev.one("broadcast:static_site:StaticSite")
    assert site.aliases
    forgot = ProgramRun(
        [dataclasses.replace(r, aliases=[]) if r.urn == site.urn else r for r in dev.resources], {}, set()
    )
    old_site = "urn:pulumi:dev::broadcast::broadcast:static_site:StaticSite"
    changes = compare(forgot, before_system("dev"))
    expected = [urn for urn in before_system("dev") if urn.startswith((f"{old_site}::", f"{old_site}$"))]
    assert len(expected) > 1
    assert changes.lost == sorted(expected)
    schema = {
        r.urn
        for r in dev.resources
        if r.name.startswith(("broadcast-sql-schema", "broadcast-sql-entra-admin", *DEPLOYMENT_SCRIPT_STEPS))
    }
    assert (
        set(not_host_key_additions(changes.added)) - schema
        == (
            {r.urn for r in dev.resources if r.urn.startswith(site.urn.rsplit("::", 1)[0])}
            | {dev.one(SYSTEM).urn}
        )
        - schema
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
    (moved,) = [r for r in run.resources if r.name == f"broadcast-monitoring-{now}"]
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
    tails = {
        tail.rsplit("::", 1)[1]
        for tail in retired()
        if "FunctionApp$pulumi-python:dynamic:Resource" in tail and tail.endswith("-key")
    }
    assert tails == {
        "broadcast-functions-publish-function-key",
        "broadcast-functions-signalr-extension-key",
        "functions-publish-function-key",
        "functions-signalr-extension-key",
    }
