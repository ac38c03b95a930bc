"""A stack's whole life under the mocks, held against Azure's rules for update and delete.

`Life("dev")` keeps a stack's state as the Pulumi engine would between runs: `up()` runs the program
(`run_stack`) and derives each resource's step from the state and the new registrations, by URN
(aliases followed), from the inputs and the options the program registered: `ignore_changes`,
`replace_on_changes`, `deleted_with`, `protect`, dependencies and parents. `destroy()` deletes
everything in the engine's order (dependents first). Random results and role assignment times stay
while their resource stays in state, as the engine keeps outputs: a destroyed and re-created stack
draws new name suffixes.

Each step is held against the rule tables below, each rule with its source:
- `IMMUTABLE`: properties ARM refuses to change on an existing resource (an update that would fail);
- `DATA_HOLDING`: resources whose replacement loses data (an error unless docs/day-two.md says so);
- `DATA_PLANE_DELETES`: resources deleted through a data plane, and the deploying identity's role that
  delete needs, which must still exist when it runs (simulated in delete order); CanNotDelete locks
  refuse deletes beneath them; the dynamic resources' own `diff`, `update` and `delete` run against
  test doubles of the services they call;
- `QUOTAS`: limits per subscription and region that several stacks share;
- `SOFT_DELETED`: names a deleted resource keeps reserved, that a re-created stack must not reuse.

Replacement by azure-native: a change of any parameter of the resource's ARM path (its name, its
parent's name, its resource group, an extension resource's scope) replaces it (pulumi-azure-native
provider/pkg/provider/diff.go: "All the parameters that are part of the resource path cause a
replacement"), and so does `location` (ARM's common TrackedResource marks it create-only).
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pulumi.runtime import mocks as pulumi_mocks

from mocks.azure import DEPLOYER_OBJECT_ID, AzureMocks
from mocks.capture import ProgramRun, Registration, run_stack

ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
LOCK = "azure-native:authorization:ManagementLockByScope"
WEB_APP = "azure-native:web:WebApp"
DYNAMIC = "pulumi-python:dynamic:Resource"
PROVIDER_KEY = "__provider"
STACK = "pulumi:pulumi:Stack"
COMMAND = "command:local:Command"
CUSTOM_PREFIXES = ("azure-native:", "random:", "command:", DYNAMIC)

# Built-in role definition ids (the same GUID in every subscription).
KEY_VAULT_SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
KEY_VAULT_ADMINISTRATOR = "00482a5a-887f-4fb3-b363-3b7fe8e74483"
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
BLOB_DATA_WRITERS = frozenset({STORAGE_BLOB_DATA_CONTRIBUTOR, STORAGE_BLOB_DATA_OWNER})

PATH_KEYS = frozenset(
    {
        "resourceGroupName", "name", "resourceName", "accountName", "containerName", "vaultName",
        "secretName", "serverName", "databaseName", "firewallRuleName", "blobAuditingPolicyName",
        "policyName", "roleAssignmentName", "scope", "resourceUri", "lockName", "workspaceName",
        "actionGroupName", "ruleName", "webTestName", "privateEndpointName", "virtualNetworkName",
        "subnetName", "privateZoneName", "virtualNetworkLinkName", "privateDnsZoneGroupName",
    }
)  # fmt: skip
"""Inputs that are parameters of a resource's ARM path: a change replaces the resource."""
REPLACE_KEYS = PATH_KEYS | {"location"}


@dataclass(frozen=True)
class Immutable:
    """A property ARM refuses to change on an existing resource."""

    type: str
    path: str
    refused: Callable[[Any, Any], bool]
    """(old, new) -> whether ARM refuses this change (MISSING for an absent value)."""
    source: str


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
_ZRS_OR_PREMIUM = {"Standard_ZRS", "Premium_LRS", "Premium_ZRS"}

