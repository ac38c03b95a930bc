"""Shipping the code inside `pulumi up`: the function package, its deployment and the site upload
(deployment scripts, run here against doubles of the service, Storage, pip and Kudu), and the order
in which they happen."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import random
import shlex
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any

import dill
import pytest
from conftest import WHEELHOUSE
from data_plane_script_double import PublicScripts, RefusedError
from deployment_script_double import principal_id

from artifacts.function_package import (
    FUNCTIONS_DIR,
    SITE_PACKAGES,
    build_package,
    package_bytes,
    pip_installer,
    plan_package,
)
from artifacts.site_files import site_files
from components.shared.deployment_script import (
    RESOURCE_DEFINITION_LIMIT,
    SCRIPT_CONTENT_BUDGET,
    content_tag,
    within_budget,
)
from components.site_upload import ShippedFile, script_content
from data_plane.app_deployment import OneDeploy
from mocks import ROOT, ProgramRun, run_stack

DYNAMIC = "pulumi-python:dynamic:Resource"


@pytest.fixture
def app_copy(tmp_path: Path) -> Path:
    target = tmp_path / "functions"
    shutil.copytree(FUNCTIONS_DIR, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def build(app: Path, cache: Path) -> Any:
    return build_package("3.11", functions_dir=app, cache_dir=cache, installer=pip_installer(WHEELHOUSE))


# the package


def test_package_builds_are_byte_identical_and_cached(app_copy: Path, tmp_path: Path) -> None:
    started = time.perf_counter()
    first = build(app_copy, tmp_path / "cache-a")
    cold = time.perf_counter() - started
    second = build(app_copy, tmp_path / "cache-b")
    assert first.path.read_bytes() == second.path.read_bytes()
    assert (first.sha256, first.cached, second.cached) == (second.sha256, False, False)
    started = time.perf_counter()
    again = build(app_copy, tmp_path / "cache-a")
    cached = time.perf_counter() - started
    assert again.cached and again.sha256 == first.sha256
    print(f"\npackage: {first.size / 1024:.0f} KiB, cold build {cold:.2f} s, cached {cached * 1000:.1f} ms")


def test_changing_one_source_file_changes_the_package(app_copy: Path, tmp_path: Path) -> None:
    before = build(app_copy, tmp_path / "cache")
    (app_copy / "queries.py").write_text((app_copy / "queries.py").read_text() + "\n# changed\n")
    after = build(app_copy, tmp_path / "cache")
    assert after.sha256 != before.sha256 and not after.cached


def test_package_layout_is_what_the_functions_host_expects(app_copy: Path, tmp_path: Path) -> None:
    (app_copy / "local.settings.json").write_text("{}")
    (app_copy / "tests").mkdir()
    (app_copy / "tests" / "test_x.py").write_text("")
    (app_copy / "__pycache__").mkdir(exist_ok=True)
    (app_copy / "__pycache__" / "x.pyc").write_bytes(b"\0")
    package = build(app_copy, tmp_path / "cache")
    with zipfile.ZipFile(package.path) as archive:
        names = archive.namelist()
        infos = archive.infolist()
    assert {
        "function_app.py",
        "host.json",
        "requirements.txt",
        "wiring.py",
        "contract.py",
        "queries.py",
        "sql/migrations/0001_change_tracking.sql",
    } <= set(names)
    assert f"{SITE_PACKAGES}/azure/functions/__init__.py" in names
    assert any(name.startswith(f"{SITE_PACKAGES}/azure_functions-1.26.0.dist-info/") for name in names)
    assert not [n for n in names if n.endswith((".pyc",)) or "__pycache__" in n or n.startswith("tests/")]
    assert "local.settings.json" not in names
    assert names == sorted(names)
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {info.external_attr >> 16 for info in infos} == {0o100644}


def test_missing_host_json_is_named(app_copy: Path, tmp_path: Path) -> None:
    (app_copy / "host.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"host\.json is missing"):
        build(app_copy, tmp_path / "cache")


def test_a_failed_install_says_what_failed(app_copy: Path, tmp_path: Path) -> None:
    (app_copy / "requirements.txt").write_text("no-such-package-broadcast==9.9.9\n")
    with pytest.raises(
        RuntimeError, match=r"installing .*requirements.txt for Python 3.11 on manylinux2014_x86_64"
    ):
        build(app_copy, tmp_path / "cache")


def test_the_plan_knows_the_package_without_building_it(app_copy: Path, tmp_path: Path) -> None:
    """The program plans the package (its hash) with no installer at all: no pip, no network."""
    planned = plan_package("3.11", functions_dir=app_copy, cache_dir=tmp_path / "cache")
    assert not planned.path.exists() and not (tmp_path / "cache").exists()
    (app_copy / "queries.py").write_text((app_copy / "queries.py").read_text() + "\n# changed\n")
    changed = plan_package("3.11", functions_dir=app_copy, cache_dir=tmp_path / "cache")
    assert changed.sha256 != planned.sha256
    assert plan_package("3.12", functions_dir=app_copy, cache_dir=tmp_path / "cache").sha256 != changed.sha256


def test_the_package_is_built_when_deployed_and_refused_if_the_code_moved_on(
    app_copy: Path, tmp_path: Path
) -> None:
    planned = plan_package("3.11", functions_dir=app_copy, cache_dir=tmp_path / "cache")
    installer = pip_installer(WHEELHOUSE)
    data = package_bytes(planned.path, planned.sha256, "3.11", functions_dir=app_copy, installer=installer)
    assert planned.path.read_bytes() == data and zipfile.ZipFile(planned.path).testzip() is None
    (app_copy / "queries.py").write_text((app_copy / "queries.py").read_text() + "\n# changed\n")
    with pytest.raises(RuntimeError, match=r"changed after `pulumi preview`.*run `pulumi up` again"):
        package_bytes(planned.path, planned.sha256, "3.11", functions_dir=app_copy, installer=installer)


# the plan under mocks


def dynamic(run: ProgramRun, name: str) -> Any:
    return run.one(DYNAMIC, name)


SCRIPT = "azure-native:resources:AzureCliScript"
ROLE = "azure-native:authorization:RoleAssignment"
BLOB_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
WEBSITE_CONTRIBUTOR = "de139f84-1756-47ae-9be6-808fbbe84772"


def script(run: ProgramRun, step: str) -> Any:
    return run.one(SCRIPT, f"{step}-script")


def roles_of(run: ProgramRun, identity_name: str) -> dict[str, Any]:
    """The roles of one script identity, by their role definition id."""
    identity = run.one("azure-native:managedidentity:UserAssignedIdentity", identity_name)
    return {
        r.inputs["roleDefinitionId"].rsplit("/", 1)[1]: r
        for r in run.of_type(ROLE)
        if r.inputs["principalId"] == principal_id(identity)
    }


@pytest.fixture(scope="module")
def dedicated() -> ProgramRun:
    return run_stack("dev", {"hostingPlan": "Dedicated"})


def test_no_dynamic_resource_ships_the_site_or_the_code(stack: ProgramRun, dedicated: ProgramRun) -> None:
    """Issue 33: what the package constructs must run under any language's engine."""
    for run in (stack, dedicated):
        names = {r.name for r in run.of_type(DYNAMIC)}
        assert not {
            n for n in names if n.endswith(("-site-content", "-functions-code", "-functions-package"))
        }
        assert {"broadcast:static_site:SiteUpload", "broadcast:function_app:CodeDeployment"} <= {
            r.type for r in run.resources
        }


