"""Functions app: negotiate, publish, history and the SQL-triggered broadcasts.

Azure resources: `web.WebApp` (kind `functionapp,linux`), its host `storage.StorageAccount` with
the deployment container, role assignments for the app's user-assigned identity,
`web.WebAppFtpAllowed`/`web.WebAppScmAllowed` (basic publishing credentials off), the code
(`components.code_deployment.CodeDeployment`: OneDeploy or a run-from-package blob, from a deployment
script), the `keyvault.Vault` the Functions host keeps its keys in
(`keyvault.Secret`s for the master key, the publishers' `publisher` key and the `signalr_extension`
system key SignalR's upstream calls with, their values from `random.RandomPassword`); their
diagnostic settings; with private access, the
host storage's private endpoints (blob, queue, table) and the app's outbound virtual network
integration. Telemetry goes to the Application Insights it is given (`Monitoring`).

Every connection is identity-based: no account key, connection-string secret or password is in
an app setting.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_random as random
from pulumi_azure_native import authorization, keyvault, storage, web

from artifacts.function_package import FunctionPackage
from components.app_service import FLEX_CONSUMPTION
from components.code_deployment import (
    CodeDeployment,
    CodeDeploymentArgs,
    OneDeployTarget,
    PackageBlobTarget,
    blob_name,
)
from components.key_read_check import KeyReadCheck, KeyReadCheckArgs
from components.shared import (
    ComponentArgs,
    Role,
    RoleAssignment,
    UserAssignedIdentity,
    assign_role,
    assign_roles,
    private_endpoint,
    secure_storage_account,
    send_diagnostics,
    send_storage_diagnostics,
)
from functions import wiring

PACKAGE_CONTAINER = "app-package"
SIGNALR_SECRET = "signalr-extension-key"
"""SignalR's copy of its upstream key in the app's vault (the name deployed stacks hold)."""
PUBLISH_KEY_NAME = "publisher"
"""The host-level function key the stack sets for publishers (stack output `publishKey`)."""
SECRET_STORAGE_TYPE = "keyvault"
"""`AzureWebJobsSecretStorageType`: the host reads and writes its keys in the vault that
`AzureWebJobsSecretStorageKeyVaultUri` names, as the identity `...KeyVaultClientId` names."""
# The token predates this module's name (it was components/function_app.py): a component's type is
# part of every child's URN, so it stays as it was deployed.
TYPE_TOKEN = "broadcast:function_app:FunctionApp"


@dataclass(frozen=True, kw_only=True)
class Telemetry:
    """An Application Insights resource as the app reports to it."""

    resource_id: pulumi.Input[str]
    connection_string: pulumi.Input[str]


# Microsoft.Web/sites: the Functions host's and the code's logs ("supported logs" reference).
APP_LOGS = ("FunctionAppLogs",)
# Microsoft.KeyVault/vaults: who read or changed the key.
VAULT_LOGS = ("AuditEvent",)
VAULT_FIXED_AT_CREATION = ("properties.softDeleteRetentionInDays", "properties.enablePurgeProtection")
"""Vault properties ARM will not change on an existing vault (`ignore_changes` keeps them)."""
PRIVATE_STORAGE_GROUPS = ("blob", "queue", "table")
"""The host storage's services the app uses (AzureWebJobsStorage__blob/queue/tableServiceUri)."""

MASTER_KEY = "masterKey"
FUNCTION_KEYS = "functionKeys"
SYSTEM_KEYS = "systemKeys"
_SECRET_PREFIXES = {
    MASTER_KEY: "host--masterKey--",
    FUNCTION_KEYS: "host--functionKey--",
    SYSTEM_KEYS: "host--systemKey--",
}
_KEPT_IN_NAMES = frozenset(string.ascii_letters + string.digits)


