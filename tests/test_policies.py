"""The policy pack: every rule called directly with passing and failing resources, and every stack
of this project's program passing every mandatory rule."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from broadcast_policies import ALL_POLICIES
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from mocks import ROOT, ProgramRun
from preview.policy_check import check

POLICIES = {policy.name: policy for policy in ALL_POLICIES}
TAGS = {"workload": "bcast", "environment": "dev", "managed-by": "pulumi"}
OPTIONS = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def violations(
    name: str, resource_type: str, props: dict[str, Any], config: dict[str, Any] | None = None
) -> list[str]:
    """Messages `name` reports for one resource."""
    policy = POLICIES[name]
    assert isinstance(policy, ResourceValidationPolicy)
    found: list[str] = []
    args = ResourceValidationArgs(resource_type, props, "urn:test", "test", OPTIONS, None, config or {})
    policy.validate(args, lambda message, urn=None: found.append(message))  # type: ignore[operator]
    return found


STORAGE = {
    "enableHttpsTrafficOnly": True,
    "minimumTlsVersion": "TLS1_2",
    "allowBlobPublicAccess": False,
    "allowSharedKeyAccess": False,
    "tags": TAGS,
    "location": "westeurope",
}
APP = {
    "kind": "functionapp,linux",
    "httpsOnly": True,
    "identity": {"type": "UserAssigned"},
    "tags": TAGS,
    "siteConfig": {
        "minTlsVersion": "1.2",
        "scmMinTlsVersion": "1.2",
        "cors": {"allowedOrigins": ["https://site.example"]},
        "appSettings": [{"name": "AzureWebJobsStorage__credential", "value": "managedidentity"}],
    },
    "functionAppConfig": {"runtime": {"name": "python", "version": "3.11"}},
}
"""A Flex Consumption app (functionAppConfig): no FTP, and none of the siteConfig Flex refuses."""
CLASSIC_APP = {
    **{key: value for key, value in APP.items() if key != "functionAppConfig"},
    "siteConfig": {**APP["siteConfig"], "ftpsState": "Disabled", "linuxFxVersion": "Python|3.11"},  # type: ignore[dict-item]
}
"""An Elastic Premium or Dedicated app."""
SIGNALR_PROPS = {
    "features": [{"flag": "ServiceMode", "value": "Serverless"}],
    "disableLocalAuth": True,
    "cors": {"allowedOrigins": ["https://site.example"]},
    "sku": {"name": "Free_F1"},
    "tags": TAGS,
}
SQL_SERVER = {
    "administrators": {"administratorType": "ActiveDirectory", "azureADOnlyAuthentication": True},
    "minimalTlsVersion": "1.2",
    "tags": TAGS,
}


def changed(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of `base` with `a.b.c` set to value (None removes it)."""
    result = copy.deepcopy(base)
    *parents, leaf = path.split(".")
    target = result
    for key in parents:
        target = target[key]
    if value is None:
        target.pop(leaf, None)
    else:
        target[leaf] = value
    return result


