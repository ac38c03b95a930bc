"""The stack settings as a component's arguments: the typed args module and the args' validation.

`BroadcastSystem` (system/component.py) takes one `BroadcastSystemArgs`, whose fields are the stack
config keys in snake_case (Pulumi's schema writes them back in camelCase, so a YAML or TypeScript
consumer uses the same names as `Pulumi.<stack>.yaml`). The args module is generated from
`settings.declarations.SETTINGS`, so a key's description is written once:
`python -m settings.arguments --write` regenerates it and a test keeps it current.

Values given as args go through the same checks and cross-key rules as stack config, with the same
messages (`settings.loading.validate`).
"""

import argparse
import json
import re
import sys
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any

import pulumi

from settings.declarations import (
    DEPLOYER_PRINCIPAL_TYPES,
    ENVIRONMENTS,
    HOSTING_PLANS,
    NETWORK_MODES,
    PROJECT,
    PYTHON_VERSIONS,
    SETTINGS,
    SETTINGS_BY_KEY,
    SIGNALR_SKUS,
    SQL_ADMIN_PRINCIPAL_TYPES,
    STORAGE_REDUNDANCY,
)
from settings.loading import load_settings, settings_from_values, typed_value
from settings.model import Settings

ARGS_MODULE = Path(__file__).resolve().parent.parent / "system" / "args.py"

# Each enumerated key: its Python enum's name, and a description of every member (the schema shows
# them to consumers in every language).
ENUMS: dict[str, tuple[str, tuple[str, ...], dict[str, str]]] = {
    "environment": (
        "Environment",
        ENVIRONMENTS,
        {
            "dev": "A developer's stack: the smallest tiers, nothing protected.",
            "test": "A shared test stack: production's shapes at a smaller size, SQL polled every second.",
            "review": "A short-lived stack per pull request, from the dev settings; needs `instance`.",
            "prod": "Production: zone redundancy, protection, longer retention, availability tests.",
        },
    ),
    "hostingPlan": (
        "HostingPlan",
        HOSTING_PLANS,
        {
            "FlexConsumption": "Flex Consumption (FC1, Linux): Microsoft's recommended serverless plan.",
            "ElasticPremium": "Elastic Premium (EP1-EP3): pre-warmed instances, billed around the clock.",
            "Dedicated": "A dedicated App Service plan (B1-P3v3).",
        },
    ),
    "pythonVersion": (
        "PythonVersion",
        PYTHON_VERSIONS,
        {"3.11": "Python 3.11 on the Functions host.", "3.12": "Python 3.12 on the Functions host."},
    ),
    "signalrSku": (
        "SignalrSku",
        SIGNALR_SKUS,
        {
            "Free_F1": "Free: 20 connections and 20,000 messages a day; dev only.",
            "Standard_S1": "Standard: 1,000 connections per unit, no daily message cap.",
            "Premium_P1": "Premium: Standard's limits plus availability zones and autoscale.",
        },
    ),
    "storageRedundancy": (
        "StorageRedundancy",
        STORAGE_REDUNDANCY,
        {
            "LRS": "Three copies in one datacenter.",
            "ZRS": "Three copies across the region's availability zones.",
            "GRS": "LRS plus an asynchronous copy in the paired region.",
            "GZRS": "ZRS plus an asynchronous copy in the paired region.",
        },
    ),
    "deployerPrincipalType": (
        "DeployerPrincipalType",
        DEPLOYER_PRINCIPAL_TYPES,
        {
            "User": "A person signed in on a workstation.",
            "ServicePrincipal": "A service principal or managed identity, as in CI.",
        },
    ),
    "sqlAdminPrincipalType": (
        "SqlAdminPrincipalType",
        SQL_ADMIN_PRINCIPAL_TYPES,
        {
            "User": "An Entra user.",
            "Group": "An Entra group, whose members administer the server.",
            "Application": "A service principal or managed identity.",
        },
    ),
    "network": (
        "NetworkMode",
        NETWORK_MODES,
        {
            "public": "Data services behind Entra ID and firewalls, on their public endpoints.",
            "private": "SQL and the host storage through private endpoints only; the app's outbound traffic "
            "through a subnet.",
        },
    ),
}
REQUIRED = ("environment", "location")
"""The args a consumer must give: everything else has a per-environment default."""
LOCATION_DESCRIPTION = (
    "The Azure region of every resource, e.g. westeurope (the program takes it from `azure-native:location`)."
)
_PYTHON_TYPES = {"string": "str", "integer": "int", "boolean": "bool", "array": "list[str]"}


