"""Reading the stack config: each key on its own, then the rules between keys, then one Settings.

`load_settings` runs once, before any resource is declared. It checks every key and raises one
`SettingsError` that lists each bad key with the value it got and the values it accepts, so a typo
in `Pulumi.<stack>.yaml` fails `pulumi preview` in a second instead of half-way into `up`.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pulumi
import yaml

from components.alerting import AlertThresholds
from components.network import PRIVATE_DNS_ZONES
from components.sql import DatabaseSku
from functions.wiring import SQL_TRIGGERED_FUNCTIONS
from settings.declarations import ENVIRONMENTS, HOSTING_SKUS, PROJECT, SETTINGS, Setting, parse_ip_ranges
from settings.model import AlertSettings, NetworkSettings, Settings, SqlAdmin
from settings.regions import region_problem, service_region_problems

ROOT = Path(__file__).resolve().parent.parent
Values = dict[str, Any]
"""Every key's value once read and checked on its own (the default where unset)."""


class SettingsError(ValueError):
    """One or more stack settings are invalid; the message lists each key and how to fix it."""


def typed_value(raw: str, setting: Setting) -> Any:
    """A raw config string as the key's declared type, or ValueError saying what is allowed."""
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


def read_environment(config: pulumi.Config, stack: str) -> tuple[str, str | None]:
    """The environment (the `environment` key, else the stack name) and the error, if any."""
    raw = config.get("environment")
    environment = raw if raw is not None else stack
    if environment in ENVIRONMENTS:
        return environment, None
    source = "" if raw is not None else f" (from the stack name '{stack}')"
    return "dev", (
        f"{PROJECT}:environment = {environment!r}{source}: allowed: {', '.join(ENVIRONMENTS)}; "
        "set it with `pulumi config set environment dev`"
    )


def read_key(config: pulumi.Config, setting: Setting, environment: str) -> tuple[Any, str | None]:
    """One key: its typed value (the environment's default when unset) and the error, if any."""
    raw = config.get(setting.key)
    if raw is None:
        return setting.default_for(environment), None
    try:
        value = typed_value(raw, setting)
    except ValueError as error:
        reason = (
            str(error) if str(error).startswith("allowed") else f"allowed: a value of type {setting.type}"
        )
        return None, f"{PROJECT}:{setting.key} = {raw!r}: {reason}"
    problem = setting.check(value)
    if problem is not None:
        return None, f"{PROJECT}:{setting.key} = {value!r}: {problem}"
    return value, None


def unknown_keys(keys: Iterable[str], stack: str) -> list[str]:
    """Keys in the project's namespace that no setting declares, refused as the Pulumi CLI refuses a
    stack key `Pulumi.yaml` does not declare ("Stack ... uses configuration value ... which is not
    defined by the project configuration", pulumi/pulumi#11127), with the key meant when it is a
    near miss (`signalrSKU`, `protectdata`). Other namespaces (providers) are not the project's."""
    declared = {setting.key for setting in SETTINGS}
    by_folded = {key.lower(): key for key in declared}
    errors = []
    for full_key in sorted(keys):
        namespace, _, name = full_key.partition(":")
        if namespace != PROJECT or name in declared:
            continue
        meant = by_folded.get(name.lower()) or next(iter(difflib.get_close_matches(name, declared, 1)), None)
        hint = f"; did you mean `{meant}`?" if meant else "; the declared keys are in Pulumi.yaml"
        if name.lower() == "location":  # the region is the provider's setting, not the project's
            hint = (
                "; the region is `azure-native:location` (pulumi config set azure-native:location westeurope)"
            )
        errors.append(
            f"Stack '{stack}' uses configuration value '{full_key}' which is not defined by the project "
            f"configuration{hint}"
        )
    return errors


def _configured_keys() -> set[str]:
    """Every config key the program was given (by the CLI, the mocks, or `set_all_config`)."""
    from pulumi.runtime import config as runtime_config

    return set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())


def _location_rule(location: str | None, values: Values) -> list[str]:
    if not location:
        return ["azure-native:location is not set: `pulumi config set azure-native:location westeurope`"]
    problem = region_problem(location)
    if problem:
        return [problem]
    plan, sku = values.get("hostingPlan", ""), values.get("sqlSku", "")
    return service_region_problems(location, str(plan), str(sku))


def hosting_sku(values: Values) -> str:
    """The plan's SKU: the configured one, else the plan's smallest."""
    skus = HOSTING_SKUS.get(values.get("hostingPlan", ""), ())
    return str(values.get("hostingSku") or (skus[0] if skus else ""))


