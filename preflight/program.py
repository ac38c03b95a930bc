"""The preflight as the Pulumi program runs it: first, before any resource is declared, with the
identity and subscription the azure-native provider deploys with (its invokes), so that a missing
prerequisite stops `pulumi preview` and `pulumi up` with the command that fixes it."""

from __future__ import annotations

import pulumi
from pulumi_azure_native import authorization

from data_plane.azure_http import Transport, urllib_transport
from data_plane.database_schema import installed_odbc_drivers
from preflight.checks import ArmGet, Needs, check, report
from settings.model import Settings


class PreflightError(RuntimeError):
    """A prerequisite of the deployment is missing; the message says how to fix each."""


arm_transport: Transport = urllib_transport
"""How ARM is reached (the mocks harness answers in its place)."""


def odbc_drivers() -> list[str]:
    """The ODBC drivers installed on this machine."""
    return installed_odbc_drivers()


def arm_reader(token: str) -> ArmGet:
    """GET with the provider's ARM token."""

    def get(url: str) -> tuple[int, bytes]:
        status, _, body = arm_transport("GET", url, None, {"Authorization": f"Bearer {token}"})
        return status, body

    return get


def needs_of(settings: Settings, subscription_id: str, deployer: tuple[str, str] | None = None) -> Needs:
    """What a stack with these settings needs of its subscription and of who deploys it."""
    network = settings.network
    admin = settings.sql_admin
    return Needs(
        subscription_id=subscription_id,
        location=settings.location,
        flex_consumption=settings.hosting_plan == "FlexConsumption",
        private_network=network.private,
        schema_in_network=network.private and network.app_subnet_id is None,
        sql_admin=(admin.principal_type, admin.sid) if admin else None,
        deployer=deployer,
        app_subnet_id=network.app_subnet_id,
    )


def verify(settings: Settings) -> None:
    """Check the subscription and who deploys; raise PreflightError listing each fix.

    The ODBC driver is not checked here: the schema resource checks it when the schema changes."""
    client = authorization.get_client_config()
    token = authorization.get_client_token().token
    needs = needs_of(settings, client.subscription_id, (client.object_id, client.client_id))
    problems, skipped = check(arm_reader(token), (), needs)
    for reason in skipped:
        pulumi.log.warn(f"preflight: not checked: {reason}")
    if problems:
        raise PreflightError(report(problems))
