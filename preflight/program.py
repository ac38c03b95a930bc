"""The preflight as the Pulumi program runs it: first, before any resource is declared, with the
identity and subscription the azure-native provider deploys with (its invokes), so that a missing
prerequisite stops `pulumi preview` and `pulumi up` with the command that fixes it."""

from __future__ import annotations

import pulumi
from pulumi_azure_native import authorization

from data_plane.azure_http import Transport, urllib_transport
from preflight.checks import ArmGet, Needs, check, report


class PreflightError(RuntimeError):
    """A prerequisite of the deployment is missing; the message says how to fix each."""


arm_transport: Transport = urllib_transport
"""How ARM is reached (the mocks harness answers in its place)."""


def odbc_drivers() -> list[str]:
    """The ODBC drivers installed on this machine."""
    import pyodbc

    return list(pyodbc.drivers())


def arm_reader(token: str) -> ArmGet:
    """GET with the provider's ARM token."""

    def get(url: str) -> tuple[int, bytes]:
        status, _, body = arm_transport("GET", url, None, {"Authorization": f"Bearer {token}"})
        return status, body

    return get


def verify(location: str, flex_consumption: bool, private_network: bool = False) -> None:
    """Check the subscription and this machine; raise PreflightError listing each fix.

    The ODBC driver only matters where the schema is applied: in `pulumi up`, not in a preview."""
    client = authorization.get_client_config()
    token = authorization.get_client_token().token
    needs = Needs(
        subscription_id=client.subscription_id,
        location=location,
        flex_consumption=flex_consumption,
        private_network=private_network,
        schema_from_here=not pulumi.runtime.is_dry_run(),
    )
    problems, skipped = check(arm_reader(token), odbc_drivers(), needs)
    for reason in skipped:
        pulumi.log.warn(f"preflight: not checked: {reason}")
    if problems:
        raise PreflightError(report(problems))