def test_the_site_upload_script_ships_every_file_with_its_headers(stack: ProgramRun) -> None:
    upload = script(stack, "site-upload")
    content = upload.inputs["scriptContent"]
    for path, entry in site_files().items():
        line = " ".join(shlex.quote(part) for part in (path, entry.content_type, entry.cache_control))
        assert f"upload {line}" in content, path
    assert "upload config.json application/json no-cache" in content
    assert upload.inputs["forceUpdateTag"] == content_tag(content)
    assert upload.inputs["azCliVersion"] == "2.84.0" and "storageAccountSettings" not in upload.inputs
    assert "/work/" not in content and str(Path.cwd()) not in content, "no path of the deploying machine"


def test_the_site_upload_runs_after_the_website_as_an_identity_with_a_role_on_the_site_only(
    stack: ProgramRun,
) -> None:
    upload = script(stack, "site-upload")
    website = stack.one("azure-native:storage:StorageAccountStaticWebsite")
    roles = roles_of(stack, "site-upload-identity")
    assert set(roles) == {BLOB_CONTRIBUTOR, "acdd72a7-3385-48ef-bd42-f606fba81ae7"}
    account = stack.one("azure-native:storage:StorageAccount", "site-storage")
    assert {tuple(r.property_dependencies["scope"]) for r in roles.values()} == {(account.urn,)}
    assert {website.urn, *(r.urn for r in roles.values())} <= set(upload.dependencies)


