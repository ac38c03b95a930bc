"""A stand-in for Azure's deployment script service (Microsoft.Resources/deploymentScripts, API
2023-08-01) as a private stack meets it, and for the private SQL server its script connects to.

It reads what the program registered under mocks, refuses what Azure refuses, and otherwise runs the
script's content with bash, as the Azure CLI container would, with three fakes on its PATH: `az`
(signed in as the script's identity), `python3` (pip intercepted: it installs the fake driver below;
everything else runs the real interpreter without site-packages, so the bundle must bring its own
code), and the `mssql_python` driver, which connects to a file-backed database only as the server's
network and admin rules allow.

Rules modelled, each from Microsoft's documentation (sources in docs/sources/private-networking.md):
- Only a user-assigned identity can run a script ("Currently, only user-assigned MSI is supported",
  deploymentScripts REST reference).
- In a private network, `containerSettings.subnetIds` names a subnet delegated to
  `Microsoft.ContainerInstance/containerGroups`, and the script uses an existing storage account
  reachable from it: without public network access, through a `file` private endpoint whose
  `privatelink.file.core.windows.net` zone is linked to the network; the script's identity has
  Storage File Data Privileged Contributor on it ("Run Bicep deployment script privately over a
  private endpoint").
- The account must allow shared key access: the service mounts the share with the account key, and
  otherwise the container fails with FailedMountAzureFileVolume (MicrosoftDocs/azure-docs#120857,
  #119179; Azure/bicep#14325).
- The service signs the CLI in as the identity before the script runs; an identity with no Azure
  role sees no subscription and the sign-in fails (MicrosoftDocs/azure-docs#60266, reported: a
  hello-world script failed on `Microsoft.Resources/subscriptions/providers/read`). Modelled as: the
  identity needs a control-plane role (Reader or wider) on some resource of the deployment.
- `retentionInterval` is an ISO 8601 duration of 1 to 26 hours; `cleanupPreference` is Always,
  OnSuccess or OnExpiration ("Clean up deployment script resources").
- A server with `publicNetworkAccess: Disabled` refuses connections that do not come through its
  private endpoint: "Deny Public Network Access is set to Yes (47073)". Its name resolves to the
  endpoint only inside a network linked to `privatelink.database.windows.net` that holds the
  endpoint's A record (Azure SQL connectivity settings; Private Endpoint DNS).
- An Entra-only server admits the admin principal (an application by its client id as `sid`) or a
  member of the admin group; anyone else fails with 18456 (Azure SQL: Microsoft Entra authentication).
"""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
import textwrap
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mocks import SUBSCRIPTION, ProgramRun, Registration

SCRIPT = "azure-native:resources:AzureCliScript"
FILE_ROLE = "69566ab7-960f-475b-8e7c-b3118f30c6bd"
READER_ROLE = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
DURATION = re.compile(r"^P(?:T(\d+)H|(\d+)D)$")


class RefusedError(RuntimeError):
    """What ARM (or the script) answers when Azure would refuse."""


def mock_id(resource: Registration) -> str:
    """The resource id the mocks give a registration (mocks.azure: by its most specific name input)."""
    keys = ("accountName", "privateEndpointName", "virtualNetworkName", "privateZoneName", "serverName")
    name = next((resource.inputs[k] for k in keys if k in resource.inputs), None)
    if resource.type == "azure-native:managedidentity:UserAssignedIdentity":
        name = resource.inputs["resourceName"]
    provider = resource.type.split(":")[1]
    return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-test/providers/Microsoft.{provider}/{name}"


def client_id(identity: Registration) -> str:
    """The client id the mocks give an identity."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"client/{identity.inputs['resourceName']}"))


def principal_id(identity: Registration) -> str:
    """The principal (object) id the mocks give an identity."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"principal/{identity.inputs['resourceName']}"))


FAKE_AZ = """#!/bin/sh
# The Azure CLI of the script's container, signed in as the script's identity.
[ "$1 $2" = "account get-access-token" ] || exit 2
printf '%s\\n' "$DS_TOKEN"
"""

