"""Azure SQL: Entra-only sign-in, TLS 1.2, no internet-wide firewall, resilience in production."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from ._support import (
    MAX_FIREWALL_RANGE,
    SQL_DATABASE,
    SQL_FIREWALL_RULE,
    SQL_SERVER,
    Report,
    config_value,
    environment_of,
    firewall_range_size,
)


def _entra_only(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != SQL_SERVER:
        return
    admins = args.props.get("administrators") or {}
    if (
        admins.get("azureADOnlyAuthentication") is not True
        or admins.get("administratorType") != "ActiveDirectory"
    ):
        report(
            "SQL server allows SQL logins. Set administrators with administrator_type=ActiveDirectory and "
            "azure_ad_only_authentication=True."
        )
    if args.props.get("administratorLoginPassword") or args.props.get("administratorLogin"):
        report("SQL server declares a SQL admin login/password. Remove them; sign in with Entra identities.")


def _minimum_tls(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type == SQL_SERVER and args.props.get("minimalTlsVersion") not in ("1.2", "1.3"):
        report(
            f"SQL server minimal TLS is {args.props.get('minimalTlsVersion')!r}. "
            "Set minimal_tls_version='1.2'."
        )


def _firewall(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != SQL_FIREWALL_RULE:
        return
    start, end = str(args.props.get("startIpAddress")), str(args.props.get("endIpAddress"))
    if start == end == "0.0.0.0":
        return  # the documented "allow Azure services" rule
    try:
        size = firewall_range_size(start, end)
    except ValueError:
        report(f"Firewall rule {start}-{end} is not an IPv4 range.")
        return
    limit = int(config_value(args.get_config(), "maxAddresses", MAX_FIREWALL_RANGE))
    if size > limit:
        report(
            f"Firewall rule {start}-{end} opens {size} addresses (the internet, or close to it). "
            f"Allow client addresses only: at most {limit} per rule."
        )


def _production_resilience(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != SQL_DATABASE or environment_of(args.props) != "prod":
        return
    if args.props.get("zoneRedundant") is not True:
        report("Production database is not zone-redundant. Set zone_redundant=True (sqlZoneRedundant).")
    if args.props.get("requestedBackupStorageRedundancy") not in ("Zone", "Geo", "GeoZone"):
        report(
            "Production backups are locally redundant only. "
            "Set requested_backup_storage_redundancy to Zone or Geo."
        )


def _dtu_zone_redundancy(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != SQL_DATABASE:
        return
    tier = (args.props.get("sku") or {}).get("tier")
    if tier in ("Basic", "Standard") and args.props.get("zoneRedundant") is True:
        report(
            f"The {tier} SQL tier has no zone redundancy (Azure refuses it). Use a vCore sqlSku such as "
            "GP_Gen5_2, or set sqlZoneRedundant false."
        )


POLICIES = [
    ResourceValidationPolicy(
        name="sql-dtu-no-zone-redundancy",
        description="Basic and Standard SQL databases do not ask for zone redundancy (those tiers lack it).",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_dtu_zone_redundancy,
    ),
    ResourceValidationPolicy(
        name="sql-entra-only",
        description="SQL servers accept Entra sign-in only.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_entra_only,
    ),
    ResourceValidationPolicy(
        name="sql-minimum-tls",
        description="SQL servers require TLS 1.2+.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_minimum_tls,
    ),
    ResourceValidationPolicy(
        name="sql-firewall-not-open",
        description="No SQL firewall rule opens the internet.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_firewall,
        config_schema=PolicyConfigSchema(
            properties={"maxAddresses": {"type": "integer", "default": MAX_FIREWALL_RANGE, "minimum": 1}}
        ),
    ),
    ResourceValidationPolicy(
        name="sql-production-resilience",
        description="Production databases are zone-redundant with zone- or geo-redundant backups.",
        enforcement_level=EnforcementLevel.MANDATORY,
        validate=_production_resilience,
    ),
]
