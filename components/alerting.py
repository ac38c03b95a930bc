"""Alerting: what pages someone, the action group that does the paging, and the stack's picture.

Azure resources: `monitor.ActionGroup` (e-mail receivers), log alerts (`monitor.ScheduledQueryRule`)
on Application Insights for failed invocations, HTTP 5xx, messages stored but never broadcast, a
broadcast lag whose p95 over 5 minutes is above its target, and the presence check's timer that
stopped running, an `applicationinsights.Workbook` (messages a minute, lag percentiles, connected
clients, failures, the database's load),
metric alerts (`monitor.MetricAlert`) for SignalR's connection quota and SQL's CPU and storage, and
standard availability tests (`applicationinsights.WebTest`) from five regions with their alerts.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi_azure_native import applicationinsights, monitor

from components.shared import ComponentArgs
from functions import wiring

# Microsoft recommends at least five test locations and alerting when all but two fail
# (Application Insights availability tests); these span Europe and the US.
AVAILABILITY_LOCATIONS = (
    "emea-nl-ams-azr",  # West Europe
    "emea-gb-db3-azr",  # North Europe
    "emea-fr-pra-edge",  # France Central
    "us-va-ash-azr",  # East US
    "us-ca-sjc-azr",  # West US
)


@dataclass(frozen=True, kw_only=True)
class AlertThresholds:
    """When each alert fires."""

    function_failures: int = 5
    """Failed invocations (any function: HTTP, SQL trigger, SignalR trigger) in 5 minutes."""
    http_server_errors: int = 5
    """HTTP answers 500-599 in 5 minutes."""
    undelivered_after_minutes: int = 2
    """A message accepted this long ago and not yet broadcast counts as undelivered."""
    signalr_connection_percent: int = 80
    """SignalR connections as a share of the units' quota (Maximum over 5 minutes)."""
    sql_cpu_percent: int = 80
    """SQL CPU (Average over 15 minutes)."""
    sql_storage_percent: int = 85
    """SQL data space used (Maximum over an hour)."""
    broadcast_lag_p95_ms: int = wiring.BROADCAST_LAG_TARGET_MS
    """p95 of createdAt-to-send over 5 minutes (the broadcast function's log), in ms."""


PRESENCE_CHECK_FUNCTION = "check_presence"
"""The timer the presence guarantee rests on (functions/function_app.py, every minute)."""
PRESENCE_CHECK_QUERY = f'requests | where operation_Name == "{PRESENCE_CHECK_FUNCTION}"'
"""Each invocation of a function, timers included, is one `requests` row named after the function."""


def undelivered_query(after_minutes: int) -> str:
    """Messages the API accepted that no broadcast announced: the publish function logs each key it
    accepted, the SQL-triggered broadcast each key it sent (functions/wiring.py), so a key logged by
    the first and not the second is a message stored but not delivered, whatever the cause (a stopped
    trigger, a SignalR failure, a poisoned batch). The window reaches back 30 minutes."""
    accepted, sent = wiring.ACCEPTED_LOG, wiring.BROADCAST_LOG
    return (
        f"let accepted = traces | where timestamp between (ago(30m) .. ago({after_minutes}m)) "
        f'| where message startswith "{accepted} " | extend key = tostring(split(message, " ")[2]); '
        f'let sent = traces | where message startswith "{sent} " '
        '| extend key = tostring(split(message, " ")[2]); '
        "accepted | join kind=leftanti sent on key | summarize undelivered = count()"
    )


_SENT = f'traces | where message startswith "{wiring.BROADCAST_LOG} "'
# `<BROADCAST_LOG> <key> as <id> lag <ms> ms`: the lag is word 6 (functions/wiring.py).
_LAG = f'{_SENT} | extend lag_ms = toint(split(message, " ")[6]) | where isnotnull(lag_ms)'
BROADCAST_LAG_QUERY = f"{_LAG} | summarize p95 = percentile(lag_ms, 95)"
"""The service level indicator: p95 of every message's lag in the window (one row)."""


def _kql(name: str, title: str, query: str, telemetry_id: str, chart: str = "timechart") -> dict[str, Any]:
    """A workbook query item on Application Insights (Notebook/1.0 `type: 3`, `KqlItem/1.0`)."""
    return {
        "type": 3,
        "name": name,
        "content": {
            "version": "KqlItem/1.0",
            "title": title,
            "query": query,
            "size": 0,
            "queryType": 0,
            "resourceType": "microsoft.insights/components",
            "crossComponentResources": [telemetry_id],
            "timeContext": {"durationMs": 86_400_000},
            "visualization": chart,
        },
    }