def host_key_secret_name(key_type: str, key_name: str) -> str:
    """The Key Vault secret the Functions host keeps a host key in (azure-functions-host,
    `KeyVaultSecretsRepository`): `host--masterKey--master`, `host--functionKey--<name>`,
    `host--systemKey--<name>`, the name normalised as its `Normalize` does: letters and digits kept,
    any other character written as `-` and its code in three digits (`signalr_extension` ->
    `signalr-095extension`). Non-ASCII names are refused: Key Vault names take ASCII only."""
    if key_type not in _SECRET_PREFIXES:
        raise ValueError(f"key_type {key_type!r}: expected one of {sorted(_SECRET_PREFIXES)}")
    if not key_name.isascii() or not key_name:
        raise ValueError(f"host key name {key_name!r}: expected a non-empty ASCII name")
    normalised = "".join(c if c in _KEPT_IN_NAMES else f"-{ord(c):03d}" for c in key_name)
    return _SECRET_PREFIXES[key_type] + normalised


@dataclass(frozen=True)
class _HostKey:
    """A host key the stack generates and writes where the host reads it."""

    label: str
    """The key's logical names: `<app>-<label>-key` (its value) and `<app>-host-key-<label>`."""
    key_type: str
    key_name: str


# The master key is written too: with no `host--masterKey--*` secret the host takes its keys as
# missing, generates a new set and deletes every other `host--*` secret (ReadHostSecrets returns
# null; SecretManager generates; WriteAsync deletes the keys not in the new set).
HOST_KEYS = (
    _HostKey("master", MASTER_KEY, "master"),
    _HostKey("publish", FUNCTION_KEYS, PUBLISH_KEY_NAME),
    _HostKey("signalr", SYSTEM_KEYS, wiring.SIGNALR_EXTENSION_KEY),
)
""" Each value's RandomPassword keeps the logical name it had when the keys were set through ARM
(`<app>-publish-key`, `<app>-signalr-key`), so no key changes on upgrade."""


@dataclass(kw_only=True)
class FunctionAppArgs(ComponentArgs):
    """Arguments of `FunctionApp`."""

    server_farm_id: pulumi.Input[str]
    """Required. The App Service plan's resource id."""
    hosting_plan: str
    """Required. FlexConsumption, ElasticPremium or Dedicated: decides how runtime and code are set."""
    identity: UserAssignedIdentity
    """Required. The identity the app runs as and connects to storage, SignalR and SQL with."""
    signalr_service_uri: pulumi.Input[str]
    """Required. `https://<name>.service.signalr.net`."""
    sql_connection_string: pulumi.Input[str]
    """Required. A managed-identity connection string (no password)."""
    allowed_origins: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Required. Browser origins allowed by CORS (with credentials); never `*`."""
    telemetry: Telemetry
    """Required. The Application Insights the app reports to (its identity gets Monitoring Metrics
    Publisher there: ingestion takes Entra tokens only)."""
    python_version: str = "3.11"
    """Optional. Python version of the Functions runtime. Default: 3.11."""
    instance_memory_mb: int = 2048
    """Optional. Flex Consumption instance memory. Default: 2048."""
    maximum_instance_count: int = 40
    """Optional. Flex Consumption scale-out limit. Default: 40."""
    always_ready_instances: int = 1
    """Optional. Flex always-ready instances for each SQL-triggered function. Default: 1."""
    sql_trigger_polling_interval_ms: int = 1000
    """Optional. `Sql_Trigger_PollingIntervalMs`. Default: 1000."""
    sql_trigger_max_batch_size: int = 100
    """Optional. `Sql_Trigger_MaxBatchSize`. Default: 100."""
    message_retention_days: int = 0
    """Optional. `MessageRetentionDays`: the hourly purge deletes older messages; 0 keeps all. Default: 0."""
    storage_redundancy: str = "LRS"
    """Optional. Host storage replication. Default: LRS."""
    package: FunctionPackage | None = None
    """Optional. The code to deploy, built and deployed by a deployment script: OneDeploy on Flex
    Consumption, a run-from-package blob on Elastic Premium/Dedicated. Default: none (infrastructure
    only)."""
    deploy_after: Sequence[pulumi.Resource] = ()
    """Optional. What must exist before the code starts (its SQL triggers need the schema). Default: none."""
    extra_app_settings: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    """Optional. More app settings. Default: none."""
    tenant_id: pulumi.Input[str] | None = None
    """Required in practice (a default of none is refused with a message). The Entra tenant of the
    Key Vault that holds the host's keys. Default: none."""
    signalr_identity: UserAssignedIdentity | None = None
    """Optional. The identity SignalR Service reads the upstream key with: the key then lives in a
    Key Vault and `signalr_upstream_url` references it instead of carrying it. Default: none (the key
    is in the URL, which is a secret)."""


