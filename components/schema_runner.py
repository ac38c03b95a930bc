"""Schema runner: the database schema applied from inside the stack's virtual network, so a server that
accepts private connections only can be created and migrated by one `pulumi up` from anywhere.

Azure resources: a `storage.StorageAccount` for the deployment script (the file share its container
mounts), reached through a `file` private endpoint only, with its diagnostic settings; an
`authorization.RoleAssignment`s (Storage File Data Privileged Contributor, and Reader) for the
script's identity on it; a `data_plane.subnet_release.SubnetRelease` that frees the script's subnet
from ACI on destroy; and a `resources.AzureCliScript` whose container runs in a subnet delegated to
`Microsoft.ContainerInstance/containerGroups` (`containerSettings.subnetIds`), as the SQL server's
Entra admin identity, and applies the migrations with `data_plane.migration_runner` (the same
runner, bookkeeping table and autocommit rule as `data_plane.database_schema`).

ARM runs the script when the resource is created or its properties change, and answers only when the
script ends: a failed migration fails `pulumi up` with the script's log. The script's content carries
the migrations and their checksums, so an unchanged schema changes nothing and runs nothing. The
container is deleted when the script ends (`cleanupPreference: Always`), the script resource an hour
later (`retentionInterval`); the storage account stays with the stack.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi_azure_native import resources, storage

from components.shared import (
    ComponentArgs,
    Role,
    RoleAssignment,
    UserAssignedIdentity,
    assign_role,
    resolvable_private_endpoint,
    send_diagnostics,
)
from components.shared.diagnostics import BLOB_LOGS, STORAGE_METRICS
from data_plane.migration_runner import bundle
from data_plane.subnet_release import SubnetRelease
from functions.migrations import load_migrations

ROOT = Path(__file__).resolve().parent.parent
AZ_CLI_VERSION = "2.84.0"
"""The Azure CLI image the script runs in (`mcr.microsoft.com/azure-cli:2.84.0`, March 2026): Azure
Linux 3.0 with python3 3.12. Every build up to 2.74.0 may be CBL-Mariner 2.0 with Python 3.9, which
neither the runner (3.11: `datetime.UTC`) nor the driver (`Requires-Python >=3.10`) runs on; sources
in docs/sources/private-networking.md."""
DRIVER = "mssql-python==1.16.0"
"""Microsoft's SQL driver for Python, pinned: it bundles its own driver library (no ODBC install),
which needs the system packages in DRIVER_SYSTEM_PACKAGES."""
DRIVER_SYSTEM_PACKAGES = ("libtool-ltdl", "krb5-libs", "glibc-iconv")
"""What mssql-python's README installs on Azure Linux (`libltdl.so.7`, `libkrb5.so.3`,
`libgssapi_krb5.so.2` and glibc's character-set converters); the Azure CLI image has none of them."""
RETENTION = "PT1H"
"""How long Azure keeps the script resource (and its log) after it ends; 1 to 26 hours."""
TIMEOUT = "PT30M"
SCRIPT_CONTENT_LIMIT = 32_000
"""Our own bound on the inline script (Microsoft documents none we found): it is about 16 KB with seven
migrations; past this, ship the files through the script's storage instead of inline."""
STORAGE_GROUP = "file"
"""The private endpoint sub-resource the script's container mounts its share through."""


@dataclass(kw_only=True)
class SchemaRunnerArgs(ComponentArgs):
    """Arguments of `SchemaRunner`. `private_access` is required here: its endpoint subnet and its
    `file` zone reach the script's storage."""

    identity: UserAssignedIdentity
    """Required. What the script runs as: the SQL server's Entra admin (or a member of its admin group)."""
    subnet_id: pulumi.Input[str]
    """Required. A subnet delegated to `Microsoft.ContainerInstance/containerGroups`, in a network
    that resolves the server's private DNS zone."""
    server: pulumi.Input[str]
    """Required. The server's host name (it resolves to the private endpoint inside the network)."""
    database: pulumi.Input[str]
    """Required. The database name."""
    variables: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Optional. The migrations' `$(Variable)` values. Default: none."""
    depends_on: Sequence[pulumi.Resource] = ()
    """Optional. What must exist before the script runs (the database, the server's endpoint).
    Default: none."""
    az_cli_version: str = AZ_CLI_VERSION
    """Optional. The Azure CLI image version. Default: AZ_CLI_VERSION."""


