"""A stand-in for Azure's deployment script service running the public data-plane scripts (site upload,
code deployment: `components.site_upload`, `components.code_deployment`), and for the services those
scripts call: Blob Storage through `az storage blob ... --auth-mode login`, pip's platform install,
and Kudu's OneDeploy on a Flex Consumption app.

It reads what the program registered under mocks, refuses what Azure refuses, and otherwise runs the
script's content with bash and fakes on its PATH (`az`, `python3`, `sleep`, `date`; the clock only
moves when the script sleeps). Rules, each from its source (docs/sources/deployment-scripts.md); where
a source is ambiguous the double takes the stricter reading:
- ARM: "each resource definition can't exceed 1 MB" (Learn, "Resolve errors for job size exceeded"):
  the script's registered inputs, as JSON, over 1,000,000 bytes are refused (RequestEntityTooLarge).
  "The maximum allowed size for environment variables is 64 KB" (Learn, "Develop a deployment script
  in Bicep"): the double counts names and values together.
- What ARM checks on any deployment script (one user-assigned identity, retention, the sign-in's
  control-plane role assigned before the script) is `deployment_script_double.admitted_identity`,
  shared with the schema's double; `azCliVersion` selects the image (`cli_image`).
- Blob Storage with shared-key access off refuses key-signed requests (KeyBasedAuthenticationNotPermitted,
  pulumi/pulumi-azure-native#2015): `az storage blob` without `--auth-mode login` is refused. With
  Entra auth, data actions need Storage Blob Data Contributor/Owner at the account or the container
  ("Authorize access to blobs using Microsoft Entra ID"); without it Storage answers 403
  AuthorizationPermissionMismatch, and a new assignment takes effect only after RBAC propagation
  ("up to 10 minutes"): modelled as `role_delay` seconds of the script's clock.
- A blob uploaded without `--content-type` would be served with whatever the CLI guesses: the double
  refuses it (a project rule: the site's types are chosen in `artifacts.site_files`).
- pip: with `--platform`/`--python-version`/`--implementation`, "either --no-deps must be set, or
  --only-binary=:all: must be set" (pip's install reference); the Functions host is Linux x86-64
  (`manylinux*_x86_64`) at the app's Python version: anything else installs wheels the host cannot load.
- Kudu OneDeploy (docs/sources/flex-consumption.md §2): `POST /api/publish` with an Entra token of an
  identity allowed `Microsoft.Web/sites/publish/Action` (Website Contributor on the app), else 403;
  202 with the deployment id as a JSON string; `GET /api/deployments/<id>` answers the status. The
  package must hold `host.json`, `function_app.py` and its dependencies under
  `.python_packages/lib/site-packages` (Python on a package: dependencies are not installed by the host).
"""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployment_script_double import (
    WEBSITE_CONTRIBUTOR,
    RefusedError,
    admitted_identity,
    cli_image,
    client_id,
    dependency_closure,
    principal_id,
)

from mocks import ProgramRun, Registration

SCRIPT = "azure-native:resources:AzureCliScript"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
BLOB_WRITERS = {"ba92f5b4-2d11-453d-a403-e96b0029c9fe", "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"}
PUBLISHERS = {CONTRIBUTOR, WEBSITE_CONTRIBUTOR}
SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
"""Key Vault Secrets User: reads secret contents (Key Vault's data plane answers 403 ForbiddenByRbac
without it, or before the assignment is in effect: "up to 10 minutes")."""

