"""A stack's monthly cost: its settings as quantities, times the price lines.

The truths users miss, each stated on its line:
- The SQL trigger polls the database every `sqlTriggerPollingIntervalMs` while the app runs, so a
  serverless database never reaches its auto-pause delay (which is why dev and review use Basic, a
  flat price per day with its storage included): it bills its minimum compute every hour,
  max(min vCores, min memory GB / 3) ("Serverless compute billing": "vCore unit price * maximum
  (minimum vCores, vCores used, minimum memory GB * 1/3, memory GB used * 1/3)").
- Flex Consumption's always-ready instances bill their memory around the clock (the baseline), one
  set per SQL-triggered function ("function:<name>" in alwaysReady).
- SignalR bills per unit (Free_F1: nothing); Log Analytics per GB ingested, and retention past 31 days.
- A review stack costs its monthly figure / 730 per hour it exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from components.functions_app import PRIVATE_STORAGE_GROUPS
from components.network import PRIVATE_DNS_ZONES, SCRIPT_DNS_ZONES
from cost.prices import PriceLine, Prices
from functions.wiring import SQL_TRIGGERED_FUNCTIONS
from settings import Settings

HOURS_PER_MONTH = 730
"""Azure's pricing calculator month."""
RUNNING = {
    "1 Hour": HOURS_PER_MONTH,
    "1/Day": HOURS_PER_MONTH / 24,
    "1/Month": 1,
    "1 GB/Month": 1,
    "1 GB Second": HOURS_PER_MONTH * 3600,
}
"""How many of a line's units one thing running all month uses."""
SERVERLESS_MIN_MEMORY_GB = {1: 2.02, 2: 2.05, 4: 2.10, 6: 2.25, 8: 3.00}
"""GP_S_Gen5_<max vCores>: minimum memory ("Resource limits for single databases", serverless)."""
DEFAULT_LOG_GB = 1.0
"""Assumed Log Analytics ingestion per month when not given (--log-gb): it follows traffic."""
DEFAULT_SQL_STORAGE_GB = 32.0
"""Assumed data max size: the program sets none, and 32 GB is the size Azure gives such a database
(an assumption the estimate states)."""
STORAGE_GB = 1.0
"""The site, the function package and the host's state: about a gigabyte between both accounts."""
FREE_LOG_RETENTION_DAYS = 31


@dataclass(frozen=True)
class Item:
    """One priced (or unpriced) part of the stack."""

    what: str
    quantity: float
    unit: str
    line: PriceLine | None
    note: str = ""

    @property
    def monthly(self) -> float:
        """Quantity times price; 0 without a price line."""
        return self.quantity * self.line.price if self.line else 0.0


@dataclass
class Estimate:
    """Every item of a stack, and what the estimate could not price."""

    items: list[Item] = field(default_factory=list)
    unpriced: list[str] = field(default_factory=list)

    def totals(self) -> dict[str, float]:
        """Monthly total per currency (the snapshot's lines come in the currency their source gave)."""
        totals: dict[str, float] = {}
        for item in self.items:
            if item.line:
                totals[item.line.currency] = totals.get(item.line.currency, 0.0) + item.monthly
        return totals


def _running(prices: Prices, key: str, what: str, count: float, note: str = "") -> Item:
    """`count` things running all month, in the line's unit."""
    line = prices.get(key)
    if line is None:
        return Item(what, 0.0, "", None, note or f"no price line {key}")
    if line.unit not in RUNNING:
        raise ValueError(f"price line {key}: unit {line.unit!r} is not one of {', '.join(RUNNING)}")
    return Item(what, count * RUNNING[line.unit], line.unit, line, note)


def _amount(prices: Prices, key: str, what: str, amount: float, unit: str, note: str = "") -> Item:
    """An amount of a line's unit (GB ingested)."""
    line = prices.get(key)
    if line is None:
        return Item(what, 0.0, unit, None, note or f"no price line {key}")
    if line.unit != unit:
        raise ValueError(f"price line {key}: unit {line.unit!r}, expected {unit!r}")
    return Item(what, amount, unit, line, note)