def _hosting_sku_rule(values: Values) -> list[str]:
    plan = values.get("hostingPlan", "FlexConsumption")
    skus = HOSTING_SKUS.get(plan, ())
    sku = hosting_sku(values)
    if skus and sku not in skus:
        return [f"{PROJECT}:hostingSku = {sku!r}: allowed for {plan}: {', '.join(skus)}"]
    return []


def _signalr_units_rule(values: Values) -> list[str]:
    if values.get("signalrSku") == "Free_F1" and values.get("signalrUnits", 1) != 1:
        return [f"{PROJECT}:signalrUnits = {values['signalrUnits']!r}: allowed for Free_F1: 1"]
    return []


def _sql_admin_rule(values: Values) -> list[str]:
    keys = ("sqlAdminLogin", "sqlAdminObjectId", "sqlAdminPrincipalType")
    given = [key for key in keys if values.get(key)]
    if given and len(given) != len(keys):
        missing = ", ".join(f"{PROJECT}:{key}" for key in keys if key not in given)
        return [
            f"{PROJECT}:sqlAdminLogin, sqlAdminObjectId and sqlAdminPrincipalType: set all three, or none "
            f"(then the deploying identity administers the SQL server); missing: {missing}. For a service "
            "principal, sqlAdminObjectId is its application (client) id and sqlAdminPrincipalType Application"
        ]
    return []


# Function scale groups on Flex Consumption that each hold at most one SQL request per instance:
# the HTTP functions (Python's default HTTP concurrency is 1 per instance), the two SignalR
# connection-event functions and the two SQL-triggered functions (each instance runs one poll at a
# time); the two timer functions run on one instance each (docs/sources/latency-and-tiers.md, 5).
SQL_SCALE_GROUPS = 5
SQL_TIMER_FUNCTIONS = 2
SQL_TRIGGERED_FUNCTION_COUNT = len(SQL_TRIGGERED_FUNCTIONS)


def sql_worker_demand(maximum_instance_count: int, always_ready_instances: int) -> int:
    """The most SQL requests the app can run at once: every scale group at its scale-out limit (always-
    ready instances come on top of it for the SQL-triggered functions), plus the timers."""
    return (
        SQL_SCALE_GROUPS * maximum_instance_count
        + SQL_TRIGGERED_FUNCTION_COUNT * always_ready_instances
        + SQL_TIMER_FUNCTIONS
    )


def _sql_tier_rule(values: Values) -> list[str]:
    try:
        sku = DatabaseSku.parse(values.get("sqlSku", ""))
    except ValueError:
        return []
    if sku.dtu is None:
        return []
    errors = []
    if values.get("sqlZoneRedundant") and not sku.zone_redundancy_offered:
        errors.append(
            f"{PROJECT}:sqlZoneRedundant = true: the {sku.name} SQL tier has no zone redundancy; use a vCore "
            "sqlSku (GP_Gen5_2) or set sqlZoneRedundant false"
        )
    if sku.name == "Basic" and values.get("sqlBackupRetentionDays", 1) > 7:
        errors.append(
            f"{PROJECT}:sqlBackupRetentionDays = {values['sqlBackupRetentionDays']}: allowed with sqlSku "
            "Basic: 1-7 (Basic keeps at most 7 days of point-in-time restore)"
        )
    maximum, ready = values.get("maximumInstanceCount"), values.get("alwaysReadyInstances")
    if values.get("hostingPlan") == "FlexConsumption" and maximum is not None and ready is not None:
        demand = sql_worker_demand(maximum, ready)
        if demand > sku.dtu.max_workers:
            fits = (sku.dtu.max_workers - SQL_TRIGGERED_FUNCTION_COUNT * ready - SQL_TIMER_FUNCTIONS) // (
                SQL_SCALE_GROUPS
            )
            errors.append(
                f"{PROJECT}:maximumInstanceCount = {maximum}: with sqlSku {sku.name} (at most "
                f"{sku.dtu.max_workers} concurrent requests) the app could run {demand} at once and fail "
                f"with error 10928; set maximumInstanceCount to {max(fits, 0)} or less, or a larger sqlSku "
                "(docs/day-two.md, SQL tiers)"
            )
    return errors


def _zone_groups(zone_ids: list[str]) -> dict[str, str]:
    """Existing zone ids by the private endpoint sub-resource they serve (from the zone's name)."""
    groups = {zone: group for group, zone in PRIVATE_DNS_ZONES.items()}
    return {groups[zone_id.rsplit("/", 1)[-1].lower()]: zone_id for zone_id in zone_ids}


