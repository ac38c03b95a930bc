"""Azure as the program's mocks see it: what ARM would answer for each registration and invoke.

The answers are derived from the names the program chose (endpoints, host names, identity ids), so
tests can compute what the program should have wired without hard-coding it.
"""

from __future__ import annotations

import uuid
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks

SUBSCRIPTION = "00000000-0000-0000-0000-00000000a11c"
TENANT = "00000000-0000-0000-0000-0000000be5e7"
DEPLOYER_OBJECT_ID = "11111111-2222-3333-4444-555555555555"
DEPLOYER_CLIENT_ID = "22222222-0000-0000-0000-000000000000"
ASSIGNED_AT = "2026-01-01T00:00:00.0000000Z"
"""What ARM answers as a role assignment's `createdOn`."""


def _physical_name(args: pulumi_mocks.MockResourceArgs) -> str:
    # The most specific name input first: a database also names its server, a rule its server.
    for key in (
        "virtualNetworkLinkName",
        "privateDnsZoneGroupName",
        "blobAuditingPolicyName",
        "lockName",
        "containerName",
        "accountName",
        "databaseName",
        "firewallRuleName",
        "policyName",
        "roleAssignmentName",
        "secretName",
        "vaultName",
        "workspaceName",
        "actionGroupName",
        "ruleName",
        "webTestName",
        "privateEndpointName",
        "virtualNetworkName",
        "privateZoneName",
        "resourceName",
        "serverName",
        "name",
        "resourceGroupName",
    ):
        value = args.inputs.get(key)
        if isinstance(value, str) and value:
            return value
    return args.name


class AzureMocks(pulumi.runtime.Mocks):
    """Answers resource registrations and invokes the way Azure would."""

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        name = _physical_name(args)
        provider = args.typ.split(":")[1] if args.typ.count(":") >= 2 else "custom"
        resource_id = (
            f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-test/providers/Microsoft.{provider}/{name}"
        )
        state = dict(args.inputs)
        state.setdefault("name", name)
        identity = state.get("identity")
        if isinstance(identity, dict) and isinstance(identity.get("userAssignedIdentities"), list):
            # Inputs list the identities; Azure answers with a map keyed by their ids.
            state["identity"] = {
                **identity,
                "userAssignedIdentities": {i: {} for i in identity["userAssignedIdentities"]},
            }
        if args.typ == "azure-native:storage:StorageAccount":
            state["primaryEndpoints"] = {
                "web": f"https://{name}.z6.web.core.windows.net/",
                "blob": f"https://{name}.blob.core.windows.net/",
                "queue": f"https://{name}.queue.core.windows.net/",
                "table": f"https://{name}.table.core.windows.net/",
            }
        elif args.typ == "azure-native:web:WebApp":
            state["defaultHostName"] = f"{name}.azurewebsites.net"
            state["enabledHostNames"] = [f"{name}.azurewebsites.net", f"{name}.scm.azurewebsites.net"]
        elif args.typ == "azure-native:signalrservice:SignalR":
            state["hostName"] = f"{name}.service.signalr.net"
        elif args.typ == "azure-native:keyvault:Vault":
            state["properties"] = {
                **state.get("properties", {}),
                "vaultUri": f"https://{name}.vault.azure.net/",
            }
        elif args.typ == "azure-native:sql:Server":
            state["fullyQualifiedDomainName"] = f"{name}.database.windows.net"
        elif args.typ == "azure-native:managedidentity:UserAssignedIdentity":
            state["clientId"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"client/{name}"))
            state["principalId"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"principal/{name}"))
            state["tenantId"] = TENANT
        elif args.typ == "azure-native:authorization:RoleAssignment":
            state["createdOn"] = ASSIGNED_AT
        elif args.typ == "azure-native:applicationinsights:Component":
            state["connectionString"] = f"InstrumentationKey={uuid.uuid5(uuid.NAMESPACE_URL, name)}"
        elif args.typ == "random:index/randomString:RandomString":
            state["result"] = "x7k2q9"
        elif args.typ == "random:index/randomPassword:RandomPassword":
            state["result"] = "p" * int(args.inputs.get("length", 16))
        elif (
            args.typ == "pulumi-python:dynamic:Resource"
            and "package_sha256" in args.inputs
            and "container" in args.inputs
        ):
            state["url"] = (
                f"{args.inputs['account_url'].rstrip('/')}/{args.inputs['container']}/functions-{args.inputs['package_sha256']}.zip"
            )
        elif args.typ == "azure-native:resources:ResourceGroup":
            resource_id = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{name}"
        return resource_id, state

    def call(self, args: pulumi_mocks.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        # The SDK's annotation says (outputs, failures), but its MockMonitor also takes a plain dict.
        if args.token == "azure-native:authorization:getClientConfig":
            return {
                "clientId": DEPLOYER_CLIENT_ID,
                "objectId": DEPLOYER_OBJECT_ID,
                "subscriptionId": SUBSCRIPTION,
                "tenantId": TENANT,
            }
        raise AssertionError(f"unexpected invoke {args.token}")