def _scm_host(host_names: Sequence[str]) -> str:
    """The app's Kudu (SCM) host among its enabled host names."""
    for host in host_names:
        if ".scm." in host:
            return host
    raise ValueError(f"the app has no SCM host name among {host_names}")


class FunctionApp(pulumi.ComponentResource):
    """A Linux Python Functions app wired to storage, SignalR and SQL through one identity."""

    name: pulumi.Output[str]
    """The app name."""
    resource_id: pulumi.Output[str]
    """The app's resource id."""
    default_host_name: pulumi.Output[str]
    """E.g. `func-bcast-dev-x7k2q9.azurewebsites.net`."""
    api_base_url: pulumi.Output[str]
    """`https://<host>/api`: what the site calls."""
    signalr_upstream_url: pulumi.Output[str]
    """SignalR's upstream URL template for connection events: with `signalr_identity`, the system key
    is a Key Vault reference SignalR resolves itself, so nobody with Reader on SignalR sees it;
    without it, the key is in the URL and the output is a secret."""
    package_container_url: pulumi.Output[str]
    """Blob container holding the code package."""
    host_storage_account_name: pulumi.Output[str]
    """The host storage account's name."""
    identity_roles: list[pulumi.Resource]
    """Role assignments the app needs before its code may start (its keys' vault included)."""
    host_key_secrets: list[keyvault.Secret]
    """The host's keys as Key Vault secrets: the app starts only once they exist."""
    code_deployments: list[pulumi.Resource]
    """The code deployment (Flex Consumption: OneDeploy), when a package was given."""
    publish_key: pulumi.Output[str]
    """The host-level function key `publisher` (secret): what `x-functions-key` takes to publish."""

    def __init__(self, name: str, args: FunctionAppArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        self._name = name
        self._args = args
        self._flex = args.hosting_plan == FLEX_CONSUMPTION

        self._package_uploads: list[pulumi.Resource] = []
        host_storage, container = self._host_storage()
        package_container_url = pulumi.Output.concat(host_storage.primary_endpoints.blob, PACKAGE_CONTAINER)
        vault = self._vault()
        self.identity_roles = self._identity_roles(host_storage, vault)
        values = self._key_values()
        self.host_key_secrets = self._host_key_secrets(vault, values)
        settings = self._app_settings(host_storage, container, vault)
        app = self._app(settings, container, package_container_url)
        self._disable_basic_auth(app)
        assign_roles(name, app.id, args.role_assignments, self)
        send_diagnostics(f"{name}-app-diagnostics", app.id, args.diagnostics, self, logs=APP_LOGS)
        self.code_deployments = self._deploy_code(app)
        self.signalr_upstream_url = self._signalr_upstream(app, vault, values["signalr"])
        # Publishers send it as x-functions-key; the host reads it from the vault.
        self.publish_key = pulumi.Output.secret(values["publish"].result)

        self.name = app.name
        self.resource_id = app.id
        self.default_host_name = app.default_host_name
        self.api_base_url = pulumi.Output.concat("https://", app.default_host_name, "/api")
        self.package_container_url = package_container_url
        self.host_storage_account_name = host_storage.name
        self.register_outputs(
            {
                "name": self.name,
                "resource_id": self.resource_id,
                "default_host_name": self.default_host_name,
                "api_base_url": self.api_base_url,
                "signalr_upstream_url": self.signalr_upstream_url,
                "package_container_url": self.package_container_url,
                "host_storage_account_name": self.host_storage_account_name,
                "publish_key": self.publish_key,
            }
        )

    def _child(self, depends_on: Sequence[pulumi.Resource] = ()) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=list(depends_on))

    def _host_storage(self) -> tuple[storage.StorageAccount, storage.BlobContainer]:
        """The host's storage account and the private container the code package lives in; its blob
        reads, writes and deletes go to the workspace; with private access, its blob, queue and table
        endpoints are private."""
        args = self._args
        private = args.private_access
        account = secure_storage_account(
            f"{self._name}-storage",
            args.naming.compact_name("stfunc"),
            args,
            args.storage_redundancy,
            self,
            private=private is not None,
        )
        container = storage.BlobContainer(
            f"{self._name}-package-container",
            container_name=PACKAGE_CONTAINER,
            account_name=account.name,
            resource_group_name=args.resource_group_name,
            public_access=storage.PublicAccess.NONE,
            opts=self._child(),
        )
        send_storage_diagnostics(self._name, account.id, args.diagnostics, self)
        self._storage_endpoints: list[pulumi.Resource] = []
        if private is not None:
            self._storage_endpoints = [
                private_endpoint(
                    f"{self._name}-storage-{group}-endpoint", account.id, group, args, private, self
                )
                for group in PRIVATE_STORAGE_GROUPS
            ]
        return account, container

    def _identity_roles(
        self, host_storage: storage.StorageAccount, vault: keyvault.Vault
    ) -> list[pulumi.Resource]:
        """What the app's identity needs before the host starts: its storage, telemetry, and its keys.

        The keys' role is Key Vault Secrets Officer on the whole vault: the host lists the vault's
        secrets to find its keys (a role on single secrets cannot list), and writes and deletes keys
        when one is added or renewed (functions-app-settings: "Get, Set, List, and Delete")."""
        grants = [
            ("blob", host_storage.id, Role.STORAGE_BLOB_DATA_OWNER),
            ("queue", host_storage.id, Role.STORAGE_QUEUE_DATA_CONTRIBUTOR),
            ("table", host_storage.id, Role.STORAGE_TABLE_DATA_CONTRIBUTOR),
            ("metrics", self._args.telemetry.resource_id, Role.MONITORING_METRICS_PUBLISHER),
            ("host-keys", vault.id, Role.KEY_VAULT_SECRETS_OFFICER),
        ]
        principal = self._args.identity.principal_id
        return [
            assign_role(
                f"{self._name}-identity-{suffix}",
                scope,
                RoleAssignment(principal_id=principal, role=role),
                self,
            )
            for suffix, scope, role in grants
        ]

    def _app_settings(
        self,
        host_storage: storage.StorageAccount,
        container: storage.BlobContainer,
        vault: keyvault.Vault,
    ) -> dict[str, pulumi.Input[str]]:
        """Identity-based connections to host storage, telemetry, SignalR and SQL; the host's keys in
        the vault, read as the app's identity; SQL trigger tuning."""
        args, identity = self._args, self._args.identity
        settings: dict[str, pulumi.Input[str]] = {
            "AzureWebJobsStorage__credential": "managedidentity",
            "AzureWebJobsStorage__clientId": identity.client_id,
            "AzureWebJobsStorage__blobServiceUri": host_storage.primary_endpoints.blob,
            "AzureWebJobsStorage__queueServiceUri": host_storage.primary_endpoints.queue,
            "AzureWebJobsStorage__tableServiceUri": host_storage.primary_endpoints.table,
            "APPLICATIONINSIGHTS_CONNECTION_STRING": args.telemetry.connection_string,
            "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": pulumi.Output.concat(
                "ClientId=", identity.client_id, ";Authorization=AAD"
            ),
            f"{wiring.SIGNALR_CONNECTION_SETTING}__serviceUri": args.signalr_service_uri,
            f"{wiring.SIGNALR_CONNECTION_SETTING}__credential": "managedidentity",
            f"{wiring.SIGNALR_CONNECTION_SETTING}__clientId": identity.client_id,
            wiring.SQL_CONNECTION_SETTING: args.sql_connection_string,
            wiring.SQL_TRIGGER_POLLING_INTERVAL_SETTING: str(args.sql_trigger_polling_interval_ms),
            wiring.SQL_TRIGGER_MAX_BATCH_SIZE_SETTING: str(args.sql_trigger_max_batch_size),
            wiring.MESSAGE_RETENTION_DAYS_SETTING: str(args.message_retention_days),
            "AzureWebJobsSecretStorageType": SECRET_STORAGE_TYPE,
            "AzureWebJobsSecretStorageKeyVaultUri": vault.properties.vault_uri,
            "AzureWebJobsSecretStorageKeyVaultClientId": identity.client_id,
        }
        if not self._flex:
            # Flex Consumption rejects these two: its runtime comes from functionAppConfig.
            settings["FUNCTIONS_EXTENSION_VERSION"] = "~4"
            settings["FUNCTIONS_WORKER_RUNTIME"] = "python"
            if args.package is not None:
                settings["WEBSITE_RUN_FROM_PACKAGE"] = self._package_blob(host_storage, container)
                settings["WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID"] = identity.resource_id
        settings.update(args.extra_app_settings)
        return settings

    def _flex_config(self, package_container_url: pulumi.Input[str]) -> web.FunctionAppConfigArgs:
        """Flex Consumption's runtime, scale and deployment source (the package container, read with
        the app's identity)."""
        args = self._args
        return web.FunctionAppConfigArgs(
            deployment=web.FunctionsDeploymentArgs(
                storage=web.FunctionsDeploymentStorageArgs(
                    type=web.FunctionsDeploymentStorageType.BLOB_CONTAINER,
                    value=package_container_url,
                    authentication=web.FunctionsDeploymentStorageAuthenticationArgs(
                        type=web.AuthenticationType.USER_ASSIGNED_IDENTITY,
                        user_assigned_identity_resource_id=args.identity.resource_id,
                    ),
                )
            ),
            runtime=web.FunctionsRuntimeArgs(name=web.RuntimeName.PYTHON, version=args.python_version),
            scale_and_concurrency=web.FunctionsScaleAndConcurrencyArgs(
                instance_memory_mb=args.instance_memory_mb,
                maximum_instance_count=args.maximum_instance_count,
                # An identity-based SQL trigger cannot wake a Flex app from zero: keep one warm.
                always_ready=[
                    web.FunctionsAlwaysReadyConfigArgs(
                        name=f"function:{function}", instance_count=args.always_ready_instances
                    )
                    for function in wiring.SQL_TRIGGERED_FUNCTIONS
                ],
            ),
        )

    def _app(
        self,
        settings: dict[str, pulumi.Input[str]],
        container: storage.BlobContainer,
        package_container_url: pulumi.Input[str],
    ) -> web.WebApp:
        """The app itself: HTTPS only, TLS 1.2, CORS for the site, running as the user-assigned identity."""
        args = self._args
        return web.WebApp(
            f"{self._name}-app",
            name=args.naming.name("func"),
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=dict(args.tags),
            kind="functionapp,linux",
            reserved=True,
            server_farm_id=args.server_farm_id,
            https_only=True,
            client_affinity_enabled=False,
            identity=web.ManagedServiceIdentityArgs(
                type=web.ManagedServiceIdentityType.USER_ASSIGNED,
                user_assigned_identities=[args.identity.resource_id],
            ),
            key_vault_reference_identity=args.identity.resource_id,
            function_app_config=self._flex_config(package_container_url) if self._flex else None,
            site_config=self._flex_site_config(settings)
            if self._flex
            else self._classic_site_config(settings),
            # Outbound through the delegated subnet, so the host reaches its private storage and SQL.
            virtual_network_subnet_id=args.private_access.app_subnet_id if args.private_access else None,
            # The host reads its keys at its first keyed request: the secrets and the role come first;
            # on Elastic Premium/Dedicated it starts from the package blob, uploaded before.
            opts=self._child(
                [
                    container,
                    *self.identity_roles,
                    *self.host_key_secrets,
                    *self._storage_endpoints,
                    *self._package_uploads,
                ]
            ),
        )

    def _flex_site_config(self, settings: dict[str, pulumi.Input[str]]) -> web.SiteConfigArgsDict:
        """Only what Flex Consumption accepts. It refuses netFrameworkVersion, ftpsState,
        use32BitWorkerProcess, linuxFxVersion, preWarmedInstanceCount, functionAppScaleLimit and
        functionsRuntimeScaleMonitoringEnabled (ARM error 51021, region by region, West Europe included:
        microsoft/azure-pipelines-tasks#21032, pulumi/pulumi-azure-native#4168). A plain dict, because
        SiteConfigArgs fills in netFrameworkVersion "v4.6", http20Enabled and localMySqlEnabled."""
        return {
            "app_settings": [{"name": key, "value": value} for key, value in settings.items()],
            "cors": {"allowed_origins": self._args.allowed_origins, "support_credentials": True},
            "min_tls_version": web.SupportedTlsVersions.SUPPORTED_TLS_VERSIONS_1_2,
            "scm_min_tls_version": web.SupportedTlsVersions.SUPPORTED_TLS_VERSIONS_1_2,
        }

    def _classic_site_config(self, settings: dict[str, pulumi.Input[str]]) -> web.SiteConfigArgs:
        """Elastic Premium and Dedicated: the runtime in linuxFxVersion, FTP off, Always On on Dedicated."""
        args = self._args
        return web.SiteConfigArgs(
            app_settings=[web.NameValuePairArgs(name=key, value=value) for key, value in settings.items()],
            cors=web.CorsSettingsArgs(allowed_origins=args.allowed_origins, support_credentials=True),
            min_tls_version=web.SupportedTlsVersions.SUPPORTED_TLS_VERSIONS_1_2,
            scm_min_tls_version=web.SupportedTlsVersions.SUPPORTED_TLS_VERSIONS_1_2,
            ftps_state=web.FtpsState.DISABLED,
            http20_enabled=True,
            linux_fx_version=f"Python|{args.python_version}",
            always_on=True if args.hosting_plan == "Dedicated" else None,
        )

    def _disable_basic_auth(self, app: web.WebApp) -> None:
        """No FTP or SCM basic-auth publishing credentials: deployments use Entra tokens."""
        for kind, resource in (("ftp", web.WebAppFtpAllowed), ("scm", web.WebAppScmAllowed)):
            resource(
                f"{self._name}-{kind}-basic-auth",
                name=app.name,
                resource_group_name=self._args.resource_group_name,
                allow=False,
                opts=self._child(),
            )

    def _deploy_code(self, app: web.WebApp) -> list[pulumi.Resource]:
        """OneDeploy on Flex Consumption (other plans run from the package blob set in the settings).

        OneDeploy starts the functions, SQL triggers included: only once what they need exists."""
        args = self._args
        if not self._flex or args.package is None:
            return []
        target = OneDeployTarget(app_id=app.id, scm_host=app.enabled_host_names.apply(_scm_host))
        return [self._code_deployment(target, [app, *self.identity_roles, *args.deploy_after]).script]

    def _code_deployment(
        self, target: OneDeployTarget | PackageBlobTarget, after: Sequence[pulumi.Resource]
    ) -> CodeDeployment:
        args = self._args
        assert args.package is not None
        return CodeDeployment(
            f"{self._name}-code-deployment",
            CodeDeploymentArgs(
                **args.placement(),
                package=args.package,
                target=target,
                after=after,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _key_values(self) -> dict[str, random.RandomPassword]:
        """Each host key's value, generated by the stack (so it can hand out the publish key as a
        secret output and give SignalR its key before the host ever runs)."""
        return {
            key.label: random.RandomPassword(
                f"{self._name}-{key.label}-key", length=48, special=False, opts=self._child()
            )
            for key in HOST_KEYS
        }

    def _host_key_secrets(
        self, vault: keyvault.Vault, values: dict[str, random.RandomPassword]
    ) -> list[keyvault.Secret]:
        """The host's keys as the secrets its Key Vault store reads (`host_key_secret_name`).

        Written through ARM (`vaults/secrets/write`, part of Contributor); azure-native would delete
        them through Key Vault's data plane, where the deploying identity holds no role
        (pulumi-azure-native custom_keyvault.go), so they are `deleted_with` their vault."""
        args = self._args
        return [
            keyvault.Secret(
                f"{self._name}-host-key-{key.label}",
                secret_name=host_key_secret_name(key.key_type, key.key_name),
                vault_name=vault.name,
                resource_group_name=args.resource_group_name,
                properties=keyvault.SecretPropertiesArgs(
                    value=pulumi.Output.secret(values[key.label].result)
                ),
                opts=pulumi.ResourceOptions(parent=self, deleted_with=vault),
            )
            for key in HOST_KEYS
        ]

    def _signalr_upstream(
        self, app: web.WebApp, vault: keyvault.Vault, value: random.RandomPassword
    ) -> pulumi.Output[str]:
        """Where SignalR sends connection events, with the `signalr_extension` system key the host
        requires (managed-identity upstream auth is refused there: Azure/Azure-Functions#2531).

        SignalR's upstream URL is not encrypted and anyone with Reader on SignalR can read it (Azure
        SignalR, "Upstream endpoints"), so with `signalr_identity` the URL holds
        `{@Microsoft.KeyVault(SecretUri=...)}`, which SignalR resolves with its own identity."""
        webhook = pulumi.Output.concat("https://", app.default_host_name, "/runtime/webhooks/signalr?code=")
        if self._args.signalr_identity is None:
            return pulumi.Output.secret(pulumi.Output.concat(webhook, value.result))
        secret_uri = self._signalr_key_secret(vault, value.result, self._args.signalr_identity)
        return pulumi.Output.concat(webhook, "{@Microsoft.KeyVault(SecretUri=", secret_uri, ")}")

    def _vault(self) -> keyvault.Vault:
        """A Key Vault (RBAC, soft delete; purge protection when data is protected) and its audit logs:
        the host's keys, and SignalR's copy of its upstream key. Microsoft recommends one vault per
        Functions app ("Secrets aren't scoped to individual function apps"): this one is the app's.

        Its soft-delete retention and purge protection are chosen when it is created and kept after:
        ARM refuses to change the retention once set ("The property "softDeleteRetentionInDays" has
        been set already and it can't be modified") and refuses purge protection `false` (it is
        irreversible), so a later `protectData` change must not send either (docs/day-two.md)."""
        args = self._args
        if args.tenant_id is None:
            raise ValueError(
                "FunctionAppArgs.tenant_id is required: the Functions host keeps its keys in a Key Vault "
                "of that Entra tenant (pass the deploying client's tenant id)"
            )
        vault = keyvault.Vault(
            f"{self._name}-vault",
            vault_name=args.naming.name("kv"),
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=dict(args.tags),
            properties=keyvault.VaultPropertiesArgs(
                tenant_id=args.tenant_id,
                sku=keyvault.SkuArgs(family=keyvault.SkuFamily.A, name=keyvault.SkuName.STANDARD),
                enable_rbac_authorization=True,
                enable_soft_delete=True,
                soft_delete_retention_in_days=90 if args.lock else 7,
                # Irreversible, and the API refuses `false`: only ever sent as true.
                enable_purge_protection=True if args.lock else None,
                public_network_access="Enabled",
            ),
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.lock, ignore_changes=list(VAULT_FIXED_AT_CREATION)
            ),
        )
        send_diagnostics(f"{self._name}-vault-diagnostics", vault.id, args.diagnostics, self, logs=VAULT_LOGS)
        return vault

    def _signalr_key_secret(
        self, vault: keyvault.Vault, value: pulumi.Input[str], reader: UserAssignedIdentity
    ) -> pulumi.Output[str]:
        """SignalR's copy of the `signalr_extension` key, readable by `reader` only; returns its URI
        once SignalR may use it.

        The same generated value as the host's `host--systemKey--signalr-095extension`, written in the
        same run. It stays a secret of its own because the stacks deployed before the host kept its
        keys in Key Vault hold it and SignalR's role on it: removing it would make azure-native delete
        it through Key Vault's data plane, where the deploying identity holds no role (a 403 that stops
        `pulumi up`), and pointing SignalR at the host's secret would need a new role, waited for again.
        SignalR waits until its identity can read the secret (`KeyReadCheck`) and the code is deployed."""
        args = self._args
        secret = keyvault.Secret(
            f"{self._name}-signalr-key-secret",
            secret_name=SIGNALR_SECRET,
            vault_name=vault.name,
            resource_group_name=args.resource_group_name,
            properties=keyvault.SecretPropertiesArgs(value=pulumi.Output.secret(value)),
            opts=pulumi.ResourceOptions(parent=self, deleted_with=vault),
        )
        read = assign_role(
            f"{self._name}-signalr-key-reader",
            secret.id,
            RoleAssignment(principal_id=reader.principal_id, role=Role.KEY_VAULT_SECRETS_USER),
            self,
        )
        check = self._key_read_check(vault, secret, read, reader)
        # The versionless URI (SignalR rereads it every 30 minutes), built from outputs that are not
        # secret: the secrets' own outputs are, since their value inputs are. The read check, the
        # host's copy of the key and the deployed code carry the dependencies: SignalR starts calling
        # once it can read the key and the host runs the code and knows the key.
        host_copy = next(
            s for s, k in zip(self.host_key_secrets, HOST_KEYS, strict=True) if k.label == "signalr"
        )
        ready = [
            check.resource_id,
            pulumi.Output.unsecret(host_copy.id),
            *(d.id for d in self.code_deployments if isinstance(d, pulumi.CustomResource)),
        ]
        return pulumi.Output.all(vault.properties.vault_uri, secret.name, *ready).apply(
            lambda parts: f"{parts[0].rstrip('/')}/secrets/{parts[1]}"
        )

    def _key_read_check(
        self,
        vault: keyvault.Vault,
        secret: keyvault.Secret,
        read: authorization.RoleAssignment,
        reader: UserAssignedIdentity,
    ) -> KeyReadCheck:
        """A deployment script that reads SignalR's key as SignalR's identity until Key Vault lets it."""
        args = self._args
        # The secret's name is this constant: the secret's own outputs are secret (its value input
        # is), and the check's script must not be.
        secret_uri = vault.properties.vault_uri.apply(
            lambda uri: f"{uri.rstrip('/')}/secrets/{SIGNALR_SECRET}"
        )
        return KeyReadCheck(
            f"{self._name}-signalr-key-readable",
            KeyReadCheckArgs(
                **args.placement(),
                identity=reader,
                vault_id=vault.id,
                secret_uri=secret_uri,
                role_assignment_id=read.id,
                after=[read, secret],
            ),
            pulumi.ResourceOptions(parent=self),
        )

    def _package_blob(
        self, host_storage: storage.StorageAccount, container: storage.BlobContainer
    ) -> pulumi.Output[str]:
        """The package as a private blob (Elastic Premium / Dedicated), uploaded by the code deployment
        script before the app exists (the app waits for it); returns the blob's URL."""
        args = self._args
        assert args.package is not None
        target = PackageBlobTarget(
            account_name=host_storage.name,
            account_id=host_storage.id,
            container_name=PACKAGE_CONTAINER,
            container_id=container.id,
        )
        deployment = self._code_deployment(target, [container, *self._storage_endpoints, *args.deploy_after])
        self._package_uploads.append(deployment.script)
        return pulumi.Output.concat(
            host_storage.primary_endpoints.blob, PACKAGE_CONTAINER, "/", blob_name(args.package)
        )
