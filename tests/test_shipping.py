"""Shipping the code inside `pulumi up`: the function package, its deployment, the site upload, and
the order in which they happen."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from conftest import WHEELHOUSE

from artifacts.function_package import (
    FUNCTIONS_DIR,
    SITE_PACKAGES,
    build_package,
    package_bytes,
    pip_installer,
    plan_package,
)
from artifacts.site_files import SITE_DIR, config_document, file_manifest, site_files
from data_plane.code_deployment import OneDeployProvider, PackageBlobProvider
from data_plane.database_schema import entra_sid
from data_plane.site_upload import SiteUploadProvider
from mocks import ROOT, ProgramRun

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


def test_every_site_file_is_planned_with_its_type_and_cache_control(stack: ProgramRun) -> None:
    content = dynamic(stack, "site-content")
    files = content.inputs["files"]
    expected = site_files()
    assert set(files) == set(expected)
    for path, entry in files.items():
        assert entry["content_type"] == expected[path].content_type, path
        assert entry["cache_control"] == expected[path].cache_control, path
        assert entry["sha256"] == hashlib.sha256((ROOT / entry["source"]).read_bytes()).hexdigest()
    assert files["index.html"]["cache_control"] == "no-cache"
    assert (
        files["vendor/signalr.min.js"]["source"]
        == "site/node_modules/@microsoft/signalr/dist/browser/signalr.min.js"
    )
    config = json.loads(content.inputs["config"])
    assert config == {"apiBaseUrl": stack.exports["apiBaseUrl"], "hub": "broadcast"}
    assert content.inputs["account_url"] == stack.exports["siteUrl"].replace(".z6.web.", ".blob.")


def test_site_upload_waits_for_the_website_and_the_uploaders_role(stack: ProgramRun) -> None:
    content = dynamic(stack, "site-content")
    website = stack.one("azure-native:storage:StorageAccountStaticWebsite")
    role = next(
        r
        for r in stack.of_type("azure-native:authorization:RoleAssignment")
        if r.name == "broadcast-site-deployer-blob"
    )
    assert {website.urn, role.urn} <= set(content.dependencies)


def test_flex_code_deployment_points_at_the_package(stack: ProgramRun) -> None:
    code = dynamic(stack, "functions-code")
    package = plan_package("3.11")
    app_name = stack.exports["functionAppName"]
    assert (code.inputs["package_sha256"], code.inputs["python_version"]) == (package.sha256, "3.11")
    assert code.inputs["package_path"] == package.path.relative_to(ROOT).as_posix()
    assert code.inputs["scm_host"] == f"{app_name}.scm.azurewebsites.net"
    assert code.inputs["app_id"].endswith("/" + app_name)


def test_migration_runs_after_server_database_firewall_and_identity(stack: ProgramRun) -> None:
    schema = dynamic(stack, "sql-schema")
    needed = [
        stack.one("azure-native:sql:Server"),
        stack.one("azure-native:sql:Database"),
        *stack.of_type("azure-native:sql:FirewallRule"),
        stack.one("azure-native:managedidentity:UserAssignedIdentity", "app-"),
    ]
    assert {r.urn for r in needed} <= set(schema.dependencies)
    identity = stack.one("azure-native:managedidentity:UserAssignedIdentity", "app-").inputs["resourceName"]
    client_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"client/{identity}"))  # as the mocks assign it
    assert schema.inputs["variables"] == {"AppIdentityName": identity, "AppIdentitySid": entra_sid(client_id)}
    assert [m["name"] for m in schema.inputs["migrations"]] == [
        "0001_change_tracking.sql",
        "0002_messages.sql",
        "0003_connections.sql",
        "0004_app_identity.sql",
        "0005_housekeeping.sql",
        "0006_least_privilege.sql",
        "0007_insert_only_messages.sql",
        "0008_insert_only_under_merge.sql",
    ]


def test_code_starts_only_after_the_schema_and_the_apps_roles(stack: ProgramRun) -> None:
    code = dynamic(stack, "functions-code")
    schema = dynamic(stack, "sql-schema")
    roles = [
        r.urn
        for r in stack.of_type("azure-native:authorization:RoleAssignment")
        if "functions-identity" in r.name
    ]
    assert schema.urn in code.dependencies
    assert set(roles) <= set(code.dependencies)
    # SignalR calls the app's webhook for connection events only once the code answering it runs.
    signalr = stack.one("azure-native:signalrservice:SignalR")
    assert code.urn in signalr.dependencies


def test_dedicated_stack_runs_from_a_package_blob_uploaded_after_the_schema() -> None:
    from mocks import run_stack

    run = run_stack("dev", {"hostingPlan": "Dedicated"})
    blob = dynamic(run, "functions-package")
    assert dynamic(run, "sql-schema").urn in blob.dependencies
    settings = {
        p["name"]: p["value"] for p in run.one("azure-native:web:WebApp").inputs["siteConfig"]["appSettings"]
    }
    assert settings["WEBSITE_RUN_FROM_PACKAGE"].endswith(
        f"/app-package/functions-{blob.inputs['package_sha256']}.zip"
    )
    assert [r for r in run.resources if r.name == "functions-code"] == []


# the providers


def storage_error(status: int, code: str, message: str) -> HttpResponseError:
    """An error as azure-storage-blob raises it: status and `x-ms-error-code` on the exception."""
    kind = ResourceNotFoundError if status == 404 else HttpResponseError
    error = kind(message=f"{message}\nErrorCode:{code}")
    error.status_code, error.error_code = status, code
    return error


class FakeContainer:
    """The `$web` container client. Storage's documented answers while a deployment settles: 403
    AuthorizationPermissionMismatch until a new data role propagates (Azure RBAC: "up to 10 minutes"),
    404 ContainerNotFound until enabling the static website has created `$web`."""

    def __init__(self, fail_first: int = 0, missing_first: int = 0) -> None:
        self.blobs: dict[str, tuple[bytes, str, str]] = {}
        self.deleted: list[str] = []
        self.fail_first = fail_first
        self.missing_first = missing_first

    def upload_blob(self, name: str, data: bytes, overwrite: bool, content_settings: Any) -> None:
        assert overwrite
        if self.missing_first:
            self.missing_first -= 1
            raise storage_error(404, "ContainerNotFound", "The specified container does not exist.")
        if self.fail_first:
            self.fail_first -= 1
            raise storage_error(
                403,
                "AuthorizationPermissionMismatch",
                "This request is not authorized to perform this operation.",
            )
        self.blobs[name] = (data, content_settings.content_type, content_settings.cache_control)

    def delete_blob(self, name: str) -> None:
        self.deleted.append(name)
        self.blobs.pop(name, None)


@pytest.fixture
def site_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    site = tmp_path / "site"
    (site / "node_modules/@microsoft/signalr/dist/browser").mkdir(parents=True)
    (site / "node_modules/@microsoft/signalr/dist/browser/signalr.min.js").write_text("signalr")
    (site / "node_modules/terser").symlink_to(SITE_DIR / "node_modules/terser")  # app.js is minified
    (site / "index.html").write_text("<!doctype html>")
    (site / "404.html").write_text("<!doctype html>")
    (site / "app.js").write_text("1")
    return site


def test_site_upload_sends_every_file_then_only_changes_and_deletes_removed(site_dir: Path) -> None:
    container = FakeContainer()
    provider = SiteUploadProvider(container_factory=lambda url: container, sleep=lambda s: None)
    config = config_document("https://func.azurewebsites.net/api", "broadcast")
    first = {
        "account_url": "https://st.blob.core.windows.net/",
        "config": config,
        "files": file_manifest(site_files(site_dir), site_dir.parent),
    }
    provider.create(first)
    assert set(container.blobs) == {
        "index.html",
        "404.html",
        "app.js",
        "app.js.map",
        "vendor/signalr.min.js",
        "config.json",
    }
    assert container.blobs["index.html"][1:] == ("text/html; charset=utf-8", "no-cache")
    assert container.blobs["app.js"][1:] == (
        "text/javascript; charset=utf-8",
        "public, max-age=3600, must-revalidate",
    )
    assert json.loads(container.blobs["config.json"][0]) == {
        "apiBaseUrl": "https://func.azurewebsites.net/api",
        "hub": "broadcast",
    }
    container.blobs.clear()
    (site_dir / "app.js").write_text("2")
    (site_dir / "404.html").unlink()
    second = {**first, "files": file_manifest(site_files(site_dir), site_dir.parent)}
    assert provider.diff("id", first, second).changes
    provider.update("id", first, second)
    assert set(container.blobs) == {"app.js", "app.js.map"} and container.deleted == ["404.html"]
    assert provider.diff("id", second, dict(second)).changes is False


def test_site_upload_refuses_a_file_changed_since_the_plan(site_dir: Path) -> None:
    provider = SiteUploadProvider(container_factory=lambda url: FakeContainer())
    planned = {
        "account_url": "u",
        "config": "{}",
        "files": file_manifest(site_files(site_dir), site_dir.parent),
    }
    (site_dir / "index.html").write_text("edited after preview")
    with pytest.raises(RuntimeError, match=r"site/index\.html changed after `pulumi preview`"):
        provider.create(planned)


def test_site_upload_waits_for_a_new_role_assignment(site_dir: Path) -> None:
    container = FakeContainer(fail_first=2)
    waits: list[float] = []
    provider = SiteUploadProvider(container_factory=lambda url: container, sleep=waits.append)
    provider.create(
        {"account_url": "u", "config": "{}", "files": file_manifest(site_files(site_dir), site_dir.parent)}
    )
    assert waits == [15, 15] and "index.html" in container.blobs


def test_site_upload_waits_for_web_to_appear_after_the_website_is_enabled(site_dir: Path) -> None:
    container = FakeContainer(missing_first=1, fail_first=1)
    waits: list[float] = []
    provider = SiteUploadProvider(container_factory=lambda url: container, sleep=waits.append)
    provider.create(
        {"account_url": "u", "config": "{}", "files": file_manifest(site_files(site_dir), site_dir.parent)}
    )
    assert waits == [15, 15] and "index.html" in container.blobs


def test_site_upload_does_not_wait_out_real_failures(site_dir: Path) -> None:
    class Broken(FakeContainer):
        def upload_blob(self, name: str, data: bytes, overwrite: bool, content_settings: Any) -> None:
            raise storage_error(
                400, "InvalidHeaderValue", "The value for one of the HTTP headers is not valid."
            )

    provider = SiteUploadProvider(
        container_factory=lambda url: Broken(), sleep=lambda s: pytest.fail("waited")
    )
    with pytest.raises(HttpResponseError, match="InvalidHeaderValue"):
        provider.create(
            {
                "account_url": "u",
                "config": "{}",
                "files": file_manifest(site_files(site_dir), site_dir.parent),
            }
        )


class FakeKudu:
    """Kudu's OneDeploy on a Flex Consumption app, as its clients document it: `POST /api/publish`
    answers 202 with the deployment id as a JSON string (azd's funcapp_host_client) and a Location
    header; `GET /api/deployments/<id>` answers 200 with `{id, status, status_text, complete, log_url}`
    whatever the state, or 404 until the deployment is visible. States: -1 cancelled, 0 pending,
    1 building, 2 deploying, 3 failed, 4 success, 5 conflict, 6 partial success (OneDeploy's
    DeploymentStatus; terminal for the Azure CLI: -1, 3, 4, 5, 6). A caller without the role gets 403.

    `publishes` lists, per POST, either an HTTP status (a refusal) or the states its deployment goes
    through (the last one repeats)."""

    def __init__(self, publishes: list[int | list[dict[str, Any]]]) -> None:
        self.publishes = publishes
        self.calls: list[tuple[str, str]] = []
        self.deployment: list[dict[str, Any]] = []
        self.serial = 0

    def __call__(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, dict, bytes]:
        self.calls.append((method, url))
        assert headers["Authorization"] == "Bearer arm-token"
        if method == "POST":
            outcome = self.publishes.pop(0)
            if isinstance(outcome, int):
                return outcome, {}, b"refused"
            self.serial += 1
            self.deployment = [{"id": f"d{self.serial}", "complete": False, **state} for state in outcome]
            location = f"/api/deployments/latest?deployer=OneDeploy&time={self.serial}"
            return 202, {"Location": location}, json.dumps(f"d{self.serial}").encode()
        assert url.endswith(f"/api/deployments/d{self.serial}"), url
        state = self.deployment.pop(0) if len(self.deployment) > 1 else self.deployment[0]
        if state.get("status") == "404":
            return 404, {}, b"Deployment not found"
        if state["status"] in (-1, 3, 4, 5, 6):
            state = {**state, "complete": True}
        return 200, {}, json.dumps(state).encode()


class Clock:
    """A monotonic clock that sleeping advances."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


ZIP = b"PK zip"
PLANNED = {"package_path": "build/packages/functions-1.zip", "package_sha256": "1", "python_version": "3.11"}


def load(props: dict[str, Any]) -> bytes:
    """The package loader: the zip of exactly the planned package."""
    assert {key: props[key] for key in PLANNED} == PLANNED
    return ZIP


def onedeploy(kudu: FakeKudu, clock: Clock | None = None) -> OneDeployProvider:
    clock = clock or Clock()
    return OneDeployProvider(
        transport=kudu, token=lambda: "arm-token", sleep=clock.sleep, clock=clock, load=load
    )


def test_onedeploy_publishes_and_follows_the_deployment() -> None:
    kudu = FakeKudu([[{"status": "404"}, {"status": 1}, {"status": 2}, {"status": 4}]])
    props = {"app_id": "/sub/app", "scm_host": "app.scm.azurewebsites.net", **PLANNED}
    result = onedeploy(kudu).create(props)
    assert result.outs["deployment_id"] == "d1"
    assert kudu.calls[0] == (
        "POST",
        "https://app.scm.azurewebsites.net/api/publish?type=zip&RemoteBuild=false",
    )
    assert kudu.calls[1:] == [("GET", "https://app.scm.azurewebsites.net/api/deployments/d1")] * 4


@pytest.mark.parametrize(
    ("state", "ending"),
    [
        (3, "failed"),
        (-1, "was cancelled"),
        (5, "another deployment is in progress"),
        (6, "was only partly successful"),
    ],
)
def test_every_terminal_state_ends_the_wait_with_the_hosts_message(state: int, ending: str) -> None:
    """Kudu's terminal states besides success end the deployment at once (today they would be
    polled until the 20-minute timeout)."""
    text = "ModuleNotFoundError: pyodbc"
    kudu = FakeKudu([[{"status": 1}, {"status": state, "status_text": text, "log_url": "https://log"}]])
    clock = Clock()
    with pytest.raises(RuntimeError, match=f"{ending}: {text} https://log"):
        onedeploy(kudu, clock).deploy("app.scm.azurewebsites.net", ZIP)
    assert len(kudu.calls) == 3 and clock.now < 60


def test_a_deployment_marked_complete_ends_whatever_its_status() -> None:
    kudu = FakeKudu([[{"status": 2, "complete": True, "status_text": "worker recycled"}]])
    with pytest.raises(RuntimeError, match="ended with status 2: worker recycled"):
        onedeploy(kudu).deploy("app.scm.azurewebsites.net", ZIP)


def test_a_fresh_role_is_waited_for_then_the_publish_succeeds() -> None:
    """Right after the role assignments: the caller is refused (403), then the app's identity cannot
    yet write its deployment storage (the deployment fails with a 403 from Storage); both pass."""
    storage_refusal = {
        "status": 3,
        "status_text": "Failed to upload because Azure Storage responded with Forbidden : Response status "
        "code does not indicate success: 403 (This request is not authorized to perform this operation.)",
    }
    kudu = FakeKudu([403, [storage_refusal], [{"status": 4}]])
    clock = Clock()
    assert onedeploy(kudu, clock).deploy("app.scm.azurewebsites.net", ZIP) == "d2"
    assert clock.sleeps == [15, 15]


def test_a_refusal_that_outlasts_the_wait_names_the_roles() -> None:
    kudu = FakeKudu([403] * 100)
    clock = Clock()
    with pytest.raises(RuntimeError, match=r"HTTP 403: refused \(still refused after 600 s: check the role"):
        onedeploy(kudu, clock).deploy("app.scm.azurewebsites.net", ZIP)
    assert 585 <= clock.now <= 600
    with pytest.raises(RuntimeError, match="refused with HTTP 400"):
        onedeploy(FakeKudu([400])).deploy("app.scm.azurewebsites.net", ZIP)


def test_onedeploy_redeploys_only_on_a_new_package() -> None:
    provider = OneDeployProvider()
    old = {"app_id": "a", "scm_host": "h", "package_path": "p", "package_sha256": "1"}
    assert provider.diff("id", old, {**old, "package_path": "elsewhere"}).changes is False
    assert provider.diff("id", old, {**old, "package_sha256": "2"}).changes is True


def test_package_blob_is_named_by_its_hash() -> None:
    uploads: list[tuple[str, str, str, bytes]] = []

    class Blob:
        def __init__(self, account: str, container: str, name: str) -> None:
            self.where = (account, container, name)

        def upload_blob(self, data: bytes, overwrite: bool) -> None:
            uploads.append((*self.where, data))

    provider = PackageBlobProvider(blob_factory=Blob, load=load)
    account = "https://st.blob.core.windows.net/"
    result = provider.create({"account_url": account, "container": "app-package", **PLANNED})
    assert result.outs["url"] == f"{account}app-package/functions-1.zip"
    assert uploads == [(account, "app-package", "functions-1.zip", ZIP)]


def test_package_blob_reuploads_on_a_new_hash_and_moves_with_its_container() -> None:
    provider = PackageBlobProvider()
    old = {
        "account_url": "https://a/",
        "container": "app-package",
        "package_path": "p",
        "package_sha256": "1",
    }
    assert provider.diff("id", old, {**old, "package_path": "elsewhere"}).changes is False
    new_hash = provider.diff("id", old, {**old, "package_sha256": "2"})
    assert (new_hash.changes, new_hash.replaces) == (True, [])
    assert provider.diff("id", old, {**old, "container": "other"}).replaces == ["container"]
