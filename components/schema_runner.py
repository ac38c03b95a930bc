"""Schema migration: the database schema applied by an Azure deployment script during `pulumi up`, as
the SQL server's Entra admin identity, so no step of the deployment runs Python on the deploying
machine (issue 33: a component package may register no Python dynamic resource).

Two placements, one runner (`data_plane.migration_runner`, its bookkeeping table and autocommit rule):

- Public network: a `resources.AzureCliScript` without a subnet (the service creates and deletes its
  own storage), and an `authorization.RoleAssignment` (SQL Server Contributor on the server) with
  which the script opens a firewall rule for its own address when the server refuses it (error
  40615), retries while the rule applies, and removes the rule when it exits (a `trap`).
- Private network of the stack's own: a `storage.StorageAccount` for the script (the file share its
  container mounts), reached through a `file` private endpoint only, with its diagnostic settings;
  `authorization.RoleAssignment`s (Storage File Data Privileged Contributor, and Reader) for the
  script's identity on it; a `command.local.Command` whose delete frees the script's subnet from
  ACI on destroy; and the script, in a subnet delegated to
  `Microsoft.ContainerInstance/containerGroups` (`containerSettings.subnetIds`).

ARM runs the script when the resource is created or its properties change, and answers only when the
script ends: a failed migration fails `pulumi up` with the script's log. The script's content carries
the migrations and their checksums, so an unchanged schema changes nothing and runs nothing. The
container is deleted when the script ends (`cleanupPreference: Always`), the script resource an hour
later (`retentionInterval`); the storage account stays with the stack.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi_azure_native import resources, storage
from pulumi_command import local

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


FIREWALL_WAIT_ATTEMPTS = 40
"""Connection attempts, 15 s apart, after the script opens its firewall rule: "Any modifications made
to existing IP based firewall rules can take up to 5 minutes to take effect" (Azure SQL, network
access controls overview); ten minutes leaves room for a slow one."""
REFUSED_BY_FIREWALL = 3
"""The runner's exit status when the server refused the container's address (error 40615)."""
SUBNET_RELEASE_ATTEMPTS = 30
"""Checks, 30 s apart, that ACI has let go of the script's subnet before the network's delete."""
ACI_API_VERSION = "2023-05-01"
"""Container Instance REST API version with "Subnet Service Association Link - Delete"."""


@dataclass(kw_only=True)
class SchemaMigrationArgs(ComponentArgs):
    """Arguments of `SchemaMigration`. With `subnet_id`, `private_access` is required: its endpoint
    subnet and its `file` zone reach the script's storage."""

    identity: UserAssignedIdentity
    """Required. What the script runs as: the SQL server's Entra admin (or a member of its admin group)."""
    server: pulumi.Input[str]
    """Required. The server's host name (inside the network it resolves to the private endpoint)."""
    database: pulumi.Input[str]
    """Required. The database name."""
    subnet_id: pulumi.Input[str] | None = None
    """Optional. A subnet delegated to `Microsoft.ContainerInstance/containerGroups`, in a network that
    resolves the server's private DNS zone. Default: none (the script runs on Azure's public network
    and opens the server's firewall for itself when refused)."""
    server_id: pulumi.Input[str] | None = None
    """Required without `subnet_id`. The server's resource id: where the script's identity may add
    and remove its own firewall rule."""
    variables: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Optional. The migrations' `$(Variable)` values. Default: none."""
    depends_on: Sequence[pulumi.Resource] = ()
    """Optional. What must exist before the script runs (the database, the server's endpoint).
    Default: none."""
    az_cli_version: str = AZ_CLI_VERSION
    """Optional. The Azure CLI image version. Default: AZ_CLI_VERSION."""