IMMUTABLE = (
    Immutable(
        "azure-native:keyvault:Vault",
        "properties.softDeleteRetentionInDays",
        lambda old, new: old != new,
        'Key Vault soft-delete overview: "Once set, the retention policy interval cannot be changed"; '
        'ARM: The property "softDeleteRetentionInDays" has been set already and it can\'t be modified.',
    ),
    Immutable(
        "azure-native:keyvault:Vault",
        "properties.enablePurgeProtection",
        lambda old, new: old is True and new is not True,
        'Key Vault REST API (Vaults - Create Or Update): enablePurgeProtection "Enabling this '
        'functionality is irreversible - that is, the property does not accept false as its value"; '
        "Azure/azure-rest-api-specs#18106.",
    ),
    Immutable(
        "azure-native:storage:StorageAccount",
        "sku.name",
        lambda old, new: old != new and bool({old, new} & _ZRS_OR_PREMIUM),
        'Storage REST API (StorageAccountUpdateParameters.sku): "the SKU name cannot be updated to '
        "Standard_ZRS, Premium_LRS or Premium_ZRS, nor can accounts of those SKU names be updated to "
        'any other value" (a zonal conversion is a separate migration: Start-AzStorageAccountMigration).',
    ),
    Immutable(
        "azure-native:storage:StorageAccount",
        "kind",
        lambda old, new: old != new,
        "Storage REST API: kind is set at creation; only a Storage (v1) or BlobStorage account can be "
        "upgraded to StorageV2, which this program never sends (it always creates StorageV2).",
    ),
    Immutable(
        "azure-native:storage:StorageAccount",
        "isHnsEnabled",
        lambda old, new: old != new,
        "Storage: hierarchical namespace is chosen at creation (enabling it later is a separate, "
        "one-way upgrade, not an account update).",
    ),
    Immutable(
        "azure-native:sql:Server",
        "administrators",
        lambda old, new: old != new,
        'azure-native sql.Server (SDK docstring, API 2023-08-01): administrators "can only be used at '
        "server create time. If used for server update, it will be ignored or it will result in an "
        'error. For updates individual APIs will need to be used" (the stricter reading: an error).',
    ),
    Immutable(
        "azure-native:sql:Server",
        "administratorLogin",
        lambda old, new: old != new,
        'SQL REST API (Servers - Create Or Update): administratorLogin "Administrator username for the '
        'server. Once created it cannot be changed."',
    ),
)

GIB = 1024**3
VCORE_DEFAULT_MAX_SIZE = 32 * GIB
"""What a vCore database created without maxSizeBytes gets (cost/estimate.py states the same)."""
DTU_MAX_SIZE = {"Basic": 2 * GIB, "Standard": 250 * GIB}
"""The largest max size of the DTU tiers the program offers ("Resource limits for single databases
using the DTU purchasing model": Basic 2 GB, S0-S3 250 GB)."""


@dataclass(frozen=True)
class Refusal:
    """A combination of inputs ARM refuses on create or update, whatever changed."""

    type: str
    refused: Callable[[Mapping[str, Any] | None, Mapping[str, Any]], str | None]
    """(old inputs or None on create, new inputs) -> why ARM refuses it, or None."""
    source: str


