"""SignalR's first read of its upstream key: a deployment script signed in as SignalR's identity reads
the secret until Key Vault lets it, and SignalR waits for it (issue 33: it replaces the Python dynamic
`RolePropagation`). The script runs against the deployment-script double, whose Key Vault answers
403 ForbiddenByRbac without the Key Vault Secrets User role on the secret, or before the assignment is
in effect (Key Vault, "Azure RBAC": "up to 10 minutes")."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_plane_script_double import PublicScripts, RefusedError
from deployment_script_double import principal_id

from components.key_read_check import READ_DEADLINE_SECONDS
from components.shared.deployment_script import content_tag
from mocks import ProgramRun

SCRIPT = "azure-native:resources:AzureCliScript"
ROLE = "azure-native:authorization:RoleAssignment"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"


def check(run: ProgramRun) -> tuple[object, object, object]:
    script = run.one(SCRIPT, "broadcast-functions-signalr-key-readable-script")
    signalr_identity = run.one(
        "azure-native:managedidentity:UserAssignedIdentity", "broadcast-signalr-identity"
    )
    signalr = run.one("azure-native:signalrservice:SignalR")
    return script, signalr_identity, signalr


def test_the_check_runs_as_signalrs_identity_and_signalr_waits_for_it(stack: ProgramRun) -> None:
    script, identity, signalr = check(stack)
    (uai,) = script.inputs["identity"]["userAssignedIdentities"]
    assert uai.endswith("/" + identity.inputs["resourceName"])
    # Its one control-plane role, to be signed in, is Reader on the vault (metadata, not secrets).
    roles = {
        r.inputs["roleDefinitionId"].rsplit("/", 1)[1]: r
        for r in stack.of_type(ROLE)
        if r.inputs["principalId"] == principal_id(identity)
    }
    assert set(roles) == {READER, SECRETS_USER, *(set(roles) - {READER, SECRETS_USER})}
    vault = stack.one("azure-native:keyvault:Vault")
    assert roles[READER].property_dependencies["scope"] == [vault.urn]
    assert {roles[READER].urn, roles[SECRETS_USER].urn} <= set(script.dependencies)
    # SignalR's upstream URL, which holds the Key Vault reference, waits for the check.
    assert script.urn in signalr.property_dependencies["upstream"]
    content = script.inputs["scriptContent"]
    assert script.inputs["forceUpdateTag"] == content_tag(content)
    assert "SECRET_URI='https://" in content and "/secrets/signalr-extension-key'" in content
    assert not any(
        r.type == "pulumi-python:dynamic:Resource" and r.name.endswith("-settled") for r in stack.resources
    )


def test_the_check_waits_out_propagation_and_prints_no_value(dev: ProgramRun, tmp_path: Path) -> None:
    script, _, _ = check(dev)
    run = PublicScripts(dev).execute(script, tmp_path / "slow", role_delay=300)
    assert 300 <= run.seconds < 400
    assert run.state["outputs"]["readable"].endswith("/secrets/signalr-extension-key")
    assert all(call[-1] == "tsv" and "--query" in call for call in run.state["calls"])


def test_the_check_fails_when_the_role_never_applies_or_is_missing(dev: ProgramRun, tmp_path: Path) -> None:
    script, _, _ = check(dev)
    services = PublicScripts(dev)
    with pytest.raises(RefusedError, match=rf"refused for {READ_DEADLINE_SECONDS} s.*ForbiddenByRbac"):
        services.execute(script, tmp_path / "never", role_delay=10 * READ_DEADLINE_SECONDS)
    # Without the Key Vault Secrets User role on the secret, Key Vault never lets it read.
    without = ProgramRun([r for r in dev.resources if not r.name.endswith("-signalr-key-reader")], {}, set())
    with pytest.raises(RefusedError, match="ForbiddenByRbac"):
        PublicScripts(without).execute(script, tmp_path / "norole")
