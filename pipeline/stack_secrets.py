"""Before the first Pulumi command of a job: can this job decrypt the stack's secrets, and would
Pulumi pick the provider the stack was made with rather than a default?

`python -m pipeline.stack_secrets <stack> [--github-output FILE]` reads `Pulumi.<stack>.yaml` (when
there is one) and the job's environment, and exits 0 after writing `provider=<provider>` and
`secrets-provider=<what a new stack is created with>` (empty when the stack file or Pulumi Cloud
decides), or names what is missing as error annotations and exits 1. Pulumi itself would go on: an
unset secret is the empty string in a workflow, and the passphrase provider accepts an empty
passphrase, so a stack would be created (or its config re-encrypted) under a passphrase nobody chose.

It also stops a job whose self-managed backend or Key Vault key is not its own environment's (issue
29): each state (`dev`, `test`, `prod`, `review`) lives in a container (or bucket, or directory)
whose name ends with `-<state>` and is encrypted with a key whose name does, so a variable left at
repository level, shared by every environment, fails here instead of letting the review identity
reach production's state.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPENDABOT = "dependabot[bot]"
REVIEW_STACK = re.compile(r"pr-[1-9][0-9]*")
DIY_SCHEMES = ("azblob://", "s3://", "gs://", "file://")


def state_of(stack: str) -> str:
    """Which state a stack lives in: `review` for every `pr-<n>`, else the stack's own name."""
    return "review" if REVIEW_STACK.fullmatch(stack) else stack


def dependabot_secret(name: str, stack: str) -> str:
    """The Dependabot secret a run that Dependabot triggers reads instead of `name`: one per state
    (`PULUMI_CONFIG_PASSPHRASE_REVIEW` for every review stack), since Dependabot secrets have no
    environments. GitHub allows letters, digits and underscores only."""
    return f"{name}_{re.sub(r'[^A-Za-z0-9_]', '_', state_of(stack)).upper()}"


def _names(url: str) -> list[str]:
    """The container, bucket or directory names a backend or key URL holds (scheme, query and host
    of a Key Vault left out)."""
    rest = url.split("://", 1)[-1].split("?", 1)[0]
    if url.startswith("azurekeyvault://"):
        rest = rest.split("/", 1)[-1]
    return [part for part in rest.split("/") if part]


def owns(url: str, state: str) -> bool:
    """Whether a backend (or key) URL names the state as its own: a name that is the state or ends
    with `-<state>` / `_<state>` (`nonprod` is not prod's)."""
    return any(name == state or name.endswith((f"-{state}", f"_{state}")) for name in _names(url))


def scope_errors(stack: str, backend: str, provider: str) -> list[str]:
    """What lets another environment's identity at this stack's state, as far as the job can see:
    a self-managed backend or an Azure Key Vault key that is not named for the stack's state."""
    state, errors = state_of(stack), []
    if backend.startswith(DIY_SCHEMES) and not owns(backend, state):
        errors.append(
            f"PULUMI_BACKEND_URL {backend} is not {state}'s own state: each environment sets its own "
            f"PULUMI_BACKEND_URL variable, naming a container (or bucket, or directory) that ends with "
            f"-{state} and that only {state}'s deploying identity can write (docs/ci-cd.md, Who can write "
            "which state); delete any repository-level PULUMI_BACKEND_URL"
        )
    if provider.startswith("azurekeyvault://") and not owns(provider, state):
        errors.append(
            f"the secrets provider {provider} is not {state}'s own key: each state has its own Key Vault "
            f"key, named with -{state}, and only the identities of its environments may use it"
        )
    return errors


@dataclass(frozen=True)
class Verdict:
    """The provider the stack's secrets use, the one to name when creating the stack (empty: the
    stack file or Pulumi Cloud decides), and what stops the job (empty when nothing)."""

    provider: str
    create_with: str
    errors: tuple[str, ...]


