"""Monitoring: the one Log Analytics workspace every resource reports to, and Application Insights.

Azure resources: `operationalinsights.Workspace` and a workspace-based `applicationinsights.Component`
that accepts telemetry with an Entra token only. Created first and handed to every other component
(their diagnostic settings send here), and to the Functions app (its telemetry) and the alerts.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import applicationinsights, operationalinsights

from components.shared import ComponentArgs


@dataclass(frozen=True, kw_only=True)
class MovedFrom:
    """Where the workspace and Application Insights were declared before (a parent component's URN and
    their logical names' prefix): aliases keep deployed ones instead of replacing them."""

    parent_urn: pulumi.Input[str]
    name_prefix: str


@dataclass(kw_only=True)
class MonitoringArgs(ComponentArgs):
    """Arguments of `Monitoring`."""

    retention_days: int = 30
    """Optional. Log Analytics retention, 30-730 days. Default: 30."""
    moved_from: MovedFrom | None = None
    """Optional. Where these resources lived in a stack deployed before. Default: none."""


class Monitoring(pulumi.ComponentResource):
    """A Log Analytics workspace and workspace-based Application Insights with Entra-only ingestion."""

    name: pulumi.Output[str]
    """The workspace name."""
    resource_id: pulumi.Output[str]
    """The workspace's resource id: where diagnostic settings send."""
    insights_id: pulumi.Output[str]
    """Application Insights' resource id."""
    insights_connection_string: pulumi.Output[str]
    """Application Insights' connection string (not a secret: ingestion needs an Entra token)."""

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("broadcast:monitoring:Monitoring", name, None, opts)
        workspace = operationalinsights.Workspace(
            f"{name}-workspace",
            workspace_name=args.naming.name("log"),
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=dict(args.tags),
            sku=operationalinsights.WorkspaceSkuArgs(
                name=operationalinsights.WorkspaceSkuNameEnum.PER_GB2018
            ),
            retention_in_days=args.retention_days,
            opts=self._options(args, "logs"),
        )
        insights = applicationinsights.Component(
            f"{name}-insights",
            resource_name_=args.naming.name("appi"),
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=dict(args.tags),
            kind="web",
            application_type=applicationinsights.ApplicationType.WEB,
            workspace_resource_id=workspace.id,
            ingestion_mode=applicationinsights.IngestionMode.LOG_ANALYTICS,
            # Telemetry is accepted only with an Entra token (the app's identity), not the ikey alone.
            disable_local_auth=True,
            opts=self._options(args, "insights"),
        )
        self.name = workspace.name
        self.resource_id = workspace.id
        self.insights_id = insights.id
        self.insights_connection_string = insights.connection_string
        self.register_outputs(
            {
                "name": self.name,
                "resource_id": self.resource_id,
                "insights_id": self.insights_id,
                "insights_connection_string": self.insights_connection_string,
            }
        )

    def _options(self, args: MonitoringArgs, suffix: str) -> pulumi.ResourceOptions:
        aliases = []
        if args.moved_from is not None:
            aliases = [
                pulumi.Alias(
                    name=f"{args.moved_from.name_prefix}-{suffix}", parent=args.moved_from.parent_urn
                )
            ]
        return pulumi.ResourceOptions(parent=self, aliases=aliases, protect=args.lock)
