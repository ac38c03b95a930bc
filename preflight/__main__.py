"""`python -m preflight <stack> [--subscription ID]`: check a subscription and this machine before the
first `pulumi up` (no Pulumi CLI needed): resource providers, Flex Consumption in the stack's region,
with private networking a subnet the stack brings and who can sign in as the SQL admin, and with
`--applies-schema` the ODBC driver this machine needs to apply a schema change. Prints each missing
prerequisite with the command that fixes it.

Exit codes: 0 ready; 1 a prerequisite is missing; 2 the command line is wrong (an unknown stack, or
no --subscription where the sign-in sees several); 3 the stack file or a setting is invalid; 4 no
Azure sign-in (run `az login`). Every error is one line on stderr (a settings error, one per key).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import replace

import pulumi
from azure.core.exceptions import ClientAuthenticationError

from data_plane.azure_http import entra_token
from preflight import sdk_logs
from preflight.checks import ARM, ArmGet, Needs, check, report
from preflight.program import arm_reader, odbc_drivers
from settings import SettingsError, load_settings, stack_file
from settings.model import Settings

EXIT_MISSING = 1
EXIT_USAGE = 2
EXIT_SETTINGS = 3
EXIT_NOT_SIGNED_IN = 4
SIGN_IN_HINT = (
    "no Azure sign-in: run `az login` (then `az account set --subscription <id>`), or set "
    "AZURE_TENANT_ID, AZURE_CLIENT_ID and a secret or federated token for a service principal"
)


def needs_of(settings: Settings, subscription_id: str, deployer: tuple[str, str] | None = None) -> Needs:
    """What a stack with these settings needs of its subscription and of who deploys it: a public
    stack, or a private one that creates its network, applies its schema with a deployment script
    (no ODBC driver here, its schema identity is the SQL admin); one in a brought network, from here."""
    network = settings.network
    admin = settings.sql_admin
    return Needs(
        subscription_id=subscription_id,
        location=settings.location,
        flex_consumption=settings.hosting_plan == "FlexConsumption",
        private_network=network.private,
        # "In network" reads "by a deployment script": on public stacks too since issue 33.
        schema_in_network=not (network.private and network.app_subnet_id is not None),
        sql_admin=(admin.principal_type, admin.sid) if admin else None,
        deployer=deployer,
        app_subnet_id=network.app_subnet_id,
    )


def token_identity(token: str) -> tuple[str, str] | None:
    """(object id, client id) of whoever holds an Entra access token, from its `oid` and `appid` (or
    `azp`) claims; None when it cannot be read (the admin check is then skipped)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return str(claims["oid"]), str(claims.get("appid") or claims.get("azp") or "")
    except (IndexError, KeyError, ValueError, TypeError):
        return None


class UsageError(Exception):
    """The command line does not say enough (answered with exit code 2)."""


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
        seen = (
            f"the sign-in sees {len(ids)} subscriptions" if status == 200 else f"ARM answered HTTP {status}"
        )
        raise UsageError(f"say which subscription with --subscription <id> ({seen})")
    return str(ids[0])


def main(
    argv: list[str] | None = None, arm_get: ArmGet | None = None, drivers: Iterable[str] | None = None
) -> int:
    """Run the checks for one stack; `arm_get` and `drivers` are replaceable for tests."""
    parser = argparse.ArgumentParser(prog="python -m preflight", description=__doc__)
    parser.add_argument("stack", help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--subscription", help="subscription id (default: the stack's or the login's)")
    parser.add_argument(
        "--verbose", action="store_true", help="show the Azure SDK's own log (sign-in attempts)"
    )
    parser.add_argument(
        "--applies-schema",
        action="store_true",
        help="this machine applies a schema change (public stack, own network): check the ODBC driver",
    )
    arguments = parser.parse_args(argv)
    sdk_logs.configure(arguments.verbose)
    try:
        config = stack_file(arguments.stack)
        pulumi.runtime.set_all_config(config, [])
        settings = load_settings(pulumi.Config("broadcast"), stack=arguments.stack)
    except FileNotFoundError as error:
        parser.error(str(error))
    except SettingsError as error:
        print(f"python -m preflight: stack {arguments.stack}: {error}", file=sys.stderr)
        return EXIT_SETTINGS
    try:
        # With the credential the deploy-time resources use (CLI login; OIDC in CI).
        token = None if arm_get else entra_token()
        arm = arm_get or arm_reader(str(token))
        subscription_id = subscription_of(config, arguments.subscription, arm)
    except ClientAuthenticationError:
        print(f"python -m preflight: {SIGN_IN_HINT}", file=sys.stderr)
        return EXIT_NOT_SIGNED_IN
    except UsageError as error:
        print(f"python -m preflight: {error}", file=sys.stderr)
        return EXIT_USAGE
    needs = needs_of(settings, subscription_id, token_identity(token) if token else None)
    # A private stack's own network applies its schema in a deployment script, never from here.
    needs = replace(needs, schema_from_here=arguments.applies_schema and not needs.schema_in_network)
    problems, skipped = check(arm, odbc_drivers() if drivers is None else drivers, needs)
    for reason in skipped:
        print(f"not checked: {reason}")
    if problems:
        print(report(problems))
        return EXIT_MISSING
    print(f"stack {arguments.stack}: subscription {needs.subscription_id} and this machine are ready")
    return 0


if __name__ == "__main__":
    sys.exit(main())
