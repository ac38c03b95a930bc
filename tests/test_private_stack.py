"""A private stack's first `pulumi up` from outside its network (issue 20): the schema is applied by an
Azure deployment script inside the network, SQL ends with public access disabled and no firewall rule;
and the stack's life around it (an unchanged `up`, public -> private, destroy), under the mocks and
against a double of the deployment script service that refuses what Azure refuses."""

from __future__ import annotations

import copy
import uuid
from pathlib import Path
from typing import Any

import pytest
import vermin  # type: ignore[import-untyped]
from broadcast_policies import ALL_POLICIES
from deployment_script_double import (
    REQUIRES_PYTHON,
    SCHEMA_SCRIPT,
    SCRIPT,
    DeploymentScripts,
    RefusedError,
    cli_image,
    client_id,
    sql_state,
)
from pulumi_policy import PolicyCustomTimeouts, PolicyResourceOptions, ResourceValidationArgs

from components import schema_runner
from components.schema_runner import AZ_CLI_VERSION, DRIVER, RETENTION, ROOT
from components.shared import Naming, PrivateAccess, UserAssignedIdentity
from components.sql import DatabaseSku, SqlAdministrator, SqlDatabase, SqlDatabaseArgs
from data_plane.database_schema import entra_sid
from data_plane.migration_runner import BUNDLED_MODULES
from functions.migrations import load_migrations
from mocks import SUBSCRIPTION, ProgramRun, Registration, run, run_stack

SERVER = "azure-native:sql:Server"
ADMIN_SETTING = "azure-native:sql:ServerAzureADAdministrator"
STORAGE = "azure-native:storage:StorageAccount"
ENDPOINT = "azure-native:network:PrivateEndpoint"
IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
ROLE = "azure-native:authorization:RoleAssignment"
MIGRATIONS = [m.name for m in load_migrations()]


def local_schema(run: ProgramRun) -> list[Registration]:
    """The dynamic schema resource that connects from the deploying machine."""
    return [r for r in run.of_type("pulumi-python:dynamic:Resource") if "migrations" in r.inputs]


def edited(run: ProgramRun, type_: str, name_contains: str, **inputs: Any) -> ProgramRun:
    """A copy of the run with one resource's inputs changed (None removes an input)."""
    changed = copy.deepcopy(run)
    target = changed.one(type_, name_contains)
    for key, value in inputs.items():
        if value is None:
            target.inputs.pop(key, None)
        else:
            target.inputs[key] = value
    return changed


def without(run: ProgramRun, name: str) -> ProgramRun:
    """A copy of the run without the resource of that logical name."""
    changed = copy.deepcopy(run)
    changed.resources = [r for r in changed.resources if r.name != name]
    assert len(changed.resources) == len(run.resources) - 1, f"no resource is named {name}"
    return changed


def unordered(run: ProgramRun, name: str) -> ProgramRun:
    """A copy of the run in which nothing waits for the resource of that logical name."""
    changed = copy.deepcopy(run)
    urn = next(r.urn for r in changed.resources if r.name == name)
    for resource in changed.resources:
        resource.dependencies = [u for u in resource.dependencies if u != urn]
        resource.property_dependencies = {
            key: [u for u in urns if u != urn] for key, urns in resource.property_dependencies.items()
        }
    return changed


def without_line(run: ProgramRun, starting: str) -> ProgramRun:
    """A copy of the run whose script lacks the line that starts with `starting`."""
    content = run.one(SCRIPT, SCHEMA_SCRIPT).inputs["scriptContent"]
    kept = "\n".join(line for line in content.split("\n") if not line.startswith(starting))
    return edited(run, SCRIPT, SCHEMA_SCRIPT, scriptContent=kept)


# Create


def test_the_pinned_cli_image_runs_the_bundled_runner_and_the_driver() -> None:
    """The image's Python (the double's cited table) against what runs on it: the bundle's minimum
    Python, measured with vermin, and the pinned driver's Requires-Python."""
    image = cli_image(AZ_CLI_VERSION)
    needed = {
        module: max(v for v in vermin.detect((ROOT / module).read_text(), path=module) if v)
        for module in BUNDLED_MODULES
    }
    assert all(version <= image.python for version in needed.values()), (image, needed)
    assert DRIVER in REQUIRES_PYTHON and REQUIRES_PYTHON[DRIVER] <= image.python
    assert image.distro == "Azure Linux 3.0"