def _network_rule(values: Values) -> list[str]:
    errors = []
    private = values.get("network") == "private"
    byo = [key for key in ("networkAppSubnetId", "networkEndpointSubnetId") if values.get(key)]
    if private and values.get("hostingPlan", "FlexConsumption") != "FlexConsumption":
        errors.append(
            f"{PROJECT}:network = 'private': allowed with hostingPlan FlexConsumption only (its integration "
            "subnet is delegated to Microsoft.App/environments)"
        )
    if private and values.get("sqlClientIpRanges"):
        errors.append(
            f"{PROJECT}:sqlClientIpRanges: must be empty with network private (a server without a public "
            "endpoint refuses firewall rules, error 42101); reach it from the virtual network instead"
        )
    admin_type = values.get("sqlAdminPrincipalType")
    if not byo and admin_type in ("User", "Application"):
        # Public, or a network of its own: the schema runs in a deployment script as the stack's
        # identity (components.sql); only a brought network leaves it to the deploying identity.
        mode, where = (
            ("private (a network of its own)", "inside the network")
            if private
            else ("public", "by a deployment script")
        )
        errors.append(
            f"{PROJECT}:sqlAdminPrincipalType = {admin_type!r}: with network {mode} "
            f"the schema is applied {where} by the stack's "
            "schema identity, which must sign in as the admin: unset sqlAdminLogin, sqlAdminObjectId and "
            "sqlAdminPrincipalType, or use a Group and add the identity to it"
        )
    if len(byo) == 1:
        errors.append(f"{PROJECT}:networkAppSubnetId and networkEndpointSubnetId: set both, or neither")
    if not private and (byo or values.get("networkPrivateDnsZoneIds")):
        errors.append(f"{PROJECT}:network = 'public': the network* subnet and zone keys need network private")
    names = [zone.rsplit("/", 1)[-1].lower() for zone in values.get("networkPrivateDnsZoneIds") or []]
    unknown = sorted(set(names) - set(PRIVATE_DNS_ZONES.values()))
    if unknown or len(names) != len(set(names)):
        errors.append(
            f"{PROJECT}:networkPrivateDnsZoneIds: zones {unknown or 'named twice'}; allowed: one of each of "
            + ", ".join(PRIVATE_DNS_ZONES.values())
        )
    return errors


# The longest names the components derive (`<abbreviation><workload><environment><6-char suffix>`):
# storage accounts allow 24 letters and digits, Key Vaults 24 characters.
_NAME_LIMITS = (("stfunc{w}{e}000000", 24, "storage account"), ("kv-{w}-{e}-000000", 24, "Key Vault"))


def _instance_rule(values: Values, environment: str) -> list[str]:
    errors = []
    if environment == "review" and not values.get("instance"):
        errors.append(
            f"{PROJECT}:instance is required with environment review (set it to pr<number>): review stacks "
            "would otherwise share their resource group"
        )
    workload = values.get("workload", "")
    for pattern, limit, kind in _NAME_LIMITS:
        name = pattern.format(w=workload, e=environment)
        if len(name) > limit:
            fits = len(workload) - len(name) + limit
            errors.append(
                f"{PROJECT}:workload = {workload!r}: with environment {environment} its {kind} names would "
                f"be {len(name)} characters (at most {limit}); use a workload of {fits} characters or fewer"
            )
    return errors


CROSS_KEY_RULES: tuple[Callable[[Values], list[str]], ...] = (
    _hosting_sku_rule,
    _signalr_units_rule,
    _sql_admin_rule,
    _sql_tier_rule,
    _network_rule,
)
"""Rules that involve more than one key; each returns its errors (only keys that read well are set)."""


def _build(environment: str, location: str, values: Values) -> Settings:
    admin = None
    if values["sqlAdminLogin"]:
        admin = SqlAdmin(
            login=values["sqlAdminLogin"],
            sid=values["sqlAdminObjectId"],
            principal_type=values["sqlAdminPrincipalType"],
        )
    return Settings(
        environment=environment,
        workload=values["workload"],
        instance=values["instance"] or None,
        location=location,
        hosting_plan=values["hostingPlan"],
        hosting_sku=hosting_sku(values),
        python_version=values["pythonVersion"],
        instance_memory_mb=values["instanceMemoryMb"],
        maximum_instance_count=values["maximumInstanceCount"],
        always_ready_instances=values["alwaysReadyInstances"],
        signalr_sku=values["signalrSku"],
        signalr_units=values["signalrUnits"],
        sql_sku=DatabaseSku.parse(values["sqlSku"]),
        sql_auto_pause_delay_minutes=values["sqlAutoPauseDelayMinutes"],
        sql_zone_redundant=values["sqlZoneRedundant"],
        sql_backup_retention_days=values["sqlBackupRetentionDays"],
        sql_admin=admin,
        sql_client_ip_ranges=parse_ip_ranges(values["sqlClientIpRanges"]),
        sql_trigger_polling_interval_ms=values["sqlTriggerPollingIntervalMs"],
        sql_trigger_max_batch_size=values["sqlTriggerMaxBatchSize"],
        message_retention_days=values["messageRetentionDays"],
        storage_redundancy=values["storageRedundancy"],
        log_retention_days=values["logRetentionDays"],
        cors_origins=tuple(values["corsOrigins"]),
        owner=values["owner"] or None,
        deployer_principal_type=values["deployerPrincipalType"],
        protect_data=values["protectData"],
        network=NetworkSettings(
            private=values["network"] == "private",
            address_space=values["networkAddressSpace"],
            app_subnet_id=values["networkAppSubnetId"] or None,
            endpoint_subnet_id=values["networkEndpointSubnetId"] or None,
            dns_zone_ids=_zone_groups(values["networkPrivateDnsZoneIds"]),
        ),
        alerts=AlertSettings(
            emails=tuple(values["alertEmails"]),
            thresholds=AlertThresholds(
                function_failures=values["alertFunctionFailures"],
                http_server_errors=values["alertHttpServerErrors"],
                undelivered_after_minutes=values["alertUndeliveredMinutes"],
                signalr_connection_percent=values["alertSignalrConnectionPercent"],
                sql_cpu_percent=values["alertSqlCpuPercent"],
                sql_storage_percent=values["alertSqlStoragePercent"],
            ),
            availability_tests=values["availabilityTests"],
        ),
    )


