"""`BroadcastSystem`: the whole system as one Pulumi component, from the stack settings as args.

It builds the data flow `__main__.py`'s docstring lists, in that order: `_services` numbers each step
(1 to 6) where it is built.

The program (`__main__.py`) and the component package (`package/`) both construct it. No
`from __future__ import annotations` here: Pulumi's analyzer reads the outputs' hints at run time.
"""

import os
from pathlib import Path
from typing import Any

import pulumi
import pulumi_random as random
from pulumi_azure_native import authorization, resources

from artifacts.function_package import plan_package
from artifacts.site_files import config_document, site_files
from components.alerting import Alerting, AlertingArgs
from components.app_service import HostingPlan, HostingPlanArgs
from components.functions_app import TYPE_TOKEN as FUNCTION_APP_TYPE_TOKEN
from components.functions_app import FunctionApp, FunctionAppArgs, Telemetry
from components.monitoring import Monitoring, MonitoringArgs, MovedFrom
from components.network import Network, NetworkArgs
from components.shared import Diagnostics, Naming, Role, RoleAssignment, create_identity
from components.signalr import SignalR, SignalRArgs, service_uri
from components.sql import SqlDatabase, SqlDatabaseArgs
from components.static_site import StaticSite, StaticSiteArgs
from functions import wiring
from settings.arguments import settings_from_args
from settings.deployer import deploying_identity, sql_administrator
from settings.model import Settings
from settings.version import VERSION_TAG, project_version
from system.args import BroadcastSystemArgs

TYPE_TOKEN = "broadcast:index:BroadcastSystem"
PACKAGE_PROVIDER_ENV = "BROADCAST_PACKAGE_PROVIDER"
"""Set by the package's provider (package/__main__.py): the component is built for a program in any
language, whose engine cannot run a Python dynamic resource (it runs a dynamic provider in the
consumer's directory with the consumer's Python; pulumi/pulumi#5455, #16918)."""
ROOT = Path(__file__).resolve().parent.parent


