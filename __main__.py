"""Instant one-to-many broadcasting on serverless Azure.

The data flow, in the order this program builds it:
  1. the browser loads the web app from Blob Storage's static website;
  2. the web app asks the Functions app to negotiate a SignalR endpoint and token;
  3. it connects to Azure SignalR Service (Serverless mode);
  4. events (a published message, a client connecting) become rows in Azure SQL Database;
  5. a SQL trigger in the Functions app pushes each change through the SignalR output binding;
  6. SignalR pushes it to every connected client at once.
"""

from pathlib import Path

import pulumi
import pulumi_random as random
from pulumi_azure_native import authorization, resources

from artifacts.function_package import plan_package
from artifacts.site_files import config_document, file_manifest, site_files
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
from settings import load_settings
from settings.deployer import deploying_identity, sql_administrator
from settings.version import VERSION_TAG, project_version

# Evaluating this program reads files and makes no network call: the preflight's ARM reads run in
# `python -m deploy` and `python -m preflight`, and the function package is built when it is deployed.
settings = load_settings()
client = authorization.get_client_config_output()
deployer = deploying_identity(settings, client)
# The code ships with `pulumi up`: the function package (planned here by the hash of its inputs, built
# for the Functions host's Linux and Python when it is deployed) and the site's files.
package = plan_package(settings.python_version)
site_content = file_manifest(site_files(), Path(__file__).resolve().parent)

# The version is tagged on the resource group only: a new version updates one tag, not every resource.
resource_group = resources.ResourceGroup(
    "resource-group",
    resource_group_name=settings.resource_group_name,
    location=settings.location,
    tags={**settings.tags, VERSION_TAG: project_version()},
)
# Storage, SignalR, SQL and Functions names are global DNS names: a per-stack suffix keeps them unique.
suffix = random.RandomString("name-suffix", length=6, upper=False, special=False, numeric=True)
naming = Naming(workload=settings.workload, environment=settings.environment, suffix=suffix.result)
placement = {
    "resource_group_name": resource_group.name,
    "location": settings.location,
    "tags": settings.tags,
    "naming": naming,
    "lock": settings.protect_data,
}

# Monitoring first: every component sends its logs and metrics to this one workspace.
monitoring = Monitoring(
    "monitoring",
    MonitoringArgs(
        **placement,
        retention_days=settings.log_retention_days,
        # Stacks deployed before had them inside the Functions app component.
        moved_from=MovedFrom(
            parent_urn=pulumi.create_urn("functions", FUNCTION_APP_TYPE_TOKEN), name_prefix="functions"
        ),
    ),
)
common = {**placement, "diagnostics": Diagnostics(workspace_id=monitoring.resource_id)}

# With `network: private`, SQL and the Functions host storage are reached through private endpoints.
network = (
    Network(
        "network",
        NetworkArgs(
            **common,
            address_space=settings.network.address_space,
            app_subnet_id=settings.network.app_subnet_id,
            endpoint_subnet_id=settings.network.endpoint_subnet_id,
            dns_zone_ids=settings.network.dns_zone_ids,
        ),
    )
    if settings.network.private
    else None
)
private_access = network.private_access if network else None
# A network of its own gets a subnet where the schema is applied from inside (a deployment script), so
# one `pulumi up` from anywhere works; its identity is then SQL's admin unless sqlAdmin* names a group.
schema_subnet_id = network.script_subnet_id if network else None

# The identities exist before the services, so every service can grant them access first: the
# Functions app's (storage, SignalR, SQL), and SignalR's (it reads the upstream key from Key Vault).
in_group = (resource_group.name, settings.location, settings.tags)
app_identity = create_identity("app-identity", naming.name("id"), *in_group)
signalr_identity = create_identity("signalr-identity", naming.name("id-sigr"), *in_group)

# 1. The browser loads the web app's static files from Blob Storage (uploaded at the end, once the
# API's address is known for its config.json).
site = StaticSite("site", StaticSiteArgs(**common, redundancy=settings.storage_redundancy, deployer=deployer))
allowed_origins = pulumi.Output.all(site.origin, *settings.cors_origins)

# 4. Every event becomes a row in Azure SQL Database, the source of truth for every broadcast.
database = SqlDatabase(
    "sql",
    SqlDatabaseArgs(
        **common,
        administrator=None
        if schema_subnet_id and not settings.sql_admin
        else sql_administrator(settings, client),
        sku=settings.sql_sku,
        auto_pause_delay_minutes=settings.sql_auto_pause_delay_minutes,
        zone_redundant=settings.sql_zone_redundant,
        backup_retention_days=settings.sql_backup_retention_days,
        client_ip_ranges=settings.sql_client_ip_ranges,
        app_identity=app_identity,
        private_access=private_access,
        schema_subnet_id=schema_subnet_id,
    ),
)

# 2 and 5. The Functions app negotiates, stores published messages, and its SQL triggers broadcast
# each change. SignalR and the app point at each other; the app takes SignalR's endpoint from the
# name (Azure derives `<name>.service.signalr.net` from it) so SignalR can take the app's real host.
signalr_name = naming.name("sigr")
plan = HostingPlan("plan", HostingPlanArgs(**common, plan=settings.hosting_plan, sku=settings.hosting_sku))
functions = FunctionApp(
    "functions",
    FunctionAppArgs(
        **common,
        server_farm_id=plan.resource_id,
        hosting_plan=plan.plan,
        identity=app_identity,
        signalr_service_uri=signalr_name.apply(service_uri),
        sql_connection_string=database.connection_string(app_identity.client_id),
        allowed_origins=allowed_origins,
        telemetry=Telemetry(
            resource_id=monitoring.insights_id, connection_string=monitoring.insights_connection_string
        ),
        python_version=settings.python_version,
        instance_memory_mb=settings.instance_memory_mb,
        maximum_instance_count=settings.maximum_instance_count,
        always_ready_instances=settings.always_ready_instances,
        sql_trigger_polling_interval_ms=settings.sql_trigger_polling_interval_ms,
        sql_trigger_max_batch_size=settings.sql_trigger_max_batch_size,
        message_retention_days=settings.message_retention_days,
        storage_redundancy=settings.storage_redundancy,
        package=package,
        deploy_after=[database.schema] if database.schema else [],
        deployer=deployer,
        tenant_id=client.tenant_id,
        signalr_identity=signalr_identity,
        private_access=private_access,
    ),
)

# 3 and 6. Clients connect to SignalR Service, which fans every broadcast out to all of them and
# reports connections back to the app.
signalr = SignalR(
    "signalr",
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
)

# The site's files, with a config.json that points the page at this stack's API and hub.
site.publish(
    content=site_content,
    config=functions.api_base_url.apply(lambda api: config_document(api, wiring.HUB_NAME)),
)

# What pages someone: failures, undelivered messages, saturation, and availability from five regions.
alerts = settings.alerts
Alerting(
    "alerts",
    AlertingArgs(
        **common,
        telemetry_id=monitoring.insights_id,
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
)

pulumi.export("resourceGroupName", resource_group.name)
pulumi.export("siteUrl", site.url)
pulumi.export("apiBaseUrl", functions.api_base_url)
pulumi.export("functionAppName", functions.name)
pulumi.export("signalrHostName", signalr.host_name)
pulumi.export("sqlServerFqdn", database.fully_qualified_domain_name)
pulumi.export("sqlDatabaseName", database.database_name)
pulumi.export("logAnalyticsWorkspace", monitoring.name)
# The key publishers send as x-functions-key: `pulumi stack output --show-secrets publishKey`.
pulumi.export("publishKey", pulumi.Output.secret(functions.publish_key))