def test_the_code_script_builds_for_the_host_and_runs_after_the_schema_and_the_apps_roles(
    stack: ProgramRun,
) -> None:
    code = script(stack, "code-deployment")
    schema = script(stack, "sql-schema-runner")
    app_roles = {r.urn for r in stack.of_type(ROLE) if "functions-identity" in r.name}
    assert {schema.urn, *app_roles} <= set(code.dependencies)
    package = plan_package("3.11")
    content = code.inputs["scriptContent"]
    assert f"# package {package.sha256}" in content
    assert (
        "--platform manylinux2014_x86_64 --implementation cp --python-version 3.11 --only-binary=:all:"
        in content
    )
    app = stack.one("azure-native:web:WebApp")
    assert f'onedeploy "$work/package.zip" {app.inputs["name"]}.scm.azurewebsites.net' in content
    (publisher,) = roles_of(stack, "code-deployment-identity").values()
    assert publisher.inputs["roleDefinitionId"].endswith(WEBSITE_CONTRIBUTOR)
    assert publisher.property_dependencies["scope"] == [app.urn]
    # SignalR calls the app's webhook for connection events only once the code answering it runs.
    assert code.urn in stack.one("azure-native:signalrservice:SignalR").dependencies


def test_a_dedicated_app_is_created_after_its_package_is_uploaded(dedicated: ProgramRun) -> None:
    code = script(dedicated, "code-deployment")
    app = dedicated.one("azure-native:web:WebApp")
    assert code.urn in app.dependencies and script(dedicated, "sql-schema-runner").urn in code.dependencies
    settings = {p["name"]: p["value"] for p in app.inputs["siteConfig"]["appSettings"]}
    blob = f"functions-{plan_package('3.11').sha256}.zip"
    assert settings["WEBSITE_RUN_FROM_PACKAGE"].endswith(f"/app-package/{blob}")
    assert f"--container-name app-package --name {blob}" in code.inputs["scriptContent"]
    roles = roles_of(dedicated, "code-deployment-identity")
    container = dedicated.one("azure-native:storage:BlobContainer", "package-container")
    assert roles[BLOB_CONTRIBUTOR].property_dependencies["scope"] == [container.urn], "the container only"
    assert not [r for r in dedicated.of_type(ROLE) if r.name.endswith("functions-deployer-blob")]


# the scripts, run against the doubles


def test_the_site_upload_puts_every_file_and_deletes_what_is_no_longer_shipped(
    dev: ProgramRun, tmp_path: Path
) -> None:
    account = dev.one("azure-native:storage:StorageAccount", "site-storage").inputs["accountName"]
    stale = {f"{account}/$web/old.js": {"content_type": "text/javascript", "cache_control": "", "sha256": ""}}
    run = PublicScripts(dev).execute(script(dev, "site-upload"), tmp_path / "one", {"blobs": stale})
    blobs = run.state["blobs"]
    expected = {**{p: (e.content_type, e.cache_control) for p, e in site_files().items()}}
    expected["config.json"] = ("application/json", "no-cache")
    assert {
        k.split("/$web/", 1)[1]: (v["content_type"], v["cache_control"]) for k, v in blobs.items()
    } == expected
    for path, entry in site_files().items():
        assert (
            blobs[f"{account}/$web/{path}"]["sha256"] == hashlib.sha256(entry.source.read_bytes()).hexdigest()
        )
    config = json.loads(Path(blobs[f"{account}/$web/config.json"]["path"]).read_text())
    assert config == {"apiBaseUrl": dev.exports["apiBaseUrl"], "hub": "broadcast"}
    assert run.state["outputs"] == {"uploaded": len(expected), "deleted": 1}
    again = PublicScripts(dev).execute(script(dev, "site-upload"), tmp_path / "two", {"blobs": blobs})
    assert again.state["outputs"]["deleted"] == 0 and again.state["blobs"].keys() == blobs.keys()