_PUBLIC_RUN = """\
migrate() {{
  PYTHONPATH="$work/lib:$work/app" python3 -m data_plane.migration_runner \
    --refused-address-file "$work/refused"
}}
rule=""
remove_rule() {{
  # Leave the server as it was: the rule this script opened goes, whatever happened.
  if [ -n "$rule" ]; then
    az sql server firewall-rule delete --ids "$SQL_SERVER_ID/firewallRules/$rule" \\
      || {{ echo "could not remove firewall rule $rule of $SQL_SERVER_ID: delete it by hand" >&2; exit 1; }}
  fi
}}
trap remove_rule EXIT
status=0; migrate || status=$?
if [ "$status" -eq {refused} ]; then
  address="$(cat "$work/refused")"
  # A locked server (CanNotDelete) would keep the rule for good: open nothing there.
  if [ "$(az lock list --resource "$SQL_SERVER_ID" --query 'length(@)' -o tsv)" != "0" ]; then
    echo "the server refused $address and is locked against deletion: no temporary rule is" \
      "opened; keep its Azure services rule, or apply once with protectData false" >&2
    exit 1
  fi
  rule="deployment-script-${{address//./-}}"
  az sql server firewall-rule create --name "$rule" --server "${{SQL_SERVER_ID##*/}}" \\
    --resource-group "$(cut -d/ -f5 <<<"$SQL_SERVER_ID")" \\
    --start-ip-address "$address" --end-ip-address "$address" >/dev/null
  for attempt in $(seq 1 {attempts}); do
    sleep 15  # a new rule takes up to five minutes to apply
    status=0; migrate || status=$?
    [ "$status" -eq {refused} ] || break
  done
fi
exit "$status"
"""


def script_content(bundle_text: str, public: bool = False) -> str:
    """The script: unpack the bundle, install the driver, run the runner; on the public network, open
    and remove the firewall rule the server asks for. `set -e`: any failure fails the script, hence
    the deployment."""
    if public:
        run = _PUBLIC_RUN.format(refused=REFUSED_BY_FIREWALL, attempts=FIREWALL_WAIT_ATTEMPTS)
    else:
        run = 'PYTHONPATH="$work/lib:$work/app" python3 -m data_plane.migration_runner\n'
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
            run,
        ]
    )


def _plan(values: list[Any], names: list[str]) -> dict[str, Any]:
    server, database, *variable_values = values
    return {
        "server": server,
        "database": database,
        "variables": dict(zip(names, variable_values, strict=True)),
        "migrations": [{"name": m.name, "checksum": m.checksum} for m in load_migrations()],
    }


def _planned_script(values: list[Any], names: list[str], public: bool = False) -> str:
    content = script_content(bundle(_plan(values, names), ROOT), public)
    if len(content) > SCRIPT_CONTENT_LIMIT:
        raise ValueError(
            f"the schema script is {len(content)} characters, over {SCRIPT_CONTENT_LIMIT}: "
            "ship the migrations through the script's storage instead"
        )
    return content


def plan_tag(values: list[Any], names: list[str]) -> str:
    """The script's `forceUpdateTag`: a hash of the plan (target, variables, migrations' checksums),
    so a changed migration runs the script again and an unchanged one does not."""
    return hashlib.sha256(json.dumps(_plan(values, names), sort_keys=True).encode()).hexdigest()


def subnet_release_command() -> str:
    """What destroy runs (as `pulumi-command`'s delete, with `az` signed in on the deploying machine)
    between the script's delete and the network's: ACI's service association link can outlive the
    container group and block the subnet's delete (Microsoft's support article "Failed to delete a
    virtual network or subnet used by Azure Container Instances"), so delete it and wait until the
    subnet lists none; a subnet already gone needs nothing."""
    return f"""set -eu
link="$SUBNET_ID/providers/Microsoft.ContainerInstance/serviceAssociationLinks/default"
for attempt in $(seq 1 {SUBNET_RELEASE_ATTEMPTS}); do
  query='length(serviceAssociationLinks || `[]`)'
  if ! links="$(az network vnet subnet show --ids "$SUBNET_ID" --query "$query" -o tsv 2>&1)"; then
    case "$links" in *NotFound*) exit 0 ;; *) echo "$links" >&2; exit 1 ;; esac
  fi
  [ "$links" = "0" ] && exit 0
  az resource delete --ids "$link" --api-version {ACI_API_VERSION} >/dev/null 2>&1 || true
  sleep 30
done
echo "ACI still holds $SUBNET_ID: run az resource delete --ids $link" \
  "--api-version {ACI_API_VERSION}, then pulumi destroy again" >&2
exit 1
"""