FAKE_AZ = textwrap.dedent(
    '''
    """az in the script's container: signed in as the script's identity."""
    import hashlib, json, os, sys

    args = sys.argv[1:]
    state_path = os.environ["DS_STATE"]
    state = json.load(open(state_path))
    clock = float(open(os.environ["DS_CLOCK"]).read())

    def option(name, default=None):
        return args[args.index(name) + 1] if name in args else default

    def refuse(message, code=1):
        print(f"ERROR: {message}", file=sys.stderr)
        sys.exit(code)

    state["calls"].append(args)
    if args[:2] == ["account", "get-access-token"]:
        print(os.environ["DS_TOKEN"])
    elif args[:2] == ["storage", "blob"]:
        if option("--auth-mode") != "login":
            refuse("Key based authentication is not permitted on this storage account. "
                   "ErrorCode:KeyBasedAuthenticationNotPermitted")
        account, container = option("--account-name"), option("--container-name")
        grants = json.loads(os.environ["DS_BLOB_GRANTS"])
        if not any(g == account or g == f"{account}/{container}" for g in grants):
            refuse("This request is not authorized to perform this operation using this permission. "
                   "ErrorCode:AuthorizationPermissionMismatch")
        if clock < float(os.environ["DS_ROLE_DELAY"]):
            refuse("This request is not authorized to perform this operation using this permission. "
                   "ErrorCode:AuthorizationPermissionMismatch")
        prefix = f"{account}/{container}/"
        if args[2] == "upload":
            if not option("--content-type"):
                refuse("the double refuses a blob without an explicit --content-type")
            data = open(option("--file"), "rb").read()
            state["blobs"][prefix + option("--name")] = {
                "content_type": option("--content-type"),
                "cache_control": option("--content-cache-control"),
                "sha256": hashlib.sha256(data).hexdigest(),
                "path": option("--file"),
            }
        elif args[2] == "list":
            for key in sorted(state["blobs"]):
                if key.startswith(prefix):
                    print(key[len(prefix):])
        elif args[2] == "delete":
            if state["blobs"].pop(prefix + option("--name"), None) is None:
                refuse("The specified blob does not exist. ErrorCode:BlobNotFound")
        else:
            refuse(f"the double does not know az storage blob {args[2]}", 2)
    elif args[:3] == ["keyvault", "secret", "show"]:
        uri = option("--id")
        vault, secret = uri.split("//", 1)[1].split(".", 1)[0], uri.rsplit("/secrets/", 1)[1]
        if f"{vault}/{secret}" not in json.loads(os.environ["DS_SECRET_GRANTS"]) or clock < float(
            os.environ["DS_ROLE_DELAY"]
        ):
            refuse("(Forbidden) Caller is not authorized to perform action on resource. Code: Forbidden "
                   'Inner error: {"code": "ForbiddenByRbac"}')
        if option("--query") != "id":
            refuse("the double refuses to print a secret's value into the script's log", 2)
        print(uri)
    else:
        refuse(f"the double does not know az {' '.join(args[:3])}", 2)
    json.dump(state, open(state_path, "w"))
    '''
)

