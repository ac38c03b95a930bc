"""The validated settings as the program reads them: one frozen dataclass, already checked."""

from __future__ import annotations

from dataclasses import dataclass

from components.alerting import AlertThresholds
from components.sql import DatabaseSku, FirewallRange


@dataclass(frozen=True, kw_only=True)
class SqlAdmin:
    """The Entra principal that administers the SQL server."""

    login: str
    sid: str
    """The object id of a user or group, the application (client) id of a service principal."""
    principal_type: str
    """`User`, `Group` or `Application`."""


@dataclass(frozen=True, kw_only=True)
class NetworkSettings:
    """How the data services are reached."""

    private: bool
    address_space: str
    app_subnet_id: str | None
    """With `endpoint_subnet_id`: an existing network (none is created)."""
    endpoint_subnet_id: str | None
    dns_zone_ids: dict[str, str]
    """Existing private DNS zones by private endpoint sub-resource (`sqlServer`, `blob`, ...)."""


@dataclass(frozen=True, kw_only=True)
class AlertSettings:
    """Who is told, and when."""

    emails: tuple[str, ...]
    thresholds: AlertThresholds
    availability_tests: bool


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the program reads from stack config, typed and already validated."""

    environment: str
    workload: str
    instance: str | None
    """Which instance of the environment (review stacks: `pr<number>`), when there are several."""
    location: str
    hosting_plan: str
    hosting_sku: str
    python_version: str
    instance_memory_mb: int
    maximum_instance_count: int
    always_ready_instances: int
    signalr_sku: str
    signalr_units: int
    sql_sku: DatabaseSku
    sql_auto_pause_delay_minutes: int
    sql_zone_redundant: bool
    sql_backup_retention_days: int
    sql_admin: SqlAdmin | None
    sql_client_ip_ranges: tuple[FirewallRange, ...]
    sql_trigger_polling_interval_ms: int
    sql_trigger_max_batch_size: int
    message_retention_days: int
    storage_redundancy: str
    log_retention_days: int
    cors_origins: tuple[str, ...]
    owner: str | None
    deployer_principal_type: str
    protect_data: bool
    network: NetworkSettings
    alerts: AlertSettings

    @property
    def resource_group_name(self) -> str:
        """`rg-<workload>-<environment>[-<instance>]`: the one name the stack does not randomize."""
        return "-".join(["rg", self.workload, self.environment, *([self.instance] if self.instance else [])])

    @property
    def tags(self) -> dict[str, str]:
        """Tags every taggable resource carries (the policy pack requires the first three)."""
        tags = {"workload": self.workload, "environment": self.environment, "managed-by": "pulumi"}
        if self.owner:
            tags["owner"] = self.owner
        return tags
