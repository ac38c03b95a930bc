"""Run the Pulumi program (or one component) under `pulumi.runtime.set_mocks` and capture it.

The mocks answer like Azure would (endpoints, host names, identity ids derived from the names the
program chose), and the monitor records each registered resource's type, logical name, parent,
dependencies and inputs (camelCase, as the engine would send them to the provider). Stack exports
are captured with their values and whether they are secret.
"""

from __future__ import annotations

import asyncio
import json
import runpy
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

ROOT = Path(__file__).resolve().parent.parent
SUBSCRIPTION = "00000000-0000-0000-0000-00000000a11c"
TENANT = "00000000-0000-0000-0000-0000000be5e7"
DEPLOYER_OBJECT_ID = "11111111-2222-3333-4444-555555555555"
SECRET_SIG = rpc._special_sig_key  # type: ignore[attr-defined]


@dataclass
class Registration:
    """One resource the program registered."""

    type: str
    name: str
    urn: str
    parent: str
    dependencies: list[str]
    inputs: dict[str, Any]
    secret_inputs: set[str] = field(default_factory=set)


@dataclass
class ProgramRun:
    """What one run of the program declared."""

    resources: list[Registration]
    exports: dict[str, Any]
    secret_exports: set[str]
    error: BaseException | None = None
    """The exception the program raised, when run with `expect_error=True`."""

    def of_type(self, type_: str) -> list[Registration]:
        """Every resource of one type token."""
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name_contains: str = "") -> Registration:
        """The single resource of a type (whose logical name contains `name_contains`)."""
        found = [r for r in self.of_type(type_) if name_contains in r.name]
        assert len(found) == 1, f"expected one {type_} named *{name_contains}*, got {[r.name for r in found]}"
        return found[0]

    def by_urn(self, urn: str) -> Registration:
        """The resource with this URN."""
        return next(r for r in self.resources if r.urn == urn)


def _physical_name(args: pulumi_mocks.MockResourceArgs) -> str:
    # The most specific name input first: a database also names its server, a rule its server.
    for key in (
        "containerName",
        "accountName",
        "databaseName",
        "firewallRuleName",
        "policyName",
        "roleAssignmentName",
        "workspaceName",
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
        elif args.typ == "azure-native:sql:Server":
            state["fullyQualifiedDomainName"] = f"{name}.database.windows.net"
        elif args.typ == "azure-native:managedidentity:UserAssignedIdentity":
            state["clientId"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"client/{name}"))
            state["principalId"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"principal/{name}"))
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
                "clientId": "22222222-0000-0000-0000-000000000000",
                "objectId": DEPLOYER_OBJECT_ID,
                "subscriptionId": SUBSCRIPTION,
                "tenantId": TENANT,
            }
        raise AssertionError(f"unexpected invoke {args.token}")


def _secret_paths(struct_value: Any, prefix: str = "") -> set[str]:
    """Top-level input names whose value is (or contains) a secret."""
    found: set[str] = set()
    if isinstance(struct_value, dict):
        if struct_value.get(SECRET_SIG) == rpc._special_secret_sig:  # type: ignore[attr-defined]
            return {prefix}
        for key, value in struct_value.items():
            found |= _secret_paths(value, prefix or key)
    elif isinstance(struct_value, list):
        for value in struct_value:
            found |= _secret_paths(value, prefix)
    return found


def _unwrap_secrets(value: Any) -> Any:
    """Input values with the secret wrappers removed (`secret_inputs` keeps which were secret)."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == rpc._special_secret_sig:  # type: ignore[attr-defined]
            return _unwrap_secrets(value.get("value"))
        return {key: _unwrap_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unwrap_secrets(item) for item in value]
    return value


class CapturingMonitor(pulumi_mocks.MockMonitor):
    """A mock monitor that also records parents, dependencies and secret inputs."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)
        from google.protobuf import json_format

        raw = json_format.MessageToDict(request.object)
        self.registrations.append(
            Registration(
                type=request.type,
                name=request.name,
                urn=response.urn,
                parent=request.parent,
                dependencies=list(request.dependencies),
                inputs=_unwrap_secrets(rpc.deserialize_properties(request.object, keep_internal=True)),
                secret_inputs=_secret_paths(raw),
            )
        )
        return response


def stack_config(stack: str) -> dict[str, str]:
    """The config of `Pulumi.<stack>.yaml` as the CLI hands it to a program (strings, JSON for lists)."""
    document = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    config = {}
    for key, value in (document.get("config") or {}).items():
        config[key] = value if isinstance(value, str) else json.dumps(value)
    return config


def run(
    body: Callable[[], Any],
    config: Mapping[str, str],
    stack: str = "dev",
    expect_error: bool = False,
) -> ProgramRun:
    """Run `body` (which declares resources) under mocks with `config`, and capture what it declared.

    With `expect_error`, an exception from the program is returned in `error` (with whatever was
    registered before it) instead of raised.
    """
    mocks = AzureMocks()
    monitor = CapturingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="broadcast", stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(dict(config), [])
    exports: dict[str, Any] = {}
    secret_exports: set[str] = set()
    raw_exports: dict[str, Any] = {}

    async def resolve() -> None:
        for key, value in raw_exports.items():
            output = pulumi.Output.from_input(value)
            exports[key] = await output.future()
            if await output.is_secret():
                secret_exports.add(key)

    def program() -> Any:
        with mock.patch.object(pulumi, "export", lambda key, value: raw_exports.__setitem__(key, value)):
            body()
        return pulumi.Output.from_input(asyncio.ensure_future(resolve()))

    try:
        pulumi.runtime.test(program)()
    except Exception as error:
        if not expect_error:
            raise
        return ProgramRun(monitor.registrations, exports, secret_exports, error=error)
    if expect_error:
        raise AssertionError("the program was expected to fail, and did not")
    return ProgramRun(resources=monitor.registrations, exports=exports, secret_exports=secret_exports)


def run_stack(
    stack: str, overrides: Mapping[str, Any] | None = None, expect_error: bool = False
) -> ProgramRun:
    """Run `__main__.py` with `Pulumi.<stack>.yaml` plus `overrides` (keys without the project prefix)."""
    config = stack_config(stack)
    for key, value in (overrides or {}).items():
        full_key = key if ":" in key else f"broadcast:{key}"
        if value is None:
            config.pop(full_key, None)
        else:
            config[full_key] = value if isinstance(value, str) else json.dumps(value)
    return run(
        lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"), config, stack, expect_error
    )
