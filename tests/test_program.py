"""The whole program per stack, under mocks: every wiring the design asks for, read off the inputs
of the registered resources."""

from __future__ import annotations

import re
import uuid

import pytest

from components.shared import Role, role_assignment_name
from functions import wiring
from mocks import (
    DEPLOYER_CLIENT_ID,
    DEPLOYER_OBJECT_ID,
    SUBSCRIPTION,
    TENANT,
    ProgramRun,
    run_stack,
)
from settings.version import project_version

WEB_APP = "azure-native:web:WebApp"
SIGNALR = "azure-native:signalrservice:SignalR"
STORAGE = "azure-native:storage:StorageAccount"
ROLE = "azure-native:authorization:RoleAssignment"
IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
VAULT = "azure-native:keyvault:Vault"
SECRET = "azure-native:keyvault:Secret"
PASSWORD = "random:index/randomPassword:RandomPassword"
HOST_KEY_SECRETS = {
    "host-key-master": ("host--masterKey--master", "functions-master-key"),
    "host-key-publish": ("host--functionKey--publisher", "functions-publish-key"),
    "host-key-signalr": ("host--systemKey--signalr-095extension", "functions-signalr-key"),
}
"""Each host key secret (logical name) -> its Key Vault name and the RandomPassword it takes."""


def app_settings(run: ProgramRun) -> dict[str, str]:
    """The Functions app's app settings as a dict."""
    pairs = run.one(WEB_APP).inputs["siteConfig"]["appSettings"]
    names = [pair["name"] for pair in pairs]
    assert len(names) == len(set(names)), f"duplicate app settings: {names}"
    return {pair["name"]: pair["value"] for pair in pairs}


def identity(run: ProgramRun, logical: str = "app-identity") -> tuple[str, str, str]:
    """An identity's (resource id, client id, principal id) as the mocks assigned them."""
    registration = run.one(IDENTITY, logical)
    name = registration.inputs["resourceName"]
    resource_id = (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-test/providers/Microsoft.managedidentity/{name}"
    )
    return (
        resource_id,
        str(uuid.uuid5(uuid.NAMESPACE_URL, f"client/{name}")),
        str(uuid.uuid5(uuid.NAMESPACE_URL, f"principal/{name}")),
    )


def storage_named(run: ProgramRun, logical: str) -> str:
    return run.one(STORAGE, logical).inputs["accountName"]


def site_origin(run: ProgramRun) -> str:
    return f"https://{storage_named(run, 'site-')}.z6.web.core.windows.net"


def test_host_storage_is_reached_with_the_app_identity(stack: ProgramRun) -> None:
    settings = app_settings(stack)
    account = storage_named(stack, "functions-")
    _, client_id, _ = identity(stack)
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert settings["AzureWebJobsStorage__clientId"] == client_id
    for service in ("blob", "queue", "table"):
        assert (
            settings[f"AzureWebJobsStorage__{service}ServiceUri"]
            == f"https://{account}.{service}.core.windows.net/"
        )
    assert "AzureWebJobsStorage" not in settings, "a connection string would carry the account key"


def test_signalr_connection_is_identity_based_and_points_at_this_stacks_service(stack: ProgramRun) -> None:
    settings = app_settings(stack)
    service = stack.one(SIGNALR)
    _, client_id, _ = identity(stack)
    prefix = wiring.SIGNALR_CONNECTION_SETTING
    # The app takes the URI from the name; the mock answers with the host name Azure would give.
    assert (
        settings[f"{prefix}__serviceUri"] == f"https://{service.inputs['resourceName']}.service.signalr.net"
    )
    assert settings[f"{prefix}__serviceUri"] == "https://" + stack.exports["signalrHostName"]
    assert settings[f"{prefix}__credential"] == "managedidentity"
    assert settings[f"{prefix}__clientId"] == client_id


def test_sql_connection_uses_the_managed_identity_and_no_password(stack: ProgramRun) -> None:
    connection = app_settings(stack)[wiring.SQL_CONNECTION_SETTING]
    _, client_id, _ = identity(stack)
    server = stack.one("azure-native:sql:Server").inputs["serverName"]
    database = stack.one("azure-native:sql:Database").inputs["databaseName"]
    assert f"Server=tcp:{server}.database.windows.net,1433;" in connection
    assert f"Database={database};" in connection
    assert "Authentication=Active Directory Managed Identity;" in connection
    assert f"User Id={client_id};" in connection
    assert "Encrypt=True;" in connection
    assert "password" not in connection.lower()


