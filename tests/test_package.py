"""The broadcast system as a Pulumi component package (package/): the schema Pulumi's analyzer infers
from `BroadcastSystem`'s type hints, the provider served over gRPC as the engine starts it, and the
component constructed from inputs as the wire carries them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pulumi
import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from pulumi.provider.experimental.component import ComponentProvider
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from mocks import ProgramRun
from mocks.capture import ROOT, ROOT_STACK_TYPE, run, run_stack
from settings import SETTINGS, SettingsError, stack_file
from settings.arguments import main as args_module_check
from settings.arguments import settings_from_args, snake, stack_args
from settings.version import project_version
from system.component import PACKAGE_PROVIDER_ENV, TYPE_TOKEN, BroadcastSystem
from system.schema import PACKAGE_NAME, SCHEMA_FILE, package_schema

METASCHEMA = ROOT / "package" / "metaschema" / "pulumi.json"
PLUGIN = ROOT / "package" / "__main__.py"


def metaschema() -> dict[str, Any]:
    """Pulumi's package metaschema, vendored unchanged from pulumi/pulumi
    (pkg/codegen/schema/pulumi.json at 1b5949891b3cefcb9974752b24a5ecef0acc86c8, 2026-08-21), with
    its regular expressions adapted from Go's dialect to Python's: named groups `(?<name>` are
    `(?P<name>` in Python's `re`, which jsonschema uses for `pattern`."""
    return json.loads(METASCHEMA.read_text().replace("(?<", "(?P<"))


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return package_schema()


def test_the_committed_schema_is_the_one_the_analyzer_infers(schema: dict[str, Any]) -> None:
    """package/schema.json is regenerated with `python -m system.schema --write`, and the
    args module with `python -m settings.arguments --write`."""
    assert json.loads(SCHEMA_FILE.read_text()) == schema
    assert args_module_check([]) == 0


def test_the_schema_is_a_valid_pulumi_package_schema(schema: dict[str, Any]) -> None:
    validator = Draft202012Validator(metaschema())
    validator.validate(schema)
    assert schema["name"] == PACKAGE_NAME and schema["version"] == project_version()
    # The validator does refuse what Pulumi refuses: a package name must start with a letter.
    with pytest.raises(ValidationError, match="does not match"):
        validator.validate({**schema, "name": "9broadcast"})


