"""Each component alone, with minimal args: what it declares, its outputs and its parent links."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from artifacts.function_package import plan_package
from components.app_service import HostingPlan, HostingPlanArgs
from components.functions_app import FunctionApp, FunctionAppArgs, Telemetry
from components.shared import Deployer, Naming, Role, RoleAssignment, UserAssignedIdentity, role_definition_id
from components.signalr import SignalR, SignalRArgs
from components.sql import DatabaseSku, SqlAdministrator, SqlDatabase, SqlDatabaseArgs
from components.static_site import StaticSite, StaticSiteArgs
from mocks import SUBSCRIPTION, ProgramRun, run

RG_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-test"


def common() -> dict[str, Any]:
    return {
        "resource_group_name": "rg-test",
        "location": "westeurope",
        "naming": Naming(workload="demo", environment="dev", suffix="abc123"),
        "tags": {"workload": "demo"},
    }


def declare(build: Any) -> tuple[ProgramRun, dict[str, Any]]:
    """Run `build()` under mocks and resolve the component's declared outputs."""
    outputs: dict[str, Any] = {}

    def body() -> None:
        component = build()
        for name in (
            "name",
            "resource_id",
            "url",
            "origin",
            "host_name",
            "service_uri",
            "fully_qualified_domain_name",
            "database_name",
            "api_base_url",
            "default_host_name",
        ):
            if hasattr(component, name):
                pulumi.export(name, getattr(component, name))

    result = run(body, {})
    outputs.update(result.exports)
    return result, outputs


def children_of(result: ProgramRun, component_type: str) -> list[str]:
    parent = next(r for r in result.resources if r.type == component_type)
    return sorted(r.type for r in result.resources if r.parent == parent.urn)


def test_static_site() -> None:
    result, outputs = declare(lambda: StaticSite("site", StaticSiteArgs(**common())))
    assert children_of(result, "broadcast:static_site:StaticSite") == [
        "azure-native:storage:StorageAccount",
        "azure-native:storage:StorageAccountStaticWebsite",
    ]
    assert outputs["name"] == "stwebdemodevabc123"
    assert outputs["origin"] == "https://stwebdemodevabc123.z6.web.core.windows.net"
    assert outputs["url"] == outputs["origin"] + "/"


def test_the_website_is_enabled_after_the_deployers_role_and_removed_before_it() -> None:
    """Enabling the static website is a data-plane call made with the deployer's token: the website
    depends on the role, so Pulumi creates it after and deletes it before the role (dependents first)."""
    site: list[StaticSite] = []

    def build() -> StaticSite:
        site.append(StaticSite("site", StaticSiteArgs(**common(), deployer=Deployer(principal_id="oid"))))
        site[0].publish({}, "{}")
        return site[0]

    result, _ = declare(build)
    role = result.one("azure-native:authorization:RoleAssignment", "deployer-blob")
    website = result.one("azure-native:storage:StorageAccountStaticWebsite", "site-")
    upload = result.one("azure-native:resources:AzureCliScript", "site-upload")
    assert role.urn in website.dependencies
    assert website.urn in upload.dependencies and not result.of_type("pulumi-python:dynamic:Resource")


def test_static_site_grants_roles_on_its_account() -> None:
    principal = "9d3c4e58-0000-4000-8000-000000000001"
    result, _ = declare(
        lambda: StaticSite(
            "site",
            StaticSiteArgs(
                **common(),
                role_assignments={
                    "reader": RoleAssignment(principal_id=principal, role=Role.STORAGE_BLOB_DATA_READER),
                    "editor": RoleAssignment(
                        principal_id=principal, role=Role.STORAGE_BLOB_DATA_CONTRIBUTOR, principal_type="User"
                    ),
                },
            ),
        )
    )
    # Named by key, so reordering the mapping never changes a resource's identity.
    names = sorted(r.name for r in result.of_type("azure-native:authorization:RoleAssignment"))
    assert names == ["site-role-editor", "site-role-reader"]
    assignment = result.one("azure-native:authorization:RoleAssignment", "editor").inputs
    assert assignment["scope"].endswith("/stwebdemodevabc123")
    assert (assignment["principalId"], assignment["principalType"]) == (principal, "User")
    assert assignment["roleDefinitionId"].endswith(Role.STORAGE_BLOB_DATA_CONTRIBUTOR.value)


