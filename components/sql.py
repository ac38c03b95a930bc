"""SQL: Azure SQL Database, the source of truth every broadcast is read from.

Azure resources: `sql.Server` (Entra-only authentication, TLS 1.2), `sql.Database` (a DTU size
in dev and review, vCore in prod), `sql.BackupShortTermRetentionPolicy`, `sql.FirewallRule`s (Azure
services, plus explicit client ranges) or, with private access, a private endpoint instead; server
auditing and the database's diagnostics to Log Analytics; deletion locks when locked; and the schema (T-SQL
migrations applied by `SchemaMigration`'s deployment script as a `managedidentity.UserAssignedIdentity`
that is the server's admin: on the public network, or inside the stack's own network given a schema
subnet; only in a brought network, with pyodbc and an Entra token from the deploying machine). No
SQL password exists anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import managedidentity, sql

from components.schema_runner import SchemaMigration, SchemaMigrationArgs
from components.shared import (
    ComponentArgs,
    UserAssignedIdentity,
    assign_roles,
    lock_against_deletion,
    resolvable_private_endpoint,
    send_diagnostics,
)
from data_plane.database_schema import DatabaseSchema, schema_variables

_SKU_PATTERN = re.compile(r"^(GP_S|GP|BC|HS)_Gen5_(\d+)$")
_TIERS = {"GP_S": "GeneralPurpose", "GP": "GeneralPurpose", "BC": "BusinessCritical", "HS": "Hyperscale"}
VCORES = (1, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 24, 32, 40, 80)
"""The vCore sizes Azure SQL Database offers for Gen5 hardware."""


@dataclass(frozen=True)
class DtuSize:
    """A DTU compute size ("Resource limits for single databases using the DTU purchasing model")."""

    tier: str
    dtus: int
    max_workers: int
    """Concurrent requests the database runs; the next one fails with error 10928."""
    max_sessions: int
    max_size_gb: int
    """The largest data max size the size allows (Basic: 2 GB, Standard: 250 GB)."""


DTU_SIZES = {
    "Basic": DtuSize("Basic", 5, 30, 300, 2),
    "S0": DtuSize("Standard", 10, 60, 600, 250),
    "S1": DtuSize("Standard", 20, 90, 900, 250),
    "S2": DtuSize("Standard", 50, 120, 1200, 250),
    "S3": DtuSize("Standard", 100, 200, 2400, 250),
}
"""The provisioned DTU sizes offered here: no source restricts change tracking (the SQL trigger's
need) by tier, and Basic or S0 cost a few dollars a month where a serverless database that the
trigger keeps awake costs its minimum vCores around the clock (docs/sources/latency-and-tiers.md)."""


@dataclass(frozen=True, kw_only=True)
class DatabaseSku:
    """An Azure SQL Database SKU: vCore (`GP_S_Gen5_1`, `GP_Gen5_2`) or DTU (`Basic`, `S0`), split
    into its ARM fields."""

    name: str
    """The SKU name ARM expects, e.g. `GP_S_Gen5`, `Basic` or `S0`."""
    tier: str
    """`GeneralPurpose`, `BusinessCritical`, `Hyperscale`, `Basic` or `Standard`."""
    family: str | None
    """Hardware generation, `Gen5` (vCore); None for DTU sizes."""
    capacity: int
    """vCores (the maximum vCores for serverless), or DTUs."""

    @property
    def serverless(self) -> bool:
        """True for the serverless compute tier, which auto-pauses and bills per second."""
        return self.name.startswith("GP_S_")

    @property
    def dtu(self) -> DtuSize | None:
        """The DTU size's limits, or None for a vCore SKU."""
        return DTU_SIZES.get(self.name)

    @property
    def zone_redundancy_offered(self) -> bool:
        """Zone redundancy exists for General Purpose, Business Critical, Hyperscale and Premium,
        not for the Basic and Standard DTU tiers (high-availability-sla-local-zone-redundancy)."""
        return self.dtu is None

    @property
    def max_size_bytes(self) -> int | None:
        """DTU sizes: the largest data size the size allows, sent so a move from a vCore database (32 GB
        by default) scales in place instead of being refused for a max size above the target's; None
        for vCore SKUs (Azure's default)."""
        return self.dtu.max_size_gb * 1024**3 if self.dtu else None

    @property
    def min_capacity(self) -> float | None:
        """The fewest vCores a serverless database keeps: one eighth of its maximum, at least 0.5
        ("Resource limits for single databases": 0.5-4, 0.75-6, 1-8, ... 10-80). None when provisioned."""
        return max(0.5, self.capacity / 8) if self.serverless else None

    @classmethod
    def parse(cls, value: str) -> DatabaseSku:
        """`GP_S_Gen5_1` or `Basic` as a SKU, or ValueError saying what is allowed."""
        if (size := DTU_SIZES.get(value)) is not None:
            return cls(name=value, tier=size.tier, family=None, capacity=size.dtus)
        match = _SKU_PATTERN.fullmatch(value)
        if not match:
            raise ValueError(
                "allowed: <GP_S|GP|BC|HS>_Gen5_<vCores> (e.g. GP_S_Gen5_1, GP_Gen5_2) or a DTU size: "
                + ", ".join(DTU_SIZES)
            )
        edition, vcores = match.group(1), int(match.group(2))
        if vcores not in VCORES or (edition != "GP_S" and vcores < 2):
            allowed = ", ".join(str(v) for v in VCORES if edition == "GP_S" or v >= 2)
            raise ValueError(f"allowed vCores for {edition}_Gen5: {allowed}")
        return cls(name=f"{edition}_Gen5", tier=_TIERS[edition], family="Gen5", capacity=vcores)