@pytest.mark.parametrize(
    ("policy", "type_", "good", "path", "bad_value", "hint"),
    [
        (
            "storage-https-only",
            "azure-native:storage:StorageAccount",
            STORAGE,
            "enableHttpsTrafficOnly",
            False,
            "enable_https_traffic_only=True",
        ),
        (
            "storage-https-only",
            "azure-native:storage:StorageAccount",
            STORAGE,
            "enableHttpsTrafficOnly",
            None,
            "enable_https_traffic_only=True",
        ),
        (
            "storage-minimum-tls",
            "azure-native:storage:StorageAccount",
            STORAGE,
            "minimumTlsVersion",
            "TLS1_0",
            "TLS1_2",
        ),
        (
            "storage-no-public-blob-access",
            "azure-native:storage:StorageAccount",
            STORAGE,
            "allowBlobPublicAccess",
            True,
            "allow_blob_public_access=False",
        ),
        (
            "storage-no-shared-key",
            "azure-native:storage:StorageAccount",
            STORAGE,
            "allowSharedKeyAccess",
            None,
            "allow_shared_key_access=False",
        ),
        ("app-https-only", "azure-native:web:WebApp", APP, "httpsOnly", False, "https_only=True"),
        ("app-minimum-tls", "azure-native:web:WebApp", APP, "siteConfig.minTlsVersion", "1.0", "'1.2'"),
        (
            "app-minimum-tls",
            "azure-native:web:WebApp",
            APP,
            "siteConfig.scmMinTlsVersion",
            "1.1",
            "scmMinTlsVersion",
        ),
        (
            "app-ftps-disabled",
            "azure-native:web:WebApp",
            CLASSIC_APP,
            "siteConfig.ftpsState",
            "AllAllowed",
            "DISABLED",
        ),
        (
            "app-flex-site-config",
            "azure-native:web:WebApp",
            APP,
            "siteConfig.netFrameworkVersion",
            "v4.6",
            "siteConfig.netFrameworkVersion (ARM error 51021)",
        ),
        ("app-managed-identity", "azure-native:web:WebApp", APP, "identity", None, "managed identity"),
        (
            "app-cors-no-wildcard",
            "azure-native:web:WebApp",
            APP,
            "siteConfig.cors.allowedOrigins",
            ["*"],
            "'*'",
        ),
        (
            "app-cors-no-wildcard",
            "azure-native:web:WebApp",
            APP,
            "siteConfig.cors.allowedOrigins",
            ["http://site.example"],
            "not an https:// origin",
        ),
        (
            "app-supported-runtime",
            "azure-native:web:WebApp",
            APP,
            "functionAppConfig.runtime.version",
            "3.8",
            "python 3.11, 3.12",
        ),
        (
            "app-supported-runtime",
            "azure-native:web:WebApp",
            APP,
            "functionAppConfig",
            None,
            "declares no runtime",
        ),
        (
            "signalr-serverless",
            "azure-native:signalrservice:SignalR",
            SIGNALR_PROPS,
            "features",
            [{"flag": "ServiceMode", "value": "Default"}],
            "Serverless",
        ),
        (
            "signalr-local-auth-disabled",
            "azure-native:signalrservice:SignalR",
            SIGNALR_PROPS,
            "disableLocalAuth",
            False,
            "disable_local_auth=True",
        ),
        (
            "signalr-cors-no-wildcard",
            "azure-native:signalrservice:SignalR",
            SIGNALR_PROPS,
            "cors",
            None,
            "'*'",
        ),
        (
            "signalr-sku-allowed",
            "azure-native:signalrservice:SignalR",
            SIGNALR_PROPS,
            "sku",
            {"name": "Premium_P1"},
            "not allowed in dev",
        ),
        (
            "sql-entra-only",
            "azure-native:sql:Server",
            SQL_SERVER,
            "administrators.azureADOnlyAuthentication",
            False,
            "azure_ad_only_authentication=True",
        ),
        (
            "sql-minimum-tls",
            "azure-native:sql:Server",
            SQL_SERVER,
            "minimalTlsVersion",
            "1.0",
            "minimal_tls_version",
        ),
        ("required-tags", "azure-native:sql:Server", SQL_SERVER, "tags.environment", None, "environment"),
    ],
)
def test_rule_passes_the_good_resource_and_reports_the_bad_one(
    policy: str, type_: str, good: dict[str, Any], path: str, bad_value: Any, hint: str
) -> None:
    assert violations(policy, type_, good) == []
    reported = violations(policy, type_, changed(good, path, bad_value))
    assert reported, f"{policy} missed {path}={bad_value!r}"
    assert any(hint in message for message in reported), reported


def test_flex_apps_are_not_asked_for_ftps_and_classic_apps_may_keep_it() -> None:
    assert violations("app-ftps-disabled", "azure-native:web:WebApp", APP) == []
    assert violations("app-flex-site-config", "azure-native:web:WebApp", CLASSIC_APP) == []
    flex_with_ftps = changed(APP, "siteConfig.ftpsState", "Disabled")
    assert violations("app-flex-site-config", "azure-native:web:WebApp", flex_with_ftps)


def test_rules_ignore_other_resource_types() -> None:
    for name, policy in POLICIES.items():
        if isinstance(policy, ResourceValidationPolicy) and name not in ("allowed-locations",):
            assert violations(name, "azure-native:cdn:Profile", {"tags": TAGS}) == [], name


def test_sql_admin_password_is_reported() -> None:
    bad = {**SQL_SERVER, "administratorLogin": "sa", "administratorLoginPassword": "p"}
    assert any(
        "SQL admin login/password" in m for m in violations("sql-entra-only", "azure-native:sql:Server", bad)
    )


