"""Data-plane steps of `pulumi up` as Azure deployment scripts (`resources.AzureCliScript`), which any
Pulumi language's engine can run: ARM starts a container with the Azure CLI, signed in as a
user-assigned identity, runs the script, and answers when it ends (a failing script fails `up`).

What every such step shares lives here: the image, retention and timeout; the payload carried inline in
the script (a deterministic base64 tar.gz heredoc, never environment variables, which Microsoft caps at
64 KB) and the bound on its size; the retry that waits out a role assignment still propagating; and
the identity the script runs as, created per step so each holds only the roles its step needs.

ARM reruns a script only when one of its properties changes ("If there are no changes to any of the
deploymentScripts resource properties, including the inline script, the script doesn't run"):
`force_update_tag` is the hash of what the step ships, so the same content never reruns and new
content always does. No storage account is named: the service creates a temporary one and deletes it
with the container (`cleanupPreference: Always`). Sources: docs/sources/deployment-scripts.md.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import tarfile
from collections.abc import Mapping, Sequence

import pulumi
from pulumi_azure_native import resources

from components.shared.identity import UserAssignedIdentity, create_identity
from components.shared.interface import ComponentArgs

AZ_CLI_VERSION = "2.84.0"
"""The Azure CLI image (Azure Linux 3.0, python3 3.12), as `components.schema_runner` uses: not a
release of the past 30 days ("Don't use CLI versions that were released within the past 30 days")."""
RETENTION = "PT1H"
"""How long Azure keeps the script resource and its log after it ends (1 to 26 hours)."""
TIMEOUT = "PT30M"
"""Ten minutes of role propagation, the work itself, and margin."""
RESOURCE_DEFINITION_LIMIT = 1_000_000
"""ARM: "each resource definition can't exceed 1 MB" (Learn, "Resolve errors for job size exceeded";
read as 10^6 bytes, the stricter of 1 MB and 1 MiB). No limit is documented for `scriptContent`
itself; the REST spec gives it no maxLength."""
SCRIPT_CONTENT_BUDGET = RESOURCE_DEFINITION_LIMIT // 2
"""Our bound on a script's content: half the resource limit, leaving room for the request's other
properties and for the site to grow before anyone must ship it another way."""
ROLE_WAIT_SECONDS = 600
"""Azure RBAC: "it can take up to 10 minutes for changes to take effect" (troubleshooting guide)."""
_FIXED_MTIME = 315532800  # 1980-01-01: the same files give the same archive, hence the same tag

UNTIL_AUTHORIZED = f"""until_authorized() {{
  # Storage answers 403 AuthorizationPermissionMismatch until a new role assignment reaches its data
  # plane (up to {ROLE_WAIT_SECONDS // 60} minutes): wait that out; any other failure fails the script.
  local deadline=$(( $(date +%s) + {ROLE_WAIT_SECONDS} )) out
  while true; do
    if out="$("$@" 2>&1)"; then printf '%s\\n' "$out"; return 0; fi
    case "$out" in
      *AuthorizationPermissionMismatch*|*AuthorizationFailure*) ;;
      *) printf '%s\\n' "$out" >&2; return 1 ;;
    esac
    if [ "$(date +%s)" -ge "$deadline" ]; then
      printf 'still refused after {ROLE_WAIT_SECONDS} s (role assignment not in effect?): %s\\n' "$out" >&2
      return 1
    fi
    sleep 15
  done
}}"""
"""A bash function: run a command, retrying while Storage refuses it for want of a propagating role."""


def archive(files: Mapping[str, bytes]) -> str:
    """The files as a base64 tar.gz, byte-identical for identical files (sorted, fixed times and
    modes, no gzip timestamp), wrapped at 76 columns for a heredoc."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(files):
            info = tarfile.TarInfo(path)
            info.size, info.mtime, info.mode = len(files[path]), _FIXED_MTIME, 0o644
            tar.addfile(info, io.BytesIO(files[path]))
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0, compresslevel=9) as stream:
        stream.write(raw.getvalue())
    text = base64.b64encode(packed.getvalue()).decode()
    return "\n".join(text[i : i + 76] for i in range(0, len(text), 76))


def unpack(marker: str, archive_text: str, target: str) -> list[str]:
    """Bash lines that unpack an `archive` into `target` (python3 is in the image; tar may not be)."""
    return [
        f'mkdir -p "{target}"',
        f"base64 -d <<'{marker}' | python3 -c 'import sys, tarfile; "
        f'tarfile.open(fileobj=sys.stdin.buffer, mode="r:gz").extractall(sys.argv[1], filter="data")\' '
        f'"{target}"',
        archive_text,
        marker,
    ]


def content_tag(content: str) -> str:
    """The script's `force_update_tag`: the hash of what it ships."""
    return hashlib.sha256(content.encode()).hexdigest()


def within_budget(step: str, content: str) -> str:
    """`content`, or ValueError when it would not fit comfortably in one ARM request."""
    if len(content.encode()) > SCRIPT_CONTENT_BUDGET:
        size = len(content.encode())
        raise ValueError(
            f"the {step} script is {size} bytes, over {SCRIPT_CONTENT_BUDGET} (half of ARM's "
            f"{RESOURCE_DEFINITION_LIMIT}-byte limit on a resource definition): ship less inline"
        )
    return content


def script_identity(
    name: str, args: ComponentArgs, abbreviation: str, parent: pulumi.Resource
) -> UserAssignedIdentity:
    """The identity one step's script runs as (ARM: "Currently, only user-assigned MSI is supported")."""
    return create_identity(
        name,
        args.naming.name(abbreviation),
        args.resource_group_name,
        args.location,
        dict(args.tags),
        pulumi.ResourceOptions(parent=parent),
    )


def run_script(
    name: str,
    args: ComponentArgs,
    *,
    abbreviation: str,
    identity: UserAssignedIdentity,
    content: pulumi.Input[str],
    parent: pulumi.Resource,
    after: Sequence[pulumi.Resource],
) -> resources.AzureCliScript:
    """The deployment script: runs `content` as `identity` once everything in `after` exists."""
    content_output = pulumi.Output.from_input(content)
    return resources.AzureCliScript(
        name,
        script_name=args.naming.name(abbreviation),
        resource_group_name=args.resource_group_name,
        location=args.location,
        tags=dict(args.tags),
        kind="AzureCLI",
        az_cli_version=AZ_CLI_VERSION,
        identity=resources.ManagedServiceIdentityArgs(
            type=resources.ManagedServiceIdentityType.USER_ASSIGNED,
            user_assigned_identities=[identity.resource_id],
        ),
        script_content=content_output,
        force_update_tag=content_output.apply(content_tag),
        cleanup_preference=resources.CleanupOptions.ALWAYS,
        retention_interval=RETENTION,
        timeout=TIMEOUT,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(after)),
    )