def script_content(bundle_text: str) -> str:
    """The script: unpack the bundle, install the driver, run the runner. `set -e`: any failure fails
    the script, hence the deployment."""
    return "\n".join(
        [
            "set -euo pipefail",
            'work="$(mktemp -d)"',
            "base64 -d > \"$work/bundle.zip\" <<'BUNDLE'",
            bundle_text,
            "BUNDLE",
            'python3 -m zipfile -e "$work/bundle.zip" "$work/app"',
            # The driver's system libraries first: its import fails without them.
            f"tdnf install -y {' '.join(DRIVER_SYSTEM_PACKAGES)}",
            # The image's Python may come without pip (Azure Linux packages it apart).
            "python3 -m pip --version >/dev/null 2>&1 || python3 -m ensurepip --upgrade "
            "|| tdnf install -y python3-pip",
            f'python3 -m pip install --quiet --disable-pip-version-check --target "$work/lib" "{DRIVER}"',
            'cd "$work/app"',
            'PYTHONPATH="$work/lib:$work/app" python3 -m data_plane.migration_runner',
            "",
        ]
    )


def _planned_script(values: list[Any], names: list[str]) -> str:
    server, database, *variable_values = values
    plan = {
        "server": server,
        "database": database,
        "variables": dict(zip(names, variable_values, strict=True)),
        "migrations": [{"name": m.name, "checksum": m.checksum} for m in load_migrations()],
    }
    content = script_content(bundle(plan, ROOT))
    if len(content) > SCRIPT_CONTENT_LIMIT:
        raise ValueError(
            f"the schema script is {len(content)} characters, over {SCRIPT_CONTENT_LIMIT}: "
            "ship the migrations through the script's storage instead"
        )
    return content