@dataclass(frozen=True, kw_only=True)
class FirewallRange:
    """An inclusive IPv4 range for an Azure SQL firewall rule."""

    start: str
    end: str


# The documented special rule: start and end 0.0.0.0 admits Azure services, not the internet.
_AZURE_SERVICES = FirewallRange(start="0.0.0.0", end="0.0.0.0")
SQL_GROUP = "sqlServer"
"""The private endpoint sub-resource of a logical server (zone privatelink.database.windows.net)."""
# Microsoft.Sql/servers/databases ("supported logs"): the SQL trigger's and the app's errors,
# timeouts, blocks and deadlocks, tuning, Query Store and waits; the metric categories.
DATABASE_LOGS = (
    "Errors",
    "Timeouts",
    "Blocks",
    "Deadlocks",
    "AutomaticTuning",
    "QueryStoreRuntimeStatistics",
    "QueryStoreWaitStatistics",
    "DatabaseWaitStatistics",
    "SQLInsights",
)
DATABASE_METRICS = ("Basic", "InstanceAndAppAdvanced", "WorkloadManagement")
AUDIT_LOGS = ("SQLSecurityAuditEvents",)


@dataclass(frozen=True, kw_only=True)
class SqlAdministrator:
    """The Entra principal that administers the server."""

    login: pulumi.Input[str]
    """Its display name in the server (any label; Entra matches on `sid`)."""
    sid: pulumi.Input[str]
    """The object id of a user or group; the application (client) id of a service principal or
    managed identity (sys.server_principals: an application's SID is its client id)."""
    tenant_id: pulumi.Input[str]
    principal_type: str
    """`User`, `Group` or `Application` (service principals and managed identities)."""


@dataclass(kw_only=True)
class SqlDatabaseArgs(ComponentArgs):
    """Arguments of `SqlDatabase`."""

    administrator: SqlAdministrator | None
    """The server's Entra admin (the only way to sign in besides granted identities). Required when
    no script applies the schema (no `app_identity`, or private access without `schema_subnet_id`);
    otherwise None (the schema identity is the admin) or a Group the schema identity joins."""
    sku: DatabaseSku
    """Required. The database's SKU: vCore, or a DTU size (Basic, S0-S3: no zone redundancy)."""
    auto_pause_delay_minutes: int = 60
    """Optional. Serverless only: idle minutes before pausing, -1 never. Default: 60."""
    zone_redundant: bool = False
    """Optional. Spread replicas across zones (and keep backups zone-redundant). Default: false."""
    backup_retention_days: int = 7
    """Optional. Point-in-time restore window, 1-35 days. Default: 7."""
    client_ip_ranges: Sequence[FirewallRange] = ()
    """Optional. Client ranges allowed besides Azure services. Default: none."""
    app_identity: UserAssignedIdentity | None = None
    """Optional. The app's identity, made a database user (from its client id, no Graph lookup) by
    the schema migrations; when set, the schema is applied during `pulumi up` by a deployment script as
    a schema identity this component creates (in a brought network, by the deploying identity, which
    must be the Entra admin or in its group, and reach the server). Default: none (no schema)."""
    schema_subnet_id: pulumi.Input[str] | None = None
    """Optional. With private access (and a `file` zone): a subnet delegated to
    Microsoft.ContainerInstance/containerGroups where the schema is applied by a deployment script,
    as a schema identity this component creates; that identity is the server's admin, unless
    `administrator` is a Group (then add the identity to the group). Default: none (on the public
    network the script runs outside any network and opens the firewall for itself; with private
    access the deploying machine applies the schema, and must reach the server)."""