def serverless_billed_vcores(max_vcores: int, min_vcores: float) -> float:
    """What an idle, resumed serverless database bills: max(min vCores, min memory / 3)."""
    memory = SERVERLESS_MIN_MEMORY_GB.get(max_vcores, 3.0 * min_vcores)
    return max(min_vcores, memory / 3)


DTU_PRICE_LINES = {"Basic": "sql-basic-dtu", "S0": "sql-standard-s0-dtu"}
"""DTU sizes with a price line; S1-S3 are listed unpriced."""


def _dtu_items(settings: Settings, prices: Prices) -> list[Item]:
    """A DTU database: one price per day, its storage (Basic 2 GB, Standard 250 GB) included."""
    sku = settings.sql_sku
    assert sku.dtu is not None
    what = f"SQL {sku.name} ({sku.dtu.dtus} DTUs, {sku.dtu.max_workers} workers, {sku.dtu.max_size_gb} GB)"
    key = DTU_PRICE_LINES.get(sku.name)
    if key is None:
        return [Item(what, 0.0, "", None, f"no price line for {sku.name}")]
    note = (
        f"the SQL trigger polls every {settings.sql_trigger_polling_interval_ms} ms; a provisioned size "
        "bills the same whether it idles or not, storage included"
    )
    return [_running(prices, key, what, 1, note)]


def sql_items(settings: Settings, prices: Prices) -> list[Item]:
    """Compute (DTU, serverless or provisioned, zone redundancy) and storage."""
    sku = settings.sql_sku
    if sku.dtu is not None:
        return _dtu_items(settings, prices)
    items: list[Item] = []
    if sku.serverless:
        billed = serverless_billed_vcores(sku.capacity, sku.min_capacity or 0.5)
        items.append(
            _running(
                prices,
                "sql-serverless-gp-gen5-vcore",
                f"SQL {sku.name}_{sku.capacity} serverless compute, {billed:.4f} vCores every hour",
                billed,
                f"the SQL trigger polls every {settings.sql_trigger_polling_interval_ms} ms, so the "
                f"database never idles {settings.sql_auto_pause_delay_minutes} min to auto-pause: its "
                "minimum compute bills around the clock",
            )
        )
    else:
        compute = f"SQL {sku.name}_{sku.capacity} compute, {sku.capacity} vCores"
        items.append(_running(prices, "sql-gp-gen5-vcore", compute, sku.capacity))
        items.append(_running(prices, "sql-gp-license-vcore", f"{compute}: SQL license", sku.capacity))
        if settings.sql_zone_redundant:
            zone = f"{compute}: zone redundancy"
            items.append(_running(prices, "sql-gp-zone-redundancy-vcore", zone, sku.capacity))
    storage_key = "sql-gp-zone-redundant-storage" if settings.sql_zone_redundant else "sql-gp-storage"
    note = f"assumed {DEFAULT_SQL_STORAGE_GB:.0f} GB max size (none is set)"
    items.append(_running(prices, storage_key, "SQL data storage (GB)", DEFAULT_SQL_STORAGE_GB, note))
    return items


def functions_items(settings: Settings, prices: Prices) -> list[Item]:
    """Flex Consumption's always-ready baseline; other plans are not priced here."""
    if settings.hosting_plan != "FlexConsumption":
        return [Item(f"{settings.hosting_plan} plan {settings.hosting_sku}", 0, "", None, "not priced")]
    instances = len(SQL_TRIGGERED_FUNCTIONS) * settings.always_ready_instances
    memory_gb = settings.instance_memory_mb / 1024
    return [
        _running(
            prices,
            "flex-always-ready-baseline",
            f"Flex always-ready baseline: {instances} instances x {memory_gb:g} GB",
            instances * memory_gb,
            f"{settings.always_ready_instances} per SQL-triggered function ({len(SQL_TRIGGERED_FUNCTIONS)}): "
            "billed every second whether or not anything runs; executions on top",
        )
    ]


def signalr_items(settings: Settings, prices: Prices) -> list[Item]:
    """SignalR units; Free_F1 costs nothing."""
    if settings.signalr_sku == "Free_F1":
        return [Item("SignalR Free_F1 (20 connections, 20,000 messages a day)", 1, "unit", None, "free")]
    key = "signalr-premium-unit" if settings.signalr_sku.startswith("Premium") else "signalr-standard-unit"
    what = f"SignalR {settings.signalr_sku} x {settings.signalr_units} units"
    return [_running(prices, key, what, settings.signalr_units, "1,000 connections per unit")]