@pytest.mark.parametrize(
    ("name", "value", "reported"),
    [
        ("AzureWebJobsStorage", "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=abc==", True),
        ("PACKAGE_URL", "https://st.blob.core.windows.net/c/app.zip?sv=2022&sig=abc", True),
        ("SQL", "Server=tcp:x;Password=hunter2;", True),
        ("MY_API_KEY", "plain-value", True),
        ("MY_API_KEY", "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/k)", False),
        ("AzureSignalRConnectionString__credential", "managedidentity", False),
        (
            "SqlConnectionString",
            "Server=tcp:x;Authentication=Active Directory Managed Identity;User Id=c;",
            False,
        ),
    ],
)
def test_app_settings_with_credentials(name: str, value: str, reported: bool) -> None:
    props = changed(APP, "siteConfig.appSettings", [{"name": name, "value": value}])
    found = violations("app-settings-no-secrets", "azure-native:web:WebApp", props)
    assert bool(found) == reported, found


@pytest.mark.parametrize(
    ("start", "end", "ok"),
    [
        ("0.0.0.0", "0.0.0.0", True),
        ("203.0.113.7", "203.0.113.7", True),
        ("198.51.0.0", "198.51.255.255", True),
        ("0.0.0.0", "255.255.255.255", False),
        ("10.0.0.0", "10.255.255.255", False),
        ("not", "an-ip", False),
    ],
)
def test_sql_firewall(start: str, end: str, ok: bool) -> None:
    found = violations(
        "sql-firewall-not-open",
        "azure-native:sql:FirewallRule",
        {"startIpAddress": start, "endIpAddress": end},
    )
    assert (found == []) == ok, found


def test_sql_firewall_limit_is_configurable() -> None:
    props = {"startIpAddress": "203.0.113.0", "endIpAddress": "203.0.113.255"}
    assert violations("sql-firewall-not-open", "azure-native:sql:FirewallRule", props, {"maxAddresses": 16})


def test_production_database_needs_zone_redundancy() -> None:
    prod = {
        "tags": {**TAGS, "environment": "prod"},
        "zoneRedundant": True,
        "requestedBackupStorageRedundancy": "Zone",
    }
    assert violations("sql-production-resilience", "azure-native:sql:Database", prod) == []
    assert violations(
        "sql-production-resilience",
        "azure-native:sql:Database",
        {**prod, "zoneRedundant": False, "requestedBackupStorageRedundancy": "Local"},
    )
    dev = {**prod, "tags": TAGS, "zoneRedundant": False}
    assert violations("sql-production-resilience", "azure-native:sql:Database", dev) == []


def test_static_website_documents() -> None:
    good = {"indexDocument": "index.html", "error404Document": "404.html"}
    assert (
        violations("static-website-documents", "azure-native:storage:StorageAccountStaticWebsite", good) == []
    )
    assert (
        len(violations("static-website-documents", "azure-native:storage:StorageAccountStaticWebsite", {}))
        == 2
    )


def test_allowed_locations_default_and_config() -> None:
    assert violations("allowed-locations", "azure-native:sql:Server", {"location": "westeurope"}) == []
    assert violations("allowed-locations", "azure-native:sql:Server", {"location": "West Europe"}) == []
    assert violations(
        "allowed-locations",
        "azure-native:sql:Server",
        {"location": "westeurope"},
        {"allowedLocations": ["swedencentral"]},
    )


def test_required_tags_config() -> None:
    assert violations(
        "required-tags", "azure-native:sql:Server", SQL_SERVER, {"requiredTags": ["cost-center"]}
    )


def test_signalr_sku_config_per_environment() -> None:
    config = {"allowedSkus": {"dev": ["Standard_S1"]}}
    assert violations("signalr-sku-allowed", "azure-native:signalrservice:SignalR", SIGNALR_PROPS, config)
    untagged = changed(SIGNALR_PROPS, "tags", None)
    assert any(
        "environment" in m
        for m in violations("signalr-sku-allowed", "azure-native:signalrservice:SignalR", untagged)
    )


def test_public_network_access_only_when_forbidden() -> None:
    props = {"publicNetworkAccess": "Enabled"}
    assert violations("public-network-access", "azure-native:sql:Server", props) == []
    assert violations(
        "public-network-access", "azure-native:sql:Server", props, {"allowPublicNetworkAccess": False}
    )
    assert (
        violations(
            "public-network-access",
            "azure-native:sql:Server",
            {"publicNetworkAccess": "Disabled"},
            {"allowPublicNetworkAccess": False},
        )
        == []
    )


