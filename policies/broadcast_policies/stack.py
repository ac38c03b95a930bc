"""The stack as a whole: the design's building blocks, wired to each other within the stack."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    StackValidationArgs,
    StackValidationPolicy,
)

from ._support import (
    APP_SERVICE_PLAN,
    SIGNALR,
    SQL_BACKUP_RETENTION,
    SQL_DATABASE,
    SQL_SERVER,
    STATIC_WEBSITE,
    WEB_APP,
    Report,
    config_value,
    environment_of,
)

BUILDING_BLOCKS = {
    STATIC_WEBSITE: "static site storage",
    APP_SERVICE_PLAN: "App Service plan",
    WEB_APP: "Functions app",
    SIGNALR: "SignalR Service",
    SQL_SERVER: "SQL server",
    SQL_DATABASE: "SQL database",
}
SIGNALR_SETTING = "AzureSignalRConnectionString__serviceUri"
SQL_SETTING = "SqlConnectionString"


def _settings(app: Any) -> dict[str, str]:
    pairs = (app.props.get("siteConfig") or {}).get("appSettings") or []
    return {str(pair.get("name")): str(pair.get("value")) for pair in pairs}


def _building_blocks(args: StackValidationArgs, report: Report) -> None:
    counts = Counter(resource.resource_type for resource in args.resources)
    for type_, label in BUILDING_BLOCKS.items():
        if counts[type_] != 1:
            report(
                f"The stack has {counts[type_]} {label} resource(s) ({type_}); the design has exactly one."
            )
    apps = [r for r in args.resources if r.resource_type == WEB_APP]
    signalrs = [r for r in args.resources if r.resource_type == SIGNALR]
    servers = [r for r in args.resources if r.resource_type == SQL_SERVER]
    databases = [r for r in args.resources if r.resource_type == SQL_DATABASE]
    if len(apps) != 1 or len(signalrs) != 1 or len(servers) != 1 or len(databases) != 1:
        return
    (app,), (signalr,), (server,), (database,) = apps, signalrs, servers, databases
    settings = _settings(app)
    expected_uri = f"https://{signalr.props.get('resourceName')}.service.signalr.net"
    if settings.get(SIGNALR_SETTING) != expected_uri:
        report(
            f"The Functions app's {SIGNALR_SETTING} is {settings.get(SIGNALR_SETTING)!r}, not this stack's "
            f"SignalR ({expected_uri}).",
            app.urn,
        )
    connection = settings.get(SQL_SETTING, "")
    server_host = f"{server.props.get('serverName')}.database.windows.net"
    if (
        f"Server=tcp:{server_host}," not in connection
        or f"Database={database.props.get('databaseName')};" not in connection
    ):
        report(
            f"The Functions app's {SQL_SETTING} does not point at this stack's server {server_host} and "
            f"database {database.props.get('databaseName')}.",
            app.urn,
        )


DTU_WORKERS = {"Basic": 30, "S0": 60, "S1": 90, "S2": 120, "S3": 200}
"""Max concurrent workers of the DTU sizes ("Resource limits for single databases using the DTU
purchasing model"); the next request fails with error 10928."""
SQL_SCALE_GROUPS, SQL_TRIGGERED, SQL_TIMERS = 5, 2, 2
"""As settings/loading.py counts them: the HTTP group, two SignalR event functions and two SQL-triggered
functions, one SQL request per instance each (always-ready instances on top for the triggers), plus
two timers on one instance each. The pack does not import the program, so the numbers are repeated."""


def _sql_workers(args: StackValidationArgs, report: Report) -> None:
    databases = [r for r in args.resources if r.resource_type == SQL_DATABASE]
    apps = [r for r in args.resources if r.resource_type == WEB_APP]
    if len(databases) != 1 or len(apps) != 1:
        return
    workers = DTU_WORKERS.get(str((databases[0].props.get("sku") or {}).get("name")))
    scale = ((apps[0].props.get("functionAppConfig") or {}).get("scaleAndConcurrency")) or {}
    if workers is None or "maximumInstanceCount" not in scale:
        return
    ready = max((int(a.get("instanceCount") or 0) for a in scale.get("alwaysReady") or []), default=0)
    demand = SQL_SCALE_GROUPS * int(scale["maximumInstanceCount"]) + SQL_TRIGGERED * ready + SQL_TIMERS
    if demand > workers:
        report(
            f"The Functions app can run {demand} SQL requests at once (maximumInstanceCount "
            f"{scale['maximumInstanceCount']}), more than the database's {workers} workers (error 10928). "
            "Lower maximumInstanceCount or choose a larger sqlSku.",
            apps[0].urn,
        )


def _production_backups(args: StackValidationArgs, report: Report) -> None:
    environments = {environment_of(r.props) for r in args.resources if r.resource_type == SQL_DATABASE}
    if "prod" not in environments:
        return
    minimum = int(config_value(args.get_config(), "minimumRetentionDays", 14))
    policies = [r for r in args.resources if r.resource_type == SQL_BACKUP_RETENTION]
    if not policies:
        report(
            f"Production database has no backup retention policy. Keep at least {minimum} days "
            "(sqlBackupRetentionDays)."
        )
    for policy in policies:
        days = int(policy.props.get("retentionDays") or 0)
        if days < minimum:
            report(
                f"Production backup retention is {days} days; "
                f"keep at least {minimum} (sqlBackupRetentionDays).",
                policy.urn,
            )


POLICIES = [
    StackValidationPolicy(
        name="stack-sql-workers",
        description="A DTU database has workers for every SQL request the Functions app can run at once.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_sql_workers,
    ),
    StackValidationPolicy(
        name="stack-building-blocks",
        description="Exactly the design's building blocks, and the Functions app wired to this stack's "
        "SignalR and SQL.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_building_blocks,
    ),
    StackValidationPolicy(
        name="stack-production-backups",
        description="Production keeps point-in-time backups long enough.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_production_backups,
        config_schema=PolicyConfigSchema(
            properties={
                "minimumRetentionDays": {"type": "integer", "default": 14, "minimum": 1, "maximum": 35}
            }
        ),
    ),
]
