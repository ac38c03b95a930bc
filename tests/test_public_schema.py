"""Issue 33: a public stack's schema is applied by the same Azure deployment script as a private
stack's, run on Azure's public network: no Python dynamic resource, nothing run on the deploying
machine. The script's container has an address nobody knows in advance; the server admits it
through the stack's Azure-services rule, or the script opens a rule for exactly that address,
retries while it applies, and removes it when it exits. Played against the deployment script double
(tests/deployment_script_double.py), which refuses what Azure refuses."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from deployment_script_double import (
    CONTAINER_ADDRESS,
    SCHEMA_SCRIPT,
    SCRIPT,
    DeploymentScripts,
    RefusedError,
    client_id,
    firewall_state,
    mock_id,
    principal_id,
    sql_state,
)

from components.schema_runner import AZ_CLI_VERSION, FIREWALL_WAIT_ATTEMPTS, plan_tag
from components.shared import Role
from functions.migrations import load_migrations
from mocks import ProgramRun, run_stack

SERVER = "azure-native:sql:Server"
RULE = "azure-native:sql:FirewallRule"
ROLE = "azure-native:authorization:RoleAssignment"
IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
MIGRATIONS = [m.name for m in load_migrations()]


def without_azure_services(run: ProgramRun) -> ProgramRun:
    """The stack with no Azure-services rule: the server refuses the container's address."""
    changed = copy.deepcopy(run)
    changed.resources = [
        r for r in changed.resources if not (r.type == RULE and r.inputs["startIpAddress"] == "0.0.0.0")
    ]
    return changed


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_script_runs_on_the_public_network_as_the_sql_admin(stack: str) -> None:
    run = run_stack(stack)
    assert not [r for r in run.of_type("pulumi-python:dynamic:Resource") if "migrations" in r.inputs]
    script = run.one(SCRIPT, SCHEMA_SCRIPT)
    inputs = script.inputs
    assert inputs["azCliVersion"] == AZ_CLI_VERSION and inputs["kind"] == "AzureCLI"
    assert "subnetIds" not in inputs["containerSettings"] and "storageAccountSettings" not in inputs
    (variable,) = inputs["environmentVariables"]
    server = run.one(SERVER)
    assert variable == {"name": "SQL_SERVER_ID", "value": mock_id(server)}
    identity = run.one(IDENTITY, "sql-schema-identity")
    admin = server.inputs["administrators"]
    assert (admin["sid"], admin["principalType"]) == (client_id(identity), "Application")
    (role,) = [r for r in run.of_type(ROLE) if r.name.endswith("schema-runner-firewall-role")]
    assert role.inputs["scope"] == mock_id(server)
    assert role.inputs["principalId"] == principal_id(identity)
    assert role.inputs["roleDefinitionId"].endswith(Role.SQL_SERVER_CONTRIBUTOR)
    assert role.urn in script.dependencies
    # A changed migration runs the script again: the tag is the plan's hash.
    assert len(inputs["forceUpdateTag"]) == 64 and inputs["forceUpdateTag"] != plan_tag(["x", "y"], [])
    assert script.parent == run.one("broadcast:sql:SchemaMigration").urn


def test_the_script_adds_and_removes_its_rule_and_retries(dev: ProgramRun) -> None:
    content = dev.one(SCRIPT, SCHEMA_SCRIPT).inputs["scriptContent"]
    assert "trap remove_rule EXIT" in content
    assert content.index("trap remove_rule EXIT") < content.index("az sql server firewall-rule create")
    assert 'az sql server firewall-rule delete --ids "$SQL_SERVER_ID/firewallRules/$rule"' in content
    assert f"for attempt in $(seq 1 {FIREWALL_WAIT_ATTEMPTS})" in content and "sleep 15" in content
    assert "az lock list" in content
    assert "0.0.0.0" not in content  # never "Allow Azure services" for itself


def test_the_stacks_azure_services_rule_admits_the_container_and_no_rule_is_opened(
    dev: ProgramRun, tmp_path: Path
) -> None:
    ran = DeploymentScripts(dev).execute(tmp_path, tmp_path / "db.json")
    assert ran.outputs == {"applied": MIGRATIONS, "skipped": []}
    assert firewall_state(tmp_path)["created"] == []