def test_the_first_up_applies_the_migrations_inside_the_network(private: ProgramRun, tmp_path: Path) -> None:
    ran = DeploymentScripts(private).execute(tmp_path, tmp_path / "db.json")
    assert ran.outputs == {"applied": MIGRATIONS, "skipped": []}
    database = sql_state(tmp_path / "db.json")
    assert sorted(database["tracking"]) == MIGRATIONS
    (connection,) = database["connections"]
    server = private.one(SERVER).inputs["serverName"]
    assert connection.startswith(f"Server=tcp:{server}.database.windows.net,1433;")
    app = private.one(IDENTITY, "app-identity").inputs["resourceName"]
    sid = entra_sid(client_id(private.one(IDENTITY, "app-identity")))
    assert any(f"CREATE USER [{app}] WITH SID = {sid}, TYPE = E" in sql for sql in database["executed"])
    assert any(DRIVER in line for line in ran.pip)
    # Nothing connects from the deploying machine, and SQL stays private with no rule open.
    assert local_schema(private) == []
    assert private.one(SERVER).inputs["publicNetworkAccess"] == "Disabled"
    assert private.of_type("azure-native:sql:FirewallRule") == []


def test_the_script_runs_in_the_script_subnet_as_the_sql_admin(private: ProgramRun) -> None:
    script = private.one(SCRIPT, SCHEMA_SCRIPT).inputs
    vnet = private.one("azure-native:network:VirtualNetwork").inputs
    (subnet,) = script["containerSettings"]["subnetIds"]
    assert subnet["id"].endswith(f"/{vnet['virtualNetworkName']}/subnets/snet-scripts")
    (delegated,) = [s for s in vnet["subnets"] if s["name"] == "snet-scripts"]
    assert delegated["delegations"] == [
        {"name": "container-groups", "serviceName": "Microsoft.ContainerInstance/containerGroups"}
    ]
    identity = private.one(IDENTITY, "sql-schema-identity")
    assert script["identity"]["userAssignedIdentities"] == [
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-test/providers/Microsoft.managedidentity/"
        f"{identity.inputs['resourceName']}"
    ]
    admin = private.one(SERVER).inputs["administrators"]
    assert (admin["sid"], admin["principalType"]) == (client_id(identity), "Application")


def test_the_script_waits_for_private_sql_and_the_code_waits_for_the_script(private: ProgramRun) -> None:
    script = private.one(SCRIPT, SCHEMA_SCRIPT)
    needed = [private.one(ENDPOINT, "sql-endpoint"), private.one("azure-native:sql:Database")]
    needed += [
        r
        for r in private.of_type("azure-native:network:PrivateDnsZoneGroup")
        if r.name == "broadcast-sql-endpoint-dns"
    ]
    assert len(needed) == 3 and all(r.urn in script.dependencies for r in needed)
    deployment = private.one(SCRIPT, "functions-code-deployment-script")
    assert script.urn in deployment.dependencies


# An unchanged `up`


def test_an_unchanged_schema_changes_nothing_and_runs_nothing(private: ProgramRun, tmp_path: Path) -> None:
    """The script's content is all its input: the same stack gives the same text (no diff, so ARM does
    not run it again); run again anyway (say, after its retention), it applies nothing."""
    again = run_stack("test")
    assert (
        again.one(SCRIPT, SCHEMA_SCRIPT).inputs["scriptContent"]
        == private.one(SCRIPT, SCHEMA_SCRIPT).inputs["scriptContent"]
    )
    scripts = DeploymentScripts(private)
    scripts.execute(tmp_path / "first", tmp_path / "db.json")
    second = scripts.execute(tmp_path / "second", tmp_path / "db.json")
    assert second.outputs == {"applied": [], "skipped": MIGRATIONS}


