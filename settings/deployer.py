"""The identity that runs `pulumi up`, as the program hands it to the components.

On a workstation it is a user; in CI, a service principal (`deployerPrincipalType`). Entra and
Azure SQL name the two differently: a user by its object id, an application by its application
(client) id (sys.server_principals: "A Microsoft Entra application's SID is the binary
representation of its Microsoft Entra client ID"), with `principalType: Application`.
"""

from __future__ import annotations

import pulumi
from pulumi_azure_native import authorization

from components.shared import Deployer
from components.sql import SqlAdministrator
from settings.model import Settings

DEPLOYER_LOGIN = "pulumi-deployer"


def sql_administrator(
    settings: Settings, client: pulumi.Output[authorization.GetClientConfigResult]
) -> SqlAdministrator:
    """The SQL server's Entra admin: the one named in the settings, else the deploying identity."""
    admin = settings.sql_admin
    if admin is not None:
        return SqlAdministrator(
            login=admin.login, sid=admin.sid, tenant_id=client.tenant_id, principal_type=admin.principal_type
        )
    if settings.deployer_principal_type == "ServicePrincipal":
        return SqlAdministrator(
            login=DEPLOYER_LOGIN,
            sid=client.client_id,
            tenant_id=client.tenant_id,
            principal_type="Application",
        )
    return SqlAdministrator(
        login=DEPLOYER_LOGIN, sid=client.object_id, tenant_id=client.tenant_id, principal_type="User"
    )


def deploying_identity(
    settings: Settings, client: pulumi.Output[authorization.GetClientConfigResult]
) -> Deployer:
    """The identity running `pulumi up`, as the components grant it data-plane roles."""
    return Deployer(principal_id=client.object_id, principal_type=settings.deployer_principal_type)