BOOT = textwrap.dedent(
    '''
    """python3 of the container (Azure Linux 3.0: 3.12), with pip and the network faked."""
    import io, json, os, runpy, sys, urllib.error, urllib.request, zipfile

    args = sys.argv[1:]

    def state():
        return json.load(open(os.environ["DS_STATE"]))

    def save(value):
        json.dump(value, open(os.environ["DS_STATE"], "w"))

    def pip(args):
        if args[:1] == ["--version"]:
            return 0
        def value(name):
            return next((a.split("=", 1)[1] for a in args if a.startswith(name + "=")), None) or (
                args[args.index(name) + 1] if name in args else None)
        restricted = any(value(n) for n in ("--platform", "--python-version", "--implementation"))
        if restricted and "--no-deps" not in args and value("--only-binary") != ":all:":
            sys.exit("ERROR: When restricting platform and interpreter constraints using --python-version, "
                     "--platform, --abi, or --implementation, either --no-deps must be set, or "
                     "--only-binary=:all: must be set and --no-binary must not be set "
                     "(or must be set to :none:).")
        expected = os.environ["DS_APP_PYTHON"]
        platform = value("--platform") or "native"
        if not (platform.startswith("manylinux") and platform.endswith("_x86_64")):
            sys.exit(f"the double: wheels for {platform} do not load on the Functions host (Linux x86-64)")
        if value("--python-version") != expected:
            sys.exit(f"the double: wheels for Python {value('--python-version')}, the app runs {expected}")
        target = value("--target")
        for name in ("azure/functions/__init__.py", "azure_functions-1.26.0.dist-info/METADATA"):
            os.makedirs(os.path.dirname(os.path.join(target, name)), exist_ok=True)
            open(os.path.join(target, name), "w").write("# installed by the double\\n")
        log = state(); log["pip"].append(args); save(log)
        return 0

    class Response(io.BytesIO):
        def __init__(self, status, body, headers=None):
            super().__init__(body); self.status, self.headers = status, headers or {}

    def kudu(request, timeout=None):
        url, method = request.full_url, request.get_method()
        host = url.split("/")[2]
        if not host.endswith(".scm.azurewebsites.net"):
            raise urllib.error.URLError(f"the double has no network to {host}")
        token = request.get_header("Authorization", "").removeprefix("Bearer ")
        app = host.split(".")[0]
        clock = float(open(os.environ["DS_CLOCK"]).read())
        allowed = token in json.loads(os.environ["DS_PUBLISHERS"]).get(app, [])
        if not allowed or clock < float(os.environ["DS_ROLE_DELAY"]):
            raise urllib.error.HTTPError(url, 403, "Forbidden", {}, io.BytesIO(b"Forbidden"))
        log = state()
        if method == "POST":
            if "RemoteBuild=false" not in url:
                raise urllib.error.HTTPError(url, 400, "ship a built package", {}, io.BytesIO(b""))
            names = set(zipfile.ZipFile(io.BytesIO(request.data)).namelist())
            needed = {"host.json", "function_app.py"}
            needed.add(".python_packages/lib/site-packages/azure/functions/__init__.py")
            status = 4 if needed <= names else 3
            log["deployments"].append({"app": app, "files": sorted(names), "status": status})
            save(log)
            return Response(202, json.dumps(f"d{len(log['deployments'])}").encode())
        number = int(url.rsplit("/d", 1)[1])
        deployment = log["deployments"][number - 1]
        text = "" if deployment["status"] == 4 else f"missing {sorted(needed_missing(deployment))}"
        body = {"id": f"d{number}", "status": deployment["status"], "complete": True, "status_text": text}
        return Response(200, json.dumps(body).encode())

    def needed_missing(deployment):
        return {"host.json", "function_app.py"} - set(deployment["files"])

    def fake_sleep(seconds):
        clock_path = os.environ["DS_CLOCK"]
        now = float(open(clock_path).read())
        open(clock_path, "w").write(str(now + seconds))

    import time
    urllib.request.urlopen = kudu
    time.sleep = fake_sleep
    time.monotonic = lambda: float(open(os.environ["DS_CLOCK"]).read())
    if args[:2] == ["-m", "pip"]:
        sys.exit(pip(args[3:] if args[2:3] == ["install"] else args[2:]))
    if args[:2] == ["-m", "ensurepip"]:
        sys.exit(0)
    if args[:1] == ["-c"]:
        sys.argv = ["-c", *args[2:]]
        exec(compile(args[1], "<string>", "exec"), {"__name__": "__main__"})
        sys.exit(0)
    sys.argv = args
    runpy.run_path(args[0], run_name="__main__")
    '''
)

FAKE_SLEEP = (
    '#!/bin/sh\nexec "$DS_REAL_PYTHON" -S -c "import sys; t = float(open(sys.argv[1]).read()); '
    'open(sys.argv[1], \'w\').write(str(t + float(sys.argv[2])))" "$DS_CLOCK" "$1"\n'
)
FAKE_DATE = (
    '#!/bin/sh\n[ "$1" = "+%s" ] || exit 2\n"$DS_REAL_PYTHON" -S -c '
    '"import sys; print(1767225600 + int(float(open(sys.argv[1]).read())))" "$DS_CLOCK"\n'
)


@dataclass
class ScriptRun:
    """What one run did: the blobs, the Kudu deployments, pip's and az's calls, the clock."""

    state: dict[str, Any]
    log: str
    seconds: float


