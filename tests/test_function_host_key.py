"""The Functions host's keys in Key Vault: the secret names the host reads, what the host does with
the secrets the stack writes (a double of its Key Vault key store), and the retired `FunctionHostKey`
provider, whose delete must call nothing when an old stack's state drops it."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dill  # type: ignore[import-untyped]
import pytest

from components.functions_app import (
    FUNCTION_KEYS,
    HOST_KEYS,
    MASTER_KEY,
    SYSTEM_KEYS,
    host_key_secret_name,
)
from components.shared import Role
from data_plane.host_key import HostKeyProvider
from functions import wiring

ROOT = Path(__file__).resolve().parent.parent
OLD_STATE = ROOT / "tests" / "fixtures" / "retired_host_key_state.json"

# --- a double of Key Vault (RBAC) and of the host's Key Vault key store ---------------------------

SECRET_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
"""Key Vault object names: "1-127 characters, alphanumerics and dashes" (Key Vault, "About keys,
secrets, and certificates": object names)."""
OFFICER, USER = Role.KEY_VAULT_SECRETS_OFFICER.value, Role.KEY_VAULT_SECRETS_USER.value
CAN = {
    # Azure built-in roles (Security): Secrets Officer has data actions Microsoft.KeyVault/vaults/secrets/*;
    # Secrets User only secrets/getSecret/action and secrets/readMetadata/action.
    OFFICER: {"list", "get", "set", "delete"},
    USER: {"list", "get"},
}


class ForbiddenError(Exception):
    """Key Vault's 403 (an RBAC vault, and the caller holds no role that allows the action)."""


@dataclass
class Vault:
    """An RBAC Key Vault as the host's identity meets it.

    Roles are held at the vault's scope or at one secret's scope (a role on a secret covers that
    secret only). Listing the vault's secrets is a vault-level action: a role on single secrets does
    not allow it (the stricter reading of "Azure RBAC for Key Vault": secret-scope assignments grant
    access to that secret). Deleting soft-deletes (the host calls StartDeleteSecretAsync), and a
    soft-deleted name cannot be set again until purged or recovered."""

    secrets: dict[str, str] = field(default_factory=dict)
    roles: set[tuple[str, str]] = field(default_factory=set)
    """(role id, scope): scope "vault" or a secret's name."""
    soft_deleted: set[str] = field(default_factory=set)
    writes: list[str] = field(default_factory=list)

    def _allow(self, action: str, secret: str | None = None) -> None:
        for role, scope in self.roles:
            covers = scope == "vault" or (secret is not None and scope == secret)
            if covers and action in CAN.get(role, set()):
                return
        raise ForbiddenError(f"403 ForbiddenError: {action} {secret or '(vault)'}")

    def list(self) -> list[str]:
        self._allow("list")
        return sorted(self.secrets)

    def get(self, name: str) -> str:
        self._allow("get", name)
        return self.secrets[name]

    def set(self, name: str, value: str) -> None:
        self._allow("set", name)
        if not SECRET_NAME.match(name):
            raise ValueError(f"400 BadParameter: invalid secret name {name!r}")
        if name in self.soft_deleted:
            raise RuntimeError(f"409 Conflict: secret {name} is deleted but recoverable")
        self.writes.append(name)
        self.secrets[name] = value

    def delete(self, name: str) -> None:
        self._allow("delete", name)
        del self.secrets[name]
        self.soft_deleted.add(name)


PREFIXES = {
    "host--masterKey--": MASTER_KEY,
    "host--functionKey--": FUNCTION_KEYS,
    "host--systemKey--": SYSTEM_KEYS,
}


def denormalize(name: str) -> str:
    """The host's `KeyVaultSecretsRepository.Denormalize`: `-` and three digits back to the character."""
    return re.sub(r"-(\d{3})", lambda m: chr(int(m.group(1))), name)


class Host:
    """The Functions host with `AzureWebJobsSecretStorageType=keyvault` (azure-functions-host
    `KeyVaultSecretsRepository` and `SecretManager`, read at 89dc438):

    - `ReadHostSecrets` lists every secret of the vault and returns null when none starts with
      `host--masterKey--`; otherwise it reads each `host--masterKey--*`, `host--functionKey--*` and
      `host--systemKey--*` secret, its key name denormalised.
    - `GetHostSecretsAsync`: null host secrets are generated (a new master key and one `default`
      function key, no system keys) and persisted; `WriteAsync` (Host) deletes every `host--*` secret
      that is not in the new set, then sets the new ones.
    - A read that fails (a 403 before a role applies) throws out of `GetHostSecretsAsync`: the request
      fails and the next one reads again (nothing is cached).
    - `DefaultScriptWebHookProvider.GetOrCreateExtensionKey`: an extension's webhook key is the system
      key `<extension>_extension`; when missing, it is generated and written with every host key.
    - Authorization: the master key, then system keys, then host function keys.
    """

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self.cached: dict[str, dict[str, str]] | None = None

    def _read(self) -> dict[str, dict[str, str]] | None:
        names = self.vault.list()
        if not any(n.startswith("host--masterKey--") for n in names):
            return None
        keys: dict[str, dict[str, str]] = {MASTER_KEY: {}, FUNCTION_KEYS: {}, SYSTEM_KEYS: {}}
        for name in names:
            for prefix, kind in PREFIXES.items():
                if name.startswith(prefix):
                    keys[kind][denormalize(name.removeprefix(prefix))] = self.vault.get(name)
        return keys

    def _write(self, keys: dict[str, dict[str, str]]) -> None:
        wanted = {host_key_secret_name(kind, n): v for kind, named in keys.items() for n, v in named.items()}
        for name in self.vault.list():
            if name.startswith("host--") and name not in wanted:
                self.vault.delete(name)
        for name, value in wanted.items():
            self.vault.set(name, value)

    def host_keys(self) -> dict[str, dict[str, str]]:
        if self.cached is None:
            keys = self._read()
            if keys is None:
                keys = {MASTER_KEY: {"master": "new"}, FUNCTION_KEYS: {"default": "new"}, SYSTEM_KEYS: {}}
                self._write(keys)
            self.cached = keys
        return self.cached

    def extension_key(self, extension: str) -> str:
        name = f"{extension}_extension".lower()
        keys = self.host_keys()
        if name not in keys[SYSTEM_KEYS]:
            keys[SYSTEM_KEYS][name] = "generated-system"
            self._write(keys)
        return keys[SYSTEM_KEYS][name]

    def authorize(self, presented: str) -> str:
        keys = self.host_keys()
        if presented in keys[MASTER_KEY].values():
            return "admin"
        if presented in keys[SYSTEM_KEYS].values():
            return "system"
        if presented in keys[FUNCTION_KEYS].values():
            return "function"
        return "anonymous"


def stack_secrets() -> dict[str, str]:
    """The secrets the program writes: each host key under its name, with a distinct value here."""
    return {host_key_secret_name(k.key_type, k.key_name): f"value-of-{k.label}" for k in HOST_KEYS}


def vault_as_deployed() -> Vault:
    """The vault after `pulumi up`: the stack's secrets and the app identity's role on the vault."""
    return Vault(secrets=stack_secrets(), roles={(OFFICER, "vault")})


# --- names ---------------------------------------------------------------------------------------


def test_the_secret_names_are_the_hosts_for_each_key_the_stack_sets() -> None:
    """KeyVaultSecretsRepository: `MasterKey + "master"`, `FunctionKeyPrefix + Normalize(name)`,
    `SystemKeyPrefix + Normalize(name)`, `_` written as `-095`."""
    assert sorted(stack_secrets()) == [
        "host--functionKey--publisher",
        "host--masterKey--master",
        "host--systemKey--signalr-095extension",
    ]
    assert {(k.key_type, k.key_name) for k in HOST_KEYS} >= {(SYSTEM_KEYS, wiring.SIGNALR_EXTENSION_KEY)}
    for name in stack_secrets():
        assert SECRET_NAME.match(name), f"{name} is not a valid Key Vault secret name"


@pytest.mark.parametrize("key_name", ["signalr_extension", "a.b c", "publisher", "x-y"])
def test_a_normalised_name_reads_back_as_the_key_name(key_name: str) -> None:
    secret = host_key_secret_name(SYSTEM_KEYS, key_name)
    assert SECRET_NAME.match(secret)
    assert denormalize(secret.removeprefix("host--systemKey--")) == key_name


def test_unknown_key_types_and_non_ascii_names_are_refused_with_what_is_accepted() -> None:
    with pytest.raises(ValueError, match="expected one of"):
        host_key_secret_name("hostKeys", "x")
    with pytest.raises(ValueError, match="ASCII"):
        host_key_secret_name(FUNCTION_KEYS, "clé")


# --- the host against the secrets the stack writes -------------------------------------------------


def test_the_host_accepts_the_stacks_keys_and_writes_nothing() -> None:
    vault = vault_as_deployed()
    host = Host(vault)
    assert host.authorize("value-of-publish") == "function"
    assert host.authorize("value-of-signalr") == "system"
    assert host.authorize("value-of-master") == "admin"
    assert host.authorize("wrong") == "anonymous"
    # The SignalR extension finds its key by the name it derives, so it generates none.
    assert host.extension_key("SignalR") == "value-of-signalr"
    assert vault.writes == [] and vault.soft_deleted == set()


def test_without_the_master_key_the_host_deletes_the_stacks_keys() -> None:
    """Why the program writes the master key too: the host would otherwise generate its own set and
    delete every other `host--*` secret, the publish key and SignalR's key included."""
    secrets = {k: v for k, v in stack_secrets().items() if not k.startswith("host--masterKey--")}
    vault = Vault(secrets=secrets, roles={(OFFICER, "vault")})
    host = Host(vault)
    assert host.authorize("value-of-publish") == "anonymous"
    assert vault.soft_deleted == {"host--functionKey--publisher", "host--systemKey--signalr-095extension"}
    # ...and a later `pulumi up` cannot write them back while they are soft-deleted.
    with pytest.raises(RuntimeError, match="409"):
        vault.set("host--functionKey--publisher", "value-of-publish")


def test_a_role_on_single_secrets_cannot_list_the_vault() -> None:
    """The host lists the vault to find its keys: the app identity's role is on the vault."""
    vault = Vault(secrets=stack_secrets(), roles={(OFFICER, name) for name in stack_secrets()})
    with pytest.raises(ForbiddenError):
        Host(vault).authorize("value-of-publish")


def test_before_the_role_applies_requests_fail_then_heal_without_a_restart() -> None:
    vault = Vault(secrets=stack_secrets())
    host = Host(vault)
    with pytest.raises(ForbiddenError):
        host.authorize("value-of-publish")
    vault.roles.add((OFFICER, "vault"))  # Key Vault: role assignments apply within 10 minutes
    assert host.authorize("value-of-publish") == "function"
    assert vault.writes == []


def test_a_read_only_role_breaks_the_first_run_of_an_extension_that_needs_a_new_key() -> None:
    """Secrets User would do for reading, but a host that must add a key (an extension's webhook key
    the stack did not write) needs Set: the role is Secrets Officer."""
    secrets = {k: v for k, v in stack_secrets().items() if "systemKey" not in k}
    with pytest.raises(ForbiddenError, match="set"):
        Host(Vault(secrets=dict(secrets), roles={(USER, "vault")})).extension_key("signalr")
    assert Host(Vault(secrets=dict(secrets), roles={(OFFICER, "vault")})).extension_key("signalr")


# --- the retired provider, as an old stack's state holds it ----------------------------------------


def old_state() -> dict[str, dict[str, Any]]:
    """Two `FunctionHostKey` resources as a stack deployed before issue 33 holds them: inputs and the
    provider pickled by the code of that time (tests/fixtures/retired_host_key_state.json)."""
    return json.loads(OLD_STATE.read_text())["resources"]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Any connection or token request fails the test (and is recorded)."""
    attempts: list[str] = []

    def refuse(*args: Any, **_: Any) -> Any:
        attempts.append(repr(args[:2]))
        raise AssertionError(f"network call attempted: {args[:2]!r}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr("data_plane.azure_http.entra_token", refuse)
    return attempts


@pytest.mark.parametrize("name", sorted(old_state()))
def test_deleting_an_old_stacks_host_key_calls_nothing(name: str, no_network: list[str]) -> None:
    """Pulumi's dynamic host unpickles the provider by module reference and calls its `delete`: the
    current module's, which must not ask ARM to delete a key the host now reads from Key Vault."""
    inputs = old_state()[name]
    provider = dill.loads(base64.b64decode(inputs["__provider"]))
    assert type(provider) is HostKeyProvider
    props = {k: v for k, v in inputs.items() if k != "__provider"}
    provider.delete(f"{props['app_id']}/host/default/x/{props['key_name']}", props)
    assert no_network == []


def test_the_retired_provider_refuses_to_create_or_update_and_sees_no_change() -> None:
    inputs = old_state()["broadcast-functions-publish-function-key"]
    props = {k: v for k, v in inputs.items() if k != "__provider"}
    provider = HostKeyProvider()
    with pytest.raises(RuntimeError, match="retired"):
        provider.create(props)
    with pytest.raises(RuntimeError, match="retired"):
        provider.update("id", props, props)
    assert provider.diff("id", props, {**props, "value": "other"}).changes is False


def test_the_old_pickle_loads_in_a_fresh_process_started_like_pulumis_dynamic_plugin() -> None:
    """Pulumi runs dynamic providers in another process whose working directory is the program's
    (pulumi/pulumi#5455): the old pickle resolves `data_plane.host_key` there, and its delete runs
    with the network cut off."""
    script = (
        "import base64, json, socket, sys, dill\n"
        "def refuse(*a, **k): raise SystemExit('network call attempted')\n"
        "socket.create_connection = refuse\n"
        "socket.socket.connect = refuse\n"
        "state = json.loads(sys.stdin.read())['resources']\n"
        "for name, inputs in sorted(state.items()):\n"
        "    provider = dill.loads(base64.b64decode(inputs.pop('__provider')))\n"
        "    provider.delete('id', inputs)\n"
        "    print(name, type(provider).__module__, type(provider).__name__)\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", script],
        input=OLD_STATE.read_text(),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{name} data_plane.host_key HostKeyProvider" for name in sorted(old_state())
    ]
