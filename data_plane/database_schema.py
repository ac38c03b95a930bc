"""Applying the T-SQL migrations during `pulumi up` from the deploying machine: the dynamic resource
around the runner of `data_plane.migration_runner` (which also runs inside the network, see
`components.schema_runner`).

The resource connects with pyodbc and ODBC Driver 18 using an Entra access token of the deploying
identity (no SQL password exists), after the server, database and firewall rules, and before the
Functions app's code starts its SQL triggers. It connects only when it has work to do: a `pulumi up`
whose migrations and variables are unchanged does not call the provider at all (the diff says no
change), so the ODBC driver is needed only on a machine that applies a new or changed schema.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

from data_plane.azure_http import ARM, SQL_SCOPE, entra_token, urllib_transport
from data_plane.migration_runner import (
    SQL_COPT_SS_ACCESS_TOKEN,
    SQLITE,
    TRACKING_TABLE,
    TSQL,
    Dialect,
    MigrationError,
    MigrationResult,
    access_token_struct,
    applied_checksum,
    apply_migrations,
    entra_sid,
    verify_planned,
)
from data_plane.provider_support import diff_on
from functions.migrations import load_migrations

__all__ = [
    "SQLITE",
    "SQL_COPT_SS_ACCESS_TOKEN",
    "TRACKING_TABLE",
    "TSQL",
    "DatabaseSchema",
    "Dialect",
    "MigrationError",
    "MigrationResult",
    "SchemaProvider",
    "access_token_struct",
    "applied_checksum",
    "apply_migrations",
    "entra_sid",
]
ODBC_DRIVER = "ODBC Driver 18 for SQL Server"
ODBC_INSTALL = (
    "install it: Debian/Ubuntu: `curl -sSL https://packages.microsoft.com/config/$(. /etc/os-release; "
    'echo "$ID/$VERSION_ID")/packages-microsoft-prod.deb -o /tmp/ms.deb && sudo dpkg -i /tmp/ms.deb && '
    "sudo apt-get update && sudo ACCEPT_EULA=Y apt-get install -y msodbcsql18`; macOS: `brew tap "
    "microsoft/mssql-release https://github.com/Microsoft/homebrew-mssql-release && HOMEBREW_ACCEPT_EULA=Y "
    "brew install msodbcsql18`"
)


def installed_odbc_drivers() -> list[str]:
    """The ODBC drivers of this machine (none when pyodbc or unixODBC itself is missing)."""
    try:
        import pyodbc
    except ImportError:
        return []
    return list(pyodbc.drivers())


def schema_variables(
    app_identity_name: pulumi.Input[str], app_identity_client_id: pulumi.Input[str]
) -> dict[str, pulumi.Input[str]]:
    """The migrations' variables, wherever they run: the app identity's name and SID."""
    return {
        "AppIdentityName": app_identity_name,
        # The user is created from the identity's SID: no Microsoft Graph lookup, which a service
        # principal could only do through a server identity with Directory Readers.
        "AppIdentitySid": pulumi.Output.from_input(app_identity_client_id).apply(entra_sid),
    }


class SchemaProvider(ResourceProvider):
    """The dynamic provider behind `DatabaseSchema`.

    The machine running `pulumi up` is rarely inside the server's firewall. When Azure SQL refuses
    it ("Client with IP address ... is not allowed"), the provider opens a rule for exactly that
    address through ARM with the same identity, applies the migrations, and removes the rule.
    """

    def __init__(
        self,
        connect: Callable[[dict[str, Any]], Any] | None = None,
        arm: Callable[[str, str, dict[str, Any] | None], int] | None = None,
        sleep: Callable[[float], None] | None = None,
        firewall_wait_seconds: float = 300,
        locks: Callable[[str], list[str]] | None = None,
        drivers: Callable[[], list[str]] | None = None,
    ) -> None:
        self._connect = connect
        self._drivers = drivers
        self._arm = arm
        self._sleep = sleep
        self._firewall_wait = firewall_wait_seconds
        self._locks = locks

    @staticmethod
    def _azure_sql_connection(props: dict[str, Any]) -> Any:
        import pyodbc

        token = entra_token(SQL_SCOPE)
        connection_string = (
            f"Driver={{ODBC Driver 18 for SQL Server}};Server=tcp:{props['server']},1433;"
            f"Database={props['database']};Encrypt=yes;TrustServerCertificate=no;Connection Timeout=60;"
        )
        # autocommit=True: ALTER DATABASE fails with error 226 in the driver's implicit transactions.
        return pyodbc.connect(
            connection_string,
            attrs_before={SQL_COPT_SS_ACCESS_TOKEN: access_token_struct(token)},
            autocommit=True,
        )

    @staticmethod
    def _arm_request(method: str, url: str, body: dict[str, Any] | None) -> int:
        import json

        headers = {"Authorization": f"Bearer {entra_token()}", "Content-Type": "application/json"}
        data = json.dumps(body).encode() if body is not None else None
        status, _, _ = urllib_transport(method, url, data, headers)
        return status

    @staticmethod
    def _lock_levels(resource_id: str) -> list[str]:
        """The levels of the management locks on a resource and above it (ARM: Management Locks -
        List At Resource Level)."""
        import json

        url = f"{ARM}{resource_id}/providers/Microsoft.Authorization/locks?api-version=2020-05-01"
        status, _, body = urllib_transport("GET", url, None, {"Authorization": f"Bearer {entra_token()}"})
        if status != 200:
            return []
        return [str(lock.get("properties", {}).get("level")) for lock in json.loads(body).get("value", [])]

    def _firewall_rule_url(self, props: dict[str, Any], address: str) -> str:
        name = "pulumi-schema-" + address.replace(".", "-")
        return f"{ARM}{props['server_id']}/firewallRules/{name}?api-version=2021-11-01"

    def _connect_through_firewall(self, props: dict[str, Any]) -> tuple[Any, str | None]:
        import re

        connect = self._connect or self._azure_sql_connection
        try:
            return connect(props), None
        except Exception as error:
            if "Deny Public Network Access is set to Yes" in str(error) or "(47073)" in str(error):
                raise MigrationError(
                    f"{props['server']} accepts private connections only (network: private, with a network "
                    "you bring): run `pulumi up` from a machine in that network, or in one peered with it "
                    "whose DNS resolves privatelink.database.windows.net (a self-hosted runner); or let the "
                    "stack create its network, where the schema is applied from inside "
                    "(docs/private-networking.md)"
                ) from error
            match = re.search(r"Client with IP address '([0-9.]+)' is not allowed", str(error))
            if not match:
                raise
            address = match.group(1)
        if any(
            level in ("CanNotDelete", "ReadOnly")
            for level in (self._locks or self._lock_levels)(props["server_id"])
        ):
            # A lock is inherited by the firewall rules: a temporary one could never be removed.
            raise MigrationError(
                f"the server refused {address} and is locked against deletion (protectData), so no temporary "
                f"firewall rule is opened: add {address} to sqlClientIpRanges, or apply from a machine the "
                "firewall already admits"
            )
        arm = self._arm or self._arm_request
        url = self._firewall_rule_url(props, address)
        status = arm("PUT", url, {"properties": {"startIpAddress": address, "endIpAddress": address}})
        if status not in (200, 201, 202):
            raise MigrationError(
                f"the server refused {address} and opening its firewall for it failed "
                f"(HTTP {status}); add it to sqlClientIpRanges"
            )
        deadline = time.monotonic() + self._firewall_wait
        while True:  # a new rule can take a few minutes to apply
            try:
                return connect(props), url
            except Exception:
                if time.monotonic() > deadline:
                    arm("DELETE", url, None)
                    raise
                (self._sleep or time.sleep)(15)

    def _require_driver(self) -> None:
        """The ODBC driver, checked when a connection is about to be made (not on every `up`)."""
        if self._connect is None and ODBC_DRIVER not in (self._drivers or installed_odbc_drivers)():
            raise MigrationError(
                f"the schema changed and is applied from this machine, which lacks {ODBC_DRIVER}; "
                f"{ODBC_INSTALL}"
            )

    def _apply(self, props: dict[str, Any]) -> dict[str, Any]:
        migrations = load_migrations()
        verify_planned(migrations, props["migrations"])
        self._require_driver()
        connection, temporary_rule = self._connect_through_firewall(props)
        try:
            result = apply_migrations(connection, migrations, dict(props.get("variables") or {}))
        finally:
            connection.close()
            if temporary_rule is not None:
                (self._arm or self._arm_request)("DELETE", temporary_rule, None)
        return {**props, "applied": result.applied}

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=f"{props['server']}/{props['database']}/schema", outs=self._apply(props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return diff_on(olds, news, watched=("migrations", "variables"), replace_on=("server", "database"))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._apply(news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """The schema goes with the database; nothing to undo on its own."""


class DatabaseSchema(pulumi.dynamic.Resource):
    """The broadcast schema, applied with the deploying identity's Entra token."""

    applied: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        server: pulumi.Input[str],
        server_id: pulumi.Input[str],
        database: pulumi.Input[str],
        app_identity_name: pulumi.Input[str],
        app_identity_client_id: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        migrations = [{"name": m.name, "checksum": m.checksum} for m in load_migrations()]
        super().__init__(
            SchemaProvider(),
            name,
            {
                "server": server,
                "server_id": server_id,
                "database": database,
                "migrations": migrations,
                "variables": schema_variables(app_identity_name, app_identity_client_id),
                "applied": None,
            },
            opts,
        )