class SqlDatabase(pulumi.ComponentResource):
    """An Entra-only Azure SQL server and the broadcast database."""

    name: pulumi.Output[str]
    """The server name."""
    resource_id: pulumi.Output[str]
    """The server's resource id."""
    fully_qualified_domain_name: pulumi.Output[str]
    """The server's host name, e.g. `sql-bcast-dev-x7k2q9.database.windows.net`."""
    database_name: pulumi.Output[str]
    """The database name."""
    database_id: pulumi.Output[str]
    """The database's resource id."""
    firewall_rules: list[sql.FirewallRule]
    """The firewall rules (none with private access); schema migrations wait for them."""
    schema: pulumi.Resource | None
    """The applied schema, when `app_identity` was given (the deployment script of `SchemaMigration`,
    or in a brought network the dynamic `DatabaseSchema`): the app's code waits for it."""
    schema_identity: UserAssignedIdentity | None
    """The identity the schema script runs as (None when the deploying machine applies it)."""

    def __init__(self, name: str, args: SqlDatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("broadcast:sql:SqlDatabase", name, None, opts)
        self._name = name
        self._args = args
        self.schema_identity = self._schema_identity()
        server = self._server()
        self._admin_setting = self._entra_admin(server)
        database = self._database(server)
        self.firewall_rules = self._firewall(server)
        endpoint, endpoint_dns = (
            resolvable_private_endpoint(
                f"{name}-endpoint", server.id, SQL_GROUP, args, args.private_access, self
            )
            if args.private_access
            else (None, None)
        )
        assign_roles(name, server.id, args.role_assignments, self)
        auditing = self._auditing(server)
        database_diagnostics = send_diagnostics(
            f"{name}-database-diagnostics",
            database.id,
            args.diagnostics,
            self,
            DATABASE_LOGS,
            DATABASE_METRICS,
        )
        self.schema = self._schema(server, database, [r for r in (endpoint, endpoint_dns) if r is not None])
        if args.lock:
            # After everything under them, so Pulumi removes the locks first (they are inherited).
            lock_against_deletion(
                f"{name}-database-lock", database.id, self, [database_diagnostics, self.schema]
            )
            lock_against_deletion(
                f"{name}-server-lock",
                server.id,
                self,
                [*auditing, *self.firewall_rules, endpoint, self.schema, self._admin_setting],
            )

        self.name = server.name
        self.resource_id = server.id
        self.fully_qualified_domain_name = server.fully_qualified_domain_name
        self.database_name = database.name
        self.database_id = database.id
        self.register_outputs(
            {
                "name": self.name,
                "resource_id": self.resource_id,
                "fully_qualified_domain_name": self.fully_qualified_domain_name,
                "database_name": self.database_name,
                "database_id": self.database_id,
            }
        )

    def _child(self, protect: bool = False) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, protect=protect)

    def _scripted(self) -> bool:
        """Whether a deployment script applies the schema: on the public network, or from the stack's
        own network's script subnet (a brought network has none: the deploying machine applies it)."""
        args = self._args
        in_reach = args.private_access is None or args.schema_subnet_id is not None
        return args.app_identity is not None and in_reach

    def _schema_identity(self) -> UserAssignedIdentity | None:
        """The identity the deployment script runs as (before the server, which names it as its
        admin), when a script applies the schema."""
        args = self._args
        if args.schema_subnet_id is not None and (args.private_access is None or args.app_identity is None):
            raise ValueError("SqlDatabaseArgs: schema_subnet_id needs private_access and app_identity")
        if not self._scripted():
            if args.administrator is None:
                raise ValueError(
                    "SqlDatabaseArgs: administrator is required when no deployment script applies the "
                    "schema (no app_identity, or private_access without schema_subnet_id)"
                )
            return None
        if args.administrator is not None and args.administrator.principal_type != "Group":
            raise ValueError(
                "SqlDatabaseArgs: the schema script's identity signs in as the admin: leave "
                "administrator unset or make it a Group the identity joins "
                f"(got a {args.administrator.principal_type})"
            )
        identity = managedidentity.UserAssignedIdentity(
            f"{self._name}-schema-identity",
            resource_name_=args.naming.name("id-sql"),
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=dict(args.tags),
            opts=self._child(),
        )
        self._schema_identity_tenant = identity.tenant_id
        return UserAssignedIdentity(
            resource_id=identity.id,
            client_id=identity.client_id,
            principal_id=identity.principal_id,
            name=identity.name,
        )

    def _admin(self) -> SqlAdministrator:
        """The given admin, or the schema identity (an application: its SID is its client id)."""
        args = self._args
        if args.administrator is not None:
            return args.administrator
        assert self.schema_identity is not None  # _schema_identity refused this combination
        return SqlAdministrator(
            login=self.schema_identity.name,
            sid=self.schema_identity.client_id,
            tenant_id=self._schema_identity_tenant,
            principal_type="Application",
        )

    def _server(self) -> sql.Server:
        """The logical server: Entra-only, TLS 1.2; without public endpoint under private access."""
        args, admin = self._args, self._admin()
        return sql.Server(
            f"{self._name}-server",
            server_name=args.naming.name("sql"),
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=dict(args.tags),
            version="12.0",
            minimal_tls_version="1.2",
            public_network_access=(
                sql.ServerPublicNetworkAccessFlag.DISABLED
                if args.private_access
                else sql.ServerPublicNetworkAccessFlag.ENABLED
            ),
            administrators=sql.ServerExternalAdministratorArgs(
                administrator_type=sql.AdministratorType.ACTIVE_DIRECTORY,
                azure_ad_only_authentication=True,
                login=admin.login,
                sid=admin.sid,
                tenant_id=admin.tenant_id,
                principal_type=admin.principal_type,
            ),
            # ARM reads `administrators` at creation only ("If used for server update, it will be
            # ignored or it will result in an error. For updates individual APIs will need to be
            # used", azure-native's sql.Server): later changes go through `_entra_admin`.
            opts=pulumi.ResourceOptions(parent=self, protect=args.lock, ignore_changes=["administrators"]),
        )

    def _entra_admin(self, server: sql.Server) -> sql.ServerAzureADAdministrator:
        """The server's Entra admin through its own API, so that a deployed server takes a new admin
        (a changed `sqlAdmin*`, or the schema identity on a stack deployed before the schema script):
        the same values as at creation, where nothing changed. Deleted with the server: removing the
        only admin of an Entra-only server would leave nobody who can sign in."""
        args, admin = self._args, self._admin()
        return sql.ServerAzureADAdministrator(
            f"{self._name}-entra-admin",
            administrator_name="ActiveDirectory",
            administrator_type=sql.AdministratorType.ACTIVE_DIRECTORY,
            login=admin.login,
            sid=admin.sid,
            tenant_id=admin.tenant_id,
            server_name=server.name,
            resource_group_name=args.resource_group_name,
            opts=pulumi.ResourceOptions(parent=self, deleted_with=server),
        )

    def _database(self, server: sql.Server) -> sql.Database:
        """The database (serverless or provisioned) and its point-in-time restore window."""
        args = self._args
        database = sql.Database(
            f"{self._name}-database",
            database_name=args.naming.name("sqldb"),
            server_name=server.name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=dict(args.tags),
            sku=sql.SkuArgs(
                name=args.sku.name, tier=args.sku.tier, family=args.sku.family, capacity=args.sku.capacity
            ),
            auto_pause_delay=args.auto_pause_delay_minutes if args.sku.serverless else None,
            min_capacity=args.sku.min_capacity,
            max_size_bytes=args.sku.max_size_bytes,
            zone_redundant=args.zone_redundant,
            requested_backup_storage_redundancy="Zone" if args.zone_redundant else "Local",
            collation="SQL_Latin1_General_CP1_CI_AS",
            opts=self._child(protect=args.lock),
        )
        sql.BackupShortTermRetentionPolicy(
            f"{self._name}-backup-retention",
            policy_name="default",
            database_name=database.name,
            server_name=server.name,
            resource_group_name=args.resource_group_name,
            retention_days=args.backup_retention_days,
            opts=self._child(),
        )
        return database

    def _firewall(self, server: sql.Server) -> list[sql.FirewallRule]:
        """Azure services and the client ranges, each rule named by its range (reordering replaces
        nothing). None under private access: Azure refuses firewall changes then (error 42101)."""
        args = self._args
        if args.private_access:
            return []
        rules = [("AllowAllWindowsAzureIps", _AZURE_SERVICES)]
        rules += [(f"client-{r.start}-{r.end}", r) for r in args.client_ip_ranges]
        return [
            sql.FirewallRule(
                f"{self._name}-firewall-{rule_name}",
                firewall_rule_name=rule_name,
                server_name=server.name,
                resource_group_name=args.resource_group_name,
                start_ip_address=ip_range.start,
                end_ip_address=ip_range.end,
                opts=self._child(),
            )
            for rule_name, ip_range in rules
        ]

    def _auditing(self, server: sql.Server) -> list[pulumi.Resource]:
        """Server auditing to the workspace: the auditing policy with Azure Monitor as its target, and a
        diagnostic setting with SQLSecurityAuditEvents on `master`, which holds server-level audit
        ("Server auditing to Log Analytics"; never declare `master` itself: it is a system database)."""
        args = self._args
        if args.diagnostics is None:
            return []
        master = send_diagnostics(
            f"{self._name}-audit-diagnostics",
            server.id.apply(lambda server_id: f"{server_id}/databases/master"),
            args.diagnostics,
            self,
            logs=AUDIT_LOGS,
            metrics=(),
        )
        policy = sql.ServerBlobAuditingPolicy(
            f"{self._name}-auditing",
            blob_auditing_policy_name="default",
            server_name=server.name,
            resource_group_name=args.resource_group_name,
            state=sql.BlobAuditingPolicyState.ENABLED,
            is_azure_monitor_target_enabled=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[master] if master else []),
        )
        return [resource for resource in (master, policy) if resource is not None]

    def _schema(
        self, server: sql.Server, database: sql.Database, endpoints: Sequence[pulumi.Resource]
    ) -> pulumi.Resource | None:
        """The tables, change tracking and the app's database user, applied during `pulumi up` once
        the server can be reached (firewall rules, or the private endpoint and its DNS record): by a
        deployment script (on the public network, or in the stack's own network), else, in a brought
        network, from the deploying machine."""
        args = self._args
        if args.app_identity is None:
            return None
        after = [server, self._admin_setting, database, *self.firewall_rules, *endpoints]
        variables = schema_variables(args.app_identity.name, args.app_identity.client_id)
        if self.schema_identity is not None:
            migration = SchemaMigration(
                f"{self._name}-schema-runner",
                SchemaMigrationArgs(
                    **args.placement(),
                    diagnostics=args.diagnostics,
                    private_access=args.private_access,
                    identity=self.schema_identity,
                    subnet_id=args.schema_subnet_id,
                    server_id=server.id,
                    server=server.fully_qualified_domain_name,
                    database=database.name,
                    variables=variables,
                    depends_on=after,
                ),
                pulumi.ResourceOptions(parent=self),
            )
            return migration.script
        return DatabaseSchema(
            f"{self._name}-schema",
            server=server.fully_qualified_domain_name,
            server_id=server.id,
            database=database.name,
            app_identity_name=args.app_identity.name,
            app_identity_client_id=args.app_identity.client_id,
            opts=pulumi.ResourceOptions(parent=self, depends_on=after),
        )

    def connection_string(self, identity_client_id: pulumi.Input[str]) -> pulumi.Output[str]:
        """An ADO.NET connection string that signs in as a user-assigned managed identity."""
        return pulumi.Output.all(
            self.fully_qualified_domain_name, self.database_name, identity_client_id
        ).apply(lambda args: managed_identity_connection_string(args[0], args[1], args[2]))


def managed_identity_connection_string(server: str, database: str, client_id: str) -> str:
    """The connection string the SQL bindings use: no password, a managed identity token."""
    return (
        f"Server=tcp:{server},1433;Database={database};"
        f"Authentication=Active Directory Managed Identity;User Id={client_id};"
        "Encrypt=True;TrustServerCertificate=False;Connection Timeout=30;"
    )