def _metric(
    name: str, title: str, resource_id: str, namespace: str, metrics: Sequence[str]
) -> dict[str, Any]:
    """A workbook metrics item (`type: 10`, `MetricsItem/2.0`), each metric at its Maximum (3)."""
    return {
        "type": 10,
        "name": name,
        "content": {
            "version": "MetricsItem/2.0",
            "chartId": f"workbook-{name}",
            "title": title,
            "size": 0,
            "chartType": 2,
            "resourceType": namespace.lower(),
            "metricScope": 0,
            "resourceIds": [resource_id],
            "timeContext": {"durationMs": 86_400_000},
            "metrics": [
                {"namespace": namespace.lower(), "metric": f"{namespace.lower()}--{metric}", "aggregation": 3}
                for metric in metrics
            ],
        },
    }


def workbook_document(telemetry_id: str, signalr_id: str, database_id: str) -> dict[str, Any]:
    """The stack's workbook (serializedData): messages a minute, lag percentiles against the target,
    connected clients, failures, and the database's CPU and workers (the DTU tiers' limit)."""
    target = wiring.BROADCAST_LAG_TARGET_MS
    lag = (
        f"{_LAG} | summarize p50 = percentile(lag_ms, 50), p95 = percentile(lag_ms, 95), "
        f"p99 = percentile(lag_ms, 99) by bin(timestamp, 1m) | extend target = {target}"
    )
    failures = (
        "requests | where success == false "
        "| summarize failures = count() by bin(timestamp, 5m), operation_Name"
    )
    return {
        "version": "Notebook/1.0",
        "items": [
            {"type": 1, "name": "title", "content": {"json": f"## Broadcast: lag target p95 <= {target} ms"}},
            _kql(
                "messages",
                "Messages broadcast a minute",
                f"{_SENT} | summarize messages = count() by bin(timestamp, 1m)",
                telemetry_id,
            ),
            _kql("lag", "Broadcast lag, createdAt to send (ms)", lag, telemetry_id),
            _metric(
                "clients",
                "Connected clients",
                signalr_id,
                "Microsoft.SignalRService/SignalR",
                ["ConnectionCount"],
            ),
            _kql("failures", "Failed invocations", failures, telemetry_id, chart="barchart"),
            _metric(
                "database",
                "SQL: CPU, workers, sessions (%)",
                database_id,
                "Microsoft.Sql/servers/databases",
                ["cpu_percent", "workers_percent", "sessions_percent"],
            ),
        ],
        "fallbackResourceIds": [telemetry_id],
        "$schema": "https://github.com/Microsoft/Application-Insights-Workbooks/blob/master/schema/workbook.json",
    }