def snake(key: str) -> str:
    """A config key as a Python field name (`sqlSku` -> `sql_sku`); Pulumi's analyzer maps it back."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def _docstring(text: str, indent: str) -> list[str]:
    # One line each, however long: Pulumi's analyzer copies a docstring into the schema verbatim, so
    # a wrapped one would carry its line breaks and indentation into every language's docs.
    return [f'{indent}"""{text}"""']


def _enum_source(key: str, name: str, members: tuple[str, ...], docs: Mapping[str, str]) -> list[str]:
    lines = ["", "", f"class {name}(StrEnum):", f'    """Allowed values of `{key}`."""', ""]
    for value in members:
        member = re.sub(r"\W", "_", value).upper()
        member = f"V{member}" if member[0].isdigit() else member
        lines += [f"    {member} = {json.dumps(value)}", *_docstring(docs[value], "    ")]
    return lines


def render_args_module() -> str:
    """The source of `system/args.py`: one enum per enumerated key, one TypedDict."""
    lines = [
        '"""The arguments of `BroadcastSystem`: the stack settings, typed for Pulumi\'s schema analyzer.',
        "",
        "Generated by `python -m settings.arguments --write` from settings/declarations.py; do not edit.",
        "No `from __future__ import annotations`: the analyzer reads these hints at run time.",
        '"""',
        "",
        "# ruff: noqa: E501 (one-line docstrings: the analyzer copies them into the schema verbatim)",
        "",
        "from enum import StrEnum",
        "from typing import NotRequired, TypedDict",
    ]
    for key, (name, members, docs) in ENUMS.items():
        lines += _enum_source(key, name, members, docs)
    lines += [
        "",
        "",
        "class BroadcastSystemArgs(TypedDict):",
        '    """The settings of one broadcast system."""',
        "",
    ]
    fields = [("location", "string", LOCATION_DESCRIPTION)] + [
        (s.key, s.type, s.description) for s in SETTINGS
    ]
    for key, kind, description in sorted(fields, key=lambda field: field[0] not in REQUIRED):
        hint = ENUMS[key][0] if key in ENUMS else _PYTHON_TYPES[kind]
        hint = hint if key in REQUIRED else f"NotRequired[{hint}]"
        lines += [f"    {snake(key)}: {hint}", *_docstring(description, "    ")]
    return "\n".join(lines) + "\n"


def _plain(key: str, value: Any) -> Any:
    """A value as stack config would give it: enums as their strings, integral floats as integers (the
    engine sends every number as a float, and Pulumi 3.272's component host passes it on as one)."""
    if isinstance(value, Enum):
        return value.value
    setting_type = SETTINGS_BY_KEY[key].type
    if setting_type == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    if setting_type == "array" and isinstance(value, tuple):
        return list(value)
    return value


def config_values(args: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The args as config keys and plain values, and an error for each arg no setting declares."""
    by_field = {snake(setting.key): setting.key for setting in SETTINGS}
    values, errors = {}, []
    for field, value in args.items():
        key = by_field.get(field)
        if field == "location":
            continue
        if key is None:
            errors.append(
                f"{PROJECT}: unknown argument {field!r}; the arguments are the stack settings' keys"
            )
            continue
        if value is not None:
            values[key] = _plain(key, value)
    return values, errors


PYTHON_ONLY = (
    f"{PROJECT}:networkAppSubnetId: a brought network has no subnet for the schema's deployment script, "
    "so the deploying machine applies the schema with a Python dynamic resource, which only the Python "
    "program can run; from the package, leave networkAppSubnetId and networkEndpointSubnetId unset (the "
    "stack's own network)"
)
"""Why the package refuses a brought network (the one configuration still deployed by a Python dynamic
resource: a consumer's engine runs dynamic providers with the consumer's Python, pulumi/pulumi#5455)."""


def settings_from_args(args: Mapping[str, Any], name: str, by_package: bool = False) -> Settings:
    """The settings a `BroadcastSystem` named `name` is built from: its args with the stack config's
    per-environment defaults, checks and cross-key rules (the same messages), or SettingsError. Built
    `by_package` (the component package's provider, for a program in any language), it also refuses
    what only the Python program can deploy."""
    values, errors = config_values(args)
    location = args.get("location")
    if not location:
        errors.append("location is required: the Azure region of every resource, e.g. westeurope")
    if by_package and values.get("network") == "private" and values.get("networkAppSubnetId"):
        errors.append(PYTHON_ONLY)
    return settings_from_values(
        values, location or None, f"invalid arguments for BroadcastSystem '{name}'", errors
    )


def stack_args(config: pulumi.Config | None = None, stack: str | None = None) -> dict[str, Any]:
    """The stack config as `BroadcastSystemArgs`, once `load_settings` has checked it (so a bad key
    fails with the stack config's message, before anything is declared): the keys the stack sets,
    its environment (the stack name by default) and `azure-native:location`."""
    settings = load_settings(config, stack)
    config = config or pulumi.Config(PROJECT)
    args: dict[str, Any] = {"location": settings.location, "environment": settings.environment}
    for setting in SETTINGS:
        raw = config.get(setting.key)
        if raw is not None and setting.key != "environment":
            args[snake(setting.key)] = typed_value(raw, setting)
    return args


def main(argv: list[str] | None = None) -> int:
    """`--write` regenerates the args module; `--check` exits 1 when it is stale."""
    parser = argparse.ArgumentParser(prog="python -m settings.arguments", description=__doc__)
    parser.add_argument("--write", action="store_true", help=f"write {ARGS_MODULE.name}")
    options = parser.parse_args(argv)
    source = render_args_module()
    if options.write:
        ARGS_MODULE.write_text(source)
        return 0
    current = ARGS_MODULE.read_text() if ARGS_MODULE.exists() else ""
    if current != source:
        print(f"{ARGS_MODULE} is stale: run `python -m settings.arguments --write`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