class PublicScripts:
    """The deployment script service for scripts without a network of their own, over one program run."""

    def __init__(self, run: ProgramRun) -> None:
        self.run = run

    def identity(self, script: Registration) -> Registration:
        """The identity `script` runs as, once the service would start it."""
        return admitted_identity(self.run, script)

    def roles(self, script: Registration, identity: Registration) -> list[tuple[str, Registration]]:
        """(role id, the resource its scope names) for each role of the identity ordered before `script`."""
        before = dependency_closure(self.run, script)
        found = []
        for role in self.run.of_type(ROLE_ASSIGNMENT):
            if role.inputs["principalId"] != principal_id(identity) or role.urn not in before:
                continue
            (scope_urn,) = role.property_dependencies["scope"]
            (scoped,) = [r for r in self.run.resources if r.urn == scope_urn]
            found.append((role.inputs["roleDefinitionId"].rsplit("/", 1)[1], scoped))
        return found

    def validate(self, script: Registration) -> tuple[Registration, list[tuple[str, Registration]]]:
        cli_image(script.inputs.get("azCliVersion", ""))
        identity = admitted_identity(self.run, script)
        roles = self.roles(script, identity)
        return identity, roles

    def execute(
        self, script: Registration, workdir: Path, state: dict[str, Any] | None = None, role_delay: float = 0
    ) -> ScriptRun:
        """Validate `script`, then run its content; RefusedError with its log when it fails."""
        identity, roles = self.validate(script)
        grants, secrets = [], []
        publishers: dict[str, list[str]] = {}
        for role, scoped in roles:
            if role in BLOB_WRITERS and scoped.type == "azure-native:storage:StorageAccount":
                grants.append(scoped.inputs["accountName"])
            elif role in BLOB_WRITERS and scoped.type == "azure-native:storage:BlobContainer":
                grants.append(f"{scoped.inputs['accountName']}/{scoped.inputs['containerName']}")
            elif role in PUBLISHERS and scoped.type == "azure-native:web:WebApp":
                publishers.setdefault(scoped.inputs["name"], []).append(client_id(identity))
            elif role == SECRETS_USER and scoped.type == "azure-native:keyvault:Secret":
                secrets.append(f"{scoped.inputs['vaultName']}/{scoped.inputs['secretName']}")
        workdir.mkdir(parents=True, exist_ok=True)
        bin_dir = workdir / "bin"
        bin_dir.mkdir(exist_ok=True)
        (workdir / "az.py").write_text(FAKE_AZ)
        (workdir / "boot.py").write_text(BOOT)
        wrappers = {
            "az": '#!/bin/sh\nexec "$DS_REAL_PYTHON" -S "$DS_WORK/az.py" "$@"\n',
            "python3": '#!/bin/sh\nexec "$DS_REAL_PYTHON" -S "$DS_WORK/boot.py" "$@"\n',
            "sleep": FAKE_SLEEP,
            "date": FAKE_DATE,
        }
        for name, text in wrappers.items():
            (bin_dir / name).write_text(text)
            (bin_dir / name).chmod(stat.S_IRWXU)
        state_path, clock = workdir / "state.json", workdir / "clock"
        initial = {"blobs": {}, "calls": [], "pip": [], "deployments": [], **(state or {})}
        initial["calls"], initial["pip"] = [], []
        state_path.write_text(json.dumps(initial))
        clock.write_text("0")
        web_apps = self.run.of_type("azure-native:web:WebApp")
        environment = {
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "HOME": str(workdir),
            "TMPDIR": str(workdir),
            "AZ_SCRIPTS_OUTPUT_PATH": str(workdir / "outputs.json"),
            "DS_WORK": str(workdir),
            "DS_STATE": str(state_path),
            "DS_CLOCK": str(clock),
            "DS_REAL_PYTHON": sys.executable,
            "DS_TOKEN": client_id(identity),
            "DS_BLOB_GRANTS": json.dumps(grants),
            "DS_SECRET_GRANTS": json.dumps(secrets),
            "DS_PUBLISHERS": json.dumps(publishers),
            "DS_ROLE_DELAY": str(role_delay),
            "DS_APP_PYTHON": _app_python(web_apps[0]) if web_apps else "",
        }
        result = subprocess.run(
            ["bash", "-c", script.inputs["scriptContent"]],
            env=environment,
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            raise RefusedError(f"DeploymentScriptError ({result.returncode}): {result.stderr[-3000:]}")
        final = json.loads(state_path.read_text())
        final["outputs"] = json.loads((workdir / "outputs.json").read_text())
        return ScriptRun(state=final, log=result.stdout, seconds=float(clock.read_text()))


def _app_python(app: Registration) -> str:
    """The Python version the app runs (Flex: functionAppConfig.runtime; others: linuxFxVersion)."""
    runtime = ((app.inputs.get("functionAppConfig") or {}).get("runtime") or {}).get("version")
    if runtime:
        return str(runtime)
    return re.sub(r"^Python\|", "", app.inputs["siteConfig"].get("linuxFxVersion", ""))