@pytest.mark.parametrize(
    ("plan", "sku", "kind", "tier"),
    [
        ("FlexConsumption", "FC1", "functionapp", "FlexConsumption"),
        ("ElasticPremium", "EP3", "elastic", "ElasticPremium"),
        ("Dedicated", "P1v3", "linux", "PremiumV3"),
        ("Dedicated", "S1", "linux", "Standard"),
    ],
)
def test_hosting_plan(plan: str, sku: str, kind: str, tier: str) -> None:
    result, outputs = declare(lambda: HostingPlan("plan", HostingPlanArgs(**common(), plan=plan, sku=sku)))
    inputs = result.one("azure-native:web:AppServicePlan").inputs
    assert (inputs["kind"], inputs["sku"], inputs["reserved"]) == (kind, {"name": sku, "tier": tier}, True)
    assert ("maximumElasticWorkerCount" in inputs) == (plan == "ElasticPremium")
    assert outputs["name"] == "asp-demo-dev-abc123"


def test_hosting_plan_refuses_an_unknown_plan() -> None:
    result = run(
        lambda: HostingPlan("plan", HostingPlanArgs(**common(), plan="Consumption")), {}, expect_error=True
    )
    assert "unknown hosting plan 'Consumption'; allowed: FlexConsumption, ElasticPremium, Dedicated" in str(
        result.error
    )


def test_signalr_without_upstream() -> None:
    result, outputs = declare(
        lambda: SignalR(
            "signalr",
            SignalRArgs(
                **common(), resource_name="sigr-demo", allowed_origins=["https://site.example"], hub="chat"
            ),
        )
    )
    inputs = result.one("azure-native:signalrservice:SignalR").inputs
    assert "upstream" not in inputs
    assert inputs["cors"] == {"allowedOrigins": ["https://site.example"]}
    assert outputs["host_name"] == "sigr-demo.service.signalr.net"
    assert outputs["service_uri"] == "https://sigr-demo.service.signalr.net"


def test_sql_database() -> None:
    result, outputs = declare(
        lambda: SqlDatabase(
            "sql",
            SqlDatabaseArgs(
                **common(),
                sku=DatabaseSku.parse("GP_S_Gen5_2"),
                auto_pause_delay_minutes=-1,
                administrator=SqlAdministrator(
                    login="dba", sid="oid", tenant_id="tid", principal_type="Group"
                ),
            ),
        )
    )
    assert children_of(result, "broadcast:sql:SqlDatabase") == [
        "azure-native:sql:BackupShortTermRetentionPolicy",
        "azure-native:sql:Database",
        "azure-native:sql:FirewallRule",
        "azure-native:sql:Server",
        "azure-native:sql:ServerAzureADAdministrator",
    ]
    database = result.one("azure-native:sql:Database").inputs
    assert (database["autoPauseDelay"], database["sku"]["capacity"]) == (-1, 2)
    assert outputs["fully_qualified_domain_name"] == "sql-demo-dev-abc123.database.windows.net"
    assert outputs["database_name"] == "sqldb-demo-dev-abc123"
    # ARM reads the server's `administrators` at creation only: later changes go through the
    # administrator's own resource (azure-native sql.Server: "If used for server update, it will be
    # ignored or it will result in an error. For updates individual APIs will need to be used").
    server = next(r for r in result.resources if r.type == "azure-native:sql:Server")
    assert server.ignore_changes == ["administrators"]
    admin = result.one("azure-native:sql:ServerAzureADAdministrator")
    assert {k: admin.inputs[k] for k in ("administratorName", "login", "sid", "tenantId")} == {
        "administratorName": "ActiveDirectory",
        "login": "dba",
        "sid": "oid",
        "tenantId": "tid",
    }
    assert admin.deleted_with == server.urn