FAKE_PYTHON = """#!/bin/sh
# python3 of the container: `-m pip install --target DIR mssql-python==...` installs the fake driver.
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then
  [ "$3" = "--version" ] && exit 0
  printf '%s\\n' "$*" >> "$DS_PIP_LOG"
  while [ "$#" -gt 0 ]; do [ "$1" = "--target" ] && target="$2"; shift; done
  mkdir -p "$target" && cp "$DS_FAKE_DRIVER" "$target/mssql_python.py"
  exit 0
fi
exec "$DS_REAL_PYTHON" -S "$@"
"""

FAKE_DRIVER = textwrap.dedent(
    '''
    """mssql_python as the private server answers it (standard library only)."""
    import json, os, re, struct

    ALTER_DATABASE = re.compile(r"\\bALTER\\s+DATABASE\\b", re.I)
    OPENS = re.compile(
        r"^\\s*(CREATE|DELETE|DROP|GRANT|INSERT|UPDATE|ALTER\\s+TABLE|IF\\b.*\\bFROM\\b)", re.I | re.S
    )

    def connect(connection_string, attrs_before=None, autocommit=False):
        refusal = os.environ["DS_SQL_REFUSAL"]
        if refusal:
            raise RuntimeError(refusal)
        packed = attrs_before[1256]
        (length,) = struct.unpack("<I", packed[:4])
        token = packed[4:4 + length].decode("utf-16-le")
        if token not in os.environ["DS_SQL_ADMINS"].split(","):
            raise RuntimeError("Login failed for user '<token-identified principal>'. (18456)")
        return Connection(connection_string, autocommit)

    class Connection:
        def __init__(self, connection_string, autocommit):
            self.path = os.environ["DS_SQL_STATE"]
            state = json.load(open(self.path)) if os.path.exists(self.path) else {}
            self.tracking = state.get("tracking", {})
            self.executed = state.get("executed", [])
            self.connections = state.get("connections", []) + [connection_string]
            self._autocommit, self.trancount, self.pending, self.rows = autocommit, 0, {}, []

        @property
        def autocommit(self):
            return self._autocommit

        @autocommit.setter
        def autocommit(self, value):
            if value and self.trancount:
                self.commit()
            self._autocommit = value

        def cursor(self):
            return self

        def execute(self, sql, *params):
            self.executed.append(sql)
            self.rows = []
            if not self._autocommit and OPENS.match(sql):
                self.trancount = 1
            if ALTER_DATABASE.search(sql) and not self._autocommit:
                raise RuntimeError(
                    "ALTER DATABASE statement not allowed within multi-statement transaction. (226)"
                )
            if sql.startswith("SELECT name, checksum FROM dbo.SchemaMigrations"):
                self.rows = sorted(self.tracking.items())
            elif sql.startswith("DELETE FROM dbo.SchemaMigrations"):
                self.pending[params[0]] = None
            elif sql.startswith("INSERT INTO dbo.SchemaMigrations"):
                self.pending[params[0]] = params[1]
            if self._autocommit:
                self.commit()
            return self

        def fetchall(self):
            return list(self.rows)

        def nextset(self):
            return False

        def commit(self):
            for name, checksum in self.pending.items():
                if checksum is None:
                    self.tracking.pop(name, None)
                else:
                    self.tracking[name] = checksum
            self.pending, self.trancount = {}, 0

        def rollback(self):
            self.pending, self.trancount = {}, 0

        def close(self):
            state = {"tracking": self.tracking, "executed": self.executed, "connections": self.connections}
            json.dump(state, open(self.path, "w"))
    '''
)


@dataclass
class ScriptRun:
    """What one run of the script did."""

    outputs: dict[str, Any]
    pip: list[str]
    log: str