class SchemaRunner(pulumi.ComponentResource):
    """The migrations, applied by an Azure deployment script inside the virtual network."""

    name: pulumi.Output[str]
    """The deployment script's name."""
    resource_id: pulumi.Output[str]
    """The deployment script's resource id."""
    storage_account_id: pulumi.Output[str]
    """The script's storage account."""
    script: resources.AzureCliScript
    """The deployment script (what the Functions app's code waits for)."""

    def __init__(self, name: str, args: SchemaRunnerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("broadcast:schema_runner:SchemaRunner", name, None, opts)
        access = args.private_access
        if access is None or STORAGE_GROUP not in access.dns_zone_ids:
            raise ValueError(
                "SchemaRunnerArgs: private_access with a `file` DNS zone is required "
                "(the script's storage is reached through a file private endpoint)"
            )
        self._name, self._args = name, args
        account = self._storage()
        # The file service's reads, writes and deletes show what touched the script's share.
        send_diagnostics(
            f"{name}-storage-diagnostics", account.id, args.diagnostics, self, metrics=STORAGE_METRICS
        )
        send_diagnostics(
            f"{name}-file-diagnostics",
            account.id.apply(lambda account_id: f"{account_id}/fileServices/default"),
            args.diagnostics,
            self,
            logs=BLOB_LOGS,
            metrics=STORAGE_METRICS,
        )
        endpoint = resolvable_private_endpoint(
            f"{name}-storage-file-endpoint", account.id, STORAGE_GROUP, args, access, self
        )
        # Destroy deletes the script, then this (ACI's link on the subnet, which can outlive the
        # container group and block the network's delete), then the network.
        release = SubnetRelease(
            f"{name}-subnet-release", args.subnet_id, opts=pulumi.ResourceOptions(parent=self)
        )
        roles = self._roles(account)
        self.script = self._script(account, [*endpoint, *roles, release, *args.depends_on])
        self.name = self.script.name
        self.resource_id = self.script.id
        self.storage_account_id = account.id
        self.register_outputs(
            {
                "name": self.name,
                "resource_id": self.resource_id,
                "storage_account_id": self.storage_account_id,
            }
        )

    def _roles(self, account: storage.StorageAccount) -> list[pulumi.Resource]:
        """The script identity's roles on its storage: the share's data role, and Reader."""
        identity = self._args.identity
        file_role = assign_role(
            f"{self._name}-storage-file-role",
            account.id,
            RoleAssignment(
                principal_id=identity.principal_id,
                role=Role.STORAGE_FILE_DATA_PRIVILEGED_CONTRIBUTOR,
                description="The schema script mounts its file share",
            ),
            self,
        )
        # The service signs the CLI in as the identity before the script; an identity with no Azure
        # role anywhere sees no subscription and that sign-in fails (MicrosoftDocs/azure-docs#60266).
        # Reader on the script's own storage is the least that makes the subscription visible.
        reader = assign_role(
            f"{self._name}-storage-reader-role",
            account.id,
            RoleAssignment(
                principal_id=identity.principal_id,
                role=Role.READER,
                description="The schema script's sign-in sees the subscription",
            ),
            self,
        )
        return [file_role, reader]

    def _storage(self) -> storage.StorageAccount:
        """The script's storage: private (a `file` endpoint only), and with account keys on, because the
        deployment script service mounts its share with the key (MicrosoftDocs/azure-docs#120857); the
        key is never read by this program and the account holds nothing but the script's share."""
        args = self._args
        return storage.StorageAccount(
            f"{self._name}-storage",
            account_name=args.naming.compact_name("stds"),
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags={**args.tags, "purpose": "deployment-script"},
            kind=storage.Kind.STORAGE_V2,
            sku=storage.SkuArgs(name="Standard_LRS"),
            enable_https_traffic_only=True,
            minimum_tls_version=storage.MinimumTlsVersion.TLS1_2,
            allow_blob_public_access=False,
            allow_shared_key_access=True,
            allow_cross_tenant_replication=False,
            public_network_access=storage.PublicNetworkAccess.DISABLED,
            network_rule_set=storage.NetworkRuleSetArgs(
                default_action=storage.DefaultAction.DENY, bypass=storage.Bypass.AZURE_SERVICES
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _script(
        self, account: storage.StorageAccount, after: Sequence[pulumi.Resource]
    ) -> resources.AzureCliScript:
        """The deployment script, in the subnet, as the admin identity, with the bundle inline."""
        args = self._args
        names = sorted(args.variables)
        content = pulumi.Output.all(args.server, args.database, *(args.variables[n] for n in names)).apply(
            lambda values: _planned_script(values, names)
        )
        return resources.AzureCliScript(
            f"{self._name}-script",
            script_name=args.naming.name("ds-schema"),
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=dict(args.tags),
            kind="AzureCLI",
            az_cli_version=args.az_cli_version,
            identity=resources.ManagedServiceIdentityArgs(
                type=resources.ManagedServiceIdentityType.USER_ASSIGNED,
                user_assigned_identities=[args.identity.resource_id],
            ),
            container_settings=resources.ContainerConfigurationArgs(
                container_group_name=args.naming.name("ci-schema"),
                subnet_ids=[resources.ContainerGroupSubnetIdArgs(id=args.subnet_id)],
            ),
            storage_account_settings=resources.StorageAccountConfigurationArgs(
                storage_account_name=account.name
            ),
            script_content=content,
            cleanup_preference=resources.CleanupOptions.ALWAYS,
            retention_interval=RETENTION,
            timeout=TIMEOUT,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(after)),
        )
