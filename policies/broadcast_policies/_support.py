"""What the rules share: resource type tokens, the environment of a resource, config access."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import Any

STORAGE_ACCOUNT = "azure-native:storage:StorageAccount"
STATIC_WEBSITE = "azure-native:storage:StorageAccountStaticWebsite"
BLOB_CONTAINER = "azure-native:storage:BlobContainer"
WEB_APP = "azure-native:web:WebApp"
APP_SERVICE_PLAN = "azure-native:web:AppServicePlan"
SIGNALR = "azure-native:signalrservice:SignalR"
SQL_SERVER = "azure-native:sql:Server"
SQL_DATABASE = "azure-native:sql:Database"
SQL_FIREWALL_RULE = "azure-native:sql:FirewallRule"
SQL_BACKUP_RETENTION = "azure-native:sql:BackupShortTermRetentionPolicy"
RESOURCE_GROUP = "azure-native:resources:ResourceGroup"
USER_ASSIGNED_IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
WORKSPACE = "azure-native:operationalinsights:Workspace"
APP_INSIGHTS = "azure-native:applicationinsights:Component"
KEY_VAULT = "azure-native:keyvault:Vault"
DIAGNOSTIC_SETTING = "azure-native:monitor:DiagnosticSetting"
LOCK = "azure-native:authorization:ManagementLockByScope"
PRIVATE_ENDPOINT = "azure-native:network:PrivateEndpoint"
SQL_AUDITING = "azure-native:sql:ServerBlobAuditingPolicy"
ACTION_GROUP = "azure-native:monitor:ActionGroup"
METRIC_ALERT = "azure-native:monitor:MetricAlert"
LOG_ALERT = "azure-native:monitor:ScheduledQueryRule"
VIRTUAL_NETWORK = "azure-native:network:VirtualNetwork"

Report = Callable[..., None]
"""How a rule reports: `report(message)` or `report(message, urn)` (the SDK's ReportViolation)."""

TAGGABLE = frozenset(
    {
        RESOURCE_GROUP,
        STORAGE_ACCOUNT,
        WEB_APP,
        APP_SERVICE_PLAN,
        SIGNALR,
        SQL_SERVER,
        SQL_DATABASE,
        USER_ASSIGNED_IDENTITY,
        WORKSPACE,
        APP_INSIGHTS,
        KEY_VAULT,
        ACTION_GROUP,
        METRIC_ALERT,
        LOG_ALERT,
        PRIVATE_ENDPOINT,
        VIRTUAL_NETWORK,
    }
)
DEFAULT_REQUIRED_TAGS = ["workload", "environment", "managed-by"]
DEFAULT_ALLOWED_LOCATIONS = [
    "westeurope",
    "northeurope",
    "swedencentral",
    "francecentral",
    "germanywestcentral",
    "uksouth",
    "eastus",
    "eastus2",
    "centralus",
    "westus2",
    "westus3",
    "australiaeast",
    "japaneast",
    "southeastasia",
]
DEFAULT_SIGNALR_SKUS = {
    "dev": ["Free_F1", "Standard_S1"],
    "test": ["Standard_S1"],
    "prod": ["Standard_S1", "Premium_P1"],
}
SUPPORTED_PYTHON = ["3.11", "3.12"]
MAX_FIREWALL_RANGE = 65_536


def environment_of(props: Mapping[str, Any]) -> str | None:
    """The `environment` tag of a resource, if it has one."""
    tags = props.get("tags") or {}
    value = tags.get("environment")
    return str(value) if value else None


def config_value(config: Mapping[str, Any], key: str, default: Any) -> Any:
    """A policy config value, or the default when the pack is run without config."""
    value = config.get(key)
    return default if value is None else value


def firewall_range_size(start: str, end: str) -> int:
    """How many IPv4 addresses a firewall rule admits."""
    return int(ipaddress.IPv4Address(end)) - int(ipaddress.IPv4Address(start)) + 1