def test_function_app_on_a_dedicated_plan_runs_from_a_package_blob() -> None:
    identity = UserAssignedIdentity(
        resource_id=f"{RG_ID}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id",
        client_id="cid",
        principal_id="pid",
        name="id",
    )
    package = plan_package("3.11")
    result, outputs = declare(
        lambda: FunctionApp(
            "fn",
            FunctionAppArgs(
                **common(),
                server_farm_id=f"{RG_ID}/providers/Microsoft.Web/serverfarms/asp",
                hosting_plan="Dedicated",
                identity=identity,
                signalr_service_uri="https://s.service.signalr.net",
                sql_connection_string="Server=x",
                allowed_origins=["https://site.example"],
                telemetry=Telemetry(
                    resource_id=f"{RG_ID}/providers/Microsoft.Insights/components/appi",
                    connection_string="InstrumentationKey=k",
                ),
                package=package,
                tenant_id="tenant",
            ),
        )
    )
    settings = {
        p["name"]: p["value"]
        for p in result.one("azure-native:web:WebApp").inputs["siteConfig"]["appSettings"]
    }
    upload = result.one("azure-native:resources:AzureCliScript", "fn-code-deployment")
    assert f"--name functions-{package.sha256}.zip" in upload.inputs["scriptContent"]
    assert settings["WEBSITE_RUN_FROM_PACKAGE"] == (
        f"https://stfuncdemodevabc123.blob.core.windows.net/app-package/functions-{package.sha256}.zip"
    )
    assert settings["WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID"] == identity.resource_id
    assert outputs["api_base_url"] == "https://func-demo-dev-abc123.azurewebsites.net/api"
    assert upload.urn in result.one("azure-native:web:WebApp").dependencies, "the app reads it at start"
    assert not result.of_type("pulumi-python:dynamic:Resource") or not [
        r for r in result.of_type("pulumi-python:dynamic:Resource") if "package" in r.name or "code" in r.name
    ]


def test_function_app_without_a_tenant_is_refused_with_the_reason() -> None:
    """The host keeps its keys in a Key Vault, which needs its Entra tenant."""
    identity = UserAssignedIdentity(resource_id="/id", client_id="cid", principal_id="pid", name="id")
    with pytest.raises(ValueError, match=r"tenant_id is required: the Functions host keeps its keys"):
        FunctionApp(
            "fn",
            FunctionAppArgs(
                **common(),
                server_farm_id="/asp",
                hosting_plan="FlexConsumption",
                identity=identity,
                signalr_service_uri="https://s.service.signalr.net",
                sql_connection_string="Server=x",
                allowed_origins=["https://site.example"],
                telemetry=Telemetry(resource_id="/appi", connection_string="InstrumentationKey=k"),
            ),
        )


def test_role_definition_id_needs_a_subscription_scope() -> None:
    assert role_definition_id(f"{RG_ID}/x", Role.SIGNALR_SERVICE_OWNER) == (
        f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/"
        "7e4f1700-ea5a-4f59-8f37-079cfe29dce3"
    )
    with pytest.raises(ValueError, match="not a resource id under a subscription"):
        role_definition_id("/providers/Microsoft.Web/sites/x", Role.SIGNALR_SERVICE_OWNER)


def test_naming_refuses_an_invalid_storage_name() -> None:
    naming = Naming(workload="averylongworkload", environment="dev", suffix="abcdef")
    result = run(lambda: pulumi.export("n", naming.compact_name("stweb")), {}, expect_error=True)
    assert "must be 3-24 lowercase letters and digits" in str(result.error)


# "Resource limits for single databases using the vCore purchasing model", General Purpose serverless:
# min-max vCores per size.
SERVERLESS_MINIMUM_VCORES = {
    1: 0.5, 2: 0.5, 4: 0.5, 6: 0.75, 8: 1.0, 10: 1.25, 12: 1.5, 14: 1.75,
    16: 2.0, 18: 2.25, 20: 2.5, 24: 3.0, 32: 4.0, 40: 5.0, 80: 10.0,
}  # fmt: skip


@pytest.mark.parametrize(("vcores", "minimum"), sorted(SERVERLESS_MINIMUM_VCORES.items()))
def test_serverless_min_capacity_follows_the_documented_floor_for_every_size(
    vcores: int, minimum: float
) -> None:
    result, _ = declare(
        lambda: SqlDatabase(
            "sql",
            SqlDatabaseArgs(
                **common(),
                sku=DatabaseSku.parse(f"GP_S_Gen5_{vcores}"),
                administrator=SqlAdministrator(
                    login="dba", sid="oid", tenant_id="tid", principal_type="Group"
                ),
            ),
        )
    )
    database = result.one("azure-native:sql:Database").inputs
    assert (database["sku"]["capacity"], database["minCapacity"]) == (vcores, minimum)


def test_provisioned_databases_have_no_min_capacity() -> None:
    assert DatabaseSku.parse("GP_Gen5_8").min_capacity is None
