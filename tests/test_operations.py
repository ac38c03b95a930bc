"""Running it in production, per stack under mocks: diagnostic settings by the categories Microsoft
documents for each resource type, alerts and their criteria, deletion protection, and private
networking (private endpoints, DNS zones, closed public endpoints)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from components.alerting import AVAILABILITY_LOCATIONS, BROADCAST_LAG_QUERY, undelivered_query
from components.network import FLEX_DELEGATION, PRIVATE_DNS_ZONES, SCRIPT_DNS_ZONES
from functions import wiring
from mocks import SUBSCRIPTION, ProgramRun, Registration, run_stack

DIAGNOSTIC = "azure-native:monitor:DiagnosticSetting"
LOCK = "azure-native:authorization:ManagementLockByScope"
ENDPOINT = "azure-native:network:PrivateEndpoint"
WORKSPACE = "azure-native:operationalinsights:Workspace"
SQL_DATABASE = "azure-native:sql:Database"


def setting(run: ProgramRun, name: str) -> dict[str, Any]:
    return run.one(DIAGNOSTIC, name).inputs


def logs(inputs: dict[str, Any]) -> list[str]:
    assert all(log["enabled"] is True for log in inputs.get("logs", []))
    return [log["category"] for log in inputs.get("logs", [])]


def metrics(inputs: dict[str, Any]) -> list[str]:
    return [metric["category"] for metric in inputs.get("metrics", [])]


def resource_id(run: ProgramRun, type_: str, name: str) -> str:
    """The id the mocks give a resource: derived from its physical name."""
    registration = run.one(type_, name)
    provider = type_.split(":")[1]
    physical = next(
        registration.inputs[key]
        for key in ("accountName", "databaseName", "serverName", "resourceName", "name", "vaultName")
        if key in registration.inputs
    )
    return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-test/providers/Microsoft.{provider}/{physical}"


# Diagnostics: every resource that has them, with the categories its type documents


@pytest.mark.parametrize(
    ("setting_name", "target", "expected_logs", "expected_metrics"),
    [
        (
            "signalr-diagnostics",
            ("azure-native:signalrservice:SignalR", "signalr-"),
            ["AllLogs"],
            ["AllMetrics"],
        ),
        (
            "functions-app-diagnostics",
            ("azure-native:web:WebApp", "functions-"),
            ["FunctionAppLogs"],
            ["AllMetrics"],
        ),
        (
            "functions-vault-diagnostics",
            ("azure-native:keyvault:Vault", "functions-"),
            ["AuditEvent"],
            ["AllMetrics"],
        ),
        ("site-storage-diagnostics", ("azure-native:storage:StorageAccount", "site-"), [], ["Transaction"]),
        (
            "functions-storage-diagnostics",
            ("azure-native:storage:StorageAccount", "functions-"),
            [],
            ["Transaction"],
        ),
        (
            "sql-database-diagnostics",
            ("azure-native:sql:Database", "sql-"),
            [
                "Errors",
                "Timeouts",
                "Blocks",
                "Deadlocks",
                "AutomaticTuning",
                "QueryStoreRuntimeStatistics",
                "QueryStoreWaitStatistics",
                "DatabaseWaitStatistics",
                "SQLInsights",
            ],
            ["Basic", "InstanceAndAppAdvanced", "WorkloadManagement"],
        ),
    ],
)
def test_each_resource_sends_its_documented_categories_to_the_one_workspace(
    stack: ProgramRun,
    setting_name: str,
    target: tuple[str, str],
    expected_logs: list[str],
    expected_metrics: list[str],
) -> None:
    inputs = setting(stack, setting_name)
    workspace = stack.one(WORKSPACE).inputs["workspaceName"]
    assert inputs["workspaceId"].endswith(f"/{workspace}")
    assert inputs["resourceUri"] == resource_id(stack, *target)
    assert (logs(inputs), metrics(inputs)) == (expected_logs, expected_metrics)


@pytest.mark.parametrize("account", ["site", "functions"])
def test_blob_reads_writes_and_deletes_are_logged_on_the_blob_service(
    stack: ProgramRun, account: str
) -> None:
    inputs = setting(stack, f"{account}-blob-diagnostics")
    storage = resource_id(stack, "azure-native:storage:StorageAccount", f"{account}-")
    assert inputs["resourceUri"] == f"{storage}/blobServices/default"
    assert logs(inputs) == ["StorageRead", "StorageWrite", "StorageDelete"]


def test_sql_server_auditing_goes_to_the_workspace_through_master(stack: ProgramRun) -> None:
    policy = stack.one("azure-native:sql:ServerBlobAuditingPolicy").inputs
    assert (policy["state"], policy["isAzureMonitorTargetEnabled"]) == ("Enabled", True)
    audit = setting(stack, "sql-audit-diagnostics")
    server = resource_id(stack, "azure-native:sql:Server", "sql-")
    assert audit["resourceUri"] == f"{server}/databases/master"
    assert logs(audit) == ["SQLSecurityAuditEvents"]


def test_signalr_writes_connectivity_and_messaging_logs(stack: ProgramRun) -> None:
    features = stack.one("azure-native:signalrservice:SignalR").inputs["features"]
    assert {"flag": "EnableConnectivityLogs", "value": "True"} in features
    assert {"flag": "EnableMessagingLogs", "value": "True"} in features


def test_the_workspace_keeps_logs_as_long_as_the_stack_says(dev: ProgramRun, prod: ProgramRun) -> None:
    assert dev.one(WORKSPACE).inputs["retentionInDays"] == 30
    assert prod.one(WORKSPACE).inputs["retentionInDays"] == 90
    insights = prod.one("azure-native:applicationinsights:Component").inputs
    assert insights["workspaceResourceId"].endswith("/" + prod.one(WORKSPACE).inputs["workspaceName"])


# Alerts


def alert(run: ProgramRun, key: str) -> Registration:
    (found,) = [r for r in run.resources if r.name == f"broadcast-alerts-{key}"]
    return found


def test_one_action_group_emails_the_configured_receivers() -> None:
    run = run_stack("prod", {"alertEmails": ["oncall@example.com", "dba@example.com"]})
    group = run.one("azure-native:monitor:ActionGroup").inputs
    assert group["location"] == "Global" and len(group["groupShortName"]) <= 12
    assert group["emailReceivers"] == [
        {"name": "email-0", "emailAddress": "oncall@example.com", "useCommonAlertSchema": True},
        {"name": "email-1", "emailAddress": "dba@example.com", "useCommonAlertSchema": True},
    ]


def test_dev_notifies_nobody_by_default(dev: ProgramRun) -> None:
    assert dev.one("azure-native:monitor:ActionGroup").inputs.get("emailReceivers", []) == []


@pytest.mark.parametrize(
    ("key", "query", "threshold"),
    [
        ("function-failures", "requests | where success == false", 5),
        ("http-server-errors", "requests | where toint(resultCode) >= 500", 5),
    ],
)
def test_log_alerts_count_failed_invocations_and_5xx(
    stack: ProgramRun, key: str, query: str, threshold: int
) -> None:
    rule = alert(stack, key).inputs
    insights = stack.one("azure-native:applicationinsights:Component").inputs["resourceName"]
    assert rule["scopes"][0].endswith(f"/{insights}") and rule["kind"] == "LogAlert"
    (condition,) = rule["criteria"]["allOf"]
    assert (condition["query"], condition["timeAggregation"]) == (query, "Count")
    assert (condition["operator"], condition["threshold"]) == ("GreaterThan", threshold)
    assert (rule["evaluationFrequency"], rule["windowSize"]) == ("PT5M", "PT5M")
    assert rule["actions"]["actionGroups"][0].endswith(
        "/" + stack.one("azure-native:monitor:ActionGroup").inputs["actionGroupName"]
    )


def test_undelivered_messages_are_found_by_key_in_the_functions_own_logs(stack: ProgramRun) -> None:
    rule = alert(stack, "undelivered-messages").inputs
    (condition,) = rule["criteria"]["allOf"]
    assert condition["query"] == undelivered_query(2)
    assert (condition["metricMeasureColumn"], condition["timeAggregation"]) == ("undelivered", "Total")
    assert (condition["operator"], condition["threshold"], rule["severity"]) == ("GreaterThan", 0, 1)
    assert f'startswith "{wiring.ACCEPTED_LOG} "' in condition["query"]
    assert f'startswith "{wiring.BROADCAST_LOG} "' in condition["query"]
    assert "ago(2m)" in condition["query"] and rule["windowSize"] == "PT30M"


def test_broadcast_lag_alert_reads_the_lag_the_broadcast_function_logs(stack: ProgramRun) -> None:
    """p95 over 5 minutes of word 6 of the broadcast log line, above the 250 ms target. The index
    is held against a line written the way functions/function_app.py writes it."""
    rule = alert(stack, "broadcast-lag").inputs
    (condition,) = rule["criteria"]["allOf"]
    assert condition["query"] == BROADCAST_LAG_QUERY
    assert (condition["metricMeasureColumn"], condition["timeAggregation"]) == ("p95", "Total")
    assert (condition["operator"], condition["threshold"]) == ("GreaterThan", wiring.BROADCAST_LAG_TARGET_MS)
    assert (rule["evaluationFrequency"], rule["windowSize"]) == ("PT5M", "PT5M")
    line = "%s %s as %d lag %d ms" % (wiring.BROADCAST_LOG, "0f0e", 12, 87)  # noqa: UP031 (logging's format)
    assert 'split(message, " ")[6]' in condition["query"] and line.split(" ")[6] == "87"


def test_each_stack_has_one_workbook_of_its_own_resources(stack: ProgramRun) -> None:
    (workbook,) = stack.of_type("azure-native:applicationinsights:Workbook")
    inputs = workbook.inputs
    assert str(uuid.UUID(inputs["resourceName"])) == inputs["resourceName"]
    assert (inputs["kind"], inputs["category"]) == ("shared", "workbook")
    document = json.loads(inputs["serializedData"])
    insights = inputs["sourceId"]
    assert document["version"] == "Notebook/1.0" and document["fallbackResourceIds"] == [insights]
    items = {item["name"]: item["content"] for item in document["items"]}
    assert {"messages", "lag", "clients", "failures", "database"} <= set(items)
    assert "percentile(lag_ms, 95)" in items["lag"]["query"] and items["lag"]["crossComponentResources"] == [
        insights
    ]
    clients = items["clients"]
    assert clients["metrics"][0]["metric"] == "microsoft.signalrservice/signalr--ConnectionCount"
    signalr = stack.one("azure-native:signalrservice:SignalR").inputs["resourceName"]
    assert clients["resourceIds"][0].endswith("/" + signalr)
    database = stack.one(SQL_DATABASE).inputs["databaseName"]
    assert items["database"]["resourceIds"][0].endswith("/" + database)


def test_thresholds_come_from_the_stack() -> None:
    run = run_stack(
        "dev",
        {"alertSqlCpuPercent": 70, "alertUndeliveredMinutes": 5, "alertFunctionFailures": 0},
    )
    assert alert(run, "sql-cpu").inputs["criteria"]["allOf"][0]["threshold"] == 70
    assert "ago(5m)" in alert(run, "undelivered-messages").inputs["criteria"]["allOf"][0]["query"]
    assert alert(run, "function-failures").inputs["criteria"]["allOf"][0]["threshold"] == 0


@pytest.mark.parametrize(
    ("key", "target", "namespace", "metric", "aggregation", "threshold", "window"),
    [
        (
            "signalr-connections",
            "azure-native:signalrservice:SignalR",
            "Microsoft.SignalRService/SignalR",
            "ConnectionQuotaUtilization",
            "Maximum",
            80,
            "PT5M",
        ),
        ("sql-cpu", SQL_DATABASE, "Microsoft.Sql/servers/databases", "cpu_percent", "Average", 80, "PT15M"),
        (
            "sql-storage",
            SQL_DATABASE,
            "Microsoft.Sql/servers/databases",
            "storage_percent",
            "Maximum",
            85,
            "PT1H",
        ),
    ],
)
def test_metric_alerts_watch_quota_cpu_and_storage(
    stack: ProgramRun,
    key: str,
    target: str,
    namespace: str,
    metric: str,
    aggregation: str,
    threshold: int,
    window: str,
) -> None:
    rule = alert(stack, key).inputs
    assert rule["location"] == "global" and rule["windowSize"] == window
    assert rule["scopes"] == [resource_id(stack, target, "")]
    criteria = rule["criteria"]
    assert criteria["odataType"] == "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria"
    (criterion,) = criteria["allOf"]
    assert (criterion["metricNamespace"], criterion["metricName"], criterion["timeAggregation"]) == (
        namespace,
        metric,
        aggregation,
    )
    assert (criterion["operator"], criterion["threshold"]) == ("GreaterThan", threshold)


def test_production_tests_the_api_and_the_site_from_five_regions(prod: ProgramRun) -> None:
    tests = {r.name: r.inputs for r in prod.of_type("azure-native:applicationinsights:WebTest")}
    assert set(tests) == {"broadcast-alerts-availability-api-health", "broadcast-alerts-availability-site"}
    app = prod.one("azure-native:web:WebApp").inputs["name"]
    health = tests["broadcast-alerts-availability-api-health"]
    assert health["request"] == {
        "requestUrl": f"https://{app}.azurewebsites.net/api/health",
        "httpVerb": "GET",
    }
    assert (health["kind"], health["webTestKind"]) == ("standard", "standard")
    assert [location["location"] for location in health["locations"]] == list(AVAILABILITY_LOCATIONS)
    insights = resource_id(prod, "azure-native:applicationinsights:Component", "")
    assert health["tags"][f"hidden-link:{insights}"] == "Resource"
    availability = alert(prod, "availability-api-health-alert").inputs
    criteria = availability["criteria"]
    assert criteria["odataType"] == "Microsoft.Azure.Monitor.WebtestLocationAvailabilityCriteria"
    assert criteria["failedLocationCount"] == len(AVAILABILITY_LOCATIONS) - 2 == 3
    assert criteria["componentId"] == insights


def test_dev_runs_no_availability_tests(dev: ProgramRun) -> None:
    assert dev.of_type("azure-native:applicationinsights:WebTest") == []


# Protection


def test_production_locks_and_protects_what_holds_data(prod: ProgramRun) -> None:
    locks = {r.name: r for r in prod.of_type(LOCK)}
    assert set(locks) == {"broadcast-sql-server-lock", "broadcast-sql-database-lock", "broadcast-site-lock"}
    for lock in locks.values():
        assert (lock.inputs["level"], lock.inputs["lockName"]) == ("CanNotDelete", "do-not-delete")
        assert "protectData false" in lock.inputs["notes"]
    assert locks["broadcast-sql-server-lock"].inputs["scope"] == resource_id(
        prod, "azure-native:sql:Server", ""
    )
    assert locks["broadcast-site-lock"].inputs["scope"] == resource_id(
        prod, "azure-native:storage:StorageAccount", "broadcast-site-"
    )
    protected = sorted(r.name for r in prod.resources if r.protect)
    assert protected == [
        "broadcast-functions-storage",
        "broadcast-functions-vault",
        "broadcast-monitoring-insights",
        "broadcast-monitoring-workspace",
        "broadcast-site-storage",
        "broadcast-sql-database",
        "broadcast-sql-server",
    ]


def test_a_lock_is_removed_before_what_it_would_guard(prod: ProgramRun) -> None:
    """A lock is inherited by extension and child resources (diagnostic settings, role assignments,
    firewall rules), which then refuse deletion (ScopeLocked): each lock depends on them, so
    Pulumi deletes the lock first."""
    server_lock = prod.one(LOCK, "broadcast-sql-server-lock")
    for name in (
        "broadcast-sql-firewall-AllowAllWindowsAzureIps",
        "broadcast-sql-audit-diagnostics",
        "broadcast-sql-auditing",
        "broadcast-sql-schema-runner-script",
        "broadcast-sql-entra-admin",
    ):
        (resource,) = [r for r in prod.resources if r.name == name]
        assert resource.urn in server_lock.dependencies, name
    site_lock = prod.one(LOCK, "broadcast-site-lock")
    for name in (
        "broadcast-site-deployer-blob",
        "broadcast-site-blob-diagnostics",
        "broadcast-site-storage-diagnostics",
    ):
        (resource,) = [r for r in prod.resources if r.name == name]
        assert resource.urn in site_lock.dependencies, name


def test_dev_is_neither_locked_nor_protected(dev: ProgramRun) -> None:
    assert dev.of_type(LOCK) == [] and [r.name for r in dev.resources if r.protect] == []


# Private networking


def test_the_private_stack_creates_a_network_with_a_flex_subnet_and_an_endpoint_subnet(
    private: ProgramRun,
) -> None:
    vnet = private.one("azure-native:network:VirtualNetwork").inputs
    assert vnet["addressSpace"] == {"addressPrefixes": ["10.20.0.0/24"]}
    app, endpoints, scripts = vnet["subnets"]
    assert (app["name"], app["addressPrefix"]) == ("snet-app", "10.20.0.0/25")
    assert app["delegations"] == [{"name": "flex-consumption", "serviceName": FLEX_DELEGATION}]
    assert (endpoints["name"], endpoints["addressPrefix"]) == ("snet-endpoints", "10.20.0.128/26")
    # Where the schema's deployment script runs (tests/test_private_stack.py).
    assert (scripts["name"], scripts["addressPrefix"]) == ("snet-scripts", "10.20.0.192/26")
    web = private.one("azure-native:web:WebApp").inputs
    assert web["virtualNetworkSubnetId"].endswith(f"/{vnet['virtualNetworkName']}/subnets/snet-app")


def test_sql_and_host_storage_are_reached_through_private_endpoints_only(private: ProgramRun) -> None:
    endpoints = {
        r.inputs["privateLinkServiceConnections"][0]["groupIds"][0]: r for r in private.of_type(ENDPOINT)
    }
    # file: the storage of the schema's deployment script.
    assert set(endpoints) == {"sqlServer", "blob", "queue", "table", "file"}
    server = resource_id(private, "azure-native:sql:Server", "")
    host = resource_id(private, "azure-native:storage:StorageAccount", "functions-")
    assert endpoints["sqlServer"].inputs["privateLinkServiceConnections"][0]["privateLinkServiceId"] == server
    for group in ("blob", "queue", "table"):
        assert endpoints[group].inputs["privateLinkServiceConnections"][0]["privateLinkServiceId"] == host
        assert endpoints[group].inputs["subnet"]["id"].endswith("/subnets/snet-endpoints")
    zones = {r.inputs["privateZoneName"] for r in private.of_type("azure-native:privatedns:PrivateZone")}
    assert zones == {*PRIVATE_DNS_ZONES.values(), *SCRIPT_DNS_ZONES.values()}
    links = private.of_type("azure-native:privatedns:VirtualNetworkLink")
    assert len(links) == 5 and all(link.inputs["registrationEnabled"] is False for link in links)
    for group, zone in PRIVATE_DNS_ZONES.items():
        (dns,) = [
            r
            for r in private.of_type("azure-native:network:PrivateDnsZoneGroup")
            if r.name.startswith(endpoints[group].name)
        ]
        config = dns.inputs["privateDnsZoneConfigs"][0]
        assert config["privateDnsZoneId"].endswith(f"/{zone}"), group
    assert private.one("azure-native:sql:Server").inputs["publicNetworkAccess"] == "Disabled"
    assert private.of_type("azure-native:sql:FirewallRule") == []
    storage = private.one("azure-native:storage:StorageAccount", "functions-").inputs
    assert storage["publicNetworkAccess"] == "Disabled"
    assert storage["networkRuleSet"] == {"defaultAction": "Deny", "bypass": "None"}


def test_what_browsers_reach_stays_public(private: ProgramRun) -> None:
    site = private.one("azure-native:storage:StorageAccount", "site-").inputs
    assert "publicNetworkAccess" not in site
    assert private.one("azure-native:signalrservice:SignalR").inputs["publicNetworkAccess"] == "Enabled"


VNET = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-hub/providers/Microsoft.Network/virtualNetworks/hub"
ZONES = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-dns/providers/Microsoft.Network/privateDnsZones"


def test_an_enterprise_brings_its_own_network_and_zones() -> None:
    run = run_stack(
        "test",
        {
            "networkAppSubnetId": f"{VNET}/subnets/functions",
            "networkEndpointSubnetId": f"{VNET}/subnets/endpoints",
            "networkPrivateDnsZoneIds": [f"{ZONES}/privatelink.database.windows.net"],
        },
    )
    assert run.of_type("azure-native:network:VirtualNetwork") == []
    assert run.one("azure-native:web:WebApp").inputs["virtualNetworkSubnetId"] == f"{VNET}/subnets/functions"
    assert {r.inputs["subnet"]["id"] for r in run.of_type(ENDPOINT)} == {f"{VNET}/subnets/endpoints"}
    # The given zone is used; the others are created and linked to the given network.
    created = {r.inputs["privateZoneName"] for r in run.of_type("azure-native:privatedns:PrivateZone")}
    assert created == set(PRIVATE_DNS_ZONES.values()) - {"privatelink.database.windows.net"}
    links = run.of_type("azure-native:privatedns:VirtualNetworkLink")
    assert {link.inputs["virtualNetwork"]["id"] for link in links} == {VNET}
    sql_dns = next(
        r
        for r in run.of_type("azure-native:network:PrivateDnsZoneGroup")
        if r.name.startswith("broadcast-sql-")
    )
    assert (
        sql_dns.inputs["privateDnsZoneConfigs"][0]["privateDnsZoneId"]
        == f"{ZONES}/privatelink.database.windows.net"
    )


def test_a_presence_check_that_stopped_running_for_5_minutes_alerts(stack: ProgramRun) -> None:
    """The presence guarantee rests on the check_presence timer, and timers on Flex Consumption can
    stop after a deployment (Azure/azure-functions-host#11828): no invocation in 5 minutes fires."""
    from function_support import FUNCTIONS

    from components.alerting import PRESENCE_CHECK_FUNCTION

    trigger = FUNCTIONS[PRESENCE_CHECK_FUNCTION].get_trigger()
    assert trigger.get_binding_name() == "timerTrigger" and trigger.schedule == wiring.PRESENCE_CHECK_SCHEDULE
    rule = alert(stack, "presence-check-stopped").inputs
    (condition,) = rule["criteria"]["allOf"]
    assert condition["query"] == f'requests | where operation_Name == "{PRESENCE_CHECK_FUNCTION}"'
    assert (condition["timeAggregation"], condition["operator"], condition["threshold"]) == (
        "Count",
        "LessThan",
        1,
    )
    assert (rule["windowSize"], rule["evaluationFrequency"], rule["severity"]) == ("PT5M", "PT5M", 1)
