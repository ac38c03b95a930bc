"""Stack settings: defaults per environment, every rule, and errors that name the key and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pulumi
import pytest
import yaml

from components.sql import DatabaseSku, FirewallRange
from settings import SETTINGS, SettingsError, load_settings, parse_ip_ranges

ROOT = Path(__file__).resolve().parent.parent
GROUP = (
    "/subscriptions/00000000-0000-0000-0000-00000000a11c/resourceGroups/rg-hub/providers/Microsoft.Network"
)
SUBNET = f"{GROUP}/virtualNetworks/hub/subnets/functions"
ZONE = f"{GROUP}/privateDnsZones"


def load(stack: str = "dev", location: str | None = "westeurope", **values: object) -> object:
    config = {f"broadcast:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}
    pulumi.runtime.set_all_config(config, [])
    return load_settings(pulumi.Config("broadcast"), stack=stack, location=location)


def test_dev_defaults() -> None:
    settings = load("dev")
    assert (settings.environment, settings.hosting_plan, settings.hosting_sku) == (
        "dev",
        "FlexConsumption",
        "FC1",
    )
    sku = settings.sql_sku
    assert (settings.signalr_sku, sku.name, sku.tier, sku.capacity) == ("Free_F1", "Basic", "Basic", 5)
    assert not settings.sql_sku.serverless and not settings.sql_zone_redundant
    assert (settings.sql_trigger_polling_interval_ms, settings.instance_memory_mb) == (100, 512)
    assert settings.sql_admin is None and settings.sql_client_ip_ranges == ()
    assert settings.tags == {"workload": "bcast", "environment": "dev", "managed-by": "pulumi"}


def test_prod_defaults_differ_where_production_needs_it() -> None:
    settings = load("prod")
    assert settings.signalr_sku == "Standard_S1"
    assert (settings.sql_sku.name, settings.sql_sku.tier, settings.sql_sku.capacity) == (
        "GP_Gen5",
        "GeneralPurpose",
        2,
    )
    assert settings.sql_zone_redundant and settings.sql_backup_retention_days == 35
    assert settings.storage_redundancy == "ZRS" and settings.sql_trigger_polling_interval_ms == 100


def test_environment_defaults_to_the_stack_name_and_must_be_known() -> None:
    with pytest.raises(SettingsError, match=r"broadcast:environment = 'feature-x' \(from the stack name"):
        load("feature-x")
    assert load("feature-x", environment="test").environment == "test"


def test_all_errors_are_reported_at_once() -> None:
    with pytest.raises(SettingsError) as raised:
        load("dev", signalrSku="Basic", instanceMemoryMb=1024, sqlZoneRedundant="maybe", location=None)
    message = str(raised.value)
    assert "broadcast:signalrSku = 'Basic': allowed: Free_F1, Standard_S1, Premium_P1" in message
    assert "broadcast:instanceMemoryMb = 1024: allowed: 512, 2048, 4096" in message
    assert "broadcast:sqlZoneRedundant = 'maybe': allowed: true or false" in message
    assert "azure-native:location is not set" in message


def test_type_errors_name_the_key() -> None:
    with pytest.raises(
        SettingsError, match=r"broadcast:signalrUnits = 'two': allowed: a value of type integer"
    ):
        load("dev", signalrUnits="two")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"hostingPlan": "ElasticPremium", "hostingSku": "P1v3"},
            "hostingSku = 'P1v3': allowed for ElasticPremium: EP1, EP2, EP3",
        ),
        ({"signalrUnits": 2}, "signalrUnits = 2: allowed for Free_F1: 1"),
        ({"signalrUnits": 11, "signalrSku": "Standard_S1"}, "signalrUnits = 11: allowed: 1, 2, 3"),
        ({"sqlAdminLogin": "admins"}, "set all three, or none"),
        ({"sqlAdminObjectId": "not-a-guid"}, "allowed: an Entra object id"),
        ({"sqlSku": "GP_Gen5_1"}, "allowed vCores for GP_Gen5: 2, 4"),
        ({"sqlSku": "P1"}, "allowed: <GP_S|GP|BC|HS>_Gen5_<vCores>"),
        ({"sqlAutoPauseDelayMinutes": 5}, "allowed: -1, or an integer from 15 to 10080"),
        ({"workload": "Broadcast-App"}, "allowed: 2-8 lowercase letters or digits"),
        ({"corsOrigins": ["*"]}, "'*' is not an origin"),
        ({"corsOrigins": ["http://example.com"]}, "allowed: https://host[:port]"),
        ({"maximumInstanceCount": 0}, "allowed: an integer from 1 to 1000"),
        ({"network": "vpn"}, "network = 'vpn': allowed: public, private"),
        (
            {"network": "private", "hostingPlan": "ElasticPremium"},
            "allowed with hostingPlan FlexConsumption only",
        ),
        ({"network": "private", "sqlClientIpRanges": ["203.0.113.7"]}, "must be empty with network private"),
        (
            {
                "sqlAdminLogin": "alice",
                "sqlAdminObjectId": "0b6ef3a4-8d4c-4bd5-9a47-9d2a3c1b2e10",
                "sqlAdminPrincipalType": "User",
            },
            "with network public the schema is applied by a deployment script by the stack's schema "
            "identity, which must sign in as the admin",
        ),
        (
            {
                "network": "private",
                "sqlAdminLogin": "app",
                "sqlAdminObjectId": "0b6ef3a4-8d4c-4bd5-9a47-9d2a3c1b2e10",
                "sqlAdminPrincipalType": "Application",
            },
            "with network private (a network of its own) the schema is applied inside the network",
        ),
        ({"networkAddressSpace": "8.8.8.0/24"}, "a private (RFC 1918) block from /16 to /26"),
        ({"networkAddressSpace": "10.0.0.0/28"}, "a private (RFC 1918) block from /16 to /26"),
        ({"network": "private", "networkAppSubnetId": SUBNET}, "set both, or neither"),
        ({"networkAppSubnetId": SUBNET, "networkEndpointSubnetId": SUBNET}, "need network private"),
        ({"networkAppSubnetId": "/subscriptions/x/subnets/y"}, "allowed: a subnet resource id"),
        (
            {"network": "private", "networkPrivateDnsZoneIds": [ZONE + "/privatelink.mysql.com"]},
            "allowed: one of each",
        ),
        ({"alertEmails": ["oncall"]}, "'oncall' is not an e-mail address"),
        (
            {"maximumInstanceCount": 6},
            "maximumInstanceCount = 6: with sqlSku Basic (at most 30 concurrent requests) the app could run "
            "34 at once and fail with error 10928; set maximumInstanceCount to 5 or less",
        ),
        ({"sqlSku": "S0", "maximumInstanceCount": 40}, "set maximumInstanceCount to 11 or less"),
        ({"sqlZoneRedundant": True}, "sqlZoneRedundant = true: the Basic SQL tier has no zone redundancy"),
        ({"sqlBackupRetentionDays": 14}, "sqlBackupRetentionDays = 14: allowed with sqlSku Basic: 1-7"),
        ({"alertSqlCpuPercent": 120}, "allowed: a percentage, an integer from 1 to 100"),
    ],
)
def test_rules(values: dict[str, object], expected: str) -> None:
    with pytest.raises(SettingsError, match=None) as raised:
        load("dev", **values)
    assert expected in str(raised.value)


def test_dtu_limits_bind_only_flex_consumption_with_a_dtu_tier() -> None:
    """A vCore database has no such cap here, and a Dedicated plan does not scale out per function."""
    assert load("dev", sqlSku="GP_S_Gen5_1", maximumInstanceCount=40).maximum_instance_count == 40
    assert load("dev", hostingPlan="Dedicated", maximumInstanceCount=40).sql_sku.name == "Basic"


def test_dtu_sizes_carry_their_arm_fields() -> None:
    basic, s0 = DatabaseSku.parse("Basic"), DatabaseSku.parse("S0")
    assert (basic.name, basic.tier, basic.family, basic.capacity) == ("Basic", "Basic", None, 5)
    assert (s0.name, s0.tier, s0.capacity, s0.max_size_bytes) == ("S0", "Standard", 10, 250 * 1024**3)
    assert basic.min_capacity is None and not basic.zone_redundancy_offered


def test_elastic_premium_defaults_to_its_smallest_sku() -> None:
    assert load("dev", hostingPlan="ElasticPremium").hosting_sku == "EP1"


def test_sql_admin_and_ranges_parse() -> None:
    settings = load(
        "dev",
        sqlAdminLogin="dba",
        sqlAdminObjectId="0b6ef3a4-8d4c-4bd5-9a47-9d2a3c1b2e10",
        sqlAdminPrincipalType="Group",
        sqlClientIpRanges=["203.0.113.0/30"],
    )
    assert settings.sql_admin is not None and settings.sql_admin.principal_type == "Group"
    assert settings.sql_client_ip_ranges == (FirewallRange(start="203.0.113.0", end="203.0.113.3"),)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("0.0.0.0/0", "never the whole internet"),
        ("10.0.0.0/8", "at most 65536"),
        ("0.0.0.0-255.255.255.255", "never the whole internet"),
        ("192.0.2.9-192.0.2.1", "ends before it starts"),
        ("not-an-ip", "is not an IPv4 address"),
        ("2001:db8::1", "is not an IPv4 address"),
    ],
)
def test_firewall_ranges_refused(value: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_ip_ranges([value])


def test_sql_sku_tiers() -> None:
    assert DatabaseSku.parse("BC_Gen5_4").tier == "BusinessCritical"
    assert DatabaseSku.parse("HS_Gen5_2").tier == "Hyperscale"
    assert not DatabaseSku.parse("GP_Gen5_2").serverless


def test_every_setting_is_declared_in_pulumi_yaml_with_its_type_and_description() -> None:
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert set(declared) == {setting.key for setting in SETTINGS}
    for setting in SETTINGS:
        assert declared[setting.key]["type"] == setting.type, setting.key
        assert declared[setting.key]["description"] == setting.description, setting.key


@pytest.mark.parametrize("stack", ["dev", "prod", "test", "review"])
def test_stack_files_only_use_declared_keys(stack: str) -> None:
    config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    keys = {setting.key for setting in SETTINGS}
    for key in config:
        namespace, name = key.split(":", 1)
        provider_key = namespace == "azure-native" and name == "location"
        assert provider_key or (namespace == "broadcast" and name in keys), key


def test_the_config_reference_lists_every_key() -> None:
    reference = (ROOT / "docs" / "settings.md").read_text()
    for setting in SETTINGS:
        assert f"| `{setting.key}` | {setting.type} |" in reference, setting.key


def test_a_named_sql_admin_needs_its_kind() -> None:
    """An application is named by its client id, a user or group by its object id: the kind decides."""
    with pytest.raises(SettingsError) as raised:
        load("dev", sqlAdminLogin="deployer", sqlAdminObjectId="0b6ef3a4-8d4c-4bd5-9a47-9d2a3c1b2e10")
    assert "missing: broadcast:sqlAdminPrincipalType" in str(raised.value)
    assert "application (client) id" in str(raised.value)


def test_a_group_cannot_deploy() -> None:
    with pytest.raises(
        SettingsError, match=r"deployerPrincipalType = 'Group': allowed: User, ServicePrincipal"
    ):
        load("dev", deployerPrincipalType="Group")


def test_the_generated_config_reference_is_current() -> None:
    """Pulumi.yaml's config block and docs/settings.md's table are generated from the declarations."""
    from settings.reference import REFERENCE_PAGE, render_pulumi_yaml, render_reference_page

    for path, render in ((REFERENCE_PAGE, render_reference_page), ("Pulumi.yaml", render_pulumi_yaml)):
        text = (ROOT / path).read_text()
        assert render(text) == text, (
            f"{path} is out of date: run `.venv/bin/python -m settings.reference --write`"
        )


def test_network_and_alert_settings_parse() -> None:
    settings = load(
        "prod",
        network="private",
        networkPrivateDnsZoneIds=[f"{ZONE}/privatelink.blob.core.windows.net"],
        alertEmails=["oncall@example.com"],
    )
    assert settings.network.private and settings.network.address_space == "10.20.0.0/24"
    assert settings.network.dns_zone_ids == {"blob": f"{ZONE}/privatelink.blob.core.windows.net"}
    assert settings.alerts.emails == ("oncall@example.com",) and settings.alerts.availability_tests is True
    assert load("dev").alerts.availability_tests is False and load("dev").network.private is False


def test_review_stacks_must_say_which_instance_they_are() -> None:
    """Review stacks share an environment; without an instance they would share a resource group."""
    with pytest.raises(SettingsError, match=r"broadcast:instance is required with environment review"):
        load("review")
    settings = load("pr-7", environment="review", instance="pr7")
    assert settings.resource_group_name == "rg-bcast-review-pr7"
    assert load("dev").resource_group_name == "rg-bcast-dev"


def test_names_that_azure_would_refuse_as_too_long_are_refused_first() -> None:
    with pytest.raises(
        SettingsError,
        match=r"storage account names would be 26 characters \(at most 24\); use a "
        r"workload of 6 characters or fewer",
    ):
        load("pr-7", environment="review", instance="pr7", workload="broadcst")


PER_ENVIRONMENT = [
    setting.key
    for setting in SETTINGS
    if isinstance(setting.default, dict) and len({repr(v) for v in setting.default.values()}) > 1
]


@pytest.mark.parametrize("stack", ["dev", "prod", "test", "review"])
def test_settings_whose_default_differs_per_environment_are_written_in_each_stack_file(stack: str) -> None:
    """So `pulumi config` shows what a stack really gets (prod's protectData, availabilityTests...)."""
    config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    assert {"protectData", "availabilityTests", "signalrSku"} <= set(PER_ENVIRONMENT)
    missing = [key for key in PER_ENVIRONMENT if f"broadcast:{key}" not in config]
    assert missing == [], f"Pulumi.{stack}.yaml leaves {missing} to the per-environment default"


@pytest.mark.parametrize(("key", "meant"), [("signalrSKU", "signalrSku"), ("protectdata", "protectData")])
def test_an_undeclared_project_key_is_refused_like_the_cli_refuses_it(key: str, meant: str) -> None:
    """pulumi/pulumi#11127: "Stack ... uses configuration value ... which is not defined by the
    project configuration"; here with the key meant."""
    with pytest.raises(SettingsError) as raised:
        load("dev", **{key: "true"})
    assert (
        f"Stack 'dev' uses configuration value 'broadcast:{key}' which is not defined by the project "
        f"configuration; did you mean `{meant}`?"
    ) in str(raised.value)


def test_other_namespaces_and_unlike_keys_are_told_apart() -> None:
    pulumi.runtime.set_all_config({"azure-native:subscriptionId": "x", "broadcast:zzz": "1"}, [])
    with pytest.raises(SettingsError) as raised:
        load_settings(pulumi.Config("broadcast"), stack="dev", location="westeurope")
    assert "azure-native" not in str(raised.value)
    assert "'broadcast:zzz' which is not defined by the project configuration; the declared keys" in str(
        raised.value
    )


def test_the_program_under_mocks_refuses_a_misspelt_key() -> None:
    from mocks import run_stack

    run = run_stack("dev", {"signalrSKU": "Standard_S1"}, expect_error=True)
    assert "did you mean `signalrSku`?" in str(run.error)
    assert [r for r in run.resources if r.type.startswith("azure-native:")] == []


def test_a_tag_value_longer_than_azure_allows_is_refused() -> None:
    assert load("dev", owner="o" * 256).tags["owner"] == "o" * 256
    too_long = r"owner = 'o{257}': allowed: a tag value of at most 256 characters"
    with pytest.raises(SettingsError, match=too_long):
        load("dev", owner="o" * 257)