@pytest.mark.parametrize(("stack_name", "polling", "batch"), [("dev", "100", "100"), ("prod", "100", "100")])
def test_sql_trigger_settings_come_from_stack_config(
    stack_name: str, polling: str, batch: str, dev: ProgramRun, prod: ProgramRun
) -> None:
    settings = app_settings({"dev": dev, "prod": prod}[stack_name])
    assert settings["Sql_Trigger_PollingIntervalMs"] == polling
    assert settings["Sql_Trigger_MaxBatchSize"] == batch


def test_sql_trigger_settings_follow_an_override() -> None:
    run = run_stack("dev", {"sqlTriggerPollingIntervalMs": 250, "sqlTriggerMaxBatchSize": 20})
    settings = app_settings(run)
    assert (settings["Sql_Trigger_PollingIntervalMs"], settings["Sql_Trigger_MaxBatchSize"]) == ("250", "20")


def test_application_insights_is_workspace_based_with_entra_ingestion(stack: ProgramRun) -> None:
    insights = stack.one("azure-native:applicationinsights:Component")
    workspace = stack.one("azure-native:operationalinsights:Workspace")
    assert insights.inputs["workspaceResourceId"].endswith("/" + workspace.inputs["workspaceName"])
    assert insights.inputs["disableLocalAuth"] is True
    settings = app_settings(stack)
    assert settings["APPLICATIONINSIGHTS_CONNECTION_STRING"].startswith("InstrumentationKey=")
    _, client_id, _ = identity(stack)
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == f"ClientId={client_id};Authorization=AAD"


def test_no_app_setting_carries_a_key_or_password(stack: ProgramRun) -> None:
    for name, value in app_settings(stack).items():
        text = f"{name}={value}".lower()
        for marker in ("accountkey", "sharedaccesssignature", "sig=", "password", "accesskey"):
            assert marker not in text, f"{name} looks like a secret"


def test_cors_allows_exactly_the_site_origin_with_credentials(stack: ProgramRun) -> None:
    cors = stack.one(WEB_APP).inputs["siteConfig"]["cors"]
    assert cors["allowedOrigins"] == [site_origin(stack)]
    assert cors["supportCredentials"] is True
    assert stack.one(SIGNALR).inputs["cors"]["allowedOrigins"] == [site_origin(stack)]
    assert stack.exports["siteUrl"] == site_origin(stack) + "/"


def test_extra_cors_origins_reach_both_the_app_and_signalr() -> None:
    run = run_stack("dev", {"corsOrigins": ["https://broadcast.example.com"]})
    expected = [site_origin(run), "https://broadcast.example.com"]
    assert run.one(WEB_APP).inputs["siteConfig"]["cors"]["allowedOrigins"] == expected
    assert run.one(SIGNALR).inputs["cors"]["allowedOrigins"] == expected


def test_function_app_transport_security(stack: ProgramRun) -> None:
    app = stack.one(WEB_APP).inputs
    assert app["kind"] == "functionapp,linux"
    assert app["httpsOnly"] is True
    assert app["siteConfig"]["minTlsVersion"] == "1.2"
    assert app["siteConfig"]["scmMinTlsVersion"] == "1.2"
    # FTP does not exist on Flex Consumption; basic-auth publishing is off on every plan.
    for kind in ("WebAppFtpAllowed", "WebAppScmAllowed"):
        assert stack.one(f"azure-native:web:{kind}").inputs["allow"] is False


def test_function_app_runs_as_the_user_assigned_identity(stack: ProgramRun) -> None:
    resource_id, _, _ = identity(stack)
    app = stack.one(WEB_APP).inputs
    assert app["identity"] == {"type": "UserAssigned", "userAssignedIdentities": [resource_id]}