def test_the_site_upload_waits_for_its_role_then_gives_up_after_ten_minutes(
    dev: ProgramRun, tmp_path: Path
) -> None:
    """RBAC: "up to 10 minutes". A role that arrives after 2 minutes is waited for; one that never
    does fails the script (and `pulumi up`) with Storage's 403."""
    run = PublicScripts(dev).execute(script(dev, "site-upload"), tmp_path / "late", role_delay=120)
    assert 120 <= run.seconds < 200 and run.state["outputs"]["uploaded"] == 8
    with pytest.raises(RefusedError, match=r"still refused after 600 s.*AuthorizationPermissionMismatch"):
        PublicScripts(dev).execute(script(dev, "site-upload"), tmp_path / "never", role_delay=10_000)


def test_the_doubles_refuse_a_script_without_its_role_or_over_the_size_limit(
    dev: ProgramRun, tmp_path: Path
) -> None:
    upload = script(dev, "site-upload")
    services = PublicScripts(dev)
    identity = services.identity(upload)
    without_writer = dataclasses.replace(
        upload, dependencies=[u for u in upload.dependencies if not u.endswith("site-upload-blob-writer")]
    )
    with pytest.raises(RefusedError, match="AuthorizationPermissionMismatch"):
        services.execute(without_writer, tmp_path / "norole")
    assert principal_id(identity)
    huge = dataclasses.replace(
        upload, inputs={**upload.inputs, "scriptContent": "#" * RESOURCE_DEFINITION_LIMIT}
    )
    with pytest.raises(RefusedError, match="RequestEntityTooLarge"):
        services.execute(huge, tmp_path / "huge")


def test_every_script_stays_within_our_budget_with_margin(stack: ProgramRun) -> None:
    """The budget is half of ARM's 1 MB per resource definition; the scripts stay under it with room."""
    for step in ("site-upload", "code-deployment"):
        assert len(script(stack, step).inputs["scriptContent"].encode()) < SCRIPT_CONTENT_BUDGET // 2, step
    noise = random.Random(0).randbytes(SCRIPT_CONTENT_BUDGET)  # incompressible: gzip cannot hide it
    files = {"big.js": ShippedFile(data=noise, content_type="x", cache_control="y")}
    with pytest.raises(ValueError, match=r"site upload script is \d+ bytes, over 500000"):
        within_budget("site upload", script_content("st", files))


def test_the_flex_code_script_builds_and_publishes_with_onedeploy(dev: ProgramRun, tmp_path: Path) -> None:
    run = PublicScripts(dev).execute(script(dev, "code-deployment"), tmp_path / "flex", role_delay=60)
    (deployment,) = run.state["deployments"]
    assert deployment["status"] == 4
    assert {"function_app.py", "host.json", "requirements.txt"} <= set(deployment["files"])
    assert f"{SITE_PACKAGES}/azure/functions/__init__.py" in deployment["files"]
    assert not [f for f in deployment["files"] if "__pycache__" in f or f.startswith("deploy/")]
    (install,) = run.state["pip"]
    assert "--only-binary=:all:" in install and install[install.index("--python-version") + 1] == "3.11"
    assert run.seconds >= 60, "the publisher role was waited for"


def test_the_dedicated_code_script_uploads_the_package_the_app_names(
    dedicated: ProgramRun, tmp_path: Path
) -> None:
    run = PublicScripts(dedicated).execute(script(dedicated, "code-deployment"), tmp_path / "dedicated")
    account = dedicated.one("azure-native:storage:StorageAccount", "functions-storage").inputs["accountName"]
    blob = run.state["blobs"][f"{account}/app-package/functions-{plan_package('3.11').sha256}.zip"]
    assert blob["content_type"] == "application/zip" and run.state["deployments"] == []


def test_a_script_built_for_another_python_is_refused(dev: ProgramRun, tmp_path: Path) -> None:
    code = script(dev, "code-deployment")
    other = code.inputs["scriptContent"].replace("--python-version 3.11", "--python-version 3.12")
    with pytest.raises(RefusedError, match=r"wheels for Python 3\.12, the app runs 3\.11"):
        PublicScripts(dev).execute(
            dataclasses.replace(code, inputs={**code.inputs, "scriptContent": other}), tmp_path / "py"
        )


# retired providers: stacks deployed before issue 33 delete their old resources with them


