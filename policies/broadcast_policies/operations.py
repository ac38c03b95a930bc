"""Running it in production: every resource reports to Log Analytics, production data is locked
against deletion, and private networking really closes the public endpoints."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pulumi_policy import EnforcementLevel, StackValidationArgs, StackValidationPolicy

from ._support import (
    DIAGNOSTIC_SETTING,
    KEY_VAULT,
    LOCK,
    PRIVATE_ENDPOINT,
    SIGNALR,
    SQL_AUDITING,
    SQL_DATABASE,
    SQL_SERVER,
    STATIC_WEBSITE,
    STORAGE_ACCOUNT,
    WEB_APP,
    Report,
    environment_of,
)

DIAGNOSED_TYPES = {
    SIGNALR: "SignalR",
    SQL_DATABASE: "SQL database",
    STORAGE_ACCOUNT: "storage account",
    WEB_APP: "Functions app",
    KEY_VAULT: "Key Vault",
}
"""Resource types with diagnostic settings in this stack, by what to call them."""


def _from(resource: Any, key: str) -> set[str]:
    """The URNs the value of input `key` came from."""
    return {source.urn for source in (resource.property_dependencies or {}).get(key, [])}


def _of_type(args: StackValidationArgs, type_: str) -> list[Any]:
    return [r for r in args.resources if r.resource_type == type_]


def _settings_by_target(args: StackValidationArgs) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for setting in _of_type(args, DIAGNOSTIC_SETTING):
        if not setting.props.get("workspaceId") and not _from(setting, "workspaceId"):
            continue
        for urn in _from(setting, "resourceUri"):
            found.setdefault(urn, []).append(setting)
    return found


def _categories(settings: Iterable[Any]) -> set[str]:
    return {str(log.get("category")) for setting in settings for log in setting.props.get("logs") or []}


def _diagnostics_everywhere(args: StackValidationArgs, report: Report) -> None:
    by_target = _settings_by_target(args)
    for resource in args.resources:
        label = DIAGNOSED_TYPES.get(resource.resource_type)
        if label is None:
            continue
        settings = by_target.get(resource.urn, [])
        if not settings:
            report(
                f"The {label} {resource.name} sends no logs or metrics anywhere. Give its component "
                "`diagnostics` (the Monitoring workspace).",
                resource.urn,
            )
        elif resource.resource_type == STORAGE_ACCOUNT and not {"StorageRead", "StorageWrite"} <= _categories(
            settings
        ):
            report(
                f"The storage account {resource.name} logs no blob reads and writes. Add a diagnostic "
                "setting on its blobServices/default with StorageRead, StorageWrite, StorageDelete.",
                resource.urn,
            )
    for server in _of_type(args, SQL_SERVER):
        audited = any(
            server.urn in _from(policy, "serverName")
            and policy.props.get("isAzureMonitorTargetEnabled") is True
            for policy in _of_type(args, SQL_AUDITING)
        )
        if not audited or "SQLSecurityAuditEvents" not in _categories(by_target.get(server.urn, [])):
            report(
                f"The SQL server {server.name} is not audited to Log Analytics. Enable server auditing with "
                "isAzureMonitorTargetEnabled and a diagnostic setting on master with SQLSecurityAuditEvents.",
                server.urn,
            )


def _locked(args: StackValidationArgs) -> set[str]:
    return {
        urn
        for lock in _of_type(args, LOCK)
        if lock.props.get("level") == "CanNotDelete"
        for urn in _from(lock, "scope")
    }


def _production_locks(args: StackValidationArgs, report: Report) -> None:
    locked = _locked(args)
    websites = {urn for site in _of_type(args, STATIC_WEBSITE) for urn in _from(site, "accountName")}
    for resource in args.resources:
        if environment_of(resource.props) != "prod":
            continue
        holds_data = resource.resource_type in (SQL_SERVER, SQL_DATABASE) or resource.urn in websites
        if holds_data and resource.urn not in locked:
            report(
                f"Production {resource.resource_type.split(':')[-1]} {resource.name} has no CanNotDelete "
                "lock. Set protectData (on by default in prod).",
                resource.urn,
            )


def _private_network_closed(args: StackValidationArgs, report: Report) -> None:
    targets = {
        urn
        for endpoint in _of_type(args, PRIVATE_ENDPOINT)
        for urn in _from(endpoint, "privateLinkServiceConnections")
    }
    for resource in args.resources:
        closable = resource.urn in targets and resource.resource_type in (SQL_SERVER, STORAGE_ACCOUNT)
        if closable and resource.props.get("publicNetworkAccess") != "Disabled":
            report(
                f"{resource.name} has a private endpoint but still accepts public traffic. Set "
                "publicNetworkAccess to Disabled (network: private).",
                resource.urn,
            )


POLICIES = [
    StackValidationPolicy(
        name="diagnostics-everywhere",
        description="Every resource type with diagnostic settings sends its logs and metrics to Log "
        "Analytics, and SQL is audited there.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_diagnostics_everywhere,
    ),
    StackValidationPolicy(
        name="production-locks",
        description="Production SQL servers, databases and the site's storage are locked against deletion.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_production_locks,
    ),
    StackValidationPolicy(
        name="private-network-closed",
        description="Services reached through private endpoints refuse public network access.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_private_network_closed,
    ),
]