@pytest.mark.parametrize(("stack_name", "memory", "maximum"), [("dev", 512, 5), ("prod", 2048, 100)])
def test_flex_consumption_app_config(
    stack_name: str, memory: int, maximum: int, dev: ProgramRun, prod: ProgramRun
) -> None:
    run = {"dev": dev, "prod": prod}[stack_name]
    resource_id, _, _ = identity(run)
    config = run.one(WEB_APP).inputs["functionAppConfig"]
    account = storage_named(run, "functions-")
    assert config["deployment"]["storage"] == {
        "type": "blobContainer",
        "value": f"https://{account}.blob.core.windows.net/app-package",
        "authentication": {"type": "UserAssignedIdentity", "userAssignedIdentityResourceId": resource_id},
    }
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    scale = config["scaleAndConcurrency"]
    assert scale["instanceMemoryMB"] == memory
    assert scale["maximumInstanceCount"] == maximum
    assert scale["alwaysReady"] == [
        {"name": f"function:{name}", "instanceCount": 1} for name in wiring.SQL_TRIGGERED_FUNCTIONS
    ]
    settings = app_settings(run)
    assert "FUNCTIONS_WORKER_RUNTIME" not in settings and "FUNCTIONS_EXTENSION_VERSION" not in settings
    plan = run.one("azure-native:web:AppServicePlan").inputs
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["kind"] == "functionapp" and plan["reserved"] is True


FLEX_REJECTED_SITE_CONFIG = {
    "netFrameworkVersion",
    "ftpsState",
    "use32BitWorkerProcess",
    "linuxFxVersion",
    "alwaysOn",
    "preWarmedInstanceCount",
    "functionAppScaleLimit",
    "functionsRuntimeScaleMonitoringEnabled",
}


def test_the_flex_app_sends_only_the_site_config_flex_accepts(stack: ProgramRun) -> None:
    """Flex Consumption refuses netFrameworkVersion, ftpsState, use32BitWorkerProcess, linuxFxVersion,
    preWarmedInstanceCount, ... with ARM error 51021, West Europe included
    (microsoft/azure-pipelines-tasks#21032, Azure/terraform-azurerm-avm-res-web-site#283 and #345,
    pulumi/pulumi-azure-native#4168). The exact set, so an SDK upgrade that adds a default is caught."""
    site_config = stack.one(WEB_APP).inputs["siteConfig"]
    assert set(site_config) == {"appSettings", "cors", "minTlsVersion", "scmMinTlsVersion"}
    assert not set(site_config) & FLEX_REJECTED_SITE_CONFIG