def test_the_retired_providers_unpickle_from_old_state_and_delete_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The engine unpickles the provider state holds (by module reference) and calls `delete` after
    the new scripts ran: the old site delete removed every blob. No network may be touched now."""
    import socket

    def no_network(*_: Any, **__: Any) -> Any:
        raise AssertionError("a retired provider reached for the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    import azure.storage.blob as blob_sdk

    monkeypatch.setattr(blob_sdk, "BlobServiceClient", no_network)
    monkeypatch.setattr(blob_sdk, "BlobClient", no_network)
    pickled = json.loads((ROOT / "tests/snapshots/retired_providers.json").read_text())
    for kind in ("SiteContent", "OneDeploy", "PackageBlob"):
        provider = dill.loads(base64.b64decode(pickled[kind]))
        provider.delete(
            "id", {"account_url": "https://st.blob.core.windows.net/", "files": {"index.html": {}}}
        )


def test_migration_runs_after_server_database_firewall_admin_and_identity(stack: ProgramRun) -> None:
    """The schema's deployment script (issue 33) runs once the server, the database, its firewall
    rules, the server's Entra admin (the script signs in as it) and the app's identity exist."""
    schema = stack.one(SCRIPT, "sql-schema-runner-script")
    needed = [
        stack.one("azure-native:sql:Server"),
        stack.one("azure-native:sql:Database"),
        stack.one("azure-native:sql:ServerAzureADAdministrator"),
        *stack.of_type("azure-native:sql:FirewallRule"),
        stack.one("azure-native:managedidentity:UserAssignedIdentity", "app-"),
    ]
    assert {r.urn for r in needed} <= set(schema.dependencies)
    assert not [r for r in stack.of_type(DYNAMIC) if r.name.endswith("-sql-schema")]


# the OneDeploy program the code script runs


class FakeKudu:
    """Kudu's OneDeploy (docs/sources/flex-consumption.md §2): 202 with the deployment id as a JSON
    string; `/api/deployments/<id>` with the states -1, 3, 4, 5, 6 terminal; 403 until a role applies."""

    def __init__(self, publishes: list[int | list[dict[str, Any]]]) -> None:
        self.publishes, self.calls, self.states, self.serial = publishes, [], [], 0

    def __call__(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, dict, bytes]:
        self.calls.append((method, url))
        assert headers["Authorization"] == "Bearer token"
        if method == "POST":
            outcome = self.publishes.pop(0)
            if isinstance(outcome, int):
                return outcome, {}, b"refused"
            self.serial += 1
            self.states = list(outcome)
            return 202, {}, json.dumps(f"d{self.serial}").encode()
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return 200, {}, json.dumps({"id": f"d{self.serial}", **state}).encode()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def onedeploy(kudu: FakeKudu, clock: Clock) -> OneDeploy:
    return OneDeploy(transport=kudu, token=lambda: "token", sleep=clock.sleep, clock=clock)


def test_onedeploy_publishes_without_remote_build_and_follows_the_deployment() -> None:
    kudu, clock = FakeKudu([[{"status": 1}, {"status": 2}, {"status": 4}]]), Clock()
    assert onedeploy(kudu, clock).deploy("app.scm.azurewebsites.net", b"zip") == "d1"
    assert kudu.calls[0] == ("POST", "https://app.scm.azurewebsites.net/api/publish?RemoteBuild=false")
    assert kudu.calls[1:] == [("GET", "https://app.scm.azurewebsites.net/api/deployments/d1")] * 3


@pytest.mark.parametrize(
    ("state", "ending"), [(3, "failed"), (-1, "was cancelled"), (6, "partly successful")]
)
def test_every_terminal_state_ends_the_wait_with_kudus_message(state: int, ending: str) -> None:
    kudu = FakeKudu([[{"status": state, "status_text": "ModuleNotFoundError", "log_url": "https://log"}]])
    with pytest.raises(RuntimeError, match=f"{ending}: ModuleNotFoundError https://log"):
        onedeploy(kudu, Clock()).deploy("app.scm.azurewebsites.net", b"zip")


def test_a_propagating_role_is_waited_for_ten_minutes_at_most() -> None:
    storage_refusal = {"status": 3, "status_text": "Azure Storage responded with Forbidden: 403"}
    kudu, clock = FakeKudu([403, [storage_refusal], [{"status": 4}]]), Clock()
    assert onedeploy(kudu, clock).deploy("app.scm.azurewebsites.net", b"zip") == "d2"
    assert clock.now == 30
    clock = Clock()
    with pytest.raises(RuntimeError, match=r"HTTP 403: refused \(still refused after 600 s\)"):
        onedeploy(FakeKudu([403] * 100), clock).deploy("app.scm.azurewebsites.net", b"zip")
    assert 585 <= clock.now <= 600