def test_every_policy_has_a_description_and_an_enforcement_level() -> None:
    assert len(POLICIES) == len(ALL_POLICIES)
    for policy in ALL_POLICIES:
        assert policy.description and policy.enforcement_level in (
            EnforcementLevel.MANDATORY,
            EnforcementLevel.ADVISORY,
        )


# The program's own stacks


def test_every_stack_passes_every_mandatory_policy(stack: ProgramRun) -> None:
    assert [v for v in check(stack) if v.enforcement == EnforcementLevel.MANDATORY] == []


def stack_resources(run: ProgramRun) -> list[PolicyResource]:
    """The run's Azure resources as the pack sees them (copies: tests may edit them)."""
    return [
        PolicyResource(r.type, copy.deepcopy(r.inputs), r.urn, r.name, OPTIONS, None, None, [], {})
        for r in run.resources
        if r.type.startswith("azure-native:")
    ]


def stack_violations(
    name: str, resources: list[PolicyResource], config: dict[str, Any] | None = None
) -> list[str]:
    policy = POLICIES[name]
    assert isinstance(policy, StackValidationPolicy)
    found: list[str] = []
    policy.validate(
        StackValidationArgs(resources, config or {}), lambda message, urn=None: found.append(message)
    )  # type: ignore[misc]
    return found


def test_stack_rule_catches_a_missing_building_block(dev: ProgramRun) -> None:
    resources = [r for r in stack_resources(dev) if r.resource_type != "azure-native:signalrservice:SignalR"]
    assert any("0 SignalR Service" in m for m in stack_violations("stack-building-blocks", resources))


def test_stack_rule_catches_settings_pointing_at_another_stack(dev: ProgramRun) -> None:
    resources = stack_resources(dev)
    for resource in resources:
        if resource.resource_type == "azure-native:web:WebApp":
            settings = resource.props["siteConfig"]["appSettings"]
            for pair in settings:
                if pair["name"] == "AzureSignalRConnectionString__serviceUri":
                    pair["value"] = "https://someone-else.service.signalr.net"
                if pair["name"] == "SqlConnectionString":
                    pair["value"] = pair["value"].replace("sql-bcast-dev", "sql-other")
    found = stack_violations("stack-building-blocks", resources)
    assert any("not this stack's SignalR" in m for m in found)
    assert any("does not point at this stack's server" in m for m in found)


def test_a_basic_database_is_refused_zone_redundancy() -> None:
    basic = {"tags": TAGS, "sku": {"name": "Basic", "tier": "Basic", "capacity": 5}, "zoneRedundant": False}
    assert violations("sql-dtu-no-zone-redundancy", "azure-native:sql:Database", basic) == []
    found = violations(
        "sql-dtu-no-zone-redundancy", "azure-native:sql:Database", {**basic, "zoneRedundant": True}
    )
    assert any("Basic SQL tier has no zone redundancy" in m for m in found)


def test_stack_rule_refuses_a_scale_out_the_basic_database_cannot_serve(dev: ProgramRun) -> None:
    resources = stack_resources(dev)
    assert stack_violations("stack-sql-workers", resources) == []
    for resource in resources:
        if resource.resource_type == "azure-native:web:WebApp":
            resource.props["functionAppConfig"]["scaleAndConcurrency"]["maximumInstanceCount"] = 40
    found = stack_violations("stack-sql-workers", resources)
    assert any("can run 204 SQL requests at once" in m and "30 workers" in m for m in found)


def test_production_backup_retention_rule(prod: ProgramRun) -> None:
    resources = stack_resources(prod)
    assert stack_violations("stack-production-backups", resources) == []
    assert stack_violations("stack-production-backups", resources, {"minimumRetentionDays": 36})
    without = [r for r in resources if r.resource_type != "azure-native:sql:BackupShortTermRetentionPolicy"]
    assert any(
        "no backup retention policy" in m for m in stack_violations("stack-production-backups", without)
    )


def test_offline_check_reports_a_broken_resource(dev: ProgramRun) -> None:
    broken = copy.deepcopy(dev)
    signalr = next(r for r in broken.resources if r.type == "azure-native:signalrservice:SignalR")
    signalr.inputs["disableLocalAuth"] = False
    found = check(broken)
    assert [v.policy for v in found] == ["signalr-local-auth-disabled"]
    assert found[0].resource == signalr.urn
    disabled = check(broken, {"signalr-local-auth-disabled": "disabled"})
    assert disabled == []


UPSTREAM = "https://func-x.azurewebsites.net/runtime/webhooks/signalr?code="
REFERENCE = "{@Microsoft.KeyVault(SecretUri=https://kv-x.vault.azure.net/secrets/signalr-extension-key)}"