def monitoring_items(settings: Settings, prices: Prices, log_gb: float) -> list[Item]:
    """Log Analytics ingestion and retention, storage, availability tests."""
    items = [
        _amount(
            prices,
            "log-analytics-ingestion",
            f"Log Analytics ingestion, {log_gb:g} GB a month (assumed)",
            log_gb,
            "1 GB",
            "the first 5 GB a month per billing account are free, shared by every workspace",
        )
    ]
    extra_days = max(0, settings.log_retention_days - FREE_LOG_RETENTION_DAYS)
    if extra_days:
        retained = log_gb * extra_days / 30
        items.append(
            _running(
                prices,
                "log-analytics-retention",
                f"Log Analytics retention past 31 days ({settings.log_retention_days} days)",
                retained,
                f"about {retained:g} GB held beyond the free 31 days",
            )
        )
    note = "" if settings.storage_redundancy == "LRS" else f"{settings.storage_redundancy} priced as LRS"
    items.append(_running(prices, "storage-hot-lrs", "Blob storage (site, package, host)", STORAGE_GB, note))
    if settings.alerts.availability_tests:
        runs = 2 * 5 * 12 * HOURS_PER_MONTH
        what = f"availability tests: {runs:,} runs a month (2 tests, 5 regions, every 5 min)"
        items.append(Item(what, runs, "run", None))
    return items


PRIVATE_LINK_GB = 1.0
"""Assumed data through the private endpoints a month, each way (SQL rows, the host's storage): it
follows traffic, like the logs."""
BILLED_TYPES: dict[str, tuple[str, ...]] = {
    "azure-native:sql:Database": (
        "sql-serverless-gp-gen5-vcore",
        "sql-gp-gen5-vcore",
        "sql-basic-dtu",
        "sql-standard-s0-dtu",
    ),
    "azure-native:web:WebApp": ("flex-always-ready-baseline",),
    "azure-native:signalrservice:SignalR": ("signalr-standard-unit", "signalr-premium-unit"),
    "azure-native:operationalinsights:Workspace": ("log-analytics-ingestion",),
    "azure-native:applicationinsights:Component": ("log-analytics-ingestion",),
    "azure-native:storage:StorageAccount": ("storage-hot-lrs",),
    "azure-native:network:PrivateEndpoint": ("private-endpoint-hour",),
    "azure-native:privatedns:PrivateZone": ("private-dns-zone",),
}
"""Billable resource types the program declares, by the price lines that price them (any one)."""
UNPRICED_TYPES: dict[str, str] = {
    "azure-native:applicationinsights:WebTest": "availability test executions: no price found (prices.json)",
    "azure-native:keyvault:Vault": "Key Vault operations, a handful per deployment (prices.json)",
    "azure-native:monitor:MetricAlert": "metric alert rules, per monitored time series a month",
    "azure-native:monitor:ScheduledQueryRule": "log search alert rules, per rule a month by frequency",
    "azure-native:resources:AzureCliScript": (
        "the schema script's container instance for minutes per run, and on public stacks the "
        "storage account the service creates for it meanwhile"
    ),
    "azure-native:monitor:ActionGroup": "notifications beyond the free monthly emails",
    "azure-native:web:AppServicePlan": "Elastic Premium or Dedicated plans (Flex bills through the app)",
    "azure-native:sql:BackupShortTermRetentionPolicy": "backup storage beyond the free 100% of max size",
}
"""Billable resource types the program declares that the estimate does not price, and what bills."""
FREE_TYPES: dict[str, str] = {
    "azure-native:resources:ResourceGroup": "no charge",
    "azure-native:authorization:RoleAssignment": "no charge",
    "azure-native:authorization:ManagementLockByScope": "no charge",
    "azure-native:managedidentity:UserAssignedIdentity": "no charge",
    "azure-native:monitor:DiagnosticSetting": "billed as the workspace's ingestion",
    "azure-native:sql:Server": "the logical server has no charge; its databases do",
    "azure-native:sql:FirewallRule": "no charge",
    "azure-native:sql:ServerAzureADAdministrator": "a setting of the server: no charge",
    "azure-native:sql:ServerBlobAuditingPolicy": "billed as the workspace's ingestion",
    "azure-native:storage:BlobContainer": "billed as the account's storage",
    "azure-native:storage:StorageAccountStaticWebsite": "billed as the account's storage",
    "azure-native:keyvault:Secret": "billed as the vault's operations",
    "azure-native:web:WebAppFtpAllowed": "a setting",
    "azure-native:web:WebAppScmAllowed": "a setting",
    "azure-native:network:VirtualNetwork": "no charge without peering or gateways",
    "azure-native:network:PrivateDnsZoneGroup": "a record in a zone priced per zone",
    "azure-native:privatedns:VirtualNetworkLink": "no separate meter found; the zone is priced",
    "azure-native:applicationinsights:Workbook": "no meter of its own found (inference)",
}
"""Resource types without a charge of their own (or billed as another line)."""


