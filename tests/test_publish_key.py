"""The stack's publish key: a host-level function key (`publisher`) the stack generates and writes
into the app's Key Vault as `host--functionKey--publisher`, where the Functions host reads its keys
(`AzureWebJobsSecretStorageType=keyvault`); publishers send it as `x-functions-key`."""

from __future__ import annotations

from components.functions_app import FUNCTION_KEYS, PUBLISH_KEY_NAME, host_key_secret_name
from mocks import ProgramRun

SECRET = "azure-native:keyvault:Secret"
PASSWORD = "random:index/randomPassword:RandomPassword"


def test_the_publish_key_is_a_host_function_key_in_the_apps_vault(stack: ProgramRun) -> None:
    secret = stack.one(SECRET, "host-key-publish")
    value = stack.one(PASSWORD, "functions-publish-key")
    vault = stack.one("azure-native:keyvault:Vault")
    assert secret.inputs["secretName"] == host_key_secret_name(FUNCTION_KEYS, PUBLISH_KEY_NAME)
    assert secret.inputs["secretName"] == "host--functionKey--publisher"
    assert secret.inputs["vaultName"] == vault.inputs["vaultName"]
    # Its value is that RandomPassword's result, sent as a secret.
    assert secret.property_dependencies["properties"] == [value.urn]
    assert secret.inputs["properties"]["value"] == "p" * int(value.inputs["length"])
    assert "properties" in secret.secret_inputs and value.inputs["special"] is False


def test_the_publish_key_output_is_the_generated_value_and_secret(stack: ProgramRun) -> None:
    value = stack.one(PASSWORD, "functions-publish-key")
    assert stack.exports["publishKey"] == "p" * int(value.inputs["length"])
    assert "publishKey" in stack.secret_exports


def test_the_publish_keys_value_keeps_its_urn_so_an_upgrade_keeps_the_key(stack: ProgramRun) -> None:
    """Before issue 33 the same RandomPassword fed a FunctionHostKey: same URN, same value in state."""
    value = stack.one(PASSWORD, "functions-publish-key")
    assert value.urn.endswith(
        "broadcast:function_app:FunctionApp$random:index/randomPassword:RandomPassword::broadcast-functions-publish-key"
    )
