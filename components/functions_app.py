"""Functions app: negotiate, publish, history and the SQL-triggered broadcasts.

Azure resources: `web.WebApp` (kind `functionapp,linux`), its host `storage.StorageAccount` with
the deployment container, role assignments for the app's user-assigned identity,
`web.WebAppFtpAllowed`/`web.WebAppScmAllowed` (basic publishing credentials off), the code
(`components.code_deployment.CodeDeployment`: OneDeploy or a run-from-package blob, from a deployment
script), the `signalr_extension` system key SignalR's upstream calls
with and the `keyvault.Vault` that keeps it; their diagnostic settings; with private access, the
host storage's private endpoints (blob, queue, table) and the app's outbound virtual network
integration. Telemetry goes to the Application Insights it is given (`Monitoring`).

Every connection is identity-based: no account key, connection-string secret or password is in
an app setting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_random as random
from pulumi_azure_native import keyvault, storage, web

from artifacts.function_package import FunctionPackage
from components.app_service import FLEX_CONSUMPTION
from components.code_deployment import (
    CodeDeployment,
    CodeDeploymentArgs,
    OneDeployTarget,
    PackageBlobTarget,
    blob_name,
)
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
from data_plane.host_key import FUNCTION_KEYS, SYSTEM_KEYS, FunctionHostKey
from data_plane.role_propagation import RolePropagation
from functions import wiring

PACKAGE_CONTAINER = "app-package"
PUBLISH_KEY_NAME = "publisher"
"""The host-level function key the stack sets for publishers (stack output `publishKey`)."""
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
    """Optional. The Entra tenant of the Key Vault that holds the upstream key; required with
    `signalr_identity`. Default: none."""
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
    """Role assignments the app needs before its code may start."""
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
        self.identity_roles = self._identity_roles(host_storage)
        settings = self._app_settings(host_storage, container)
        app = self._app(settings, container, package_container_url)
        self._disable_basic_auth(app)
        assign_roles(name, app.id, args.role_assignments, self)
        send_diagnostics(f"{name}-app-diagnostics", app.id, args.diagnostics, self, logs=APP_LOGS)
        self.code_deployments = self._deploy_code(app)
        self.signalr_upstream_url = self._signalr_upstream(app)
        self.publish_key = self._publish_key(app)

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

    def _identity_roles(self, host_storage: storage.StorageAccount) -> list[pulumi.Resource]:
        """What the app's identity needs before the host starts: its storage, and telemetry."""
        grants = [
            ("blob", host_storage.id, Role.STORAGE_BLOB_DATA_OWNER),
            ("queue", host_storage.id, Role.STORAGE_QUEUE_DATA_CONTRIBUTOR),
            ("table", host_storage.id, Role.STORAGE_TABLE_DATA_CONTRIBUTOR),
            ("metrics", self._args.telemetry.resource_id, Role.MONITORING_METRICS_PUBLISHER),
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
    ) -> dict[str, pulumi.Input[str]]:
        """Identity-based connections to host storage, telemetry, SignalR and SQL; SQL trigger tuning."""
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
            opts=self._child(
                [container, *self.identity_roles, *self._storage_endpoints, *self._package_uploads]
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
                resource_group_name=args.resource_group_name,
                location=args.location,
                naming=args.naming,
                tags=args.tags,
                package=args.package,
                target=target,
                after=after,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _signalr_upstream(self, app: web.WebApp) -> pulumi.Output[str]:
        """Where SignalR sends connection events, with the `signalr_extension` system key the host
        requires (managed-identity upstream auth is refused there: Azure/Azure-Functions#2531).

        The key is generated here so SignalR can be created in the same `pulumi up`, and set on the
        host once it runs the code. SignalR's upstream URL is not encrypted and anyone with Reader on
        SignalR can read it (Azure SignalR, "Upstream endpoints"), so the key goes into a Key Vault
        and the URL holds `{@Microsoft.KeyVault(SecretUri=...)}`, which SignalR resolves with its own
        identity."""
        value, key = self._generated_host_key(
            app, "signalr-key", "signalr-extension-key", wiring.SIGNALR_EXTENSION_KEY
        )
        webhook = pulumi.Output.concat("https://", app.default_host_name, "/runtime/webhooks/signalr?code=")
        if self._args.signalr_identity is None:
            return pulumi.Output.secret(pulumi.Output.concat(webhook, key.value))
        secret_uri = self._key_vault_secret(value.result, self._args.signalr_identity, key)
        return pulumi.Output.concat(webhook, "{@Microsoft.KeyVault(SecretUri=", secret_uri, ")}")

    def _publish_key(self, app: web.WebApp) -> pulumi.Output[str]:
        """A host-level function key for publishers, generated by the stack (so the stack can hand
        it out as a secret output, and nobody needs `az functionapp keys list`), set once the code
        runs."""
        _value, key = self._generated_host_key(
            app, "publish-key", "publish-function-key", PUBLISH_KEY_NAME, FUNCTION_KEYS
        )
        return pulumi.Output.secret(key.value)

    def _generated_host_key(
        self, app: web.WebApp, value_suffix: str, key_suffix: str, key_name: str, key_type: str = SYSTEM_KEYS
    ) -> tuple[random.RandomPassword, FunctionHostKey]:
        """A key value the stack generates, and the host key set to it once the host runs the code."""
        value = random.RandomPassword(
            f"{self._name}-{value_suffix}", length=48, special=False, opts=self._child()
        )
        key = FunctionHostKey(
            f"{self._name}-{key_suffix}",
            app_id=app.id,
            key_name=key_name,
            value=value.result,
            key_type=key_type,
            opts=self._child(self.code_deployments),
        )
        return value, key

    def _vault(self) -> keyvault.Vault:
        """A Key Vault (RBAC, soft delete; purge protection when data is protected) and its audit logs.

        Its soft-delete retention and purge protection are chosen when it is created and kept after:
        ARM refuses to change the retention once set ("The property "softDeleteRetentionInDays" has
        been set already and it can't be modified") and refuses purge protection `false` (it is
        irreversible), so a later `protectData` change must not send either (docs/day-two.md)."""
        args = self._args
        assert args.tenant_id is not None
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

    def _key_vault_secret(
        self, value: pulumi.Input[str], reader: UserAssignedIdentity, host_key: pulumi.CustomResource
    ) -> pulumi.Output[str]:
        """The key as a secret readable by `reader` only; returns its URI once SignalR may use it.

        The secret is written through ARM (`vaults/secrets/write`, part of Contributor), but
        azure-native deletes it through Key Vault's data plane, where the deploying identity holds no
        role (pulumi-azure-native custom_keyvault.go): it is `deleted_with` its vault, so a destroy or
        a vault replacement never asks. It takes the generated value, not the host key's, so it and
        its role are created with the vault, early; SignalR then waits until that role has settled
        (`RolePropagation`) and the host knows the key."""
        args = self._args
        if args.tenant_id is None:
            raise ValueError("FunctionAppArgs.tenant_id is required with signalr_identity")
        vault = self._vault()
        secret = keyvault.Secret(
            f"{self._name}-signalr-key-secret",
            secret_name="signalr-extension-key",
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
        settled = RolePropagation(
            f"{self._name}-signalr-key-reader-settled",
            role_assignment_id=read.id,
            assigned_at=read.created_on,
            opts=self._child([read]),
        )
        # The versionless URI (SignalR rereads it every 30 minutes), built from outputs that are not
        # secret: the secret's own outputs are, since its value input is. The settled role and the
        # host key carry the dependencies: SignalR starts once it may read the key and the host knows it.
        return pulumi.Output.all(vault.properties.vault_uri, secret.name, settled.id, host_key.id).apply(
            lambda parts: f"{parts[0].rstrip('/')}/secrets/{parts[1]}"
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