class SchemaMigration(pulumi.ComponentResource):
    """The migrations, applied by an Azure deployment script as the SQL server's admin identity."""

    name: pulumi.Output[str]
    """The deployment script's name."""
    resource_id: pulumi.Output[str]
    """The deployment script's resource id."""
    script: resources.AzureCliScript
    """The deployment script (what the Functions app's code waits for)."""

    def __init__(
        self, name: str, args: SchemaMigrationArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        # The in-network runner was `broadcast:schema_runner:SchemaRunner`: the alias keeps its URN,
        # and through it its children's.
        aliases = [pulumi.Alias(type_="broadcast:schema_runner:SchemaRunner")]
        super().__init__(
            "broadcast:sql:SchemaMigration",
            name,
            None,
            pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(aliases=aliases)),
        )
        self._name, self._args = name, args
        if args.subnet_id is None:
            if args.server_id is None:
                raise ValueError("SchemaMigrationArgs: server_id is required without subnet_id")
            self.script = self._script(None, [self._firewall_role(args.server_id), *args.depends_on])
        else:
            account, after = self._in_network(args.subnet_id)
            self.script = self._script(account, [*after, *args.depends_on])
        self.name = self.script.name
        self.resource_id = self.script.id
        self.register_outputs({"name": self.name, "resource_id": self.resource_id})

    def _firewall_role(self, server_id: pulumi.Input[str]) -> pulumi.Resource:
        """SQL Server Contributor on the server: `Microsoft.Sql/servers/*` covers `firewallRules/*`,
        and its NotActions keep auditing and Entra-only authentication out of the script's reach (SQL
        Security Manager, the other built-in role with firewall rules, may change both). Any role also
        lets the CLI's sign-in see the subscription (MicrosoftDocs/azure-docs#60266)."""
        return assign_role(
            f"{self._name}-firewall-role",
            server_id,
            RoleAssignment(
                principal_id=self._args.identity.principal_id,
                role=Role.SQL_SERVER_CONTRIBUTOR,
                description="The schema script opens and removes a firewall rule for its own address",
            ),
            self,
        )

    def _in_network(
        self, subnet_id: pulumi.Input[str]
    ) -> tuple[storage.StorageAccount, list[pulumi.Resource]]:
        """The script's private storage, its endpoint and roles, and the subnet release."""
        args, name = self._args, self._name
        access = args.private_access
        if access is None or STORAGE_GROUP not in access.dns_zone_ids:
            raise ValueError(
                "SchemaMigrationArgs: private_access with a `file` DNS zone is required "
                "(the script's storage is reached through a file private endpoint)"
            )
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
        release = local.Command(
            f"{name}-subnet-release",
            delete=subnet_release_command(),
            environment={"SUBNET_ID": subnet_id},
            interpreter=["/bin/bash", "-c"],
            opts=pulumi.ResourceOptions(parent=self),
        )
        return account, [*endpoint, *self._roles(account), release]

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
        self, account: storage.StorageAccount | None, after: Sequence[pulumi.Resource]
    ) -> resources.AzureCliScript:
        """The deployment script, as the admin identity, with the bundle inline: in the subnet with
        its storage, or on the public network (the service creates its storage and deletes it)."""
        args = self._args
        names = sorted(args.variables)
        values = pulumi.Output.all(args.server, args.database, *(args.variables[n] for n in names))
        public = account is None
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
                subnet_ids=None
                if args.subnet_id is None
                else [resources.ContainerGroupSubnetIdArgs(id=args.subnet_id)],
            ),
            storage_account_settings=None
            if account is None
            else resources.StorageAccountConfigurationArgs(storage_account_name=account.name),
            # The script's firewall rule goes on this server (the variable, not the content, names it).
            environment_variables=[
                resources.EnvironmentVariableArgs(name="SQL_SERVER_ID", value=args.server_id)
            ]
            if public
            else None,
            script_content=values.apply(lambda v: _planned_script(v, names, public)),
            force_update_tag=values.apply(lambda v: plan_tag(v, names)),
            cleanup_preference=resources.CleanupOptions.ALWAYS,
            retention_interval=RETENTION,
            timeout=TIMEOUT,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(after)),
        )