def private_network_items(settings: Settings, prices: Prices) -> list[Item]:
    """With `network: private`: each private endpoint's hours and the data through them, and the
    private DNS zones the stack creates (a brought network brings its zones and the script's)."""
    if not settings.network.private:
        return []
    own_network = settings.network.endpoint_subnet_id is None
    endpoints = 1 + len(PRIVATE_STORAGE_GROUPS) + (len(SCRIPT_DNS_ZONES) if own_network else 0)
    zones = len([group for group in PRIVATE_DNS_ZONES if group not in settings.network.dns_zone_ids])
    zones += len(SCRIPT_DNS_ZONES) if own_network else 0
    gb = f"{PRIVATE_LINK_GB:g} GB a month (assumed)"
    items = [
        _running(prices, "private-endpoint-hour", f"private endpoints: {endpoints}", endpoints),
        _amount(
            prices,
            "private-endpoint-data-ingress",
            f"private endpoint data in, {gb}",
            PRIVATE_LINK_GB,
            "1 GB",
        ),
        _amount(
            prices,
            "private-endpoint-data-egress",
            f"private endpoint data out, {gb}",
            PRIVATE_LINK_GB,
            "1 GB",
        ),
    ]
    if zones:
        note = "queries (per million) not priced: a few names, far below a million a month"
        items.append(_running(prices, "private-dns-zone", f"private DNS zones: {zones}", zones, note))
    return items


def estimate_settings(settings: Settings, prices: Prices, log_gb: float = DEFAULT_LOG_GB) -> Estimate:
    """The monthly estimate of a stack with these settings."""
    estimate = Estimate()
    for part in (
        sql_items(settings, prices),
        functions_items(settings, prices),
        signalr_items(settings, prices),
        monitoring_items(settings, prices, log_gb),
        private_network_items(settings, prices),
    ):
        estimate.items += part
    estimate.unpriced = [item.what for item in estimate.items if item.line is None and item.note != "free"]
    return estimate


def render(stack: str, estimate: Estimate, origin: str = "", per_day: bool = False) -> str:
    """The estimate as the command prints it."""
    lines = [f"monthly estimate for stack {stack}" + (f" ({origin})" if origin else "") + ":"]
    for item in estimate.items:
        if item.line:
            price = f"{item.quantity:,.4g} x {item.line.price:g} {item.line.currency}/{item.line.unit}"
            price += f", {item.line.region or 'region not given'}"  # snapshot lines come from many regions
            lines.append(f"  {item.monthly:10.2f} {item.line.currency}  {item.what}: {price}")
        else:
            state = "free" if item.note == "free" else "not priced"
            lines.append(f"  {'-':>10}      {item.what} ({state})")
        if item.note and item.note != "free":
            lines.append(f"  {'':14}  ({item.note})")
    for currency, total in sorted(estimate.totals().items()):
        day = f", {total * 24 / HOURS_PER_MONTH:.2f} {currency} a day" if per_day else ""
        lines.append(f"  {total:10.2f} {currency}  total{day}")
    return "\n".join(lines)
