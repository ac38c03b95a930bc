"""Code deployment: the function package built and deployed by an Azure deployment script, so any
Pulumi language's engine can run the step and nothing is built on the deploying machine.

Azure resources: a `managedidentity.UserAssignedIdentity` the script runs as, its
`authorization.RoleAssignment`s, and the `resources.AzureCliScript`.

The app's sources and `requirements.txt` travel inside the script (a base64 tar.gz heredoc). In its
container (Azure Linux 3.0, python3 3.12) the script installs the requirements with pip for the
Functions host, not for itself (`--platform manylinux2014_x86_64 --implementation cp
--python-version <the app's> --only-binary=:all:`), builds the zip (`data_plane.app_deployment`), and:
- on Flex Consumption publishes it with OneDeploy (Website Contributor on the app);
- on Elastic Premium / Dedicated uploads it as `functions-<hash>.zip` to the app's package container
  (Storage Blob Data Contributor on that container only), which `WEBSITE_RUN_FROM_PACKAGE` names: a
  new hash is a new URL, so the app restarts onto it. The app is created after the upload.
The package's hash (sources, requirements, platform, Python) is in the script, so new code reruns it
and nothing else does.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi

from artifacts.function_package import PLATFORM, SITE_PACKAGES, FunctionPackage, package_sources
from components.shared import ComponentArgs, Role, RoleAssignment, assign_role
from components.shared.deployment_script import (
    UNTIL_AUTHORIZED,
    archive,
    run_script,
    script_identity,
    unpack,
    within_budget,
)

TYPE_TOKEN = "broadcast:function_app:CodeDeployment"
DEPLOYER = Path(__file__).resolve().parent.parent / "data_plane" / "app_deployment.py"
# The image's Python may come without pip (Azure Linux packages it apart), as in the schema runner.
ENSURE_PIP = (
    "python3 -m pip --version >/dev/null 2>&1 || python3 -m ensurepip --upgrade "
    "|| tdnf install -y python3-pip"
)


@dataclass(frozen=True, kw_only=True)
class OneDeployTarget:
    """A Flex Consumption app: OneDeploy through its SCM host."""

    app_id: pulumi.Input[str]
    scm_host: pulumi.Input[str]


@dataclass(frozen=True, kw_only=True)
class PackageBlobTarget:
    """An Elastic Premium / Dedicated app's package container, the app reading the blob later."""

    account_name: pulumi.Input[str]
    account_id: pulumi.Input[str]
    container_name: str
    container_id: pulumi.Input[str]


@dataclass(kw_only=True)
class CodeDeploymentArgs(ComponentArgs):
    """Arguments of `CodeDeployment`."""

    package: FunctionPackage
    """Required. The planned package (its hash and the host's Python version)."""
    target: OneDeployTarget | PackageBlobTarget
    """Required. Where the package goes."""
    after: Sequence[pulumi.Resource] = ()
    """Optional. What must exist before the code may start (the schema, the app's roles). Default: none."""


def blob_name(package: FunctionPackage) -> str:
    """The run-from-package blob's name: new code, new name, new URL."""
    return f"functions-{package.sha256}.zip"


def script_content(package: FunctionPackage, target: dict[str, str]) -> str:
    """The bash the container runs: unpack, install for the host, build the zip, deploy it."""
    sources = package_sources()
    bundle = archive(
        {
            **{f"app/{p}": data for p, data in sources.items()},
            "deploy/app_deployment.py": DEPLOYER.read_bytes(),
        }
    )
    quoted = shlex.quote
    install = [
        "python3 -m pip install --quiet --disable-pip-version-check --no-compile",
        f'--target "$work/app/{SITE_PACKAGES}" --platform {PLATFORM} --implementation cp',
        f"--python-version {quoted(package.python_version)} --only-binary=:all:",
        '-r "$work/app/requirements.txt"',
    ]
    if "scm_host" in target:
        deploy = [
            'python3 "$work/deploy/app_deployment.py" onedeploy "$work/package.zip" '
            + quoted(target["scm_host"])
        ]
    else:
        deploy = [
            UNTIL_AUTHORIZED,
            "until_authorized az storage blob upload --auth-mode login "
            f"--account-name {quoted(target['account'])} --container-name {quoted(target['container'])} "
            f'--name {quoted(blob_name(package))} --file "$work/package.zip" '
            "--content-type application/zip --overwrite true --only-show-errors >/dev/null",
        ]
    return "\n".join(
        [
            "set -euo pipefail",
            f"# package {package.sha256}",
            'work="$(mktemp -d)"',
            *unpack("BUNDLE", bundle, "$work"),
            ENSURE_PIP,
            " ".join(install),
            'python3 "$work/deploy/app_deployment.py" build "$work/app" "$work/package.zip"',
            *deploy,
            f'printf \'{{"package": "{package.sha256}"}}\\n\' > "$AZ_SCRIPTS_OUTPUT_PATH"',
            "",
        ]
    )


class CodeDeployment(pulumi.ComponentResource):
    """The function package, built and deployed by a deployment script as an identity of its own."""

    name: pulumi.Output[str]
    """The deployment script's name."""
    resource_id: pulumi.Output[str]
    """The deployment script's resource id."""

    def __init__(
        self, name: str, args: CodeDeploymentArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        identity = script_identity(f"{name}-identity", args, "id-code", self)
        target = args.target
        if isinstance(target, OneDeployTarget):
            # Kudu's publish checks Microsoft.Web/sites/publish/Action, in Website Contributor
            # (Microsoft.Web/sites/*), which also lets the CLI's sign-in see the subscription.
            grants = [("publisher", target.app_id, Role.WEBSITE_CONTRIBUTOR, "publishes the app's code")]
            where = pulumi.Output.all(scm_host=target.scm_host)
        else:
            grants = [
                (
                    "blob-writer",
                    target.container_id,
                    Role.STORAGE_BLOB_DATA_CONTRIBUTOR,
                    "uploads the package",
                ),
                ("reader", target.account_id, Role.READER, "signs in (sees the subscription)"),
            ]
            where = pulumi.Output.all(account=target.account_name, container=target.container_name)
        roles = [
            assign_role(
                f"{name}-{suffix}",
                scope,
                RoleAssignment(
                    principal_id=identity.principal_id, role=role, description=f"The code script {why}"
                ),
                self,
            )
            for suffix, scope, role, why in grants
        ]
        package = args.package
        content = where.apply(
            lambda values: within_budget("code deployment", script_content(package, values))
        )
        self.script = run_script(
            f"{name}-script",
            args,
            abbreviation="ds-code",
            identity=identity,
            content=content,
            parent=self,
            after=[*roles, *args.after],
        )
        self.name = self.script.name
        self.resource_id = self.script.id
        self.register_outputs({"name": self.name, "resource_id": self.resource_id})
