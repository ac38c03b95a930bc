"""The preflight's readers: ARM with the deploying identity's token, and this machine's ODBC drivers.

`python -m preflight` and `python -m deploy` run the checks with them before `pulumi up`; the Pulumi
program itself does not (evaluating it makes no network call, so it runs under mocks with no
network, as Pulumi's testing guide shows)."""

from __future__ import annotations

from data_plane.azure_http import Transport, urllib_transport
from data_plane.database_schema import installed_odbc_drivers
from preflight.checks import ArmGet

arm_transport: Transport = urllib_transport
"""How ARM is reached (tests answer in its place)."""


def odbc_drivers() -> list[str]:
    """The ODBC drivers installed on this machine (none when pyodbc or unixODBC is missing)."""
    return installed_odbc_drivers()


def arm_reader(token: str) -> ArmGet:
    """GET with an ARM token."""

    def get(url: str) -> tuple[int, bytes]:
        status, _, body = arm_transport("GET", url, None, {"Authorization": f"Bearer {token}"})
        return status, body

    return get
