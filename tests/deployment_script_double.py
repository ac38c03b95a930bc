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
- The script runs in the Azure CLI image its `azCliVersion` names (`mcr.microsoft.com/azure-cli`;
  Learn, "Use deployment scripts in Bicep": the supported versions are the image's tags). Up to
  2.74.0 a CBL-Mariner 2.0 build exists (MicrosoftDocs/azure-docs-cli#5268: "Azure CLI 2.74.0 is the
  final version available on Azure Linux (Mariner) 2.0"), whose python3 is 3.9 (microsoft/azurelinux
  2.0 `SPECS/python3/python3.spec`: Version 3.9.14); which tag the service pulls is not documented,
  so the double takes the stricter reading and runs every version before 2.75.0 ("Drop Azure Linux
  (Mariner) 2.0 support", release notes of 2.75.0) on Mariner 2.0. From 2.75.0 the image is Azure
  Linux 3.0 (`mcr.microsoft.com/azurelinux/base/core:3.0`, release notes of 2.65.0), python3 3.12
  (azurelinux 3.0 `python3.spec`: Version 3.12). Versions past the newest release read (2.89.1,
  August 2026, when Azure Linux 4.0 builds began: Azure/azure-cli#33850) are refused until the table
  learns them. Code the container runs needs a Python no newer than the image's (measured with
  vermin), and pip finds no release of a package whose `Requires-Python` excludes it.
- The image holds `ca-certificates`, `jq` and the `azure-cli` package with its dependencies
  (azure-cli's `azure-linux.dockerfile`), not the driver's system libraries: mssql-python's README
  asks Azure Linux for `tdnf install -y libtool-ltdl krb5-libs glibc-iconv`, and its bundled driver
  links `libltdl.so.7`, `libkrb5.so.3` and `libgssapi_krb5.so.2`; without them its import fails.
- The script's container mounts its share through the `file` private endpoint by name: the script
  must be ordered after the endpoint, its record in `privatelink.file.core.windows.net` and that
  zone's link to the network (Microsoft's sample: `dependsOn: [privateEndpoint,
  privateDnsZone::virtualNetworkLink]`); one created before the name resolves fails to mount. The
  same holds for the server's name in `privatelink.database.windows.net`.
- An Entra-only server admits the admin principal (an application by its client id as `sid`) or a
  member of the admin group; anyone else fails with 18456 (Azure SQL: Microsoft Entra authentication).

On the public network (a script without `containerSettings.subnetIds`, issue 33):
- The service creates the script's storage itself when `storageAccountSettings` is absent ("If
  `storageAccountName` is not specified, a storage account is automatically created"; Learn,
  "Develop a deployment script in Bicep"), so no storage rule applies; the sign-in rule above still
  does (any role of the identity counts).
- The container's public address is Azure's, not known in advance. A public server admits it only
  through a server-level IP rule covering it, or the 0.0.0.0 rule ("Allow Azure services and
  resources to access this server": "allows communications from all resources inside the Azure
  boundary, regardless of whether they are part of your subscription"; Azure SQL, network access
  controls overview). Otherwise: error 40615 "Cannot open server '...' requested by the login.
  Client with IP address '<address>' is not allowed to access the server."
- A new rule applies after a delay ("Any modifications made to existing IP based firewall rules can
  take up to 5 minutes to take effect", same page): the double refuses the first RULE_DELAY
  connections after the rule is created (the stricter reading: never at once).
- `az sql server firewall-rule create|delete` needs `Microsoft.Sql/servers/firewallRules/write|delete`
  on the server: the double grants it to SQL Server Contributor, Contributor or Owner (built-in
  roles, Databases: SQL Server Contributor holds `Microsoft.Sql/servers/*`), else AuthorizationFailed.
  A rule name is at most 128 characters (`sp_set_firewall_rule`: `@name` NVARCHAR(128)) without
  `< > * % & : \\ / ?` and not ending in `.` (the stricter of the readings found); a server holds at
  most 256 server-level IP rules (Azure SQL firewall-configure, as read for this project; not
  re-read here).
- A rule under a `CanNotDelete` lock on the server cannot be deleted (ScopeLocked; "Lock your
  resources": a lock applies to child resources).
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
SCHEMA_SCRIPT = "sql-schema-runner-script"
"""The schema's deployment script, by the end of its logical name: a stack has others (site, code)."""
FILE_ROLE = "69566ab7-960f-475b-8e7c-b3118f30c6bd"
READER_ROLE = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
FIREWALL_WRITERS = {
    "6d8ee4ec-f05a-4a1d-8b00-a9b17e38b437": "SQL Server Contributor",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
}
"""Built-in roles whose actions include `Microsoft.Sql/servers/firewallRules/*`, by definition id."""
WEBSITE_CONTRIBUTOR = "de139f84-1756-47ae-9be6-808fbbe84772"
CONTROL_PLANE_ROLES = {READER_ROLE, WEBSITE_CONTRIBUTOR, *FIREWALL_WRITERS}
"""Roles with control-plane read actions (`*/read` or `Microsoft.Authorization/*/read` and more): one
of them, ordered before the script, lets the service sign the identity in."""
CONTAINER_ADDRESS = "198.51.100.23"
"""The public address the double's container connects from (a documentation range, RFC 5737)."""
RULE_DELAY = 2
"""Connections a new firewall rule still refuses (the stricter reading of "up to 5 minutes")."""
RULE_LIMIT = 256
RULE_NAME_FORBIDDEN = re.compile(r"[<>*%&:\\/?]")
DURATION = re.compile(r"^P(?:T(\d+)H|(\d+)D)$")
RESOURCE_DEFINITION_LIMIT = 1_000_000
"""ARM: "each resource definition can't exceed 1 MB" (Learn, "Resolve errors for job size exceeded");
read as 10^6 bytes of the registered inputs as JSON, the stricter of 1 MB and 1 MiB."""
ENVIRONMENT_LIMIT = 64 * 1024
""""The maximum allowed size for environment variables is 64 KB" (Learn, "Develop a deployment script
in Bicep"): names and values (or secure values) counted together."""
FIRST_AZURE_LINUX_3 = (2, 75, 0)
"""The first Azure CLI with no Mariner 2.0 build (release notes of 2.75.0, July 2025)."""
NEWEST_KNOWN = (2, 89, 1)
"""The newest Azure CLI in the release notes read (August 2026); later images may be Azure Linux 4.0."""
IMAGE_PACKAGES = ("ca-certificates", "jq", "azure-cli", "python3")
"""What azure-cli's `azure-linux.dockerfile` installs (`python3` as the `azure-cli` package's dependency)."""
REQUIRES_PYTHON = {"mssql-python==1.16.0": (3, 10)}
"""Each pinned driver's `Requires-Python` (PyPI metadata of mssql-python 1.16.0: `>=3.10`)."""
DRIVER_LIBRARIES = {
    "libltdl.so.7": "libtool-ltdl",
    "libkrb5.so.3": "krb5-libs",
    "libgssapi_krb5.so.2": "krb5-libs",
    "gconv modules": "glibc-iconv",
}
"""What mssql-python's bundled driver loads, by the Azure Linux package its README installs."""


@dataclass(frozen=True)
class CliImage:
    """The container image a deployment script's `azCliVersion` selects."""

    distro: str
    python: tuple[int, int]


def cli_image(version: str) -> CliImage:
    """The image of one `azCliVersion`, from the table in this module's docstring; RefusedError for a
    version the table does not cover."""
    if not re.fullmatch(r"\d+\.\d+\.\d+", version or ""):
        raise RefusedError(f"InvalidAzCliVersion {version!r}: expected a released version like 2.75.0")
    parts = tuple(int(p) for p in version.split("."))
    if parts > NEWEST_KNOWN:
        raise RefusedError(
            f"azCliVersion {version} is newer than the double's image table (to 2.89.1): "
            "cite its image and Python, then add it"
        )
    if parts < FIRST_AZURE_LINUX_3:
        return CliImage("CBL-Mariner 2.0", (3, 9))
    return CliImage("Azure Linux 3.0", (3, 12))


class RefusedError(RuntimeError):
    """What ARM (or the script) answers when Azure would refuse."""


def dependency_closure(run: ProgramRun, resource: Registration) -> set[str]:
    """The URNs `resource` waits for, directly or through what it waits for: what exists before it."""
    seen: set[str] = set()
    pending = [resource]
    while pending:
        current = pending.pop()
        for urn in set(current.dependencies).union(*current.property_dependencies.values()) - seen:
            seen.add(urn)
            pending.extend(r for r in run.resources if r.urn == urn)
    return seen


def admitted_identity(run: ProgramRun, script: Registration) -> Registration:
    """ARM's checks on any deployment script before its container starts, and the identity it runs
    as: the size of the resource and of its environment variables, one user-assigned identity
    ("Currently, only user-assigned MSI is supported"), `retentionInterval` PT1H..PT26H, a known
    `cleanupPreference`, and a sign-in that sees a subscription, which takes a control-plane role of
    the identity (MicrosoftDocs/azure-docs#60266, reported; stricter reading: one of
    CONTROL_PLANE_ROLES, assigned before the script, since ARM starts it when it is created)."""
    inputs = script.inputs
    size = len(json.dumps(inputs).encode())
    if size > RESOURCE_DEFINITION_LIMIT:
        raise RefusedError(f"RequestEntityTooLarge: the resource definition is {size} bytes, over 1 MB")
    variables = inputs.get("environmentVariables") or []
    if sum(len(v.get("name", "")) + len(v.get("value") or v.get("secureValue") or "") for v in variables) > (
        ENVIRONMENT_LIMIT
    ):
        raise RefusedError("the environment variables exceed 64 KB")
    identities = (inputs.get("identity") or {}).get("userAssignedIdentities") or []
    if (inputs.get("identity") or {}).get("type") != "UserAssigned" or len(identities) != 1:
        raise RefusedError("DeploymentScriptInvalidIdentity: only one user-assigned identity is supported")
    (identity,) = [
        i
        for i in run.of_type("azure-native:managedidentity:UserAssignedIdentity")
        if mock_id(i) == identities[0] or identities[0].endswith("/" + i.inputs["resourceName"])
    ]
    match = DURATION.match(inputs.get("retentionInterval", ""))
    hours = int(match.group(1) or 0) + 24 * int(match.group(2) or 0) if match else 0
    if not 1 <= hours <= 26:
        raise RefusedError(
            f"InvalidRetentionInterval {inputs.get('retentionInterval')!r}: between PT1H and PT26H"
        )
    if inputs.get("cleanupPreference", "Always") not in ("Always", "OnSuccess", "OnExpiration"):
        raise RefusedError("InvalidCleanupPreference")
    before = dependency_closure(run, script)
    if not any(
        r.inputs["principalId"] == principal_id(identity)
        and r.inputs["roleDefinitionId"].rsplit("/", 1)[-1] in CONTROL_PLANE_ROLES
        and r.urn in before
        for r in run.of_type("azure-native:authorization:RoleAssignment")
    ):
        raise RefusedError("DeploymentScriptLoginFailed: the identity has no Azure role, so no subscription")
    return identity


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
# The Azure CLI of the script's container, signed in as the script's identity (az.py).
exec "$DS_REAL_PYTHON" "$DS_AZ" "$@"
"""

AZ_PYTHON = textwrap.dedent(
    '''
    """az of the script's container: the token, the server's locks and its firewall rules, as ARM
    answers the script's identity."""
    import json, os, re, sys

    args = sys.argv[1:]
    state_path = os.environ["DS_FIREWALL_STATE"]  # empty in a private network: no firewall there
    state = json.load(open(state_path)) if state_path else {"server_id": "", "locks": []}

    def option(name):
        return args[args.index(name) + 1]

    def save():
        json.dump(state, open(state_path, "w"))

    if args[:2] == ["account", "get-access-token"]:
        print(os.environ["DS_TOKEN"])
    elif args[:2] == ["lock", "list"]:
        print(len(state["locks"]) if option("--resource") == state["server_id"] else 0)
    elif args[:4] == ["sql", "server", "firewall-rule", "create"]:
        if not state["may_write"]:
            sys.exit("ERROR: (AuthorizationFailed) the client has no authorization to perform action "
                     "'Microsoft.Sql/servers/firewallRules/write'")
        name = option("--name")
        if len(name) > 128 or re.search(state["forbidden"], name) or name.endswith("."):
            sys.exit(f"ERROR: (InvalidFirewallRuleName) {name!r}")
        if len(state["rules"]) >= state["limit"]:
            sys.exit("ERROR: (FirewallRuleLimitExceeded) at most 256 rules")
        server_id = state["server_id"]
        group, server = server_id.split("/")[4], server_id.rsplit("/", 1)[1]
        if option("--server") != server or option("--resource-group") != group:
            sys.exit("ERROR: (ResourceNotFound) no such server")
        state["rules"][name] = [option("--start-ip-address"), option("--end-ip-address")]
        state["pending"][name] = state["delay"]
        state["created"].append(name)
        save()
    elif args[:4] == ["sql", "server", "firewall-rule", "delete"]:
        rule_id = option("--ids")
        server_id, _, name = rule_id.rpartition("/firewallRules/")
        if server_id != state["server_id"] or not state["may_write"]:
            sys.exit("ERROR: (AuthorizationFailed) firewallRules/delete")
        if state["locks"]:
            sys.exit("ERROR: (ScopeLocked) the scope is locked")
        state["rules"].pop(name, None)
        state["pending"].pop(name, None)
        save()
    else:
        sys.exit(f"the double's az knows no {' '.join(args[:4])!r}")
    '''
)

FAKE_SLEEP = """#!/bin/sh
# sleep of the container: the double's time passes at once.
exit 0
"""

FAKE_PYTHON = """#!/bin/sh
# python3 of the container: the image's Python version, as container.py models it.
exec "$DS_REAL_PYTHON" "$DS_CONTAINER" "$@"
"""

FAKE_TDNF = """#!/bin/sh
# tdnf of the container: `install -y PKG...` adds the packages to the image's package list.
[ "$1" = "install" ] || [ "$1" = "-y" ] || exit 2
for arg in "$@"; do
  case "$arg" in install|-y|--assumeyes) ;; -*) exit 2 ;; *) printf '%s\\n' "$arg" >> "$DS_RPM_DB" ;; esac
done
"""

CONTAINER_PYTHON = textwrap.dedent(
    '''
    """python3 of the script's container: pip knows each driver's Requires-Python, and a module run
    with -m must not need a newer Python than the image's (vermin measures it)."""
    import json, os, pathlib, shutil, sys

    image = json.loads(os.environ["DS_IMAGE"])
    python = tuple(image["python"])
    args = sys.argv[1:]

    def shown(version):
        return ".".join(map(str, version))

    if args[:2] == ["-m", "pip"]:
        if args[2:3] == ["--version"]:
            sys.exit(0)
        with open(os.environ["DS_PIP_LOG"], "a") as log:
            log.write(" ".join(args) + "\\n")
        target = args[args.index("--target") + 1]
        for requirement in [a for a in args[3:] if not a.startswith("-") and a not in ("install", target)]:
            requires = image["requires_python"].get(requirement)
            if requires is None:
                sys.exit(f"ERROR: the double has no cited metadata for {requirement!r}: pin one it knows")
            if python < tuple(requires):
                sys.exit(
                    f"ERROR: Could not find a version that satisfies the requirement {requirement} "
                    f"(Requires-Python >={shown(requires)}; the image has Python {shown(python)})"
                )
        os.makedirs(target, exist_ok=True)
        shutil.copy(os.environ["DS_FAKE_DRIVER"], os.path.join(target, "mssql_python.py"))
        sys.exit(0)
    if args[:1] == ["-m"] and args[1:2] != ["zipfile"]:
        import vermin

        for path in sorted(pathlib.Path.cwd().rglob("*.py")):
            needed = max((v for v in vermin.detect(path.read_text(), path=str(path)) if v), default=(3, 0))
            if needed > python:
                sys.exit(
                    f"{path.name} needs Python {shown(needed)}; the image ({image['distro']}) has "
                    f"Python {shown(python)}"
                )
    os.execv(os.environ["DS_REAL_PYTHON"], [os.environ["DS_REAL_PYTHON"], "-S", *args])
    '''
)

FAKE_DRIVER = textwrap.dedent(
    '''
    """mssql_python as the private server answers it (standard library only)."""
    import json, os, re, struct

    ALTER_DATABASE = re.compile(r"\\bALTER\\s+DATABASE\\b", re.I)
    OPENS = re.compile(
        r"^\\s*(CREATE|DELETE|DROP|GRANT|INSERT|UPDATE|ALTER\\s+TABLE|IF\\b.*\\bFROM\\b)", re.I | re.S
    )

    _installed = set(open(os.environ["DS_RPM_DB"]).read().split())
    for _library, _package in json.loads(os.environ["DS_DRIVER_LIBRARIES"]).items():
        if _package not in _installed:
            raise ImportError(f"{_library}: cannot open shared object file: No such file or directory")

    def _firewall():
        """The public server's answer to the container's address (see the module's rules)."""
        path = os.environ["DS_FIREWALL_STATE"]
        if not path:
            return
        state = json.load(open(path))
        address = os.environ["DS_CONTAINER_ADDRESS"]
        def number(ip):
            return struct.unpack(">I", bytes(int(p) for p in ip.split(".")))[0]
        admitted = False
        for name, (start, end) in sorted(state["rules"].items()):
            if start == end == "0.0.0.0" or number(start) <= number(address) <= number(end):
                if state["pending"].get(name, 0) > 0:
                    state["pending"][name] -= 1
                    continue
                admitted = True
        json.dump(state, open(path, "w"))
        if not admitted:
            server = os.environ["DS_SERVER_NAME"]
            raise RuntimeError(
                f"Cannot open server '{server}' requested by the login. Client with IP address "
                f"'{address}' is not allowed to access the server. (40615)"
            )

    def connect(connection_string, attrs_before=None, autocommit=False):
        refusal = os.environ["DS_SQL_REFUSAL"]
        if refusal:
            raise RuntimeError(refusal)
        _firewall()
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

    def _ordered_before(self, resource: Registration) -> set[str]:
        """The URNs the engine creates before `resource`: its dependencies, theirs, and so on."""
        seen: set[str] = set()
        pending = [resource]
        while pending:
            current = pending.pop()
            urns = set(current.dependencies).union(*current.property_dependencies.values())
            for urn in urns - seen:
                seen.add(urn)
                pending.extend(r for r in self.run.resources if r.urn == urn)
        return seen

    def _resolves_privately(
        self, target_id: str, group: str, zone: str, vnet: Registration, script: Registration
    ) -> bool:
        """A private endpoint to `group` of `target_id` in `vnet`, with its A record in `zone`, and
        `zone` linked to `vnet`, all three created before `script`."""
        before = self._ordered_before(script)
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
                c["privateDnsZoneId"].endswith(f"/{zone}") and r.urn in before
                for r in records
                for c in r.inputs["privateDnsZoneConfigs"]
            )
            linked = any(
                link.inputs["virtualNetwork"]["id"] == mock_id(vnet) and link.urn in before
                for link in self._find("privatedns:VirtualNetworkLink", privateZoneName=zone)
            )
            in_zone = in_zone and endpoint.urn in before
            if in_zone and linked:
                return True
        return False

    def validate(self, script: Registration) -> Registration:
        """ARM's checks before a container starts; the identity the script runs as."""
        inputs = script.inputs
        identity = admitted_identity(self.run, script)
        subnets = (inputs.get("containerSettings") or {}).get("subnetIds") or []
        if not subnets:
            return identity  # public: the service brings its own storage
        if len(subnets) != 1:
            raise RefusedError("the script's container joins one subnet")
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
        self._check_storage(script, identity, vnet)
        return identity

    def _check_storage(self, script: Registration, identity: Registration, vnet: Registration) -> None:
        inputs = script.inputs
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
            mock_id(accounts[0]), "file", "privatelink.file.core.windows.net", vnet, script
        )
        if not reachable:
            raise RefusedError(
                "FailedMountAzureFileVolume: the storage account is not reachable from the subnet "
                "(no file endpoint, record and zone link in the network, or the script was created "
                "before the name resolved)"
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

    def _firewall_state(self, script: Registration, identity: Registration) -> dict[str, Any]:
        """The public server's firewall as the script meets it: the stack's rules, its locks, and
        whether the identity may write rules on it."""
        (server,) = self.run.of_type("azure-native:sql:Server")
        server_id = mock_id(server)
        rules = {
            r.inputs["firewallRuleName"]: [r.inputs["startIpAddress"], r.inputs["endIpAddress"]]
            for r in self.run.of_type("azure-native:sql:FirewallRule")
        }
        locks = [
            r.name
            for r in self.run.of_type("azure-native:authorization:ManagementLockByScope")
            if r.inputs.get("scope") == server_id
        ]
        may_write = any(
            r.inputs["scope"] == server_id
            and r.inputs["principalId"] == principal_id(identity)
            and r.inputs["roleDefinitionId"].rsplit("/", 1)[-1] in FIREWALL_WRITERS
            for r in self.run.of_type("azure-native:authorization:RoleAssignment")
        )
        return {
            "server_id": server_id,
            "rules": rules,
            "pending": {},
            "created": [],
            "locks": locks,
            "may_write": may_write,
            "delay": RULE_DELAY,
            "limit": RULE_LIMIT,
            "forbidden": RULE_NAME_FORBIDDEN.pattern,
        }

    def _sql_rules(self, script: Registration, identity: Registration) -> dict[str, str]:
        """What the server answers the container: a refusal, or who may sign in."""
        (server,) = self.run.of_type("azure-native:sql:Server")
        subnets = (script.inputs.get("containerSettings") or {}).get("subnetIds") or []
        private = server.inputs.get("publicNetworkAccess") == "Disabled"
        unreachable = private and (
            not subnets
            or not self._resolves_privately(
                mock_id(server),
                "sqlServer",
                "privatelink.database.windows.net",
                self._vnet_of(subnets[0]["id"]),
                script,
            )
        )
        if unreachable:
            refusal = "Connection was denied since Deny Public Network Access is set to Yes (47073)"
        else:
            refusal = ""
        admin = server.inputs["administrators"]
        admins = (
            {admin["sid"]}
            if admin["principalType"] != "Group"
            else self.group_members.get(admin["sid"], set())
        )
        # ARM reads the server's `administrators` at creation only ("If used for server update, it
        # will be ignored or it will result in an error", azure-native sql.Server): on a deployed
        # server the admin is what `servers/administrators` set, once it exists before the script.
        before = dependency_closure(self.run, script)
        for setting in self.run.of_type("azure-native:sql:ServerAzureADAdministrator"):
            if setting.urn in before:
                sid = setting.inputs["sid"]
                admins = self.group_members.get(sid, {sid})
        return {
            "DS_SERVER_NAME": server.inputs["serverName"],
            "DS_SQL_REFUSAL": refusal,
            "DS_SQL_ADMINS": ",".join(sorted(admins)),
            "DS_TOKEN": client_id(identity),
        }

    def execute(self, workdir: Path, sql_state: Path) -> ScriptRun:
        """Validate the stack's one script, then run its content; RefusedError with its log on failure."""
        (script,) = [s for s in self.run.of_type(SCRIPT) if s.name.endswith(SCHEMA_SCRIPT)]
        identity = self.validate(script)
        image = cli_image(script.inputs.get("azCliVersion", ""))
        bin_dir = workdir / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        fakes = (("az", FAKE_AZ), ("python3", FAKE_PYTHON), ("tdnf", FAKE_TDNF), ("sleep", FAKE_SLEEP))
        for name, text in fakes:
            (bin_dir / name).write_text(text)
            (bin_dir / name).chmod(stat.S_IRWXU)
        driver, container, az = workdir / "mssql_python.py", workdir / "container.py", workdir / "az.py"
        driver.write_text(FAKE_DRIVER)
        container.write_text(CONTAINER_PYTHON)
        az.write_text(AZ_PYTHON)
        public = not (script.inputs.get("containerSettings") or {}).get("subnetIds")
        firewall = workdir / FIREWALL_FILE
        firewall.write_text(json.dumps(self._firewall_state(script, identity)))
        rpm_db = workdir / "rpm.db"
        rpm_db.write_text("\n".join(IMAGE_PACKAGES) + "\n")
        output_path, pip_log = workdir / "outputs.json", workdir / "pip.log"
        environment = {
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "HOME": str(workdir),
            "TMPDIR": str(workdir),
            "AZ_SCRIPTS_OUTPUT_PATH": str(output_path),
            "DS_PIP_LOG": str(pip_log),
            "DS_FAKE_DRIVER": str(driver),
            "DS_CONTAINER": str(container),
            "DS_RPM_DB": str(rpm_db),
            "DS_DRIVER_LIBRARIES": json.dumps(DRIVER_LIBRARIES),
            "DS_IMAGE": json.dumps(
                {
                    "distro": image.distro,
                    "python": image.python,
                    "requires_python": REQUIRES_PYTHON,
                }
            ),
            "DS_REAL_PYTHON": sys.executable,
            "DS_SQL_STATE": str(sql_state),
            "DS_AZ": str(az),
            "DS_FIREWALL_STATE": str(firewall) if public else "",
            "DS_CONTAINER_ADDRESS": CONTAINER_ADDRESS,
            **self._sql_rules(script, identity),
            # What the service passes the script (`environmentVariables`: value or secureValue).
            **{
                v["name"]: v.get("value", v.get("secureValue", ""))
                for v in script.inputs.get("environmentVariables") or []
            },
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


FIREWALL_FILE = "firewall.json"


def firewall_state(workdir: Path) -> dict[str, Any]:
    """The public server's firewall as the script left it (rules by name, and the ones it created)."""
    return json.loads((workdir / FIREWALL_FILE).read_text())


def sql_state(path: Path) -> dict[str, Any]:
    """The private database as the fake driver left it."""
    return json.loads(path.read_text()) if path.exists() else {}