# The double refuses what Azure refuses


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        (
            lambda run: edited(run, STORAGE, "schema-runner", allowSharedKeyAccess=False),
            "FailedMountAzureFileVolume: the account refuses shared key access",
        ),
        (
            lambda run: without(run, "broadcast-sql-schema-runner-storage-file-endpoint"),
            "not reachable from the subnet",
        ),
        (
            lambda run: edited(run, SCRIPT, SCHEMA_SCRIPT, storageAccountSettings=None),
            "needs an existing storage account",
        ),
        (
            lambda run: without(run, "broadcast-sql-schema-runner-storage-file-role"),
            "lacks Storage File Data Privileged Contributor",
        ),
        (lambda run: without(run, "broadcast-sql-schema-runner-storage-reader-role"), "has no Azure role"),
        (lambda run: edited(run, SCRIPT, SCHEMA_SCRIPT, retentionInterval="P2D"), "between PT1H and PT26H"),
        (
            lambda run: edited(run, SCRIPT, SCHEMA_SCRIPT, containerSettings=None),
            r"Deny Public Network Access is set to Yes \(47073\)",
        ),
        (
            lambda run: edited(run, SCRIPT, SCHEMA_SCRIPT, azCliVersion="2.67.0"),
            r"mssql-python==1\.16\.0 \(Requires-Python >=3\.10; the image has Python 3\.9\)",
        ),
        (
            lambda run: edited(run, SCRIPT, SCHEMA_SCRIPT, azCliVersion="2.90.0"),
            "newer than the double's image table",
        ),
        (
            lambda run: without_line(run, "tdnf install"),
            "libltdl.so.7: cannot open shared object file",
        ),
        (
            lambda run: unordered(run, "broadcast-network-zone-file-link"),
            "the script was created before the name resolved",
        ),
        (
            lambda run: unordered(run, "broadcast-sql-schema-runner-storage-file-endpoint-dns"),
            "the script was created before the name resolved",
        ),
    ],
)
def test_the_service_refuses_a_script_azure_would_refuse(
    private: ProgramRun, tmp_path: Path, change: Any, refusal: str
) -> None:
    DeploymentScripts(private).validate(private.one(SCRIPT, SCHEMA_SCRIPT))  # the stack's own script passes
    with pytest.raises(RefusedError, match=refusal):
        DeploymentScripts(change(private)).execute(tmp_path, tmp_path / "db.json")
    assert sql_state(tmp_path / "db.json") == {}


def test_a_subnet_not_delegated_to_container_groups_is_refused(private: ProgramRun, tmp_path: Path) -> None:
    changed = copy.deepcopy(private)
    vnet = changed.one("azure-native:network:VirtualNetwork")
    for subnet in vnet.inputs["subnets"]:
        if subnet["name"] == "snet-scripts":
            subnet["delegations"] = [{"name": "x", "serviceName": "Microsoft.App/environments"}]
    with pytest.raises(RefusedError, match="SubnetNotDelegated"):
        DeploymentScripts(changed).execute(tmp_path, tmp_path / "db.json")


def test_an_identity_that_is_not_the_sql_admin_cannot_sign_in(private: ProgramRun, tmp_path: Path) -> None:
    """The admin is what `servers/administrators` (ServerAzureADAdministrator) set: ARM reads the
    server's own `administrators` at creation only, so a server created with another admin (a stack
    deployed before the schema script) still lets the script in once the setting names it."""
    stranger = "99999999-0000-0000-0000-000000000000"
    with pytest.raises(RefusedError, match=r"Login failed .*\(18456\)"):
        DeploymentScripts(edited(private, ADMIN_SETTING, "", sid=stranger)).execute(
            tmp_path, tmp_path / "db.json"
        )
    created_with_another = {**private.one(SERVER).inputs["administrators"], "sid": stranger}
    ran = DeploymentScripts(edited(private, SERVER, "", administrators=created_with_another)).execute(
        tmp_path / "upgraded", tmp_path / "db-upgraded.json"
    )
    assert ran.outputs["applied"] == MIGRATIONS
    group = "77777777-0000-0000-0000-000000000000"
    as_group = edited(private, ADMIN_SETTING, "", sid=group)
    with pytest.raises(RefusedError, match=r"\(18456\)"):
        DeploymentScripts(as_group).execute(tmp_path / "no-member", tmp_path / "db.json")
    member = {group: {client_id(private.one(IDENTITY, "sql-schema-identity"))}}
    ran = DeploymentScripts(as_group, group_members=member).execute(tmp_path / "member", tmp_path / "db.json")
    assert ran.outputs["applied"] == MIGRATIONS