def test_refused_the_script_opens_a_rule_for_its_address_waits_and_removes_it(
    dev: ProgramRun, tmp_path: Path
) -> None:
    closed = without_azure_services(dev)
    ran = DeploymentScripts(closed).execute(tmp_path, tmp_path / "db.json")
    assert ran.outputs == {"applied": MIGRATIONS, "skipped": []}
    firewall = firewall_state(tmp_path)
    (rule,) = firewall["created"]
    assert rule == "deployment-script-" + CONTAINER_ADDRESS.replace(".", "-")
    assert rule not in firewall["rules"]  # the server is left as it was
    assert sorted(sql_state(tmp_path / "db.json")["tracking"]) == MIGRATIONS


def test_without_the_role_the_script_fails_and_applies_nothing(dev: ProgramRun, tmp_path: Path) -> None:
    closed = without_azure_services(dev)
    closed.resources = [r for r in closed.resources if not r.name.endswith("schema-runner-firewall-role")]
    # No role at all: the CLI's sign-in sees no subscription.
    with pytest.raises(RefusedError, match="has no Azure role"):
        DeploymentScripts(closed).execute(tmp_path, tmp_path / "db.json")
    # A Reader elsewhere: it signs in, but may not write the server's firewall.
    reader = copy.deepcopy(closed)
    (role,) = [r for r in dev.of_type(ROLE) if r.name.endswith("schema-runner-firewall-role")]
    elsewhere = copy.deepcopy(role)
    elsewhere.inputs["roleDefinitionId"] = elsewhere.inputs["roleDefinitionId"].replace(
        Role.SQL_SERVER_CONTRIBUTOR, Role.READER
    )
    reader.resources.append(elsewhere)
    with pytest.raises(RefusedError, match="AuthorizationFailed"):
        DeploymentScripts(reader).execute(tmp_path / "reader", tmp_path / "db.json")
    assert sql_state(tmp_path / "db.json") == {}


def test_a_locked_server_gets_no_temporary_rule(tmp_path: Path) -> None:
    """prod locks its server (CanNotDelete): a rule opened there could not be removed (ScopeLocked),
    so the script refuses to open one; the Azure-services rule admits it as it is."""
    prod = run_stack("prod")
    assert [r for r in prod.of_type("azure-native:authorization:ManagementLockByScope") if "server" in r.name]
    assert DeploymentScripts(prod).execute(tmp_path / "open", tmp_path / "db.json").outputs["applied"]
    with pytest.raises(RefusedError, match="locked against deletion: no temporary rule"):
        DeploymentScripts(without_azure_services(prod)).execute(tmp_path / "closed", tmp_path / "db2.json")
    assert firewall_state(tmp_path / "closed")["created"] == []


def test_a_script_that_forgets_to_remove_its_rule_leaves_it_behind(dev: ProgramRun, tmp_path: Path) -> None:
    """The double keeps what the script did: without the trap, the rule stays on the server."""
    closed = without_azure_services(dev)
    script = closed.one(SCRIPT, SCHEMA_SCRIPT)
    script.inputs["scriptContent"] = script.inputs["scriptContent"].replace("trap remove_rule EXIT", ":")
    DeploymentScripts(closed).execute(tmp_path, tmp_path / "db.json")
    firewall = firewall_state(tmp_path)
    assert firewall["created"] and firewall["created"][0] in firewall["rules"]


def test_a_script_that_does_not_wait_for_its_rule_fails(dev: ProgramRun, tmp_path: Path) -> None:
    """A new rule applies after a delay: one connection attempt right after creating it is refused."""
    closed = without_azure_services(dev)
    script = closed.one(SCRIPT, SCHEMA_SCRIPT)
    script.inputs["scriptContent"] = script.inputs["scriptContent"].replace(
        f"$(seq 1 {FIREWALL_WAIT_ATTEMPTS})", "1"
    )
    with pytest.raises(RefusedError, match="exited with 3"):
        DeploymentScripts(closed).execute(tmp_path, tmp_path / "db.json")
    assert firewall_state(tmp_path)["rules"].keys() == {
        r.inputs["firewallRuleName"] for r in closed.of_type(RULE)
    }