def stack_file(stack: str, root: Path = ROOT) -> dict[str, str]:
    """The config of `Pulumi.<stack>.yaml` as the CLI hands it to a program (strings; JSON for lists)."""
    path = root / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no Pulumi.{stack}.yaml in {root}")
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(error, "problem", None) or type(error).__name__
        raise SettingsError(f"{path.name} is not valid YAML{where}: {problem}") from None
    settings = document.get("config") if isinstance(document, dict) else None
    if not isinstance(document, dict) or not isinstance(settings, dict | None):
        raise SettingsError(
            f"{path.name}: `config` must be a mapping of keys to values, as `pulumi config` writes"
        )
    return {key: v if isinstance(v, str) else json.dumps(v) for key, v in (settings or {}).items()}


def load_settings(
    config: pulumi.Config | None = None, stack: str | None = None, location: str | None = None
) -> Settings:
    """Read and validate every stack setting; raise SettingsError naming each bad key."""
    config = config or pulumi.Config(PROJECT)
    stack = stack if stack is not None else pulumi.get_stack()
    location = location if location is not None else pulumi.Config("azure-native").get("location")

    environment, error = read_environment(config, stack)
    errors = unknown_keys(_configured_keys(), stack) + ([error] if error else [])
    values: Values = {}
    for setting in SETTINGS:
        if setting.key == "environment":
            continue
        value, error = read_key(config, setting, environment)
        if error:
            errors.append(error)
        else:
            values[setting.key] = value
    return settle(environment, location, values, errors, f"invalid stack configuration for stack '{stack}'")


def settle(
    environment: str, location: str | None, values: Values, errors: list[str], heading: str
) -> Settings:
    """Apply the rules between keys to values each already valid on its own, then build the Settings,
    or raise one SettingsError listing every error under `heading`."""
    errors = [*errors, *_location_rule(location, values)]
    for rule in CROSS_KEY_RULES:
        errors += rule(values)
    errors += _instance_rule(values, environment)
    if errors:
        raise SettingsError(f"{heading}:\n  - " + "\n  - ".join(errors))
    return _build(environment, str(location), values)


_KINDS: dict[str, type] = {"string": str, "integer": int, "boolean": bool, "array": list}


def check_value(setting: Setting, value: Any) -> tuple[Any, str | None]:
    """A value given already typed (a component's argument): its type, then the key's rule."""
    kind = _KINDS[setting.type]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        return None, f"{PROJECT}:{setting.key} = {value!r}: allowed: a value of type {setting.type}"
    problem = setting.check(value)
    if problem is not None:
        return None, f"{PROJECT}:{setting.key} = {value!r}: {problem}"
    return value, None


def settings_from_values(given: Values, location: str | None, heading: str, errors: list[str]) -> Settings:
    """Settings from typed values by config key (a component's arguments), with the stack config's
    defaults, checks and rules: the same messages as `load_settings`."""
    errors = list(errors)
    environment = given.get("environment")
    if environment not in ENVIRONMENTS:
        errors.append(f"{PROJECT}:environment = {environment!r}: allowed: {', '.join(ENVIRONMENTS)}")
        environment = "dev"
    values: Values = {}
    for setting in SETTINGS:
        if setting.key == "environment":
            continue
        if setting.key not in given:
            values[setting.key] = setting.default_for(environment)
            continue
        value, error = check_value(setting, given[setting.key])
        if error:
            errors.append(error)
        else:
            values[setting.key] = value
    return settle(environment, location, values, errors, heading)
