"""Run the Pulumi program (or one component) under `pulumi.runtime.set_mocks` and capture it.

The monitor records each registered resource's type, logical name, URN, parent, dependencies,
inputs (camelCase, as the engine would send them to the provider), which inputs are secret, its
aliases (resolved to URNs, as the engine resolves them), `protect`, and the outputs a component
registers. Stack exports are captured with their values and whether they are secret.
"""

from __future__ import annotations

import asyncio
import json
import runpy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

from mocks.azure import AzureMocks
from settings.loading import stack_file

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "broadcast"
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
    aliases: list[str] = field(default_factory=list)
    """URNs this resource had before, as the engine resolves its alias specs."""
    protect: bool = False
    retain_on_delete: bool = False
    outputs: dict[str, Any] | None = None
    """What a component passed to `register_outputs` (None for custom resources)."""
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    """Per input, the URNs of the resources its value came from."""
    ignore_changes: list[str] = field(default_factory=list)
    """Input paths whose new values the engine replaces with the old ones before diffing."""
    replace_on_changes: list[str] = field(default_factory=list)
    """Input paths whose change makes the engine replace the resource."""
    deleted_with: str = ""
    """The URN of the resource whose deletion makes the engine skip this one's delete."""
    delete_before_replace: bool = False


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

    def children_of(self, parent: Registration) -> list[Registration]:
        """The resources registered with `parent` as their parent."""
        return [r for r in self.resources if r.parent == parent.urn]


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


def _qualified_type(urn: str) -> str:
    """`urn:pulumi:stack::project::parent$type::name` -> `parent$type`."""
    return urn.split("::")[2]


ROOT_STACK_TYPE = "pulumi:pulumi:Stack"


def engine_urn(stack: str, project: str, parent: str, type_: str, name: str) -> str:
    """A URN as the Pulumi engine forms it (resource.NewURN): the parent's qualified type, then the
    type; resources directly under the stack carry no parent type. (Pulumi's MockMonitor prefixes
    only the parent's last type, stack included, so its URNs are not the ones state would hold.)"""
    if parent and _qualified_type(parent) != ROOT_STACK_TYPE:
        type_ = f"{_qualified_type(parent)}${type_}"
    return f"urn:pulumi:{stack}::{project}::{type_}::{name}"


def alias_urn(spec: Any, name: str, type_: str, parent: str, stack: str, project: str) -> str:
    """The URN an alias spec names, resolved the way the engine does: unset fields keep the
    resource's current name, type, stack, project and parent."""
    old_parent = "" if spec.noParent else (spec.parentUrn or parent)
    return engine_urn(
        spec.stack or stack, spec.project or project, old_parent, spec.type or type_, spec.name or name
    )


class CapturingMonitor(pulumi_mocks.MockMonitor):
    """A mock monitor that also records parents, dependencies, secret inputs, aliases, options and
    component outputs."""

    def __init__(self, mocks: pulumi.runtime.Mocks, stack: str) -> None:
        super().__init__(mocks)
        self.stack = stack
        self.registrations: list[Registration] = []

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        return engine_urn(self.stack, PROJECT, parent, type_, name)

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)
        from google.protobuf import json_format

        raw = json_format.MessageToDict(request.object)
        aliases = [
            alias.urn
            or alias_urn(alias.spec, request.name, request.type, request.parent, self.stack, PROJECT)
            for alias in request.aliases
        ] + list(request.aliasURNs)
        self.registrations.append(
            Registration(
                type=request.type,
                name=request.name,
                urn=response.urn,
                parent=request.parent,
                dependencies=list(request.dependencies),
                inputs=_unwrap_secrets(rpc.deserialize_properties(request.object, keep_internal=True)),
                secret_inputs=_secret_paths(raw),
                aliases=aliases,
                protect=bool(request.protect),
                retain_on_delete=bool(request.retainOnDelete),
                property_dependencies={
                    key: list(value.urns) for key, value in request.propertyDependencies.items()
                },
                ignore_changes=list(request.ignoreChanges),
                replace_on_changes=list(request.replaceOnChanges),
                deleted_with=request.deletedWith,
                delete_before_replace=bool(request.deleteBeforeReplace),
            )
        )
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        outputs = _unwrap_secrets(rpc.deserialize_properties(request.outputs, keep_internal=True))
        for registration in self.registrations:
            if registration.urn == request.urn:
                registration.outputs = outputs
        return super().RegisterResourceOutputs(request)


def run(
    body: Callable[[], Any],
    config: Mapping[str, str],
    stack: str = "dev",
    expect_error: bool = False,
    preview: bool = False,
    mocks: AzureMocks | None = None,
) -> ProgramRun:
    """Run `body` (which declares resources) under mocks with `config`, and capture what it declared.

    With `expect_error`, an exception from the program is returned in `error` (with whatever was
    registered before it) instead of raised; `preview` runs it as `pulumi preview` does; `mocks`
    answers as Azure would (default: `AzureMocks()`).
    """
    try:
        asyncio.get_event_loop()
    except RuntimeError:  # an earlier asyncio.run() (the smoke test, the local mode) left none set
        asyncio.set_event_loop(asyncio.new_event_loop())
    mocks = mocks or AzureMocks()
    monitor = CapturingMonitor(mocks, stack)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor)
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
    stack: str, overrides: Mapping[str, Any] | None = None, expect_error: bool = False, **options: Any
) -> ProgramRun:
    """Run `__main__.py` with `Pulumi.<stack>.yaml` plus `overrides` (keys without the project prefix);
    `options` are those of `run` (preview, mocks)."""
    config = stack_file(stack, ROOT)
    for key, value in (overrides or {}).items():
        full_key = key if ":" in key else f"broadcast:{key}"
        if value is None:
            config.pop(full_key, None)
        else:
            config[full_key] = value if isinstance(value, str) else json.dumps(value)
    return run(
        lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"),
        config,
        stack,
        expect_error,
        **options,
    )
