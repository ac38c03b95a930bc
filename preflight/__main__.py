"""`python -m preflight <stack> [--subscription ID]`: check a subscription and this machine before the
first `pulumi up` (no Pulumi CLI needed): resource providers, Flex Consumption in the stack's region,
with private networking a subnet the stack brings and who can sign in as the SQL admin, and with
`--applies-schema` the ODBC driver this machine needs to apply a schema change. Prints each missing
prerequisite with the command that fixes it; exits 1 if any."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import replace

import pulumi

from data_plane.azure_http import entra_token
from preflight.checks import ARM, ArmGet, check, report
from preflight.program import arm_reader, needs_of, odbc_drivers
from settings import SettingsError, load_settings, stack_file


def subscription_of(config: dict[str, str], given: str | None, arm_get: ArmGet) -> str:
    """The subscription: given, the stack's `azure-native:subscriptionId`, the ARM_/AZURE_ variables,
    or the only one the identity sees."""
    for candidate in (
        given,
        config.get("azure-native:subscriptionId"),
        os.environ.get("ARM_SUBSCRIPTION_ID"),
        os.environ.get("AZURE_SUBSCRIPTION_ID"),
    ):
        if candidate:
            return candidate
    status, body = arm_get(f"{ARM}/subscriptions?api-version=2022-12-01")
    ids = [item["subscriptionId"] for item in json.loads(body).get("value", [])] if status == 200 else []
    if len(ids) != 1:
        raise SystemExit("python -m preflight: say which subscription with --subscription <id>")
    return str(ids[0])


def main(
    argv: list[str] | None = None, arm_get: ArmGet | None = None, drivers: Iterable[str] | None = None
) -> int:
    """Run the checks for one stack; `arm_get` and `drivers` are replaceable for tests."""
    parser = argparse.ArgumentParser(prog="python -m preflight", description=__doc__)
    parser.add_argument("stack", help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--subscription", help="subscription id (default: the stack's or the login's)")
    parser.add_argument(
        "--applies-schema",
        action="store_true",
        help="this machine applies a schema change (public stack, own network): check the ODBC driver",
    )
    arguments = parser.parse_args(argv)
    try:
        config = stack_file(arguments.stack)
    except FileNotFoundError as error:
        parser.error(str(error))
    pulumi.runtime.set_all_config(config, [])
    try:
        settings = load_settings(pulumi.Config("broadcast"), stack=arguments.stack)
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 1
    # With the credential the deploy-time resources use (CLI login; OIDC in CI).
    arm = arm_get or arm_reader(entra_token())
    needs = replace(
        needs_of(settings, subscription_of(config, arguments.subscription, arm)),
        schema_from_here=arguments.applies_schema,
    )
    problems, skipped = check(arm, odbc_drivers() if drivers is None else drivers, needs)
    for reason in skipped:
        print(f"not checked: {reason}")
    if problems:
        print(report(problems))
        return 1
    print(f"stack {arguments.stack}: subscription {needs.subscription_id} and this machine are ready")
    return 0


if __name__ == "__main__":
    sys.exit(main())
