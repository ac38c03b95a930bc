"""`KeyReadCheck`: a deployment script, signed in as SignalR's identity, that reads SignalR's upstream
key in Key Vault until Key Vault lets it, so that SignalR starts only once its first read succeeds.

SignalR Service resolves the Key Vault reference in its upstream URL with its own identity when it
is created (or its upstream or identity changes), and then only every 30 minutes (Azure SignalR,
"Upstream endpoints": Key Vault secret reference). A Key Vault role assignment takes up to 10 minutes
to apply (Key Vault, "Azure RBAC": role assignment latency). So a SignalR created right after its
role could fail that first read and lose connection events for half an hour. This checks the thing
itself, as the identity that needs it, instead of waiting a fixed time (it replaces the Python
dynamic `RolePropagation`, which no engine but a Python program's can run). The script reruns only
when the secret or the role assignment changes (both are in its content, hence in its tag), and
prints the secret's id, never its value. Sources: docs/sources/deployment-scripts.md,
docs/sources/host-keys.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi

from components.shared import Role, RoleAssignment, assign_role
from components.shared.deployment_script import ROLE_WAIT_SECONDS, run_script
from components.shared.identity import UserAssignedIdentity
from components.shared.interface import ComponentArgs

TYPE_TOKEN = "broadcast:function_app:KeyReadCheck"
READ_DEADLINE_SECONDS = ROLE_WAIT_SECONDS + 300
"""The role's documented 10 minutes, and five more of margin, before the script gives up."""

READ_UNTIL_ALLOWED = f"""
# Key Vault answers 403 (Forbidden, ForbiddenByRbac) until the role reaches its data plane: wait that
# out; any other failure fails the script at once.
deadline=$(( $(date +%s) + {READ_DEADLINE_SECONDS} ))
while true; do
  if out="$(az keyvault secret show --id "$SECRET_URI" --query id -o tsv 2>&1)"; then
    printf 'readable as this identity: %s\\n' "$out"
    printf '{{"readable": "%s"}}\\n' "$out" > "$AZ_SCRIPTS_OUTPUT_PATH"
    exit 0
  fi
  case "$out" in
    *Forbidden*) ;;
    *) printf '%s\\n' "$out" >&2; exit 1 ;;
  esac
  if [ "$(date +%s)" -ge "$deadline" ]; then
    printf 'refused for {READ_DEADLINE_SECONDS} s (is the role assignment in effect?): %s\\n' "$out" >&2
    exit 1
  fi
  sleep 15
done
"""


def script_content(secret_uri: str, role_assignment_id: str) -> str:
    """The script: which secret, as of which role assignment (both in the tag), then the loop."""
    return "\n".join(
        [
            "set -euo pipefail",
            f"SECRET_URI='{secret_uri}'",
            f"# as of role assignment {role_assignment_id}",
            READ_UNTIL_ALLOWED,
        ]
    )


@dataclass(kw_only=True)
class KeyReadCheckArgs(ComponentArgs):
    """Arguments of `KeyReadCheck`."""

    identity: UserAssignedIdentity
    """Required. The identity that must be able to read the secret (SignalR's)."""
    vault_id: pulumi.Input[str]
    """Required. The vault's resource id: the identity gets Reader on it, so that the deployment
    script service can sign it in (an identity with no Azure role sees no subscription)."""
    secret_uri: pulumi.Input[str]
    """Required. The secret's versionless URI."""
    role_assignment_id: pulumi.Input[str]
    """Required. The role assignment that lets the identity read it (the script reruns when it
    changes)."""
    after: Sequence[pulumi.Resource] = field(default_factory=list)
    """Optional. What must exist before the script runs. Default: nothing more."""


class KeyReadCheck(pulumi.ComponentResource):
    """A deployment script that ends once an identity can read a Key Vault secret."""

    name: pulumi.Output[str]
    """The deployment script's name."""
    resource_id: pulumi.Output[str]
    """The deployment script's resource id."""

    def __init__(self, name: str, args: KeyReadCheckArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        sign_in = assign_role(
            f"{name}-reader",
            args.vault_id,
            RoleAssignment(
                principal_id=args.identity.principal_id,
                role=Role.READER,
                description="The key read check signs in as this identity (vault metadata only)",
            ),
            self,
        )
        content = pulumi.Output.all(args.secret_uri, args.role_assignment_id).apply(
            lambda values: script_content(values[0], values[1])
        )
        self.script = run_script(
            f"{name}-script",
            args,
            abbreviation="ds-kvread",
            identity=args.identity,
            content=content,
            parent=self,
            after=[sign_in, *args.after],
        )
        self.name = self.script.name
        self.resource_id = self.script.id
        self.register_outputs({"name": self.name, "resource_id": self.resource_id})