@pytest.mark.parametrize(
    ("url", "identity", "hint"),
    [
        (UPSTREAM + REFERENCE, {"type": "UserAssigned"}, None),
        (UPSTREAM + "p4ssw0rdp4ssw0rd", {"type": "UserAssigned"}, "carries a key in clear"),
        ("https://func-x.azurewebsites.net/api/hook?sig=abc&x=1", None, "carries a key in clear"),
        (UPSTREAM + REFERENCE, None, "no managed identity to read it"),
    ],
)
def test_signalr_upstream_urls_carry_no_key(
    url: str, identity: dict[str, str] | None, hint: str | None
) -> None:
    props = {**SIGNALR_PROPS, "upstream": {"templates": [{"urlTemplate": url}]}, "identity": identity}
    found = violations("signalr-upstream-no-keys", "azure-native:signalrservice:SignalR", props)
    assert (hint is None and found == []) or (hint is not None and any(hint in m for m in found)), found


KEY_VAULT = {"tags": {**TAGS, "environment": "prod"}, "properties": {"enableRbacAuthorization": True}}


def test_key_vaults_use_roles_and_production_ones_cannot_be_purged() -> None:
    vault = "azure-native:keyvault:Vault"
    assert violations("keyvault-rbac", vault, KEY_VAULT) == []
    assert violations("keyvault-rbac", vault, changed(KEY_VAULT, "properties.enableRbacAuthorization", False))
    assert violations("keyvault-production-purge-protection", vault, KEY_VAULT)
    protected = changed(KEY_VAULT, "properties.enablePurgeProtection", True)
    assert violations("keyvault-production-purge-protection", vault, protected) == []
    dev = changed(KEY_VAULT, "tags.environment", "dev")
    assert violations("keyvault-production-purge-protection", vault, dev) == []


def test_the_policy_page_lists_every_rule_with_its_level_and_description() -> None:
    page = (ROOT / "docs" / "policies.md").read_text()
    for policy in ALL_POLICIES:
        level = (policy.enforcement_level or EnforcementLevel.MANDATORY).value
        assert f"| `{policy.name}` | {level} | {policy.description} |" in page, policy.name


def test_the_private_stack_passes_every_mandatory_policy(private: ProgramRun) -> None:
    assert [v for v in check(private) if v.enforcement == EnforcementLevel.MANDATORY] == []


def without(run: ProgramRun, drop: Any) -> ProgramRun:
    """A copy of the run without the resources `drop(resource)` selects."""
    broken = copy.deepcopy(run)
    broken.resources = [r for r in broken.resources if not drop(r)]
    return broken


def test_a_resource_without_diagnostic_settings_is_reported(dev: ProgramRun) -> None:
    broken = without(dev, lambda r: r.name == "broadcast-signalr-diagnostics")
    found = [v for v in check(broken) if v.policy == "diagnostics-everywhere"]
    assert len(found) == 1 and "SignalR" in found[0].message
    assert found[0].resource == dev.one("azure-native:signalrservice:SignalR").urn


def test_storage_without_blob_logs_and_sql_without_auditing_are_reported(dev: ProgramRun) -> None:
    broken = without(dev, lambda r: r.name in ("broadcast-site-blob-diagnostics", "broadcast-sql-auditing"))
    messages = [v.message for v in check(broken) if v.policy == "diagnostics-everywhere"]
    assert any("logs no blob reads and writes" in m for m in messages)
    assert any("is not audited to Log Analytics" in m for m in messages)


def test_an_unlocked_production_database_is_reported(prod: ProgramRun, dev: ProgramRun) -> None:
    broken = without(prod, lambda r: r.name == "broadcast-sql-database-lock")
    found = [v for v in check(broken) if v.policy == "production-locks"]
    assert [v.resource for v in found] == [prod.one("azure-native:sql:Database").urn]
    assert not dev.of_type("azure-native:authorization:ManagementLockByScope")
    assert [v for v in check(dev) if v.policy == "production-locks"] == []


def test_a_private_endpoint_beside_an_open_door_is_reported(private: ProgramRun) -> None:
    broken = copy.deepcopy(private)
    server = next(r for r in broken.resources if r.type == "azure-native:sql:Server")
    server.inputs["publicNetworkAccess"] = "Enabled"
    found = [v for v in check(broken) if v.policy == "private-network-closed"]
    assert [v.resource for v in found] == [server.urn]
