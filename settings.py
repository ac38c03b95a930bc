"""Typed, validated stack settings: every key the program reads, its type, defaults and rules.

`load_settings` runs once, before any resource is declared. It checks every key and raises one
`SettingsError` that lists each bad key with the value it got and the values it accepts, so a
typo in `Pulumi.<stack>.yaml` fails `pulumi preview` in a second instead of half-way into `up`.
The same keys are declared in `Pulumi.yaml` (type and description) so `pulumi config` shows them.
"""

from __future__ import annotations

import ipaddress
import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

PROJECT = "broadcast"
ENVIRONMENTS = ("dev", "test", "prod")
HOSTING_PLANS = ("FlexConsumption", "ElasticPremium", "Dedicated")
HOSTING_SKUS: Mapping[str, tuple[str, ...]] = {
    "FlexConsumption": ("FC1",),
    "ElasticPremium": ("EP1", "EP2", "EP3"),
    "Dedicated": ("B1", "B2", "B3", "S1", "S2", "S3", "P0v3", "P1v3", "P2v3", "P3v3"),
}
# Python versions the Functions host supports on Linux for every hosting plan here.
PYTHON_VERSIONS = ("3.11", "3.12")
INSTANCE_MEMORY_MB = (512, 2048, 4096)
SIGNALR_SKUS = ("Free_F1", "Standard_S1", "Premium_P1")
# Unit counts Azure SignalR Service accepts for Standard and Premium.
SIGNALR_UNITS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)
SQL_SKU_PATTERN = re.compile(r"^(GP_S|GP|BC|HS)_Gen5_(\d+)$")
SQL_VCORES = (1, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 24, 32, 40, 80)
SQL_ADMIN_PRINCIPAL_TYPES = ("User", "Group", "Application")
DEPLOYER_PRINCIPAL_TYPES = ("User", "ServicePrincipal", "Group")
STORAGE_REDUNDANCY = ("LRS", "ZRS", "GRS", "GZRS")
# A firewall rule wider than this is not "a client's address range"; open networks are refused.
MAX_FIREWALL_RANGE_ADDRESSES = 65_536


class SettingsError(ValueError):
    """One or more stack settings are invalid; the message lists each key and how to fix it."""


@dataclass(frozen=True, kw_only=True)
class SqlSku:
    """An Azure SQL Database vCore SKU such as `GP_S_Gen5_1`, split into its ARM fields."""

    name: str
    """The SKU name ARM expects, e.g. `GP_S_Gen5`."""
    tier: str
    """`GeneralPurpose`, `BusinessCritical` or `Hyperscale`."""
    family: str
    """Hardware generation, `Gen5`."""
    capacity: int
    """vCores (the maximum vCores for serverless)."""

    @property
    def serverless(self) -> bool:
        """True for the serverless compute tier, which auto-pauses and bills per second."""
        return self.name.startswith("GP_S_")


@dataclass(frozen=True, kw_only=True)
class IpRange:
    """An inclusive IPv4 range for an Azure SQL firewall rule."""

    start: str
    end: str