@dataclass(kw_only=True)
class AlertingArgs(ComponentArgs):
    """Arguments of `Alerting`."""

    telemetry_id: pulumi.Input[str]
    """Required. The Application Insights resource the app reports to (log alerts, availability)."""
    signalr_id: pulumi.Input[str]
    """Required. The SignalR resource (connection quota)."""
    sql_database_id: pulumi.Input[str]
    """Required. The database (CPU, storage)."""
    email_receivers: Sequence[str] = ()
    """Optional. Who is e-mailed when an alert fires. Default: nobody (alerts still show in Azure)."""
    availability_urls: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Optional. URLs tested from AVAILABILITY_LOCATIONS every 5 minutes, by test name. Default: none."""
    thresholds: AlertThresholds = field(default_factory=AlertThresholds)
    """Optional. When each alert fires. Default: AlertThresholds()."""


class Alerting(pulumi.ComponentResource):
    """One action group and the alerts that use it."""

    name: pulumi.Output[str]
    """The action group's name."""
    resource_id: pulumi.Output[str]
    """The action group's resource id."""

    def __init__(self, name: str, args: AlertingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("broadcast:alerting:Alerting", name, None, opts)
        self._name, self._args = name, args
        group = self._action_group()
        self._group_id = group.id
        self._failure_alerts(args.thresholds)
        self._silence_alerts(args.thresholds)
        self._capacity_alerts(args.thresholds)
        self._lag_alert(args.thresholds.broadcast_lag_p95_ms)
        self._workbook()
        for test_name, url in args.availability_urls.items():
            self._availability(test_name, url)

        self.name = group.name
        self.resource_id = group.id
        self.register_outputs({"name": self.name, "resource_id": self.resource_id})

    def _action_group(self) -> monitor.ActionGroup:
        """The one action group every alert pages through, so who is e-mailed is decided in one place."""
        args = self._args
        return monitor.ActionGroup(
            f"{self._name}-action-group",
            action_group_name=args.naming.name("ag"),
            resource_group_name=args.resource_group_name,
            location="Global",
            tags=dict(args.tags),
            group_short_name=f"{args.naming.workload}-{args.naming.environment}"[:12],
            enabled=True,
            email_receivers=[
                monitor.MicrosoftCommonEmailReceiverArgs(
                    name=f"email-{index}", email_address=address, use_common_alert_schema=True
                )
                for index, address in enumerate(args.email_receivers)
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _failure_alerts(self, thresholds: AlertThresholds) -> None:
        """Failures the app reports itself: failed invocations of any function, and HTTP 5xx answers."""
        self._log_alert(
            "function-failures",
            "Functions: failed invocations",
            "requests | where success == false",
            thresholds.function_failures,
            severity=2,
        )
        self._log_alert(
            "http-server-errors",
            "API: HTTP 5xx answers",
            "requests | where toint(resultCode) >= 500",
            thresholds.http_server_errors,
            severity=2,
        )

    def _silence_alerts(self, thresholds: AlertThresholds) -> None:
        """What goes wrong without a failure to count: messages stored but never broadcast, and the
        presence check's timer no longer running."""
        self._log_alert(
            "undelivered-messages",
            "Broadcast: messages stored but not delivered",
            undelivered_query(thresholds.undelivered_after_minutes),
            0,
            severity=1,
            measure="undelivered",
            window="PT30M",
        )
        # Timers on Flex Consumption can stop after a deployment (Azure/azure-functions-host#11828),
        # and presence is only right again because check_presence runs every minute: no run in 5
        # minutes is an alert of its own, since a stopped timer fails nothing the others count.
        self._log_alert(
            "presence-check-stopped",
            "Presence: check_presence has not run for 5 minutes",
            PRESENCE_CHECK_QUERY,
            1,
            severity=1,
            operator="LessThan",
        )

    def _capacity_alerts(self, thresholds: AlertThresholds) -> None:
        """Limits warned of before they are reached: SignalR's connection quota, SQL's CPU and storage."""
        args = self._args
        self._metric_alert(
            "signalr-connections",
            "SignalR: connections near the units' quota",
            args.signalr_id,
            "Microsoft.SignalRService/SignalR",
            "ConnectionQuotaUtilization",
            "Maximum",
            thresholds.signalr_connection_percent,
            window="PT5M",
            frequency="PT1M",
        )
        self._metric_alert(
            "sql-cpu",
            "SQL: CPU high",
            args.sql_database_id,
            "Microsoft.Sql/servers/databases",
            "cpu_percent",
            "Average",
            thresholds.sql_cpu_percent,
            window="PT15M",
            frequency="PT5M",
        )
        self._metric_alert(
            "sql-storage",
            "SQL: data space nearly full",
            args.sql_database_id,
            "Microsoft.Sql/servers/databases",
            "storage_percent",
            "Maximum",
            thresholds.sql_storage_percent,
            window="PT1H",
            frequency="PT15M",
        )

    def _log_alert(
        self,
        key: str,
        title: str,
        query: str,
        threshold: int,
        severity: int,
        measure: str | None = None,
        window: str = "PT5M",
        operator: str = "GreaterThan",
    ) -> monitor.ScheduledQueryRule:
        """A log alert on Application Insights: rows of `query` (or the `measure` column's total)
        above (`operator`: or below) `threshold`, checked every 5 minutes."""
        args = self._args
        return monitor.ScheduledQueryRule(
            f"{self._name}-{key}",
            rule_name=args.naming.name(f"alert-{key}"),
            display_name=title,
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=dict(args.tags),
            kind=monitor.Kind.LOG_ALERT,
            scopes=[args.telemetry_id],
            severity=severity,
            enabled=True,
            evaluation_frequency="PT5M",
            window_size=window,
            criteria=monitor.ScheduledQueryRuleCriteriaArgs(
                all_of=[
                    monitor.ConditionArgs(
                        query=query,
                        time_aggregation="Total" if measure else "Count",
                        metric_measure_column=measure,
                        # A plain string: the SDK's ConditionOperator enum has another API's values.
                        operator=operator,
                        threshold=threshold,
                        failing_periods=monitor.ConditionFailingPeriodsArgs(
                            number_of_evaluation_periods=1, min_failing_periods_to_alert=1
                        ),
                    )
                ]
            ),
            actions=monitor.ActionsArgs(action_groups=[self._group_id]),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _lag_alert(self, threshold_ms: int) -> None:
        """The broadcast lag's p95 over 5 minutes above its target (the service level)."""
        self._log_alert(
            "broadcast-lag",
            f"Broadcast: p95 lag over 5 minutes above {threshold_ms} ms",
            BROADCAST_LAG_QUERY,
            threshold_ms,
            severity=2,
            measure="p95",
        )

    def _workbook(self) -> None:
        """One workbook per stack, named by a UUID derived from its Application Insights resource (the
        name must be a UUID; a stable one keeps it an update, never a replacement)."""
        args = self._args
        insights = pulumi.Output.from_input(args.telemetry_id)
        applicationinsights.Workbook(
            f"{self._name}-workbook",
            resource_name_=insights.apply(lambda i: str(uuid.uuid5(uuid.NAMESPACE_URL, f"{i}/workbook"))),
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=dict(args.tags),
            kind="shared",
            category="workbook",
            display_name=f"Broadcast {args.naming.workload} {args.naming.environment}",
            source_id=insights,
            serialized_data=pulumi.Output.all(insights, args.signalr_id, args.sql_database_id).apply(
                lambda ids: json.dumps(workbook_document(*ids))
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _metric_alert(
        self,
        key: str,
        title: str,
        scope: pulumi.Input[str],
        namespace: str,
        metric: str,
        aggregation: str,
        threshold: int,
        window: str,
        frequency: str,
    ) -> monitor.MetricAlert:
        """A static-threshold metric alert on one resource."""
        args = self._args
        return monitor.MetricAlert(
            f"{self._name}-{key}",
            rule_name=args.naming.name(f"alert-{key}"),
            description=title,
            resource_group_name=args.resource_group_name,
            location="global",
            tags=dict(args.tags),
            scopes=[scope],
            severity=2,
            enabled=True,
            evaluation_frequency=frequency,
            window_size=window,
            criteria=monitor.MetricAlertSingleResourceMultipleMetricCriteriaArgs(
                odata_type="Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
                all_of=[
                    monitor.MetricCriteriaArgs(
                        criterion_type="StaticThresholdCriterion",
                        name=metric,
                        metric_name=metric,
                        metric_namespace=namespace,
                        operator="GreaterThan",
                        threshold=threshold,
                        time_aggregation=aggregation,
                    )
                ],
            ),
            actions=[monitor.MetricAlertActionArgs(action_group_id=self._group_id)],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _availability(self, test_name: str, url: pulumi.Input[str]) -> None:
        """A standard test of `url` from every AVAILABILITY_LOCATIONS, and an alert when all but two fail."""
        args = self._args
        # Application Insights refuses a web test without the hidden-link tag to itself.
        tags = pulumi.Output.from_input(args.telemetry_id).apply(
            lambda insights: {**args.tags, f"hidden-link:{insights}": "Resource"}
        )
        test = applicationinsights.WebTest(
            f"{self._name}-availability-{test_name}",
            web_test_name=args.naming.name(f"avail-{test_name}"),
            synthetic_monitor_id=args.naming.name(f"avail-{test_name}"),
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=tags,
            kind=applicationinsights.WebTestKind.STANDARD,
            web_test_kind=applicationinsights.WebTestKind.STANDARD,
            enabled=True,
            frequency=300,
            timeout=30,
            retry_enabled=True,
            locations=[
                applicationinsights.WebTestGeolocationArgs(location=loc) for loc in AVAILABILITY_LOCATIONS
            ],
            request=applicationinsights.WebTestPropertiesRequestArgs(request_url=url, http_verb="GET"),
            validation_rules=applicationinsights.WebTestPropertiesValidationRulesArgs(
                expected_http_status_code=200, s_sl_check=True, s_sl_cert_remaining_lifetime_check=7
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        monitor.MetricAlert(
            f"{self._name}-availability-{test_name}-alert",
            rule_name=args.naming.name(f"alert-avail-{test_name}"),
            description=f"Availability: {test_name} failing from {len(AVAILABILITY_LOCATIONS) - 2}+ regions",
            resource_group_name=args.resource_group_name,
            location="global",
            tags=tags,
            scopes=[test.id, args.telemetry_id],
            severity=1,
            enabled=True,
            evaluation_frequency="PT1M",
            window_size="PT5M",
            criteria=monitor.WebtestLocationAvailabilityCriteriaArgs(
                odata_type="Microsoft.Azure.Monitor.WebtestLocationAvailabilityCriteria",
                web_test_id=test.id,
                component_id=args.telemetry_id,
                failed_location_count=len(AVAILABILITY_LOCATIONS) - 2,
            ),
            actions=[monitor.MetricAlertActionArgs(action_group_id=self._group_id)],
            opts=pulumi.ResourceOptions(parent=self),
        )