def test_without_the_private_record_the_server_refuses_the_container(
    private: ProgramRun, tmp_path: Path
) -> None:
    with pytest.raises(RefusedError, match=r"Deny Public Network Access is set to Yes \(47073\)"):
        DeploymentScripts(without(private, "broadcast-network-zone-sqlserver-link")).execute(
            tmp_path, tmp_path / "db.json"
        )


def test_the_policy_lets_only_a_private_script_storage_keep_account_keys(private: ProgramRun) -> None:
    (policy,) = [p for p in ALL_POLICIES if p.name == "storage-no-shared-key"]
    options = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])

    def reported(props: dict[str, Any]) -> list[str]:
        found: list[str] = []
        args = ResourceValidationArgs(STORAGE, props, "urn:test", "test", options, None, {})
        policy.validate(args, lambda message, urn=None: found.append(message))  # type: ignore[attr-defined]
        return found

    script_storage = private.one(STORAGE, "schema-runner").inputs
    assert script_storage["allowSharedKeyAccess"] is True and reported(script_storage) == []
    public = {**script_storage, "publicNetworkAccess": "Enabled"}
    assert "must refuse public network access" in reported(public)[0]
    untagged = {**script_storage, "tags": {}}
    assert "accepts account keys" in reported(untagged)[0]


# public -> private, and destroy


def test_turning_a_public_stack_private_moves_the_schema_into_the_network(dev: ProgramRun) -> None:
    private = run_stack("dev", {"network": "private"})
    for type_ in (SERVER, "azure-native:sql:Database"):
        assert dev.one(type_).urn == private.one(type_).urn  # updated in place, not replaced
    assert private.one(SERVER).inputs["publicNetworkAccess"] == "Disabled"
    assert dev.of_type("azure-native:sql:FirewallRule") and not private.of_type(
        "azure-native:sql:FirewallRule"
    )
    # Both apply the schema with the deployment script, as the same identity: only its placement
    # moves (into the script subnet, with its storage), and the firewall role goes with the firewall.
    assert local_schema(dev) == [] and local_schema(private) == []
    assert dev.one(SCRIPT, SCHEMA_SCRIPT).urn == private.one(SCRIPT, SCHEMA_SCRIPT).urn
    assert "subnetIds" not in (dev.one(SCRIPT, SCHEMA_SCRIPT).inputs.get("containerSettings") or {})
    assert private.one(SCRIPT, SCHEMA_SCRIPT).inputs["containerSettings"]["subnetIds"]
    identity = private.one(IDENTITY, "sql-schema")
    assert dev.one(IDENTITY, "sql-schema").urn == identity.urn
    assert private.one(SERVER).inputs["administrators"]["sid"] == client_id(identity)
    assert not [r for r in private.of_type(ROLE) if r.name.endswith("schema-runner-firewall-role")]


def test_destroy_leaves_nothing_of_the_script_behind(private: ProgramRun) -> None:
    """The container goes when the script ends (cleanupPreference Always; the share in our storage with
    it) and the script resource after its retention; Pulumi deletes the script before the network
    whose subnet it names (a delegated subnet with a container group in it cannot be deleted), and
    the storage, endpoint, role and identity are plain stack resources."""
    script = private.one(SCRIPT, SCHEMA_SCRIPT)
    assert (script.inputs["cleanupPreference"], script.inputs["retentionInterval"]) == ("Always", RETENTION)
    vnet = private.one("azure-native:network:VirtualNetwork")
    assert vnet.urn in script.property_dependencies["containerSettings"]
    children = [
        script,
        private.one(STORAGE, "schema-runner"),
        private.one(ENDPOINT, "schema-runner"),
        private.one(IDENTITY, "sql-schema"),
        vnet,
    ]
    assert not any(r.protect or r.retain_on_delete for r in children)
    # ACI's link on the subnet can outlive the container group: destroy deletes the script, then
    # runs the release command's delete (tests/test_subnet_release.py), then deletes the network.
    release = private.one("command:local:Command", "subnet-release")
    assert release.urn in script.dependencies
    assert vnet.urn in release.property_dependencies["environment"]
    assert release.inputs["environment"] == {
        "SUBNET_ID": script.inputs["containerSettings"]["subnetIds"][0]["id"]
    }
    assert set(release.inputs) <= {"delete", "environment", "interpreter"}  # create does nothing
    assert "serviceAssociationLinks/default" in release.inputs["delete"]