def test_elastic_premium_stack_uses_the_classic_settings() -> None:
    run = run_stack("prod", {"hostingPlan": "ElasticPremium", "hostingSku": "EP2", "pythonVersion": "3.12"})
    plan = run.one("azure-native:web:AppServicePlan").inputs
    assert plan["sku"] == {"name": "EP2", "tier": "ElasticPremium"}
    assert plan["kind"] == "elastic"
    app = run.one(WEB_APP).inputs
    assert "functionAppConfig" not in app
    assert app["siteConfig"]["linuxFxVersion"] == "Python|3.12"
    settings = app_settings(run)
    assert settings["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert settings["FUNCTIONS_EXTENSION_VERSION"] == "~4"


def test_dedicated_stack_keeps_the_app_always_on() -> None:
    run = run_stack("dev", {"hostingPlan": "Dedicated"})
    assert run.one("azure-native:web:AppServicePlan").inputs["sku"] == {"name": "B1", "tier": "Basic"}
    assert run.one(WEB_APP).inputs["siteConfig"]["alwaysOn"] is True


def _assignments(run: ProgramRun) -> set[tuple[str, str, str]]:
    found = set()
    for assignment in run.of_type(ROLE):
        inputs = assignment.inputs
        role = inputs["roleDefinitionId"].rsplit("/", 1)[1]
        assert inputs["roleDefinitionId"] == (
            f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/{role}"
        )
        # Identities are service principals; the deployer is what deployerPrincipalType says (User here).
        assert inputs["principalType"] == (
            "ServicePrincipal" if inputs["principalId"] != DEPLOYER_OBJECT_ID else "User"
        )
        assert inputs["roleAssignmentName"] == role_assignment_name(
            inputs["scope"], inputs["principalId"], Role(role)
        )
        found.add((inputs["scope"].rsplit("/", 1)[1], inputs["principalId"], Role(role).name))
    return found


def test_role_assignments_grant_exactly_what_each_identity_needs(stack: ProgramRun) -> None:
    _, _, principal = identity(stack)
    host = storage_named(stack, "functions-")
    insights = stack.one("azure-native:applicationinsights:Component").inputs["resourceName"]
    signalr = stack.one(SIGNALR).inputs["resourceName"]
    vault = stack.one(VAULT).inputs["vaultName"]
    assert _assignments(stack) == {
        (host, principal, "STORAGE_BLOB_DATA_OWNER"),
        (host, principal, "STORAGE_QUEUE_DATA_CONTRIBUTOR"),
        (host, principal, "STORAGE_TABLE_DATA_CONTRIBUTOR"),
        (insights, principal, "MONITORING_METRICS_PUBLISHER"),
        (signalr, principal, "SIGNALR_SERVICE_OWNER"),
        # The host lists, reads and (when it adds a key) writes its keys in the app's vault.
        (vault, principal, "KEY_VAULT_SECRETS_OFFICER"),
        # SignalR reads the upstream key, and nothing else, from Key Vault; Reader on the vault's
        # metadata lets the key read check sign in as SignalR's identity (issue 33).
        ("signalr-extension-key", identity(stack, "signalr-identity")[2], "KEY_VAULT_SECRETS_USER"),
        (vault, identity(stack, "signalr-identity")[2], "READER"),
        # The deploying identity enables the static website (a data-plane call; shared keys are off).
        (storage_named(stack, "site-"), DEPLOYER_OBJECT_ID, "STORAGE_BLOB_DATA_CONTRIBUTOR"),
        # The site upload script writes $web and signs in (Reader); the code script publishes.
        (
            storage_named(stack, "site-"),
            identity(stack, "site-upload-identity")[2],
            "STORAGE_BLOB_DATA_CONTRIBUTOR",
        ),
        (storage_named(stack, "site-"), identity(stack, "site-upload-identity")[2], "READER"),
        (
            stack.one(WEB_APP).inputs["name"],
            identity(stack, "code-deployment-identity")[2],
            "WEBSITE_CONTRIBUTOR",
        ),
        # The schema script opens and removes its own firewall rule on the server (issue 33).
        (
            stack.one("azure-native:sql:Server").inputs["serverName"],
            identity(stack, "sql-schema-identity")[2],
            "SQL_SERVER_CONTRIBUTOR",
        ),
    }


def test_the_app_starts_only_after_its_roles_and_its_keys_exist(stack: ProgramRun) -> None:
    """Storage, telemetry and the keys' vault roles; and the three host key secrets, which the host
    reads at its first keyed request (without the master key it would generate and delete keys)."""
    app = stack.one(WEB_APP)
    roles = {r.urn for r in stack.of_type(ROLE) if "functions-identity" in r.name}
    assert len(roles) == 5 and stack.one(ROLE, "functions-identity-host-keys").urn in roles
    assert roles <= set(app.dependencies)
    secrets = {stack.one(SECRET, logical).urn for logical in HOST_KEY_SECRETS}
    assert secrets <= set(app.dependencies)
    code = stack.one("azure-native:resources:AzureCliScript", "functions-code-deployment-script")
    assert app.urn in code.dependencies and roles <= set(code.dependencies)


def test_the_host_keeps_its_keys_in_the_apps_vault_read_as_the_app_identity(stack: ProgramRun) -> None:
    """Functions app settings reference: `AzureWebJobsSecretStorageType` `keyvault`, the vault's URI,
    and, for a user-assigned identity, its client id."""
    settings = app_settings(stack)
    vault = stack.one(VAULT).inputs["vaultName"]
    _, client_id, principal = identity(stack)
    assert settings["AzureWebJobsSecretStorageType"] == "keyvault"
    assert settings["AzureWebJobsSecretStorageKeyVaultUri"] == f"https://{vault}.vault.azure.net/"
    assert settings["AzureWebJobsSecretStorageKeyVaultClientId"] == client_id
    assigned = stack.one(ROLE, "functions-identity-host-keys")
    # On the vault itself (not on single secrets): the host lists the vault to find its keys.
    assert assigned.property_dependencies["scope"] == [stack.one(VAULT).urn]
    assert assigned.inputs["scope"].endswith("/" + vault)
    assert assigned.inputs["roleDefinitionId"].endswith("/b86a8fe4-44ce-4948-aee5-eccb2c155cd7")
    assert assigned.inputs["principalId"] == principal


def test_the_host_key_secrets_carry_the_generated_values_as_secrets(stack: ProgramRun) -> None:
    vault = stack.one(VAULT)
    for logical, (secret_name, password) in HOST_KEY_SECRETS.items():
        secret = stack.one(SECRET, logical)
        value = stack.one(PASSWORD, password)
        assert secret.inputs["secretName"] == secret_name
        assert secret.inputs["vaultName"] == vault.inputs["vaultName"]
        assert secret.property_dependencies["properties"] == [value.urn]
        assert "properties" in secret.secret_inputs
        assert (value.inputs["length"], value.inputs["special"]) == (48, False)
        # Deleted with the vault: azure-native would delete it through Key Vault's data plane.
        assert secret.deleted_with == vault.urn


@pytest.mark.parametrize(
    ("stack_name", "sku", "tier", "units"),
    [("dev", "Free_F1", "Free", 1), ("prod", "Standard_S1", "Standard", 1)],
)
def test_signalr_is_serverless_identity_only_and_sized_per_stack(
    stack_name: str, sku: str, tier: str, units: int, dev: ProgramRun, prod: ProgramRun
) -> None:
    service = {"dev": dev, "prod": prod}[stack_name].one(SIGNALR).inputs
    assert service["kind"] == "SignalR"
    assert {"flag": "ServiceMode", "value": "Serverless"} in service["features"]
    assert service["disableLocalAuth"] is True
    assert service["disableAadAuth"] is False
    assert service["sku"] == {"name": sku, "tier": tier, "capacity": units}


def test_signalr_units_follow_config() -> None:
    service = run_stack("prod", {"signalrUnits": 5}).one(SIGNALR).inputs
    assert service["sku"]["capacity"] == 5


def test_signalr_upstream_references_the_key_in_key_vault_and_holds_none(stack: ProgramRun) -> None:
    """Azure SignalR's upstream URL is not encrypted and Reader can read it ("Upstream endpoints"): the
    `signalr_extension` key is a Key Vault reference SignalR resolves with its own identity."""
    service = stack.one(SIGNALR)
    app_name = stack.one(WEB_APP).inputs["name"]
    key = stack.one(SECRET, "host-key-signalr")
    vault = stack.one("azure-native:keyvault:Vault").inputs
    secret = stack.one(SECRET, "signalr-key-secret")
    (template,) = service.inputs["upstream"]["templates"]
    assert template["urlTemplate"] == (
        f"https://{app_name}.azurewebsites.net/runtime/webhooks/signalr?code={{@Microsoft.KeyVault("
        f"SecretUri=https://{vault['vaultName']}.vault.azure.net/secrets/signalr-extension-key)}}"
    )
    assert key.inputs["properties"]["value"] not in template["urlTemplate"]
    assert "upstream" not in service.secret_inputs
    # SignalR's copy and the host's key come from the same generated value, secret in both.
    value = stack.one(PASSWORD, "functions-signalr-key")
    assert secret.property_dependencies["properties"] == [value.urn]
    assert key.property_dependencies["properties"] == [value.urn]
    assert "properties" in secret.secret_inputs and "properties" in key.secret_inputs
    assert key.inputs["secretName"] == "host--systemKey--" + wiring.SIGNALR_EXTENSION_KEY.replace("_", "-095")
    assert template["hubPattern"] == wiring.HUB_NAME
    assert template["categoryPattern"] == "connections"
    assert template["eventPattern"] == "connected,disconnected"
    # SignalR resolves the reference as its user-assigned identity, which may read that secret only.
    signalr_identity, _, _ = identity(stack, "signalr-identity")
    assert service.inputs["identity"] == {
        "type": "UserAssigned",
        "userAssignedIdentities": [signalr_identity],
    }
    reader = stack.one(ROLE, "signalr-key-reader")
    assert reader.inputs["scope"].endswith("/signalr-extension-key")
    # ...once SignalR's identity can read it (a deployment script reads it as that identity until Key
    # Vault lets it: up to 10 minutes), the host's key is written and the code that answers the
    # webhook is deployed.
    readable = stack.one("azure-native:resources:AzureCliScript", "signalr-key-readable-script")
    assert reader.urn in readable.dependencies
    code = stack.one("azure-native:resources:AzureCliScript", "functions-code-deployment-script")
    assert {readable.urn, key.urn, code.urn} <= set(service.dependencies)


@pytest.mark.parametrize(("stack_name", "protected"), [("dev", False), ("prod", True)])
def test_the_key_vault_is_rbac_only_and_protected_in_production(
    stack_name: str, protected: bool, dev: ProgramRun, prod: ProgramRun
) -> None:
    properties = (
        {"dev": dev, "prod": prod}[stack_name].one("azure-native:keyvault:Vault").inputs["properties"]
    )
    assert properties["enableRbacAuthorization"] is True and properties["tenantId"] == TENANT
    assert properties["enableSoftDelete"] is True
    assert properties["softDeleteRetentionInDays"] == (90 if protected else 7)
    # Purge protection is irreversible and ARM refuses `false`: absent unless on.
    assert properties.get("enablePurgeProtection") is (True if protected else None)


def test_sql_server_is_entra_only_with_the_schema_identity_as_admin_by_default(dev: ProgramRun) -> None:
    """Issue 33: the schema's deployment script signs in as the admin, so its identity is the admin
    (an application: by its client id) unless sqlAdmin* names a group it joins."""
    server = dev.one("azure-native:sql:Server").inputs
    assert server["minimalTlsVersion"] == "1.2"
    assert "administratorLoginPassword" not in server and "administratorLogin" not in server
    admins = server["administrators"]
    assert admins["azureADOnlyAuthentication"] is True
    assert admins["administratorType"] == "ActiveDirectory"
    schema = dev.one("azure-native:managedidentity:UserAssignedIdentity", "sql-schema-identity")
    assert admins["login"] == schema.inputs["resourceName"] and admins["sid"] != DEPLOYER_OBJECT_ID
    assert admins["principalType"] == "Application"


def test_in_a_brought_network_a_deploying_service_principal_is_the_sql_admin_by_its_client_id() -> None:
    """sys.server_principals: "A Microsoft Entra application's SID is the binary representation of its
    Microsoft Entra client ID"; ARM wants principalType Application for it. Only a brought network
    (no script subnet) still applies the schema as the deploying identity."""
    vnet = (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-hub/providers/Microsoft.Network/virtualNetworks/hub"
    )
    run = run_stack(
        "dev",
        {
            "deployerPrincipalType": "ServicePrincipal",
            "network": "private",
            "networkAppSubnetId": f"{vnet}/subnets/functions",
            "networkEndpointSubnetId": f"{vnet}/subnets/endpoints",
        },
    )
    admins = run.one("azure-native:sql:Server").inputs["administrators"]
    assert (admins["sid"], admins["principalType"]) == (DEPLOYER_CLIENT_ID, "Application")
    assert admins["tenantId"] == TENANT


def test_sql_admin_from_config() -> None:
    object_id = "0b6ef3a4-8d4c-4bd5-9a47-9d2a3c1b2e10"
    run = run_stack(
        "dev",
        {"sqlAdminLogin": "sql-admins", "sqlAdminObjectId": object_id, "sqlAdminPrincipalType": "Group"},
    )
    admins = run.one("azure-native:sql:Server").inputs["administrators"]
    assert (admins["login"], admins["sid"], admins["principalType"]) == ("sql-admins", object_id, "Group")


def test_dev_database_is_basic_with_its_max_size(dev: ProgramRun) -> None:
    """Basic, not serverless: the SQL trigger's polling would keep a serverless database from pausing.
    Its max size is sent (2 GB, Basic's largest) so a move from a 32 GB vCore database scales in place."""
    database = dev.one("azure-native:sql:Database").inputs
    assert database["sku"] == {"name": "Basic", "tier": "Basic", "capacity": 5}
    assert database["maxSizeBytes"] == 2 * 1024**3
    assert "autoPauseDelay" not in database and "minCapacity" not in database
    assert database["zoneRedundant"] is False
    assert dev.one("azure-native:sql:BackupShortTermRetentionPolicy").inputs["retentionDays"] == 7


def test_prod_database_is_provisioned_zone_redundant_with_long_retention(prod: ProgramRun) -> None:
    database = prod.one("azure-native:sql:Database").inputs
    assert database["sku"] == {"name": "GP_Gen5", "tier": "GeneralPurpose", "family": "Gen5", "capacity": 2}
    assert "autoPauseDelay" not in database and "minCapacity" not in database
    assert "maxSizeBytes" not in database
    assert database["zoneRedundant"] is True
    assert database["requestedBackupStorageRedundancy"] == "Zone"
    assert prod.one("azure-native:sql:BackupShortTermRetentionPolicy").inputs["retentionDays"] == 35


def test_sql_firewall_admits_azure_services_and_nothing_else_by_default(stack: ProgramRun) -> None:
    rules = [r.inputs for r in stack.of_type("azure-native:sql:FirewallRule")]
    assert rules == [
        {
            **rules[0],
            "firewallRuleName": "AllowAllWindowsAzureIps",
            "startIpAddress": "0.0.0.0",
            "endIpAddress": "0.0.0.0",
        }
    ]


def test_sql_firewall_client_ranges_from_config() -> None:
    run = run_stack("dev", {"sqlClientIpRanges": ["203.0.113.7", "198.51.100.0/24", "192.0.2.10-192.0.2.20"]})
    rules = {
        r.inputs["firewallRuleName"]: (r.inputs["startIpAddress"], r.inputs["endIpAddress"])
        for r in run.of_type("azure-native:sql:FirewallRule")
    }
    assert rules == {
        "AllowAllWindowsAzureIps": ("0.0.0.0", "0.0.0.0"),
        # Named by their range: reordering the list replaces nothing.
        "client-203.0.113.7-203.0.113.7": ("203.0.113.7", "203.0.113.7"),
        "client-198.51.100.0-198.51.100.255": ("198.51.100.0", "198.51.100.255"),
        "client-192.0.2.10-192.0.2.20": ("192.0.2.10", "192.0.2.20"),
    }
    reordered = run_stack(
        "dev", {"sqlClientIpRanges": ["192.0.2.10-192.0.2.20", "203.0.113.7", "198.51.100.0/24"]}
    )
    assert {r.urn for r in reordered.of_type("azure-native:sql:FirewallRule")} == {
        r.urn for r in run.of_type("azure-native:sql:FirewallRule")
    }


def test_static_site_storage_is_locked_down(stack: ProgramRun) -> None:
    for account in stack.of_type(STORAGE):
        inputs = account.inputs
        assert inputs["minimumTlsVersion"] == "TLS1_2"
        assert inputs["enableHttpsTrafficOnly"] is True
        assert inputs["allowBlobPublicAccess"] is False
        assert inputs["allowSharedKeyAccess"] is False
        assert re.fullmatch(r"[a-z0-9]{3,24}", inputs["accountName"])
    website = stack.one("azure-native:storage:StorageAccountStaticWebsite").inputs
    assert website["accountName"] == storage_named(stack, "site-")
    assert (website["indexDocument"], website["error404Document"]) == ("index.html", "404.html")


@pytest.mark.parametrize(("stack_name", "sku"), [("dev", "Standard_LRS"), ("prod", "Standard_ZRS")])
def test_storage_redundancy_per_stack(stack_name: str, sku: str, dev: ProgramRun, prod: ProgramRun) -> None:
    run = {"dev": dev, "prod": prod}[stack_name]
    assert {a.inputs["sku"]["name"] for a in run.of_type(STORAGE)} == {sku}


def test_every_taggable_resource_carries_the_stack_tags(stack: ProgramRun) -> None:
    environment = stack.one("azure-native:resources:ResourceGroup").inputs["tags"]["environment"]
    expected = {"workload": "bcast", "environment": environment, "managed-by": "pulumi"}
    tagged = [r for r in stack.resources if r.type.startswith("azure-native:") and "tags" in r.inputs]
    assert len(tagged) >= 10
    for resource in tagged:
        tags = dict(resource.inputs["tags"])
        if resource.type == "azure-native:applicationinsights:WebTest" or "availability" in resource.name:
            # Application Insights requires a test (and its alert) to carry a link to it.
            links = [key for key in tags if key.startswith("hidden-link:")]
            assert len(links) == 1 and tags.pop(links[0]) == "Resource"
        if resource.type == "azure-native:resources:ResourceGroup":
            assert tags.pop("version") == project_version()  # pyproject.toml's, the one place it is set
        assert tags == expected, resource.name


def test_names_follow_the_abbreviations_and_share_one_suffix(dev: ProgramRun) -> None:
    names = {
        "app": dev.one(WEB_APP).inputs["name"],
        "signalr": dev.one(SIGNALR).inputs["resourceName"],
        "sql": dev.one("azure-native:sql:Server").inputs["serverName"],
        "database": dev.one("azure-native:sql:Database").inputs["databaseName"],
        "plan": dev.one("azure-native:web:AppServicePlan").inputs["name"],
        "site": storage_named(dev, "site-"),
    }
    assert names == {
        "app": "func-bcast-dev-x7k2q9",
        "signalr": "sigr-bcast-dev-x7k2q9",
        "sql": "sql-bcast-dev-x7k2q9",
        "database": "sqldb-bcast-dev-x7k2q9",
        "plan": "asp-bcast-dev-x7k2q9",
        "site": "stwebbcastdevx7k2q9",
    }
    suffix = dev.one("random:index/randomString:RandomString").inputs
    assert (suffix["length"], suffix["upper"], suffix["special"]) == (6, False, False)


def test_stack_outputs(stack: ProgramRun) -> None:
    app_name = stack.one(WEB_APP).inputs["name"]
    assert stack.exports == {
        "resourceGroupName": stack.one("azure-native:resources:ResourceGroup").inputs["resourceGroupName"],
        "siteUrl": site_origin(stack) + "/",
        "apiBaseUrl": f"https://{app_name}.azurewebsites.net/api",
        "functionAppName": app_name,
        "signalrHostName": stack.one(SIGNALR).inputs["resourceName"] + ".service.signalr.net",
        "sqlServerFqdn": stack.one("azure-native:sql:Server").inputs["serverName"] + ".database.windows.net",
        "sqlDatabaseName": stack.one("azure-native:sql:Database").inputs["databaseName"],
        "logAnalyticsWorkspace": stack.one("azure-native:operationalinsights:Workspace").inputs[
            "workspaceName"
        ],
        "publishKey": stack.one(SECRET, "host-key-publish").inputs["properties"]["value"],
    }
    assert stack.secret_exports == {"publishKey"}


def test_no_dynamic_resource_sets_a_host_key_any_more(stack: ProgramRun) -> None:
    """Issue 33: the keys are Key Vault secrets; the retired FunctionHostKey registers nowhere."""
    dynamic = stack.of_type("pulumi-python:dynamic:Resource")
    assert not [r for r in dynamic if "key_name" in r.inputs or r.name.endswith("function-key")]


def test_no_secret_leaves_the_stack_unmarked(stack: ProgramRun) -> None:
    key = stack.one(SECRET, "host-key-signalr").inputs["properties"]["value"]
    for name, value in stack.exports.items():
        if name not in stack.secret_exports:
            assert key not in str(value), f"export {name} carries the webhook key in clear"
    # Wherever the key is an input, it travels as a secret.
    for resource in stack.resources:
        if key in repr(resource.inputs):
            assert resource.secret_inputs, f"{resource.name} has the key in a plain input"


@pytest.mark.parametrize(
    ("overrides", "key", "allowed"),
    [
        ({"signalrSku": "Basic_B1"}, "broadcast:signalrSku", "Free_F1, Standard_S1, Premium_P1"),
        (
            {"hostingPlan": "Consumption"},
            "broadcast:hostingPlan",
            "FlexConsumption, ElasticPremium, Dedicated",
        ),
        ({"sqlTriggerPollingIntervalMs": 50}, "broadcast:sqlTriggerPollingIntervalMs", "from 100 to 60000"),
        (
            {"sqlClientIpRanges": ["0.0.0.0-255.255.255.255"]},
            "broadcast:sqlClientIpRanges",
            "never the whole internet",
        ),
        ({"azure-native:location": None}, "azure-native:location", "pulumi config set azure-native:location"),
    ],
)
def test_invalid_config_fails_before_any_resource_naming_the_key(
    overrides: dict[str, object], key: str, allowed: str
) -> None:
    run = run_stack("dev", overrides, expect_error=True)
    message = str(run.error)
    assert key in message and allowed in message
    assert [r for r in run.resources if r.type != "pulumi:pulumi:Stack"] == []