def is_pulumi_cloud(backend_url: str) -> bool:
    """An empty backend URL (or an https one) is Pulumi Cloud; azblob://, file://... are DIY."""
    return backend_url == "" or backend_url.startswith("https://")


def provider_of(settings: Mapping[str, Any], variable: str, cloud: bool) -> str | None:
    """The stack's secrets provider: its committed settings first (`secretsprovider`, or
    `encryptionsalt` for the passphrase provider), then the PULUMI_SECRETS_PROVIDER variable, then
    Pulumi Cloud's own; None when nothing names one (Pulumi would default to the passphrase)."""
    if settings.get("secretsprovider"):
        return str(settings["secretsprovider"])
    if settings.get("encryptionsalt"):
        return "passphrase"
    if variable:
        return variable
    return "service" if cloud else None


def check(stack: str, settings: Mapping[str, Any], env: Mapping[str, str]) -> Verdict:
    """What a job running Pulumi for `stack` lacks, from the stack file's settings and its env."""
    backend = env.get("PULUMI_BACKEND_URL", "")
    cloud = is_pulumi_cloud(backend)
    dependabot = env.get("GITHUB_ACTOR", "") == DEPENDABOT

    def where(name: str) -> str:
        if dependabot:
            return (
                f"a Dependabot secret named {dependabot_secret(name, stack)} (Dependabot runs get "
                "Dependabot secrets, not Actions secrets)"
            )
        return "a secret of the job's environment"

    errors = []
    if cloud and not env.get("PULUMI_ACCESS_TOKEN"):
        errors.append(
            "PULUMI_ACCESS_TOKEN is empty: the Pulumi Cloud backend needs it as "
            + where("PULUMI_ACCESS_TOKEN")
            + " (a token of a team that can reach this environment's stacks only, never an "
            "organization token)"
        )
    variable = env.get("PULUMI_SECRETS_PROVIDER", "")
    provider = provider_of(settings, variable, cloud)
    from_file = bool(settings.get("secretsprovider") or settings.get("encryptionsalt"))
    if provider is None:
        errors.append(
            f"no secrets provider for stack {stack} on {backend}: commit Pulumi.{stack}.yaml's encryption "
            "settings (docs/ci-cd.md, Before the first CI deploy) or set the PULUMI_SECRETS_PROVIDER "
            "variable; "
            "Pulumi would otherwise pick the passphrase provider by default"
        )
    elif provider == "passphrase" and not env.get("PULUMI_CONFIG_PASSPHRASE"):
        errors.append(
            f"PULUMI_CONFIG_PASSPHRASE is empty but stack {stack} uses the passphrase provider: set it as "
            f"{where('PULUMI_CONFIG_PASSPHRASE')}; an empty passphrase would encrypt the "
            "stack's secrets with nothing"
        )
    errors += scope_errors(stack, backend, provider or "")
    create_with = variable if provider == variable and not from_file else ""
    return Verdict(provider or "", create_with, tuple(errors))


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Print provider=..., or each missing thing as a workflow error annotation."""
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stack_secrets", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("stack")
    parser.add_argument("--root", type=Path, default=ROOT, help="where Pulumi.<stack>.yaml is")
    parser.add_argument("--github-output", type=Path, help="the file to append the outputs to")
    arguments = parser.parse_args(argv)
    path = arguments.root / f"Pulumi.{arguments.stack}.yaml"
    try:
        settings = (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}
    except yaml.YAMLError as problem:
        print(f"::error file={path.name}::{path.name} is not YAML: {problem}")
        return 1
    verdict = check(arguments.stack, settings, os.environ if env is None else env)
    for message in verdict.errors:
        print(f"::error::{message}")
    if verdict.errors:
        return 1
    outputs = f"provider={verdict.provider}\nsecrets-provider={verdict.create_with}\n"
    print(outputs, end="")
    if arguments.github_output:
        with arguments.github_output.open("a") as output:
            output.write(outputs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