# Bring your own network


def test_a_brought_network_keeps_applying_the_schema_from_the_deploying_machine() -> None:
    vnet = (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-hub/providers/Microsoft.Network/virtualNetworks/hub"
    )
    run = run_stack(
        "test",
        {
            "networkAppSubnetId": f"{vnet}/subnets/functions",
            "networkEndpointSubnetId": f"{vnet}/subnets/endpoints",
        },
    )
    schema_scripts = [s for s in run.of_type(SCRIPT) if s.name.endswith(SCHEMA_SCRIPT)]
    assert schema_scripts == [] and run.of_type("azure-native:network:VirtualNetwork") == []
    assert len(local_schema(run)) == 1
    zones = {r.inputs["privateZoneName"] for r in run.of_type("azure-native:privatedns:PrivateZone")}
    assert "privatelink.file.core.windows.net" not in zones
    assert run.one(SERVER).inputs["administrators"]["login"] == "pulumi-deployer"
    # It connects by name once the endpoint's A record exists (before, the name is the public address).
    (dns,) = [
        r
        for r in run.of_type("azure-native:network:PrivateDnsZoneGroup")
        if r.name == "broadcast-sql-endpoint-dns"
    ]
    assert dns.urn in local_schema(run)[0].dependencies


# Bad component arguments: one clear error each


def _sql_args(**overrides: Any) -> SqlDatabaseArgs:
    zones = {group: f"/zones/{group}" for group in ("sqlServer", "blob", "queue", "table", "file")}
    values: dict[str, Any] = {
        "resource_group_name": "rg-bcast-test",
        "location": "westeurope",
        "naming": Naming(workload="bcast", environment="test", suffix="x7k2q9"),
        "administrator": None,
        "sku": DatabaseSku.parse("GP_S_Gen5_1"),
        "app_identity": UserAssignedIdentity(
            resource_id="/identities/app",
            client_id=str(uuid.uuid4()),
            principal_id=str(uuid.uuid4()),
            name="id-app",
        ),
        "private_access": PrivateAccess(endpoint_subnet_id="/subnets/snet-endpoints", dns_zone_ids=zones),
        "schema_subnet_id": "/subnets/snet-scripts",
    }
    return SqlDatabaseArgs(**{**values, **overrides})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"administrator": SqlAdministrator(login="alice", sid="a", tenant_id="t", principal_type="User")},
            "leave administrator unset or make it a Group the identity joins (got a User)",
        ),
        ({"private_access": None}, "schema_subnet_id needs private_access and app_identity"),
        (
            {"schema_subnet_id": None},
            "administrator is required when no deployment script applies the schema",
        ),
        (
            {
                "private_access": PrivateAccess(
                    endpoint_subnet_id="/s", dns_zone_ids={"sqlServer": "/zones/sql"}
                )
            },
            "private_access with a `file` DNS zone is required",
        ),
    ],
)
def test_sql_refuses_arguments_its_in_network_schema_cannot_work_with(
    overrides: dict[str, Any], message: str
) -> None:
    ran = run(lambda: SqlDatabase("sql", _sql_args(**overrides)), {}, stack="test", expect_error=True)
    assert isinstance(ran.error, ValueError) and message in str(ran.error)


def test_a_script_over_the_inline_bound_is_refused_with_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    values = ["sql-x.database.windows.net", "sqldb-x", "id-app", "0x00"]
    content = schema_runner._planned_script(values, ["AppIdentityName", "AppIdentitySid"])
    assert content.startswith("set -euo pipefail") and len(content) <= schema_runner.SCRIPT_CONTENT_LIMIT
    monkeypatch.setattr(schema_runner, "SCRIPT_CONTENT_LIMIT", len(content) - 1)
    with pytest.raises(ValueError, match=r"over \d+: ship the migrations through the script's storage"):
        schema_runner._planned_script(values, ["AppIdentityName", "AppIdentitySid"])
