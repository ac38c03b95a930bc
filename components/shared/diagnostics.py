"""Diagnostic settings, one shared shape (AVM's `diagnosticSettings`): a resource's logs by the
categories Microsoft documents for its type, and its metrics, to one Log Analytics workspace."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
from pulumi_azure_native import monitor

from components.shared.interface import Diagnostics

SETTING_NAME = "to-log-analytics"


def send_diagnostics(
    name: str,
    resource_uri: pulumi.Input[str],
    diagnostics: Diagnostics | None,
    parent: pulumi.Resource,
    logs: Sequence[str] = (),
    metrics: Sequence[str] = ("AllMetrics",),
) -> monitor.DiagnosticSetting | None:
    """Send `logs` (category names) and `metrics` (metric categories) of `resource_uri` to the
    workspace; nothing when the component has no diagnostics destination."""
    if diagnostics is None:
        return None
    return monitor.DiagnosticSetting(
        name,
        name=SETTING_NAME,
        resource_uri=resource_uri,
        workspace_id=diagnostics.workspace_id,
        logs=[monitor.DiagnosticsLogSettingsArgs(category=category, enabled=True) for category in logs],
        metrics=[
            monitor.DiagnosticsMetricSettingsArgs(category=category, enabled=True) for category in metrics
        ],
        opts=pulumi.ResourceOptions(parent=parent),
    )


# Microsoft.Storage ("supported logs"): the logs exist on the services, not the account; the blob
# service's tell who read, wrote and deleted. Transaction metrics on both.
BLOB_LOGS = ("StorageRead", "StorageWrite", "StorageDelete")
STORAGE_METRICS = ("Transaction",)


def send_storage_diagnostics(
    name: str, account_id: pulumi.Output[str], diagnostics: Diagnostics | None, parent: pulumi.Resource
) -> list[monitor.DiagnosticSetting]:
    """A storage account's metrics, and its blob service's reads, writes and deletes."""
    settings = [
        send_diagnostics(
            f"{name}-storage-diagnostics", account_id, diagnostics, parent, metrics=STORAGE_METRICS
        ),
        send_diagnostics(
            f"{name}-blob-diagnostics",
            account_id.apply(lambda account: f"{account}/blobServices/default"),
            diagnostics,
            parent,
            logs=BLOB_LOGS,
            metrics=STORAGE_METRICS,
        ),
    ]
    return [setting for setting in settings if setting is not None]