def test_the_inputs_are_the_stack_settings_and_everything_is_described(schema: dict[str, Any]) -> None:
    """The args are the stack config keys (same names as Pulumi.<stack>.yaml) plus the location; every
    input, output, and enum member has a description, and no helper type leaks into the schema."""
    resource = schema["resources"][TYPE_TOKEN]
    assert set(resource["inputProperties"]) == {"location"} | {setting.key for setting in SETTINGS}
    assert set(resource["requiredInputs"]) == {"location", "environment"}
    described = {**resource["inputProperties"], **resource["properties"]}
    assert [name for name, spec in described.items() if not spec.get("description")] == []
    assert (
        resource["properties"]["publishKey"].get("secret") is True or "publishKey" in resource["properties"]
    )
    types = schema["types"]
    assert all(name.startswith(f"{PACKAGE_NAME}:index:") for name in types)
    members = [member for spec in types.values() for member in spec.get("enum", [])]
    assert members and [member["value"] for member in members if not member.get("description")] == []
    assert all("enum" in spec for spec in types.values()), "only enums: no Path or helper class leaks"
    assert resource["inputProperties"]["instanceMemoryMb"]["type"] == "integer"


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[provider_pb2_grpc.ResourceProviderStub]:
    """The provider started as Pulumi's Python language host starts a plugin (its `__main__.py`,
    with the engine's address), from another directory: it prints its port and serves gRPC."""
    elsewhere = tmp_path_factory.mktemp("consumer")
    process = subprocess.Popen(
        [sys.executable, str(PLUGIN), "127.0.0.1:1"],
        cwd=elsewhere,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert process.stdout is not None
    port = process.stdout.readline().decode().strip()
    if not port.isdigit():
        process.kill()
        raise AssertionError(f"the plugin printed no port: {port!r} {process.stderr.read().decode()[-2000:]}")
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield provider_pb2_grpc.ResourceProviderStub(channel)
    finally:
        channel.close()
        process.kill()
        process.wait()


def test_the_plugin_answers_get_plugin_info_with_the_projects_version(
    plugin: provider_pb2_grpc.ResourceProviderStub,
) -> None:
    from google.protobuf import empty_pb2

    info = plugin.GetPluginInfo(empty_pb2.Empty(), timeout=60)
    assert info.version == project_version()


def test_the_plugin_serves_the_committed_schema(plugin: provider_pb2_grpc.ResourceProviderStub) -> None:
    response = plugin.GetSchema(provider_pb2.GetSchemaRequest(version=0), timeout=60)
    assert json.loads(response.schema) == json.loads(SCHEMA_FILE.read_text())


def wire(args: dict[str, Any]) -> dict[str, Any]:
    """Args as the engine hands them to a provider's Construct: schema (camelCase) names, enums as
    their strings, and every number a float (protobuf's Struct has only doubles)."""
    names = {snake(setting.key): setting.key for setting in SETTINGS} | {"location": "location"}
    return {
        names[key]: float(v) if isinstance(v, int) and not isinstance(v, bool) else v
        for key, v in args.items()
    }


def construct(stack: str, change: dict[str, Any] | None = None, expect_error: bool = False) -> ProgramRun:
    """`BroadcastSystem` constructed by the package's provider from a stack file's settings."""
    config = stack_file(stack, ROOT)
    config.setdefault("azure-native:location", "westeurope")

    def body() -> None:
        inputs = {**wire(stack_args()), **(change or {})}
        provider = ComponentProvider([BroadcastSystem], PACKAGE_NAME, version=project_version())
        result = provider.construct("broadcast", TYPE_TOKEN, inputs, None)
        for name, value in result.state.items():  # the outputs the provider hands back to the engine
            pulumi.export(name, value)

    return run(body, config, stack, expect_error=expect_error)


def shape(run_: ProgramRun) -> list[tuple[str, str, str]]:
    """Every resource but the stack: its URN, its parent (the stack counted as none: a provider's
    component has the consumer's stack as parent) and its inputs."""
    stack = ROOT_STACK_TYPE
    return sorted(
        (
            r.urn,
            "" if f"::{stack}::" in r.parent else r.parent,
            json.dumps(r.inputs, sort_keys=True, default=str),
        )
        for r in run_.resources
        if r.type != stack
    )


@pytest.mark.parametrize("stack", ["dev", "prod", "test"])
def test_construct_builds_what_the_program_builds(stack: str, dev: ProgramRun, prod: ProgramRun) -> None:
    """Inputs as the wire carries them (numbers as floats: Pulumi 3.272's component host passes a
    float on for an integer property) build the same resources, with the same inputs, as the program."""
    program = {"dev": dev, "prod": prod}.get(stack) or run_stack(stack)
    assert shape(construct(stack)) == shape(program)


def test_a_float_that_is_not_an_integer_is_refused_with_the_settings_message() -> None:
    result = construct("dev", {"maximumInstanceCount": 2.5}, expect_error=True)
    assert "broadcast:maximumInstanceCount = 2.5: allowed: a value of type integer" in str(result.error)


def test_a_missing_required_input_is_named() -> None:
    result = construct("dev", {"location": None}, expect_error=True)
    assert "Missing required input 'location' on 'BroadcastSystem'" in str(result.error)


def test_a_value_outside_an_enum_is_named() -> None:
    """The provider refuses it before the component runs (pulumi.provider.experimental's input
    mapping); a Python program that constructs the component directly gets the settings' message,
    with the allowed values."""
    result = construct("dev", {"signalrSku": "Gold"}, expect_error=True)
    assert "Invalid value Gold" in str(result.error) and "signalrSku" in str(result.error)
    with pytest.raises(
        SettingsError, match="broadcast:signalrSku = 'Gold': allowed: Free_F1, Standard_S1, Premium_P1"
    ):
        settings_from_args({"location": "westeurope", "environment": "dev", "signalr_sku": "Gold"}, "system")


def test_the_cross_key_rules_apply_to_the_args_with_the_same_messages() -> None:
    result = construct("dev", {"signalrSku": "Free_F1", "signalrUnits": 2.0}, expect_error=True)
    assert "broadcast:signalrUnits = 2: allowed for Free_F1: 1" in str(result.error)


def test_the_outputs_are_handed_back_and_the_publish_key_is_a_secret() -> None:
    result = construct("dev")
    assert set(result.exports) == set(package_schema()["resources"][TYPE_TOKEN]["properties"])
    assert result.secret_exports == {"publishKey"}
    assert result.exports["hubName"] == "broadcast"


def test_the_plugin_directory_holds_no_path_relative_to_it() -> None:
    """The engine runs a plugin in the consumer's directory: the provider puts the repository on the
    import path from its own location, never from the working directory."""
    source = PLUGIN.read_text()
    assert "Path(__file__).resolve()" in source and "os.getcwd" not in source
    assert (ROOT / "package" / "PulumiPlugin.yaml").read_text().count("name: python") == 1
    assert Path(ROOT / "package" / "requirements.txt").read_text().strip().endswith("-r ../requirements.txt")


EXAMPLES = ROOT / "examples"


def _kind(value: Any) -> str:
    """A literal's schema type; `expression` for what only runs can type (a config read, `${...}`)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str) and not value.startswith("${"):
        return "string"
    return "expression"


def check_inputs(given: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """What a program passes to BroadcastSystem, against the schema: names, types, enum values and
    the required inputs (an expression passes where a string does)."""
    resource = schema["resources"][TYPE_TOKEN]
    inputs, problems = resource["inputProperties"], []
    for name, value in given.items():
        spec = inputs.get(name)
        if spec is None:
            problems.append(f"{name}: not an input of {TYPE_TOKEN}")
            continue
        kind = _kind(value)
        if "$ref" in spec:
            allowed = [member["value"] for member in schema["types"][spec["$ref"].split("/")[-1]]["enum"]]
            if kind != "expression" and value not in allowed:
                problems.append(f"{name}: {value!r} is not one of {allowed}")
        elif kind != spec["type"] and not (kind == "expression" and spec["type"] == "string"):
            problems.append(f"{name}: a {kind} where the schema says {spec['type']}")
    problems += [f"{name}: required, missing" for name in resource["requiredInputs"] if name not in given]
    return problems


def test_the_yaml_example_uses_the_schemas_names_and_types(schema: dict[str, Any]) -> None:
    import yaml

    program = yaml.safe_load((EXAMPLES / "yaml" / "Pulumi.yaml").read_text())
    (resource,) = program["resources"].values()
    assert resource["type"] == TYPE_TOKEN
    assert check_inputs(resource["properties"], schema) == []
    outputs = schema["resources"][TYPE_TOKEN]["properties"]
    for reference in program["outputs"].values():
        assert reference.removeprefix("${broadcast.").removesuffix("}") in outputs
    # The check does refuse a misspelt or mistyped input.
    wrong = {**resource["properties"], "signalrSKU": "Free_F1", "maximumInstanceCount": "5"}
    assert sorted(check_inputs(wrong, schema)) == [
        "maximumInstanceCount: a string where the schema says integer",
        "signalrSKU: not an input of broadcast:index:BroadcastSystem",
    ]


def typescript_arguments(source: str) -> dict[str, Any]:
    """The object literal passed to `new broadcast.BroadcastSystem(...)`, one `key: value,` per
    line as the example writes it, with each value read as JSON where it is a literal."""
    body = source.split('new broadcast.BroadcastSystem("broadcast", {', 1)[1].split("});", 1)[0]
    arguments: dict[str, Any] = {}
    for line in body.strip().splitlines():
        key, _, value = line.strip().rstrip(",").partition(": ")
        try:
            arguments[key] = json.loads(value)
        except json.JSONDecodeError:
            arguments[key] = f"${{{value}}}"  # an expression, typed only when the program runs
    return arguments


def test_the_typescript_example_uses_the_schemas_names_and_types(schema: dict[str, Any]) -> None:
    source = (EXAMPLES / "typescript" / "index.ts").read_text()
    arguments = typescript_arguments(source)
    assert arguments["alertEmails"] == '${[config.require("oncallEmail")]}'
    arguments["alertEmails"] = ["oncall@example.com"]  # an array of strings, as the schema wants
    assert check_inputs(arguments, schema) == []
    outputs = schema["resources"][TYPE_TOKEN]["properties"]
    exported = [
        line.split("system.", 1)[1].rstrip(";") for line in source.splitlines() if "= system." in line
    ]
    assert exported and all(name in outputs for name in exported)
    assert '"@pulumi/broadcast"' in source


DYNAMIC = "pulumi-python:dynamic:Resource"


@pytest.mark.parametrize("stack", ["dev", "prod", "test"])
def test_the_package_registers_no_python_dynamic_resource(
    stack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A consumer's engine runs a Python dynamic provider in the consumer's directory with the
    consumer's Python (pulumi/pulumi#5455, #16918): a TypeScript or YAML program has neither. So the
    component, built by the package's provider, registers none, on the public stacks (dev, prod) and
    on a private one with its own network (test)."""
    monkeypatch.setenv(PACKAGE_PROVIDER_ENV, "1")
    dynamic = [r.name for r in construct(stack).resources if r.type == DYNAMIC]
    assert dynamic == []


def test_the_package_refuses_what_only_the_python_program_can_deploy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A brought network has no subnet for the schema's deployment script; its schema is applied by
    the deploying machine (a dynamic resource), so the package refuses it, naming the key."""
    network = (
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/net"
        "/providers/Microsoft.Network/virtualNetworks/v/subnets"
    )
    brought = {
        "network": "private",
        "networkAppSubnetId": f"{network}/app",
        "networkEndpointSubnetId": f"{network}/endpoints",
    }
    monkeypatch.setenv(PACKAGE_PROVIDER_ENV, "1")
    result = construct("dev", brought, expect_error=True)
    assert "broadcast:networkAppSubnetId: a brought network has no subnet" in str(result.error)
    monkeypatch.delenv(PACKAGE_PROVIDER_ENV)
    assert construct("dev", brought).resources  # the Python program still deploys it
