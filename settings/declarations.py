"""Every stack config key the program reads: its type, description, default per environment and rule.

The same keys are declared in `Pulumi.yaml` (type and description) so `pulumi config` shows them; a
test keeps the two, the stack files and docs/settings.md's config reference in step.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from components.sql import DatabaseSku, FirewallRange

PROJECT = "broadcast"
ENVIRONMENTS = ("dev", "test", "review", "prod")
"""`review`: a short-lived stack per pull request, from the dev settings (docs/ci-cd.md, Review stacks)."""
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
SQL_ADMIN_PRINCIPAL_TYPES = ("User", "Group", "Application")
# A group cannot sign in: what runs `pulumi up` is a user or a service principal.
DEPLOYER_PRINCIPAL_TYPES = ("User", "ServicePrincipal")
STORAGE_REDUNDANCY = ("LRS", "ZRS", "GRS", "GZRS")
# A firewall rule wider than this is not "a client's address range"; open networks are refused.
MAX_FIREWALL_RANGE_ADDRESSES = 65_536


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


MAX_TAG_VALUE = 256
"""Azure resource tags: a tag value is limited to 256 characters (tag-resources#limitations; the
azurestack provider's tag validation refuses longer ones)."""


def _tag_value(value: Any) -> str | None:
    if len(str(value)) > MAX_TAG_VALUE:
        return f"allowed: a tag value of at most {MAX_TAG_VALUE} characters (got {len(str(value))})"
    return None


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
        DatabaseSku.parse(value)
    except ValueError as error:
        return str(error)
    return None


def _check_guid_or_empty(value: str) -> str | None:
    if value == "":
        return None
    try:
        uuid.UUID(value)
    except ValueError:
        return "allowed: an Entra object id or client id (a GUID), or unset"
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


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_RESOURCE_ID = re.compile(r"/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[^/]+/providers/.+", re.IGNORECASE)
NETWORK_MODES = ("public", "private")


def _check_emails(value: list[Any]) -> str | None:
    for address in value:
        if not isinstance(address, str) or not _EMAIL.fullmatch(address):
            return f"{address!r} is not an e-mail address; allowed: a list of addresses like ops@example.com"
    return None


def _check_address_space(value: str) -> str | None:
    try:
        space = ipaddress.IPv4Network(value, strict=True)
    except ValueError:
        return "allowed: an IPv4 CIDR block such as 10.20.0.0/24"
    if not space.is_private or not 16 <= space.prefixlen <= 26:
        return "allowed: a private (RFC 1918) block from /16 to /26; each half becomes a subnet"
    return None


def _check_subnet_id(value: str) -> str | None:
    if value == "" or (
        _RESOURCE_ID.fullmatch(value) and "/virtualNetworks/" in value and "/subnets/" in value
    ):
        return None
    return (
        "allowed: a subnet resource id (/subscriptions/.../virtualNetworks/<vnet>/subnets/<subnet>), or unset"
    )


def _check_zone_ids(value: list[Any]) -> str | None:
    for zone in value:
        if not isinstance(zone, str) or not _RESOURCE_ID.fullmatch(zone) or "/privateDnsZones/" not in zone:
            return (
                f"{zone!r} is not a private DNS zone resource id (/subscriptions/.../privateDnsZones/<zone>)"
            )
    return None


def _between_or(low: int, high: int, meaning: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if low <= value <= high else f"allowed: {meaning}, an integer from {low} to {high}"

    return check


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
        key="instance",
        type="string",
        description="Which instance of the environment this stack is, when there are several (review stacks: "
        "pr<number>): part of the resource group's name, so instances never share one. Required for review.",
        default="",
        check=_matches(
            r"([a-z][a-z0-9]{0,9})?", "up to 10 lowercase letters or digits, starting with a letter"
        ),
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
        description="Flex Consumption instance memory in MB (512, 2048 or 4096); always-ready instances "
        "bill it around the clock, and a smaller instance has less CPU (slower cold starts of on-demand "
        "HTTP instances).",
        default={"dev": 512, "test": 2048, "review": 512, "prod": 2048},
        check=_one_of(INSTANCE_MEMORY_MB),
    ),
    Setting(
        key="maximumInstanceCount",
        type="integer",
        description="Flex Consumption scale-out limit per function group (1-1000). With a DTU sqlSku it "
        "must leave the database enough workers (Basic: 30, S0: 60): see docs/day-two.md, SQL tiers.",
        default={"dev": 5, "test": 40, "review": 5, "prod": 100},
        check=_between(1, 1000),
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
        description="Azure SignalR Service SKU: Free_F1 (dev only: 20 concurrent connections and 20,000 "
        "messages a day, a broadcast to N clients counting N), Standard_S1 or Premium_P1 (1,000 connections "
        "per unit, no daily message cap).",
        default={"dev": "Free_F1", "test": "Standard_S1", "review": "Standard_S1", "prod": "Standard_S1"},
        check=_one_of(SIGNALR_SKUS),
    ),
    Setting(
        key="signalrUnits",
        type="integer",
        description="SignalR units for Standard_S1 and Premium_P1 (1,000 concurrent connections each, 1-10 "
        "then tens to 100); Free_F1 has exactly 1 (of 20 connections).",
        default=1,
        check=_one_of(SIGNALR_UNITS),
    ),
    Setting(
        key="sqlSku",
        type="string",
        description="Azure SQL Database SKU: a DTU size (Basic, S0-S3: a fixed few dollars a month, capped "
        "workers and sessions, no zone redundancy) or vCore, e.g. GP_Gen5_2 or GP_S_Gen5_1 (serverless: "
        "never pauses while the SQL trigger polls).",
        default={"dev": "Basic", "test": "GP_S_Gen5_2", "review": "Basic", "prod": "GP_Gen5_2"},
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
        default={"dev": False, "test": False, "review": False, "prod": True},
    ),
    Setting(
        key="sqlBackupRetentionDays",
        type="integer",
        description="Point-in-time restore retention in days (1-35).",
        default={"dev": 7, "test": 7, "review": 1, "prod": 35},
        check=_between(1, 35),
    ),
    Setting(
        key="sqlAdminLogin",
        type="string",
        description="Display name of the SQL server's Entra admin. With sqlAdminObjectId and "
        "sqlAdminPrincipalType; when all three are unset the stack's schema identity (the deployment "
        "script's) becomes the admin, or, in a brought network, the deploying identity.",
        default="",
    ),
    Setting(
        key="sqlAdminObjectId",
        type="string",
        description="The SQL server's Entra admin: the object id of a user or group, or the application "
        "(client) id of a service principal or managed identity.",
        default="",
        check=_check_guid_or_empty,
    ),
    Setting(
        key="sqlAdminPrincipalType",
        type="string",
        description="Kind of the SQL admin principal: User, Group, or Application (a service principal "
        "or managed identity).",
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
        description="How often the SQL trigger polls for changes, in ms (100-60000): a message waits up to "
        "one interval before it is broadcast.",
        default={"dev": 100, "test": 1000, "review": 100, "prod": 100},
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
        key="messageRetentionDays",
        type="integer",
        description="Messages older than this many days are deleted, hourly (0 keeps them all; up to 3650).",
        default=0,
        check=_between(0, 3650),
    ),
    Setting(
        key="storageRedundancy",
        type="string",
        description="Replication of the storage accounts: LRS, ZRS, GRS or GZRS.",
        default={"dev": "LRS", "test": "LRS", "review": "LRS", "prod": "ZRS"},
        check=_one_of(STORAGE_REDUNDANCY),
    ),
    Setting(
        key="logRetentionDays",
        type="integer",
        description="Log Analytics retention in days (30-730).",
        default={"dev": 30, "test": 30, "review": 30, "prod": 90},
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
        key="protectData",
        type="boolean",
        description="Guard the stateful resources against deletion: CanNotDelete locks on the SQL server, "
        "database and site storage, Pulumi protect on them and the host storage, workspace and Key Vault, "
        "and Key Vault purge protection (irreversible); on in prod.",
        default={"dev": False, "test": False, "review": False, "prod": True},
    ),
    Setting(
        key="network",
        type="string",
        description="public: data services behind Entra and firewalls; private: SQL and the Functions host "
        "storage reachable through private endpoints only, the app's outbound traffic through a subnet.",
        default="public",
        check=_one_of(NETWORK_MODES),
    ),
    Setting(
        key="networkAddressSpace",
        type="string",
        description="With network private: the virtual network's address space (private, /16 to /26): its "
        "first half the app subnet, its last quarters the private endpoint and deployment script subnets.",
        default="10.20.0.0/24",
        check=_check_address_space,
    ),
    Setting(
        key="networkAppSubnetId",
        type="string",
        description="With network private: an existing subnet delegated to Microsoft.App/environments "
        "(bring your own network; with networkEndpointSubnetId, no network is created).",
        default="",
        check=_check_subnet_id,
    ),
    Setting(
        key="networkEndpointSubnetId",
        type="string",
        description="With network private: an existing subnet for the private endpoints (bring your own "
        "network).",
        default="",
        check=_check_subnet_id,
    ),
    Setting(
        key="networkPrivateDnsZoneIds",
        type="array",
        description="With network private: existing private DNS zones (privatelink.database.windows.net, "
        "privatelink.blob/queue/table.core.windows.net) already linked where they resolve; none are created.",
        default=[],
        check=_check_zone_ids,
    ),
    Setting(
        key="alertEmails",
        type="array",
        description="E-mail addresses the action group notifies when an alert fires (none: alerts show in "
        "Azure Monitor only).",
        default=[],
        check=_check_emails,
    ),
    Setting(
        key="alertFunctionFailures",
        type="integer",
        description="Alert when more Functions invocations than this fail in 5 minutes.",
        default=5,
        check=_between(0, 10_000),
    ),
    Setting(
        key="alertHttpServerErrors",
        type="integer",
        description="Alert when the API answers more 5xx than this in 5 minutes.",
        default=5,
        check=_between(0, 10_000),
    ),
    Setting(
        key="alertUndeliveredMinutes",
        type="integer",
        description="Alert when a message the API accepted has not been broadcast after this many minutes.",
        default=2,
        check=_between(1, 25),
    ),
    Setting(
        key="alertSignalrConnectionPercent",
        type="integer",
        description="Alert when SignalR connections exceed this share of the units' quota.",
        default=80,
        check=_between_or(1, 100, "a percentage"),
    ),
    Setting(
        key="alertSqlCpuPercent",
        type="integer",
        description="Alert when the database's CPU averages above this over 15 minutes.",
        default=80,
        check=_between_or(1, 100, "a percentage"),
    ),
    Setting(
        key="alertSqlStoragePercent",
        type="integer",
        description="Alert when the database's data space used exceeds this.",
        default=85,
        check=_between_or(1, 100, "a percentage"),
    ),
    Setting(
        key="availabilityTests",
        type="boolean",
        description="Test GET /api/health and the site from five regions every 5 minutes, alerting when "
        "three fail (billed per test run); on in prod.",
        default={"dev": False, "test": False, "review": False, "prod": True},
    ),
    Setting(
        key="owner",
        type="string",
        description="Optional 'owner' tag value (team or e-mail), at most 256 characters.",
        default="",
        check=_tag_value,
    ),
)
SETTINGS_BY_KEY = {setting.key: setting for setting in SETTINGS}


def parse_ip_ranges(values: list[Any]) -> tuple[FirewallRange, ...]:
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
        ranges.append(FirewallRange(start=str(first), end=str(last)))
    return tuple(ranges)
