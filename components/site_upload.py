"""Site upload: the site's files and its config.json put into the static website's `$web` container
by an Azure deployment script, so any Pulumi language's engine can run the step.

Azure resources: a `managedidentity.UserAssignedIdentity` the script runs as, its
`authorization.RoleAssignment`s on the site's storage account (Storage Blob Data Contributor to write
blobs; Reader so the CLI's sign-in sees the subscription), and the `resources.AzureCliScript`.

The files travel inside the script (a base64 tar.gz heredoc): shared-key access is off on the account,
so azure-native's `storage.Blob` (which signs with the account key) cannot write them, and the
script's `az storage blob upload --auth-mode login` uses the identity's token. Each blob gets its
content type and cache control; blobs no longer in the set are deleted. The script's content holds
config.json, so a new API address or any changed file reruns it, and nothing else does.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

from artifacts.site_files import CONFIG_PATH, REVALIDATE, SiteFile
from components.shared import ComponentArgs, Role, RoleAssignment, assign_role
from components.shared.deployment_script import (
    UNTIL_AUTHORIZED,
    archive,
    run_script,
    script_identity,
    unpack,
    within_budget,
)

TYPE_TOKEN = "broadcast:static_site:SiteUpload"
CONTAINER = "$web"
CONFIG_CONTENT_TYPE = "application/json"


@dataclass(frozen=True, kw_only=True)
class ShippedFile:
    """One blob as the script writes it."""

    data: bytes
    content_type: str
    cache_control: str


@dataclass(kw_only=True)
class SiteUploadArgs(ComponentArgs):
    """Arguments of `SiteUpload`."""

    account_name: pulumi.Input[str]
    """Required. The site's storage account."""
    account_id: pulumi.Input[str]
    """Required. Its resource id: the scope of the script identity's roles."""
    files: Mapping[str, SiteFile]
    """Required. The site's files by path (`artifacts.site_files.site_files`): read now, shipped inline."""
    config: pulumi.Input[str]
    """Required. The generated config.json (it names the API)."""
    after: list[pulumi.Resource]
    """Required. What must exist first: the static website (it creates `$web`)."""


def shipped(files: Mapping[str, SiteFile], config: str) -> dict[str, ShippedFile]:
    """Every blob of the site, config.json included."""
    blobs = {
        path: ShippedFile(
            data=entry.source.read_bytes(), content_type=entry.content_type, cache_control=entry.cache_control
        )
        for path, entry in files.items()
    }
    blobs[CONFIG_PATH] = ShippedFile(
        data=config.encode(), content_type=CONFIG_CONTENT_TYPE, cache_control=REVALIDATE
    )
    return blobs


def script_content(account_name: str, blobs: Mapping[str, ShippedFile]) -> str:
    """The bash the container runs: unpack, upload each blob with its headers, delete the rest."""
    quoted = shlex.quote
    uploads = [
        f"upload {quoted(path)} {quoted(blob.content_type)} {quoted(blob.cache_control)}"
        for path, blob in sorted(blobs.items())
    ]
    keep = " ".join(f"[{quoted(path)}]=1" for path in sorted(blobs))
    where = (
        f'--auth-mode login --account-name "$account" --container-name {quoted(CONTAINER)} --only-show-errors'
    )
    lines = [
        "set -euo pipefail",
        f"account={quoted(account_name)}",
        'work="$(mktemp -d)"',
        UNTIL_AUTHORIZED,
        *unpack("SITE", archive({path: blob.data for path, blob in blobs.items()}), "$work/site"),
        "upload() {",
        f'  until_authorized az storage blob upload {where} --name "$1" --file "$work/site/$1" '
        '--content-type "$2" --content-cache-control "$3" --overwrite true >/dev/null',
        "}",
        *uploads,
        f"declare -A keep=({keep})",
        f"until_authorized az storage blob list {where} --num-results '*' --query '[].name' --output tsv "
        '> "$work/present"',
        "deleted=0",
        "while IFS= read -r name; do",
        '  [ -z "$name" ] || [ -n "${keep[$name]:-}" ] && continue',
        f'  until_authorized az storage blob delete {where} --name "$name" >/dev/null',
        "  deleted=$((deleted + 1))",
        'done < "$work/present"',
        f'printf \'{{"uploaded": {len(blobs)}, "deleted": %d}}\\n\' "$deleted" > "$AZ_SCRIPTS_OUTPUT_PATH"',
        "",
    ]
    return "\n".join(lines)


class SiteUpload(pulumi.ComponentResource):
    """The site's blobs in `$web`, written by a deployment script as an identity of its own."""

    name: pulumi.Output[str]
    """The deployment script's name."""
    resource_id: pulumi.Output[str]
    """The deployment script's resource id."""

    def __init__(self, name: str, args: SiteUploadArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        identity = script_identity(f"{name}-identity", args, "id-site-upload", self)
        roles = [
            assign_role(
                f"{name}-{suffix}",
                args.account_id,
                RoleAssignment(principal_id=identity.principal_id, role=role, description=why),
                self,
            )
            for suffix, role, why in (
                ("blob-writer", Role.STORAGE_BLOB_DATA_CONTRIBUTOR, "The site upload script writes $web"),
                # The service signs the CLI in first; an identity with no control-plane role sees no
                # subscription (MicrosoftDocs/azure-docs#60266).
                ("reader", Role.READER, "The site upload script's sign-in sees the subscription"),
            )
        ]
        files = dict(args.files)
        content = pulumi.Output.all(args.account_name, args.config).apply(
            lambda parts: within_budget("site upload", script_content(parts[0], shipped(files, parts[1])))
        )
        script = run_script(
            f"{name}-script",
            args,
            abbreviation="ds-site",
            identity=identity,
            content=content,
            parent=self,
            after=[*roles, *args.after],
        )
        self.script = script
        self.name = script.name
        self.resource_id = script.id
        self.register_outputs({"name": self.name, "resource_id": self.resource_id})