@dataclass(frozen=True, kw_only=True)
class SqlAdmin:
    """The Entra principal that administers the SQL server."""

    login: str
    object_id: str
    principal_type: str | None


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the program reads from stack config, typed and already validated."""

    environment: str
    workload: str
    location: str
    hosting_plan: str
    hosting_sku: str
    python_version: str
    instance_memory_mb: int
    maximum_instance_count: int
    always_ready_instances: int
    signalr_sku: str
    signalr_units: int
    sql_sku: SqlSku
    sql_auto_pause_delay_minutes: int
    sql_zone_redundant: bool
    sql_backup_retention_days: int
    sql_admin: SqlAdmin | None
    sql_client_ip_ranges: tuple[IpRange, ...]
    sql_trigger_polling_interval_ms: int
    sql_trigger_max_batch_size: int
    storage_redundancy: str
    log_retention_days: int
    cors_origins: tuple[str, ...]
    owner: str | None
    deployer_principal_type: str

    @property
    def tags(self) -> dict[str, str]:
        """Tags every taggable resource carries (the policy pack requires the first three)."""
        tags = {"workload": self.workload, "environment": self.environment, "managed-by": "pulumi"}
        if self.owner:
            tags["owner"] = self.owner
        return tags


@dataclass(frozen=True, kw_only=True)
class Setting:
    """The declaration of one stack config key."""

    key: str
    type: str
    """The Pulumi project config type: `string`, `integer`, `boolean` or `array`."""
    description: str
    default: Any
    """The default, or a mapping from environment name to default."""
    check: Callable[[Any], str | None] = lambda _value: None
    """Returns None when the value is valid, else the rule it breaks (allowed values)."""

    def default_for(self, environment: str) -> Any:
        """The default for one environment."""
        if isinstance(self.default, Mapping):
            return self.default[environment]
        return self.default


def _one_of(allowed: Sequence[Any]) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value in allowed:
            return None
        return "allowed: " + ", ".join(str(a) for a in allowed)

    return check


def _between(low: int, high: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if low <= value <= high else f"allowed: an integer from {low} to {high}"

    return check


def _matches(pattern: str, meaning: str) -> Callable[[Any], str | None]:
    compiled = re.compile(pattern)

    def check(value: Any) -> str | None:
        return None if compiled.fullmatch(value) else f"allowed: {meaning}"

    return check


def _check_sql_sku(value: str) -> str | None:
    try:
        sku = parse_sql_sku(value)
    except ValueError as error:
        return str(error)
    del sku
    return None


def _check_guid_or_empty(value: str) -> str | None:
    if value == "":
        return None
    try:
        uuid.UUID(value)
    except ValueError:
        return "allowed: an Entra object id (a GUID), or unset"
    return None


def _check_ip_ranges(value: list[Any]) -> str | None:
    try:
        parse_ip_ranges(value)
    except ValueError as error:
        return str(error)
    return None


def _check_origins(value: list[Any]) -> str | None:
    for origin in value:
        if not isinstance(origin, str) or not re.fullmatch(r"https://[a-z0-9.-]+(:\d+)?", origin):
            return f"{origin!r} is not an origin; allowed: https://host[:port] (no path, no '*')"
    return None


SETTINGS: tuple[Setting, ...] = (
    Setting(
        key="environment",
        type="string",
        description="Environment name used in resource names, tags and defaults (dev, test, prod). "
        "Defaults to the stack name.",
        default=None,
        check=_one_of(ENVIRONMENTS),
    ),
    Setting(
        key="workload",
        type="string",
        description="Short workload name in every resource name (2-8 lowercase letters/digits).",
        default="bcast",
        check=_matches(r"[a-z][a-z0-9]{1,7}", "2-8 lowercase letters or digits, starting with a letter"),
    ),
    Setting(
        key="hostingPlan",
        type="string",
        description="Functions hosting plan: FlexConsumption (recommended), ElasticPremium or Dedicated.",
        default="FlexConsumption",
        check=_one_of(HOSTING_PLANS),
    ),
    Setting(
        key="hostingSku",
        type="string",
        description="App Service plan SKU: FC1 for Flex Consumption, EP1-EP3 for Elastic Premium, "
        "B1-P3v3 for Dedicated. Defaults to the smallest SKU of the plan.",
        default=None,
    ),
    Setting(
        key="pythonVersion",
        type="string",
        description="Python version of the Functions runtime.",
        default="3.11",
        check=_one_of(PYTHON_VERSIONS),
    ),
    Setting(
        key="instanceMemoryMb",
        type="integer",
        description="Flex Consumption instance memory in MB.",
        default=2048,
        check=_one_of(INSTANCE_MEMORY_MB),
    ),
    Setting(
        key="maximumInstanceCount",
        type="integer",
        description="Flex Consumption scale-out limit (40-1000).",
        default={"dev": 40, "test": 40, "prod": 100},
        check=_between(40, 1000),
    ),
    Setting(
        key="alwaysReadyInstances",
        type="integer",
        description="Always-ready instances for each SQL-triggered function on Flex Consumption "
        "(at least 1: an identity-based SQL trigger cannot scale out from zero).",
        default=1,
        check=_between(1, 20),
    ),
    Setting(
        key="signalrSku",
        type="string",
        description="Azure SignalR Service SKU.",
        default={"dev": "Free_F1", "test": "Standard_S1", "prod": "Standard_S1"},
        check=_one_of(SIGNALR_SKUS),
    ),
    Setting(
        key="signalrUnits",
        type="integer",
        description="SignalR units (1,000 concurrent connections each; Free_F1 has exactly 1).",
        default=1,
        check=_one_of(SIGNALR_UNITS),
    ),
    Setting(
        key="sqlSku",
        type="string",
        description="Azure SQL Database vCore SKU, e.g. GP_S_Gen5_1 (serverless) or GP_Gen5_2.",
        default={"dev": "GP_S_Gen5_1", "test": "GP_S_Gen5_2", "prod": "GP_Gen5_2"},
        check=_check_sql_sku,
    ),
    Setting(
        key="sqlAutoPauseDelayMinutes",
        type="integer",
        description="Serverless SQL auto-pause delay in minutes (15-10080), or -1 to never pause.",
        default=60,
        check=lambda v: (
            None if v == -1 or 15 <= v <= 10080 else "allowed: -1, or an integer from 15 to 10080"
        ),
    ),
    Setting(
        key="sqlZoneRedundant",
        type="boolean",
        description="Spread the database across availability zones.",
        default={"dev": False, "test": False, "prod": True},
    ),
    Setting(
        key="sqlBackupRetentionDays",
        type="integer",
        description="Point-in-time restore retention in days (1-35).",
        default={"dev": 7, "test": 7, "prod": 35},
        check=_between(1, 35),
    ),
    Setting(
        key="sqlAdminLogin",
        type="string",
        description="Display name of the SQL server's Entra admin. With sqlAdminObjectId; when both "
        "are unset the deploying identity becomes the admin.",
        default="",
    ),
    Setting(
        key="sqlAdminObjectId",
        type="string",
        description="Entra object id of the SQL server's admin (user, group or service principal).",
        default="",
        check=_check_guid_or_empty,
    ),
    Setting(
        key="sqlAdminPrincipalType",
        type="string",
        description="Kind of the SQL admin principal: User, Group or Application.",
        default="",
        check=lambda v: None if v == "" else _one_of(SQL_ADMIN_PRINCIPAL_TYPES)(v),
    ),
    Setting(
        key="sqlClientIpRanges",
        type="array",
        description="Client addresses allowed through the SQL firewall besides Azure services: "
        "IPv4 addresses, CIDR blocks (/16 or narrower) or 'first-last' ranges.",
        default=[],
        check=_check_ip_ranges,
    ),
    Setting(
        key="sqlTriggerPollingIntervalMs",
        type="integer",
        description="How often the SQL trigger polls for changes, in ms (100-60000).",
        default={"dev": 1000, "test": 1000, "prod": 500},
        check=_between(100, 60_000),
    ),
    Setting(
        key="sqlTriggerMaxBatchSize",
        type="integer",
        description="Most changes one SQL trigger invocation receives (1-1000).",
        default=100,
        check=_between(1, 1000),
    ),
    Setting(
        key="storageRedundancy",
        type="string",
        description="Replication of the storage accounts: LRS, ZRS, GRS or GZRS.",
        default={"dev": "LRS", "test": "LRS", "prod": "ZRS"},
        check=_one_of(STORAGE_REDUNDANCY),
    ),
    Setting(
        key="logRetentionDays",
        type="integer",
        description="Log Analytics retention in days (30-730).",
        default={"dev": 30, "test": 30, "prod": 90},
        check=_between(30, 730),
    ),
    Setting(
        key="corsOrigins",
        type="array",
        description="Extra browser origins (https://host) allowed to call the API and SignalR, e.g. a "
        "custom domain; the static website's own origin is always allowed.",
        default=[],
        check=_check_origins,
    ),
    Setting(
        key="deployerPrincipalType",
        type="string",
        description="What runs `pulumi up` (it gets data-plane roles to upload the site and code): User "
        "on a workstation, ServicePrincipal in CI (the workflows set it).",
        default="User",
        check=_one_of(DEPLOYER_PRINCIPAL_TYPES),
    ),
    Setting(
        key="owner",
        type="string",
        description="Optional 'owner' tag value (team or e-mail).",
        default="",
    ),
)
SETTINGS_BY_KEY = {setting.key: setting for setting in SETTINGS}


def parse_sql_sku(value: str) -> SqlSku:
    """Split `GP_S_Gen5_1` into name, tier, family and capacity, or raise ValueError."""
    match = SQL_SKU_PATTERN.fullmatch(value)
    if not match:
        raise ValueError("allowed: <GP_S|GP|BC|HS>_Gen5_<vCores>, e.g. GP_S_Gen5_1 or GP_Gen5_2")
    edition, vcores = match.group(1), int(match.group(2))
    if vcores not in SQL_VCORES or (edition != "GP_S" and vcores < 2):
        allowed = ", ".join(str(v) for v in SQL_VCORES if edition == "GP_S" or v >= 2)
        raise ValueError(f"allowed vCores for {edition}_Gen5: {allowed}")
    tier = {"GP_S": "GeneralPurpose", "GP": "GeneralPurpose", "BC": "BusinessCritical", "HS": "Hyperscale"}
    return SqlSku(name=f"{edition}_Gen5", tier=tier[edition], family="Gen5", capacity=vcores)


def parse_ip_ranges(values: list[Any]) -> tuple[IpRange, ...]:
    """Turn addresses, CIDR blocks and `first-last` strings into firewall ranges, or raise ValueError."""
    ranges = []
    for value in values:
        if not isinstance(value, str):
            raise ValueError(
                f"{value!r} is not a string; allowed: '203.0.113.7', '203.0.113.0/24', "
                "'203.0.113.1-203.0.113.9'"
            )
        try:
            if "-" in value:
                first_text, last_text = (part.strip() for part in value.split("-", 1))
                first, last = ipaddress.IPv4Address(first_text), ipaddress.IPv4Address(last_text)
            else:
                network = ipaddress.IPv4Network(value.strip(), strict=False)
                first, last = network.network_address, network.broadcast_address
        except ValueError:
            raise ValueError(f"{value!r} is not an IPv4 address, CIDR block or 'first-last' range") from None
        if last < first:
            raise ValueError(f"{value!r} ends before it starts")
        if int(last) - int(first) + 1 > MAX_FIREWALL_RANGE_ADDRESSES:
            raise ValueError(
                f"{value!r} opens {int(last) - int(first) + 1} addresses; allowed: at most "
                f"{MAX_FIREWALL_RANGE_ADDRESSES} (a /16) per range; never the whole internet"
            )
        ranges.append(IpRange(start=str(first), end=str(last)))
    return tuple(ranges)


def _read(config: pulumi.Config, setting: Setting) -> Any:
    """Read one key with its declared type; None when unset."""
    raw = config.get(setting.key)
    if raw is None:
        return None
    if setting.type == "string":
        return raw
    if setting.type == "integer":
        return int(raw)
    if setting.type == "boolean":
        if raw.lower() not in ("true", "false"):
            raise ValueError("allowed: true or false")
        return raw.lower() == "true"
    value = json.loads(raw)
    if not isinstance(value, list):
        raise ValueError("allowed: a list (set it with `pulumi config set --path 'key[0]' value`)")
    return value


def load_settings(
    config: pulumi.Config | None = None, stack: str | None = None, location: str | None = None
) -> Settings:
    """Read and validate every stack setting; raise SettingsError naming each bad key."""
    config = config or pulumi.Config(PROJECT)
    stack = stack if stack is not None else pulumi.get_stack()
    location = location if location is not None else pulumi.Config("azure-native").get("location")
    errors: list[str] = []
    values: dict[str, Any] = {}

    environment_raw = config.get("environment")
    environment = environment_raw if environment_raw is not None else stack
    if environment not in ENVIRONMENTS:
        source = "" if environment_raw is not None else f" (from the stack name '{stack}')"
        errors.append(
            f"{PROJECT}:environment = {environment!r}{source}: allowed: {', '.join(ENVIRONMENTS)}; "
            f"set it with `pulumi config set environment dev`"
        )
        environment = "dev"  # keep validating the other keys against some defaults
    values["environment"] = environment

    for setting in SETTINGS:
        if setting.key == "environment":
            continue
        try:
            value = _read(config, setting)
        except ValueError as error:
            reason = (
                str(error) if str(error).startswith("allowed") else f"allowed: a value of type {setting.type}"
            )
            errors.append(f"{PROJECT}:{setting.key} = {config.get(setting.key)!r}: {reason}")
            continue
        if value is None:
            value = setting.default_for(environment)
        elif (problem := setting.check(value)) is not None:
            errors.append(f"{PROJECT}:{setting.key} = {value!r}: {problem}")
            continue
        values[setting.key] = value

    if not location:
        errors.append(
            "azure-native:location is not set: "
            "set it with `pulumi config set azure-native:location westeurope`"
        )
    elif not re.fullmatch(r"[a-z0-9]+", location):
        errors.append(
            f"azure-native:location = {location!r}: allowed: an Azure region name such as westeurope"
        )

    plan = values.get("hostingPlan", "FlexConsumption")
    skus = HOSTING_SKUS.get(plan, ())
    sku = values.get("hostingSku") or (skus[0] if skus else "")
    if skus and sku not in skus:
        errors.append(f"{PROJECT}:hostingSku = {sku!r}: allowed for {plan}: {', '.join(skus)}")
    if values.get("signalrSku") == "Free_F1" and values.get("signalrUnits", 1) != 1:
        errors.append(f"{PROJECT}:signalrUnits = {values['signalrUnits']!r}: allowed for Free_F1: 1")

    login, object_id = values.get("sqlAdminLogin", ""), values.get("sqlAdminObjectId", "")
    if bool(login) != bool(object_id):
        errors.append(
            f"{PROJECT}:sqlAdminLogin and {PROJECT}:sqlAdminObjectId: set both, or neither "
            "(then the deploying identity administers the SQL server)"
        )

    if errors:
        raise SettingsError(f"invalid stack configuration for stack '{stack}':\n  - " + "\n  - ".join(errors))

    admin = None
    if login:
        admin = SqlAdmin(
            login=login, object_id=object_id, principal_type=values["sqlAdminPrincipalType"] or None
        )
    return Settings(
        environment=environment,
        workload=values["workload"],
        location=str(location),
        hosting_plan=plan,
        hosting_sku=sku,
        python_version=values["pythonVersion"],
        instance_memory_mb=values["instanceMemoryMb"],
        maximum_instance_count=values["maximumInstanceCount"],
        always_ready_instances=values["alwaysReadyInstances"],
        signalr_sku=values["signalrSku"],
        signalr_units=values["signalrUnits"],
        sql_sku=parse_sql_sku(values["sqlSku"]),
        sql_auto_pause_delay_minutes=values["sqlAutoPauseDelayMinutes"],
        sql_zone_redundant=values["sqlZoneRedundant"],
        sql_backup_retention_days=values["sqlBackupRetentionDays"],
        sql_admin=admin,
        sql_client_ip_ranges=parse_ip_ranges(values["sqlClientIpRanges"]),
        sql_trigger_polling_interval_ms=values["sqlTriggerPollingIntervalMs"],
        sql_trigger_max_batch_size=values["sqlTriggerMaxBatchSize"],
        storage_redundancy=values["storageRedundancy"],
        log_retention_days=values["logRetentionDays"],
        cors_origins=tuple(values["corsOrigins"]),
        owner=values["owner"] or None,
        deployer_principal_type=values["deployerPrincipalType"],
    )