class BroadcastSystem(pulumi.ComponentResource):
    """Instant one-to-many broadcasting on serverless Azure: site, Functions, SignalR, SQL, alerts."""

    name: pulumi.Output[str]
    """The name of the resource group that holds every resource of the system."""
    resource_id: pulumi.Output[str]
    """The Azure resource id of that resource group (for role assignments, locks, budgets)."""
    site_url: pulumi.Output[str]
    """The web app's address (the storage account's static website)."""
    api_base_url: pulumi.Output[str]
    """The API's base address (`.../api`): negotiate, publish, history, health."""
    hub_name: pulumi.Output[str]
    """The SignalR hub every client joins."""
    function_app_name: pulumi.Output[str]
    """The Functions app's name."""
    signalr_host_name: pulumi.Output[str]
    """The SignalR Service's host name."""
    sql_server_fqdn: pulumi.Output[str]
    """The SQL server's fully qualified domain name."""
    sql_database_name: pulumi.Output[str]
    """The database that stores every message."""
    log_analytics_workspace: pulumi.Output[str]
    """The Log Analytics workspace every component sends its logs to."""
    publish_key: pulumi.Output[str]
    """The key publishers send as `x-functions-key` (a secret)."""

    def __init__(
        self, name: str, args: BroadcastSystemArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        settings = settings_from_args(args, name, by_package=bool(os.environ.get(PACKAGE_PROVIDER_ENV)))
        self._name = name
        self._settings = settings
        client = authorization.get_client_config_output(opts=pulumi.InvokeOptions(parent=self))
        self._client = client
        self._deployer = deploying_identity(settings, client)
        common = self._placement()
        site, database, functions, signalr = self._services(common)
        self._alerting(common, site, database, functions, signalr)
        self._expose(site, database, functions, signalr)

    def _child(self, name: str) -> pulumi.ResourceOptions:
        """A direct child's options: parented here, named after this component, and carrying the URN
        it had when the program declared it at the top of the stack (so no deployed stack replaces
        anything)."""
        return pulumi.ResourceOptions(
            parent=self, aliases=[pulumi.Alias(name=name, parent=pulumi.ROOT_STACK_RESOURCE)]
        )

    def _named(self, name: str) -> str:
        return f"{self._name}-{name}"

    def _placement(self) -> dict[str, Any]:
        """The resource group, names, monitoring and network that every building block shares."""
        settings = self._settings
        group = resources.ResourceGroup(
            self._named("resource-group"),
            resource_group_name=settings.resource_group_name,
            location=settings.location,
            # The version is tagged on the resource group only: a new version updates one tag.
            tags={**settings.tags, VERSION_TAG: project_version()},
            opts=self._child("resource-group"),
        )
        # Storage, SignalR, SQL and Functions names are global DNS names: a per-stack suffix.
        suffix = random.RandomString(
            self._named("name-suffix"),
            length=6,
            upper=False,
            special=False,
            numeric=True,
            opts=self._child("name-suffix"),
        )
        self._group = group
        self._naming = Naming(
            workload=settings.workload, environment=settings.environment, suffix=suffix.result
        )
        placement: dict[str, Any] = {
            "resource_group_name": group.name,
            "location": settings.location,
            "tags": settings.tags,
            "naming": self._naming,
            "lock": settings.protect_data,
        }
        self._monitoring = Monitoring(
            self._named("monitoring"),
            MonitoringArgs(
                **placement,
                retention_days=settings.log_retention_days,
                # Stacks deployed before had them inside the Functions app component.
                moved_from=MovedFrom(
                    parent_urn=pulumi.create_urn("functions", FUNCTION_APP_TYPE_TOKEN),
                    name_prefix="functions",
                ),
            ),
            opts=self._child("monitoring"),
        )
        common = {**placement, "diagnostics": Diagnostics(workspace_id=self._monitoring.resource_id)}
        self._network = self._private_network(common)
        return common

    def _private_network(self, common: dict[str, Any]) -> Network | None:
        """With `network: private`, SQL and the Functions host storage behind private endpoints."""
        network = self._settings.network
        if not network.private:
            return None
        return Network(
            self._named("network"),
            NetworkArgs(
                **common,
                address_space=network.address_space,
                app_subnet_id=network.app_subnet_id,
                endpoint_subnet_id=network.endpoint_subnet_id,
                dns_zone_ids=network.dns_zone_ids,
            ),
            opts=self._child("network"),
        )

    def _services(self, common: dict[str, Any]) -> tuple[StaticSite, SqlDatabase, FunctionApp, SignalR]:
        """Steps 1 to 6: the site, the database, the Functions app and SignalR, wired together."""
        settings, group = self._settings, self._group
        in_group = (group.name, settings.location, settings.tags)
        # The identities exist before the services, so every service can grant them access first.
        app_identity = create_identity(
            self._named("app-identity"), self._naming.name("id"), *in_group, self._child("app-identity")
        )
        signalr_identity = create_identity(
            self._named("signalr-identity"),
            self._naming.name("id-sigr"),
            *in_group,
            self._child("signalr-identity"),
        )
        # 1. The static files in Blob Storage (uploaded at the end, once the API's address is known).
        site = StaticSite(
            self._named("site"),
            StaticSiteArgs(**common, redundancy=settings.storage_redundancy, deployer=self._deployer),
            opts=self._child("site"),
        )
        allowed_origins = pulumi.Output.all(site.origin, *settings.cors_origins)
        # 4. Every event becomes a row in Azure SQL Database, the source of truth for every broadcast.
        database = self._database(common, app_identity)
        # 2 and 5. Negotiate, publish, and the SQL triggers that broadcast each change.
        signalr_name = self._naming.name("sigr")
        functions = self._functions(
            common, app_identity, signalr_identity, signalr_name, database, allowed_origins
        )
        # 3 and 6. SignalR fans every broadcast out and reports connections back to the app.
        signalr = self._signalr(
            common, signalr_name, allowed_origins, functions, app_identity, signalr_identity
        )
        site.publish(
            files=site_files(),
            config=functions.api_base_url.apply(lambda api: config_document(api, wiring.HUB_NAME)),
        )
        return site, database, functions, signalr

    def _database(self, common: dict[str, Any], app_identity: Any) -> SqlDatabase:
        settings, network = self._settings, self._network
        # A deployment script applies the schema, on the public network or from inside a network of
        # the stack's own; its identity is then SQL's admin unless sqlAdmin* names a group. Only a
        # brought network (no script subnet) leaves the schema to the deploying identity, the admin.
        schema_subnet_id = network.script_subnet_id if network else None
        scripted = network is None or schema_subnet_id is not None
        return SqlDatabase(
            self._named("sql"),
            SqlDatabaseArgs(
                **common,
                administrator=None
                if scripted and not settings.sql_admin
                else sql_administrator(settings, self._client),
                sku=settings.sql_sku,
                auto_pause_delay_minutes=settings.sql_auto_pause_delay_minutes,
                zone_redundant=settings.sql_zone_redundant,
                backup_retention_days=settings.sql_backup_retention_days,
                client_ip_ranges=settings.sql_client_ip_ranges,
                app_identity=app_identity,
                private_access=network.private_access if network else None,
                schema_subnet_id=schema_subnet_id,
            ),
            opts=self._child("sql"),
        )

    def _functions(
        self,
        common: dict[str, Any],
        app_identity: Any,
        signalr_identity: Any,
        signalr_name: pulumi.Output[str],
        database: SqlDatabase,
        allowed_origins: pulumi.Output[Any],
    ) -> FunctionApp:
        settings, monitoring = self._settings, self._monitoring
        plan = HostingPlan(
            self._named("plan"),
            HostingPlanArgs(**common, plan=settings.hosting_plan, sku=settings.hosting_sku),
            opts=self._child("plan"),
        )
        return FunctionApp(
            self._named("functions"),
            FunctionAppArgs(
                **common,
                **_function_settings(settings),
                server_farm_id=plan.resource_id,
                hosting_plan=plan.plan,
                identity=app_identity,
                # SignalR's endpoint from its name (Azure derives `<name>.service.signalr.net`), so that
                # SignalR can take the app's real host as its upstream.
                signalr_service_uri=signalr_name.apply(service_uri),
                sql_connection_string=database.connection_string(app_identity.client_id),
                allowed_origins=allowed_origins,
                telemetry=Telemetry(
                    resource_id=monitoring.insights_id,
                    connection_string=monitoring.insights_connection_string,
                ),
                package=plan_package(settings.python_version),
                deploy_after=[database.schema] if database.schema else [],
                tenant_id=self._client.tenant_id,
                signalr_identity=signalr_identity,
                private_access=self._network.private_access if self._network else None,
            ),
            opts=self._child("functions"),
        )

    def _signalr(
        self,
        common: dict[str, Any],
        signalr_name: pulumi.Output[str],
        allowed_origins: pulumi.Output[Any],
        functions: FunctionApp,
        app_identity: Any,
        signalr_identity: Any,
    ) -> SignalR:
        settings = self._settings
        return SignalR(
            self._named("signalr"),
            SignalRArgs(
                **common,
                resource_name=signalr_name,
                allowed_origins=allowed_origins,
                hub=wiring.HUB_NAME,
                sku=settings.signalr_sku,
                units=settings.signalr_units,
                upstream_url=functions.signalr_upstream_url,
                identity=signalr_identity,
                role_assignments={
                    "app-signalr-owner": RoleAssignment(
                        principal_id=app_identity.principal_id,
                        role=Role.SIGNALR_SERVICE_OWNER,
                        aliases=["signalr-role-0"],  # its name while role assignments were a list
                    )
                },
            ),
            opts=self._child("signalr"),
        )

    def _alerting(
        self,
        common: dict[str, Any],
        site: StaticSite,
        database: SqlDatabase,
        functions: FunctionApp,
        signalr: SignalR,
    ) -> None:
        """What pages someone: failures, undelivered messages, saturation, availability from five regions."""
        alerts = self._settings.alerts
        Alerting(
            self._named("alerts"),
            AlertingArgs(
                **common,
                telemetry_id=self._monitoring.insights_id,
                signalr_id=signalr.resource_id,
                sql_database_id=database.database_id,
                email_receivers=alerts.emails,
                availability_urls=(
                    {"api-health": pulumi.Output.concat(functions.api_base_url, "/health"), "site": site.url}
                    if alerts.availability_tests
                    else {}
                ),
                thresholds=alerts.thresholds,
            ),
            opts=self._child("alerts"),
        )

    def _expose(
        self, site: StaticSite, database: SqlDatabase, functions: FunctionApp, signalr: SignalR
    ) -> None:
        self.name = self._group.name
        self.resource_id = self._group.id
        self.site_url = site.url
        self.api_base_url = functions.api_base_url
        self.hub_name = pulumi.Output.from_input(wiring.HUB_NAME)
        self.function_app_name = functions.name
        self.signalr_host_name = signalr.host_name
        self.sql_server_fqdn = database.fully_qualified_domain_name
        self.sql_database_name = database.database_name
        self.log_analytics_workspace = self._monitoring.name
        self.publish_key = pulumi.Output.secret(functions.publish_key)
        self.register_outputs(
            {
                "name": self.name,
                "resource_id": self.resource_id,
                "site_url": self.site_url,
                "api_base_url": self.api_base_url,
                "hub_name": self.hub_name,
                "function_app_name": self.function_app_name,
                "signalr_host_name": self.signalr_host_name,
                "sql_server_fqdn": self.sql_server_fqdn,
                "sql_database_name": self.sql_database_name,
                "log_analytics_workspace": self.log_analytics_workspace,
                "publish_key": self.publish_key,
            }
        )


def _function_settings(settings: Settings) -> dict[str, Any]:
    """The Functions app's arguments that come straight from the settings."""
    return {
        "python_version": settings.python_version,
        "instance_memory_mb": settings.instance_memory_mb,
        "maximum_instance_count": settings.maximum_instance_count,
        "always_ready_instances": settings.always_ready_instances,
        "sql_trigger_polling_interval_ms": settings.sql_trigger_polling_interval_ms,
        "sql_trigger_max_batch_size": settings.sql_trigger_max_batch_size,
        "message_retention_days": settings.message_retention_days,
        "storage_redundancy": settings.storage_redundancy,
    }