def _dtu_zone_redundant(_old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> str | None:
    tier = (new.get("sku") or {}).get("tier")
    if tier in DTU_MAX_SIZE and new.get("zoneRedundant") is True:
        return f"zoneRedundant true on the {tier} tier"
    return None


def _dtu_max_size(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> str | None:
    tier = (new.get("sku") or {}).get("tier")
    if old is None or tier not in DTU_MAX_SIZE:
        return None
    # An update that omits maxSizeBytes keeps the database's current one (32 GB from a vCore tier).
    kept = old.get("maxSizeBytes") or (VCORE_DEFAULT_MAX_SIZE if old.get("sku", {}).get("family") else 0)
    size = new.get("maxSizeBytes") or kept
    if size > DTU_MAX_SIZE[tier]:
        return f"max size {size} bytes above the {tier} tier's {DTU_MAX_SIZE[tier]}"
    return None


REFUSALS = (
    Refusal(
        "azure-native:sql:Database",
        _dtu_zone_redundant,
        'Azure SQL "High availability and disaster recovery" (zone-redundant availability): offered in '
        "the General Purpose, Premium, Business Critical and Hyperscale tiers, not Basic or Standard.",
    ),
    Refusal(
        "azure-native:sql:Database",
        _dtu_max_size,
        'Azure SQL "Scale single database resources": a tier change is an online update of the same '
        "database (no data lost, a switch of under 30 s); DTU limits: Basic at most 2 GB, S0-S3 250 GB. "
        "Inference, the stricter reading modelled: a move down that keeps a larger max size is refused.",
    ),
)


DATA_HOLDING = {
    "azure-native:sql:Server": "the databases on it",
    "azure-native:sql:Database": "every message and connection row",
    "azure-native:storage:StorageAccount": "its blobs (the site, the code package, the host's state)",
    "azure-native:keyvault:Vault": "its secrets, and its name for the retention days",
    "azure-native:operationalinsights:Workspace": "the logs",
}
"""Types whose replacement deletes data: an error unless docs/day-two.md says so (DOCUMENTED)."""


@dataclass(frozen=True)
class DataPlaneDelete:
    """A resource deleted through a data plane, with the deploying identity's token."""

    roles: frozenset[str]
    """Role definition ids any one of which lets the deploying identity delete it."""
    source: str


DATA_PLANE_DELETES = {
    "azure-native:keyvault:Secret": DataPlaneDelete(
        frozenset({KEY_VAULT_SECRETS_OFFICER, KEY_VAULT_ADMINISTRATOR}),
        'pulumi-azure-native customresources/custom_keyvault.go: "DELETE is implemented via the '
        'KeyVault "data plane" API, because it isn\'t available via ARM" (only a 404 is ignored); an '
        "RBAC vault answers 403 to an identity without a Key Vault data role.",
    ),
    "azure-native:storage:StorageAccountStaticWebsite": DataPlaneDelete(
        BLOB_DATA_WRITERS,
        "pulumi-azure-native customresources/custom_storage.go: delete sets the blob service "
        "properties through the storage data client (StaticWebsite.Enabled = false).",
    ),
}


@dataclass(frozen=True)
class Quota:
    """A limit per subscription and region that every stack in it shares."""

    name: str
    limit: int
    usage: Callable[[Registration], int]
    source: str


def _signalr_units(resource: Registration, free: bool) -> int:
    if resource.type != "azure-native:signalrservice:SignalR":
        return 0
    sku = resource.inputs.get("sku") or {}
    if free != (sku.get("name") == "Free_F1"):
        return 0
    return int(sku.get("capacity") or 1)


QUOTAS = (
    Quota(
        "Free SignalR units",
        5,
        lambda r: _signalr_units(r, free=True),
        'Azure subscription and service limits, SignalR: "Azure SignalR Service units per subscription '
        'per region for Free tier: 5" (default and maximum).',
    ),
    Quota(
        "SignalR units (all tiers)",
        150,
        lambda r: _signalr_units(r, free=True) + _signalr_units(r, free=False),
        'Azure subscription and service limits, SignalR: "Total Azure SignalR Service unit counts per '
        'subscription per region: 150" (default; raised on request).',
    ),
)


@dataclass(frozen=True)
class SoftDeleted:
    """A type whose deleted resources keep their (global) name for a while."""

    name_input: str
    retention_days: Callable[[Registration], int]
    source: str


SOFT_DELETED = {
    "azure-native:keyvault:Vault": SoftDeleted(
        "vaultName",
        lambda r: int((r.inputs.get("properties") or {}).get("softDeleteRetentionInDays") or 90),
        "Key Vault soft-delete overview: a deleted vault is kept, name included, for its retention "
        "(7-90 days); creating one of that name fails until it is purged or recovered.",
    ),
}


@dataclass(frozen=True)
class Step:
    """What the engine does to one resource in one run."""

    urn: str
    type: str
    op: str
    """create, same, update, replace or delete."""
    paths: tuple[str, ...] = ()
    """The changed input paths (after ignore_changes)."""


@dataclass(frozen=True)
class Finding:
    """A step Azure or the engine would refuse, or one that loses data."""

    rule: str
    urn: str
    message: str
    source: str = ""

    @property
    def type(self) -> str:
        """The resource's type token."""
        return self.urn.split("::")[-2].split("$")[-1]


@dataclass
class Transition:
    """One `up` or `destroy`: its steps and findings."""

    label: str
    steps: list[Step]
    findings: list[Finding]

    def ops(self, op: str) -> list[Step]:
        """The steps of one kind."""
        return [step for step in self.steps if step.op == op]

    def changed(self) -> list[Step]:
        """Every step that is not `same`."""
        return [step for step in self.steps if step.op != "same"]


# --- the engine's state between runs --------------------------------------------------------


class LifecycleMocks(AzureMocks):
    """Azure as `AzureMocks` answers it, plus what the engine keeps in state: a random result or a
    role assignment's `createdOn` stays while its resource stays with the same inputs; a new one is
    drawn (or stamped with the life's clock) otherwise."""

    def __init__(self, life: Life) -> None:
        self.life = life

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        resource_id, state = super().new_resource(args)
        kept = self.life.outputs.get((args.typ, args.name))
        same = kept is not None and kept.get("__inputs") == args.inputs
        if args.typ.startswith("random:"):
            state["result"] = kept["result"] if same and kept else self.life.draw(args)
        elif args.typ == ROLE_ASSIGNMENT:
            state["createdOn"] = kept["createdOn"] if same and kept else self.life.now()
        self.life.pending[(args.typ, args.name)] = {
            **state,
            "__inputs": copy.deepcopy(args.inputs),
            "__id": resource_id,
        }
        return resource_id, state


def _get(value: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


def _set(value: dict[str, Any], path: str, new: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        value = value.setdefault(part, {})
    if new is MISSING:
        value.pop(last, None)
    else:
        value[last] = new


def changed_paths(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Every leaf path whose value differs (objects by key, lists by index when equally long)."""
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[str] = []
        for key in sorted(set(old) | set(new)):
            found += changed_paths(
                old.get(key, MISSING), new.get(key, MISSING), f"{prefix}.{key}" if prefix else key
            )
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            p
            for index, (a, b) in enumerate(zip(old, new, strict=True))
            for p in changed_paths(a, b, f"{prefix}[{index}]")
        ]
    return [] if old == new else [prefix]


def _top(path: str) -> str:
    return path.split(".")[0].split("[")[0]


def dynamic_provider(inputs: Mapping[str, Any]) -> Any:
    """The provider a dynamic resource pickled into its inputs (as Pulumi's dynamic host loads it)."""
    import dill  # type: ignore[import-untyped]

    return dill.loads(base64.b64decode(inputs[PROVIDER_KEY]))


def _props(inputs: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in inputs.items() if key != PROVIDER_KEY}


def _is_custom(resource: Registration) -> bool:
    return resource.type.startswith(CUSTOM_PREFIXES)


# --- doubles of the services the dynamic resources call -------------------------------------


class World:
    """What exists in Azure while a run's deletes execute: role assignments, locks, apps."""

    def __init__(self, state: Mapping[str, Registration], ids: Mapping[str, str]) -> None:
        self.state = dict(state)
        self.ids = dict(ids)
        self.present = set(state)
        self.vault_keys_deleted: list[str] = []
        """Host keys an ARM "Delete Host Secret" made the host delete from its Key Vault."""
        # Every subnet a deployment script's container joined keeps ACI's service association link
        # after the container group goes (the pessimistic reading of Microsoft's support article
        # "Failed to delete a virtual network or subnet used by Azure Container Instances").
        self.aci_links = {
            subnet["id"]
            for resource in self.state.values()
            if resource.type == "azure-native:resources:AzureCliScript"
            for subnet in (resource.inputs.get("containerSettings") or {}).get("subnetIds") or []
        }

    def holds(self, roles: Iterable[str], covering: set[str]) -> bool:
        """Whether the deploying identity holds one of `roles` at a scope among `covering` (URNs)."""
        wanted = set(roles)
        for urn in self.present:
            role = self.state[urn]
            if role.type != ROLE_ASSIGNMENT or role.inputs.get("principalId") != DEPLOYER_OBJECT_ID:
                continue
            if str(role.inputs.get("roleDefinitionId", "")).rsplit("/", 1)[-1] not in wanted:
                continue
            if set(role.property_dependencies.get("scope", [])) & covering:
                return True
        return False

    def accounts(self, account_name: str) -> set[str]:
        """URNs of the storage account of that name, while it exists."""
        return {
            urn
            for urn in self.present
            if self.state[urn].type == "azure-native:storage:StorageAccount"
            and self.state[urn].inputs.get("accountName") == account_name
        }


class ArmHostKeys:
    """ARM's host secret API (Web Apps - Create Or Update / Delete Host Secret): it answers for an app
    that exists; once the app is deleted, its keys are gone and ARM answers 404. ARM relays the call
    to the running host, which deletes the key from its own store: with
    `AzureWebJobsSecretStorageType=keyvault` that is the Key Vault secret the program wrote
    (azure-functions-host KeyVaultSecretsRepository.WriteAsync deletes the `host--*` secrets no
    longer in the set), recorded in `World.vault_keys_deleted`."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.calls: list[tuple[str, str]] = []

    def __call__(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        assert headers.get("Authorization", "").startswith("Bearer "), "ARM takes an Entra token"
        self.calls.append((method, url))
        app_id = url.split("https://management.azure.com", 1)[1].split("/host/", 1)[0]
        apps = [urn for urn in self.world.present if self.world.ids.get(urn) == app_id]
        if not apps:
            return 404, {}, b'{"error": {"code": "ResourceNotFound"}}'
        if method == "DELETE" and any(_keys_in_key_vault(self.world.state[urn]) for urn in apps):
            self.world.vault_keys_deleted.append(url.split("/host/default/", 1)[1].split("?", 1)[0])
        return (200 if method == "PUT" else 204), {}, b"{}"


def _keys_in_key_vault(app: Registration) -> bool:
    """Whether a Functions app keeps its host keys in Key Vault (its app settings say so)."""
    pairs = ((app.inputs.get("siteConfig") or {}).get("appSettings")) or []
    return any(
        p.get("name") == "AzureWebJobsSecretStorageType" and p.get("value") == "keyvault" for p in pairs
    )


class ArmSubnets:
    """ARM for a delegated subnet: ACI's "Subnet Service Association Link - Delete" removes the link,
    and "Subnets - Get" lists the links left (404 once the network is gone)."""

    def __init__(self, world: World) -> None:
        self.world = world

    def __call__(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        assert headers.get("Authorization", "").startswith("Bearer "), "ARM takes an Entra token"
        path = url.split("https://management.azure.com", 1)[1].split("?", 1)[0]
        subnet_id = path.split("/providers/Microsoft.ContainerInstance/", 1)[0]
        vnet_id = subnet_id.split("/subnets/", 1)[0]
        if not any(self.world.ids.get(urn) == vnet_id for urn in self.world.present):
            return 404, {}, b'{"error": {"code": "NotFound"}}'
        if method == "DELETE":
            self.world.aci_links.discard(subnet_id)
            return 200, {}, b""
        links = [{"name": "acisal"}] if subnet_id in self.world.aci_links else []
        return 200, {}, json.dumps({"properties": {"serviceAssociationLinks": links}}).encode()


def with_doubles(provider: Any, world: World, clock: Callable[[], float]) -> Any:
    """The provider, its transports replaced by the doubles above (each provider's test seams)."""
    name = type(provider).__name__
    if name == "HostKeyProvider":
        provider._transport, provider._token, provider._sleep = (
            ArmHostKeys(world),
            lambda: "token",
            lambda _: None,
        )
        provider._timeout = 0  # no waiting here: a host not there now is a finding, not a retry
    elif name == "RolePropagationProvider":
        provider._clock, provider._sleep = clock, lambda _: None
    elif name == "SubnetReleaseProvider":
        provider._transport, provider._token, provider._sleep = (
            ArmSubnets(world),
            lambda: "token",
            lambda _: None,
        )
        provider._timeout = 0  # the double answers at once: a link still there is a finding
    return provider


EXECUTED_UPDATES = {"HostKeyProvider", "RolePropagationProvider"}
"""Dynamic providers whose `update` runs against doubles; the others (the retired OneDeploy, PackageBlob
and SiteContent of stacks deployed before issue 33,
DatabaseSchema) talk to Kudu, Storage and SQL: their diff runs here, their update in their own tests."""


# --- a stack's life --------------------------------------------------------------------------


def _dependencies(resource: Registration) -> set[str]:
    """What the engine deletes only after this resource: its dependencies and its parent."""
    found = set(resource.dependencies) | {resource.parent}
    for urns in resource.property_dependencies.values():
        found |= set(urns)
    return found - {""}


def delete_order(urns: Iterable[str], state: Mapping[str, Registration]) -> list[str]:
    """The engine's delete order: a resource goes before anything it depends on (or is a child of)."""
    remaining = set(urns)
    dependents = {
        urn: {other for other in remaining if urn in _dependencies(state[other])} for urn in remaining
    }
    order: list[str] = []
    while remaining:
        ready = sorted(urn for urn in remaining if not dependents[urn] & remaining) or sorted(remaining)
        order += ready
        remaining -= set(ready)
    return order


def azure_parents(urn: str, state: Mapping[str, Registration]) -> set[str]:
    """The resource and the resources its ARM id lies under (its path parameters and, for an extension
    resource, its scope come from them), transitively: what a lock or a role at those scopes covers."""
    found, todo = set(), [urn]
    while todo:
        current = todo.pop()
        if current in found or current not in state:
            continue
        found.add(current)
        for key, urns in state[current].property_dependencies.items():
            if key in PATH_KEYS:
                todo += urns
    return found


class Life:
    """One stack's state across runs, as the engine keeps it."""

    def __init__(self, stack: str, overrides: Mapping[str, Any] | None = None) -> None:
        self.stack = stack
        self.base = dict(overrides or {})
        self.state: dict[str, Registration] = {}
        self.outputs: dict[tuple[str, str], dict[str, Any]] = {}
        self.pending: dict[tuple[str, str], dict[str, Any]] = {}
        self.reserved: dict[tuple[str, str], int] = {}
        """Soft-deleted names (type, name) -> days they stay reserved."""
        self.draws = 0
        self.clock = datetime(2026, 1, 1, tzinfo=UTC)
        self.history: list[Transition] = []

    def draw(self, args: pulumi_mocks.MockResourceArgs) -> str:
        """A new random result, as pulumi-random draws one for a new resource."""
        self.draws += 1
        digest = hashlib.sha256(f"{self.stack}/{args.name}/{self.draws}".encode()).hexdigest()
        if args.typ == "random:index/randomString:RandomString":
            alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
            return "".join(
                alphabet[int(digest[i : i + 2], 16) % 36]
                for i in range(0, 2 * int(args.inputs.get("length", 6)), 2)
            )
        return ("P" + digest * 4)[: int(args.inputs.get("length", 16))]

    def now(self) -> str:
        """The life's clock as ARM writes times."""
        return self.clock.isoformat().replace("+00:00", "Z")

    def settings(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The stack's config: its base overrides plus these."""
        return {**self.base, **(overrides or {})}

    def up(self, overrides: Mapping[str, Any] | None = None, label: str = "up") -> Transition:
        """`pulumi up` with these config overrides (on top of the stack file and the base)."""
        self.clock += timedelta(hours=1)
        self.pending = {}
        run = run_stack(self.stack, self.settings(overrides), mocks=LifecycleMocks(self))
        steps, findings = self._plan(run)
        findings += self._execute(steps, run)
        self.state = {r.urn: self._as_kept(r) for r in run.resources if r.type != STACK}
        self.outputs = dict(self.pending)
        transition = Transition(label, steps, findings)
        self.history.append(transition)
        return transition

    def destroy(self, label: str = "destroy") -> Transition:
        """`pulumi destroy`: every resource in state deleted, dependents first. A destroy that meets a
        refusal stops, and the state stays (what it deleted before is not tracked here)."""
        self.clock += timedelta(hours=1)
        steps = [Step(urn, self.state[urn].type, "delete") for urn in sorted(self.state)]
        findings = self._execute(steps, None)
        if not findings:
            self.state, self.outputs = {}, {}
        transition = Transition(label, steps, findings)
        self.history.append(transition)
        return transition

    def _as_kept(self, resource: Registration) -> Registration:
        """The resource as state records it: ignored inputs keep their old values."""
        old = self._old_of(resource)
        if old is None or not resource.ignore_changes:
            return resource
        inputs = copy.deepcopy(resource.inputs)
        for path in resource.ignore_changes:
            _set(inputs, path, _get(old.inputs, path))
        return dataclasses.replace(resource, inputs=inputs)

    def snapshot(self) -> tuple[Any, ...]:
        """The state, to play another change from the same point (`restore`)."""
        return (dict(self.state), dict(self.outputs), dict(self.reserved))

    def restore(self, saved: tuple[Any, ...]) -> None:
        """Back to a `snapshot`."""
        self.state, self.outputs, self.reserved = (dict(part) for part in saved)

    # -- planning

    def _old_of(self, resource: Registration) -> Registration | None:
        for urn in (resource.urn, *resource.aliases):
            if urn in self.state:
                return self.state[urn]
        return None

    def _plan(self, run: ProgramRun) -> tuple[list[Step], list[Finding]]:
        steps: list[Step] = []
        findings: list[Finding] = []
        kept: set[str] = set()
        for resource in run.resources:
            if resource.type == STACK:
                continue
            old = self._old_of(resource)
            if old is None:
                steps.append(Step(resource.urn, resource.type, "create"))
                findings += self._check_create(resource)
                continue
            kept.add(old.urn)
            step = self._step(old, resource)
            steps.append(step)
            findings += self._check_change(old, resource, step)
        steps += [Step(urn, old.type, "delete") for urn, old in sorted(self.state.items()) if urn not in kept]
        return steps, findings

    def _step(self, old: Registration, new: Registration) -> Step:
        """Update, replace or same: from the provider's diff (dynamic) or azure-native's rules."""
        news = copy.deepcopy(new.inputs)
        for path in new.ignore_changes:
            _set(news, path, _get(old.inputs, path))
        paths = tuple(changed_paths(old.inputs, news))
        if new.type == DYNAMIC:
            paths = tuple(p for p in paths if _top(p) != PROVIDER_KEY)
            provider = dynamic_provider(new.inputs)
            diff = provider.diff(
                self.outputs.get((old.type, old.name), {}).get("__id", ""), _props(old.inputs), _props(news)
            )
            op = "replace" if diff.replaces else ("update" if diff.changes else "same")
            return Step(new.urn, new.type, op, paths)
        if not paths:
            return Step(new.urn, new.type, "same")
        replaces = [
            p for p in paths
            if _top(p) in REPLACE_KEYS or any(p == r or p.startswith(r + ".") for r in new.replace_on_changes)
        ]  # fmt: skip
        if new.type.startswith("random:"):
            replaces = list(paths)  # pulumi-random: every input is replace-on-change
        return Step(new.urn, new.type, "replace" if replaces else "update", paths)

    @staticmethod
    def _refusals(old: Registration | None, new: Registration) -> list[Finding]:
        found = [
            (rule, rule.refused(old.inputs if old else None, new.inputs))
            for rule in REFUSALS
            if rule.type == new.type
        ]
        return [Finding("refused", new.urn, reason, rule.source) for rule, reason in found if reason]

    def _check_create(self, resource: Registration) -> list[Finding]:
        if refused := self._refusals(None, resource):
            return refused
        rule = SOFT_DELETED.get(resource.type)
        name = str(resource.inputs.get(rule.name_input)) if rule else ""
        if rule and (resource.type, name) in self.reserved:
            days = self.reserved[(resource.type, name)]
            return [
                Finding(
                    "soft-deleted-name",
                    resource.urn,
                    f"{name} is soft-deleted and reserved for {days} days",
                    rule.source,
                )
            ]
        return []

    def _check_change(self, old: Registration, new: Registration, step: Step) -> list[Finding]:
        findings: list[Finding] = []
        if step.op == "update":
            findings += self._refusals(old, new)
            for rule in IMMUTABLE:
                if rule.type != new.type:
                    continue
                before, after = _get(old.inputs, rule.path), _get(new.inputs, rule.path)
                if rule.path in new.ignore_changes:
                    after = before
                if rule.refused(before, after):
                    findings.append(
                        Finding("immutable", new.urn, f"{rule.path}: {before!r} -> {after!r}", rule.source)
                    )
        if step.op == "replace":
            if new.protect:
                findings.append(Finding("protected", new.urn, "a protected resource cannot be replaced"))
            if new.type in DATA_HOLDING:
                findings.append(
                    Finding(
                        "replaces-data",
                        new.urn,
                        f"replacing it deletes {DATA_HOLDING[new.type]} ({', '.join(step.paths)})",
                    )
                )
        return findings

    # -- execution: what the engine runs against Azure, in its order

    def _execute(self, steps: Sequence[Step], run: ProgramRun | None) -> list[Finding]:
        """Dynamic updates (against doubles), then deletes in the engine's order (the old resources
        of replacements included), each against the world as it is at that moment."""
        new = {r.urn: r for r in run.resources} if run else {}
        ids = {urn: self.outputs.get((r.type, r.name), {}).get("__id", "") for urn, r in self.state.items()}
        ids |= {urn: self.pending.get((r.type, r.name), {}).get("__id", "") for urn, r in new.items()}
        world = World({**self.state, **new}, ids)
        world.present = set(self.state) | set(new)
        findings = self._dynamic_updates(steps, new, world)
        deleted = {s.urn for s in steps if s.op == "delete"}
        replaced = {s.urn for s in steps if s.op == "replace" and s.urn in self.state}
        going = deleted | replaced
        for urn in delete_order(going, self.state):
            findings += self._delete(self.state[urn], going, world)
            if urn in deleted:
                world.present.discard(urn)
        return findings

    def _dynamic_updates(
        self, steps: Sequence[Step], new: Mapping[str, Registration], world: World
    ) -> list[Finding]:
        findings = []
        for step in steps:
            if step.op != "update" or step.type != DYNAMIC:
                continue
            resource = new[step.urn]
            old = self._old_of(resource)
            if old is None:
                continue
            provider = dynamic_provider(resource.inputs)
            if type(provider).__name__ not in EXECUTED_UPDATES:
                continue
            try:
                with_doubles(provider, world, self.clock.timestamp).update(
                    world.ids.get(step.urn, ""), _props(old.inputs), _props(resource.inputs)
                )
            except Exception as error:
                findings.append(
                    Finding("dynamic-update", step.urn, f"{type(provider).__name__}.update: {error}")
                )
        return findings

    def _delete(self, old: Registration, going: set[str], world: World) -> list[Finding]:
        """One delete, as the engine and Azure would run it now."""
        if not _is_custom(old):
            return []
        if old.deleted_with and old.deleted_with in going:
            return []  # the engine skips it: its deleted_with resource goes in this run
        if old.protect:
            return [Finding("protected", old.urn, "the engine refuses to delete a protected resource")]
        findings = []
        # A lock itself is not refused by a lock above it (inference: Azure documents locks as refusing
        # deletes of resources, and the program removes its locks before what they cover).
        if old.type.startswith("azure-native:") and old.type != LOCK:
            scopes = azure_parents(old.urn, world.state)
            locks = [
                lock
                for lock in world.present
                if world.state[lock].type == LOCK
                and lock != old.urn
                and set(world.state[lock].property_dependencies.get("scope", [])) & scopes
            ]
            if locks:
                findings.append(
                    Finding(
                        "locked",
                        old.urn,
                        f"ScopeLocked: a CanNotDelete lock still covers it ({locks[0]})",
                        "Azure: Lock your resources: CanNotDelete is inherited by child resources",
                    )
                )
        rule = DATA_PLANE_DELETES.get(old.type)
        if rule and not world.holds(rule.roles, azure_parents(old.urn, world.state)):
            findings.append(
                Finding(
                    "data-plane-delete",
                    old.urn,
                    "deleted through a data plane, where the deploying identity holds no role now: 403",
                    rule.source,
                )
            )
        vnet_id = world.ids.get(old.urn, "")
        if old.type == "azure-native:network:VirtualNetwork" and any(
            link.startswith(f"{vnet_id}/subnets/") for link in world.aci_links
        ):
            findings.append(
                Finding(
                    "subnet-in-use",
                    old.urn,
                    "InUseSubnetCannotBeDeleted: a subnet still holds ACI's service association link",
                    "Microsoft support: Failed to delete a virtual network or subnet used by ACI",
                )
            )
        if old.type == COMMAND:
            findings += _release_subnet(old, world)
        if old.type == DYNAMIC:
            provider = with_doubles(dynamic_provider(old.inputs), world, self.clock.timestamp)
            deleted_before = len(world.vault_keys_deleted)
            try:
                provider.delete(world.ids.get(old.urn, ""), _props(old.inputs))
            except Exception as error:
                findings.append(
                    Finding("data-plane-delete", old.urn, f"{type(provider).__name__}.delete: {error}")
                )
            findings += [
                Finding(
                    "deletes-live-key",
                    old.urn,
                    f"the host deletes {key} from the app's Key Vault, where the program keeps it",
                    "azure-functions-host KeyVaultSecretsRepository.WriteAsync",
                )
                for key in world.vault_keys_deleted[deleted_before:]
            ]
        soft = SOFT_DELETED.get(old.type)
        if soft:
            self.reserved[(old.type, str(old.inputs.get(soft.name_input)))] = soft.retention_days(old)
        return findings


def _release_subnet(old: Registration, world: World) -> list[Finding]:
    """pulumi-command runs a Command's `delete` on the deploying machine ("The command to run on
    resource deletion"): the subnet release's `az resource delete` of ACI's link removes the link of
    the subnet its environment names, as ARM's "Subnet Service Association Link - Delete" does."""
    script = str(old.inputs.get("delete") or "")
    subnet = str((old.inputs.get("environment") or {}).get("SUBNET_ID", ""))
    if "serviceAssociationLinks/default" in script and "az resource delete" in script:
        world.aci_links.discard(subnet)
    return []


def quota_usage(runs: Iterable[ProgramRun]) -> dict[tuple[str, str], int]:
    """(quota name, region) -> units the runs' stacks take together (all in one subscription)."""
    usage: dict[tuple[str, str], int] = {}
    for run in runs:
        for resource in run.resources:
            for quota in QUOTAS:
                units = quota.usage(resource)
                if units:
                    key = (quota.name, str(resource.inputs.get("location", "")).replace(" ", "").lower())
                    usage[key] = usage.get(key, 0) + units
    return usage


def over_quota(runs: Iterable[ProgramRun]) -> list[str]:
    """Each shared quota the runs' stacks would exceed together, with its source."""
    limits = {quota.name: quota for quota in QUOTAS}
    return [
        f"{name} in {region}: {used} > {limits[name].limit} ({limits[name].source})"
        for (name, region), used in sorted(quota_usage(runs).items())
        if used > limits[name].limit
    ]


# --- the settings a user may change, and what docs/day-two.md says happens -----------------------


@dataclass(frozen=True)
class Change:
    """A setting change a platform engineer may make on a live stack."""

    label: str
    overrides: Mapping[str, Any]


def user_changes(stack: str, settings: Mapping[str, Any]) -> list[Change]:
    """Each user-changeable setting, moved away from what the stack has (`settings`: its values by
    config key). dev and prod play every one; review and test (dev and prod with another SignalR tier
    or network) play the ones their files change. Settings that only feed app settings, scale or
    alert rules are one change: each is an update in place of one resource."""
    free = settings["signalrSku"] == "Free_F1"
    changes = [
        Change("protectData", {"protectData": not settings["protectData"]}),
        Change("signalrSku", {"signalrSku": "Standard_S1" if free else "Premium_P1"}),
        Change(
            "storageRedundancy",
            {"storageRedundancy": "ZRS" if settings["storageRedundancy"] == "LRS" else "LRS"},
        ),
        Change("network", {"network": "public" if settings["network"] == "private" else "private"}),
    ]
    if stack not in ("dev", "prod"):
        return changes
    return [
        *changes,
        Change("signalrUnits", {"signalrSku": "Standard_S1", "signalrUnits": 2}),
        Change(
            "sql",
            {
                "sqlSku": "GP_Gen5_4" if settings["sqlSku"] == "GP_Gen5_2" else "GP_Gen5_2",
                "sqlZoneRedundant": not settings["sqlZoneRedundant"],
            },
        ),
        # Between the DTU and vCore purchasing models, both ways (the old dev tier was serverless).
        Change(
            "sql tier",
            {
                "sqlSku": "GP_S_Gen5_1" if settings["sqlSku"] == "Basic" else "S0",
                "sqlZoneRedundant": False,
                "maximumInstanceCount": 5,
            },
        ),
        Change("availabilityTests", {"availabilityTests": not settings["availabilityTests"]}),
        Change(
            "in-place settings",
            {
                "logRetentionDays": 60,
                "sqlBackupRetentionDays": 5 if settings["sqlSku"] == "Basic" else 14,
                "messageRetentionDays": 30,
                "maximumInstanceCount": 4 if settings["sqlSku"] == "Basic" else 200,
                "alwaysReadyInstances": 2,
                "instanceMemoryMb": 4096,
                "sqlTriggerPollingIntervalMs": 2000,
                "corsOrigins": ["https://broadcast.example.com"],
                "sqlClientIpRanges": ["203.0.113.7"],
                "alertEmails": ["oncall@example.com"],
                "alertSqlCpuPercent": 70,
            },
        ),
        Change("location", {"azure-native:location": "northeurope"}),
    ]


PROTECTED_WITH_DATA = (*DATA_HOLDING, "azure-native:applicationinsights:Component")
"""What `protectData` marks `protect` (the engine then refuses to replace or delete it)."""
DOCUMENTED = {
    "storageRedundancy": {("immutable", "azure-native:storage:StorageAccount")},
    "location": {("replaces-data", t) for t in DATA_HOLDING}
    | {("protected", t) for t in PROTECTED_WITH_DATA},
}
"""Per change, the findings docs/day-two.md documents (refused, or data replaced) with what to do;
`protected` ones only where the stack has `protectData`."""


def stack_values(stack: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The stack's setting values by key: `Pulumi.<stack>.yaml`, the overrides, then the declared
    defaults of its environment (what `load_settings` reads, without validating)."""
    import json

    from mocks.capture import ROOT
    from settings.declarations import SETTINGS
    from settings.loading import stack_file

    raw = {
        key.split(":", 1)[1]: value
        for key, value in stack_file(stack, ROOT).items()
        if key.startswith("broadcast:")
    }
    raw |= {
        key: value if isinstance(value, str) else json.dumps(value)
        for key, value in (overrides or {}).items()
    }
    environment = raw.get("environment", stack)
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.key in raw:
            text = raw[setting.key]
            values[setting.key] = text if setting.type == "string" else json.loads(text)
        elif setting.key != "environment":
            values[setting.key] = setting.default_for(environment)
    return values