@dataclass
class DeploymentScripts:
    """The deployment script service and the private server, over what one program run registered.
    `group_members` maps an admin group's object id to the client ids of its members."""

    run: ProgramRun
    group_members: dict[str, set[str]] = field(default_factory=dict)

    def _find(self, type_: str, **inputs: Any) -> list[Registration]:
        return [
            r
            for r in self.run.of_type(f"azure-native:{type_}")
            if all(r.inputs.get(k) == v for k, v in inputs.items())
        ]

    def _vnet_of(self, subnet_id: str) -> Registration:
        vnet_id = subnet_id.partition("/subnets/")[0]
        vnets = [v for v in self.run.of_type("azure-native:network:VirtualNetwork") if mock_id(v) == vnet_id]
        if not vnets:
            raise RefusedError(f"InvalidSubnet: {subnet_id} is not in a network of this deployment")
        return vnets[0]

    def _resolves_privately(self, target_id: str, group: str, zone: str, vnet: Registration) -> bool:
        """A private endpoint to `group` of `target_id` in `vnet`, with its A record in `zone`, and
        `zone` linked to `vnet`."""
        for endpoint in self._find("network:PrivateEndpoint"):
            connection = endpoint.inputs["privateLinkServiceConnections"][0]
            if connection["privateLinkServiceId"] != target_id or connection["groupIds"] != [group]:
                continue
            if not endpoint.inputs["subnet"]["id"].startswith(mock_id(vnet) + "/subnets/"):
                continue
            records = self._find(
                "network:PrivateDnsZoneGroup", privateEndpointName=endpoint.inputs["privateEndpointName"]
            )
            in_zone = any(
                c["privateDnsZoneId"].endswith(f"/{zone}")
                for r in records
                for c in r.inputs["privateDnsZoneConfigs"]
            )
            linked = any(
                link.inputs["virtualNetwork"]["id"] == mock_id(vnet)
                for link in self._find("privatedns:VirtualNetworkLink", privateZoneName=zone)
            )
            if in_zone and linked:
                return True
        return False

    def validate(self, script: Registration) -> Registration:
        """ARM's checks before a container starts; the identity the script runs as."""
        inputs = script.inputs
        identities = (inputs.get("identity") or {}).get("userAssignedIdentities") or []
        if (inputs.get("identity") or {}).get("type") != "UserAssigned" or len(identities) != 1:
            raise RefusedError(
                "DeploymentScriptInvalidIdentity: only one user-assigned identity is supported"
            )
        (identity,) = [
            i
            for i in self.run.of_type("azure-native:managedidentity:UserAssignedIdentity")
            if mock_id(i) == identities[0]
        ]
        match = DURATION.match(inputs.get("retentionInterval", ""))
        hours = int(match.group(1) or 0) + 24 * int(match.group(2) or 0) if match else 0
        if not 1 <= hours <= 26:
            raise RefusedError(
                f"InvalidRetentionInterval {inputs.get('retentionInterval')!r}: between PT1H and PT26H"
            )
        if inputs.get("cleanupPreference", "Always") not in ("Always", "OnSuccess", "OnExpiration"):
            raise RefusedError("InvalidCleanupPreference")
        subnets = (inputs.get("containerSettings") or {}).get("subnetIds") or []
        if len(subnets) != 1:
            raise RefusedError("the script's container needs one subnet to reach a private network")
        subnet_id = subnets[0]["id"]
        vnet = self._vnet_of(subnet_id)
        (subnet,) = [s for s in vnet.inputs["subnets"] if s["name"] == subnet_id.rsplit("/", 1)[1]]
        if [d["serviceName"] for d in subnet.get("delegations", [])] != [
            "Microsoft.ContainerInstance/containerGroups"
        ]:
            raise RefusedError(
                f"SubnetNotDelegated: {subnet_id} is not delegated to "
                "Microsoft.ContainerInstance/containerGroups"
            )
        self._check_storage(inputs, identity, vnet)
        return identity

    def _check_storage(self, inputs: dict[str, Any], identity: Registration, vnet: Registration) -> None:
        name = (inputs.get("storageAccountSettings") or {}).get("storageAccountName")
        accounts = self._find("storage:StorageAccount", accountName=name)
        if not accounts:
            raise RefusedError(
                "a script in a private network needs an existing storage account reachable from its subnet"
            )
        account = accounts[0].inputs
        if account.get("allowSharedKeyAccess") is False:
            raise RefusedError(
                "FailedMountAzureFileVolume: the account refuses shared key access (azure-docs#120857)"
            )
        reachable = account.get("publicNetworkAccess") != "Disabled" or self._resolves_privately(
            mock_id(accounts[0]), "file", "privatelink.file.core.windows.net", vnet
        )
        if not reachable:
            raise RefusedError(
                "FailedMountAzureFileVolume: the storage account is not reachable from the subnet"
            )
        if not any(
            r.inputs["scope"] == mock_id(accounts[0])
            and r.inputs["principalId"] == principal_id(identity)
            and r.inputs["roleDefinitionId"].endswith(FILE_ROLE)
            for r in self.run.of_type("azure-native:authorization:RoleAssignment")
        ):
            raise RefusedError(
                "AuthorizationFailed: the identity lacks Storage File Data Privileged Contributor"
            )
        if not any(
            r.inputs["principalId"] == principal_id(identity)
            and r.inputs["roleDefinitionId"].endswith(READER_ROLE)
            for r in self.run.of_type("azure-native:authorization:RoleAssignment")
        ):
            raise RefusedError(
                "DeploymentScriptLoginFailed: the identity has no Azure role, so no subscription"
            )

    def _sql_rules(self, script: Registration, identity: Registration) -> dict[str, str]:
        """What the server answers the container: a refusal, or who may sign in."""
        (server,) = self.run.of_type("azure-native:sql:Server")
        vnet = self._vnet_of(script.inputs["containerSettings"]["subnetIds"][0]["id"])
        private = server.inputs.get("publicNetworkAccess") == "Disabled"
        if private and not self._resolves_privately(
            mock_id(server), "sqlServer", "privatelink.database.windows.net", vnet
        ):
            refusal = "Connection was denied since Deny Public Network Access is set to Yes (47073)"
        else:
            refusal = ""
        admin = server.inputs["administrators"]
        admins = (
            {admin["sid"]}
            if admin["principalType"] != "Group"
            else self.group_members.get(admin["sid"], set())
        )
        return {
            "DS_SQL_REFUSAL": refusal,
            "DS_SQL_ADMINS": ",".join(sorted(admins)),
            "DS_TOKEN": client_id(identity),
        }

    def execute(self, workdir: Path, sql_state: Path) -> ScriptRun:
        """Validate the stack's one script, then run its content; RefusedError with its log on failure."""
        (script,) = self.run.of_type(SCRIPT)
        identity = self.validate(script)
        bin_dir = workdir / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        for name, text in (("az", FAKE_AZ), ("python3", FAKE_PYTHON)):
            (bin_dir / name).write_text(text)
            (bin_dir / name).chmod(stat.S_IRWXU)
        driver = workdir / "mssql_python.py"
        driver.write_text(FAKE_DRIVER)
        output_path, pip_log = workdir / "outputs.json", workdir / "pip.log"
        environment = {
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "HOME": str(workdir),
            "TMPDIR": str(workdir),
            "AZ_SCRIPTS_OUTPUT_PATH": str(output_path),
            "DS_PIP_LOG": str(pip_log),
            "DS_FAKE_DRIVER": str(driver),
            "DS_REAL_PYTHON": sys.executable,
            "DS_SQL_STATE": str(sql_state),
            **self._sql_rules(script, identity),
        }
        result = subprocess.run(
            ["bash", "-c", script.inputs["scriptContent"]],
            env=environment,
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise RefusedError(
                f"DeploymentScriptError: the script exited with {result.returncode}: {result.stderr[-2000:]}"
            )
        return ScriptRun(
            outputs=json.loads(output_path.read_text()),
            pip=pip_log.read_text().splitlines(),
            log=result.stdout,
        )


def sql_state(path: Path) -> dict[str, Any]:
    """The private database as the fake driver left it."""
    return json.loads(path.read_text()) if path.exists() else {}
