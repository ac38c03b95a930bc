"""Before the first Pulumi command of a job: can this job decrypt the stack's secrets, and would
Pulumi pick the provider the stack was made with rather than a default?

`python -m pipeline.stack_secrets <stack> [--github-output FILE]` reads `Pulumi.<stack>.yaml` (when
there is one) and the job's environment, and exits 0 after writing `provider=<provider>` and
`secrets-provider=<what a new stack is created with>` (empty when the stack file or Pulumi Cloud
decides), or names what is missing as error annotations and exits 1. Pulumi itself would go on: an
unset secret is the empty string in a workflow, and the passphrase provider accepts an empty
passphrase, so a stack would be created (or its config re-encrypted) under a passphrase nobody chose.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPENDABOT = "dependabot[bot]"


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
    where = (
        f"a Dependabot secret named {{name}}_{stack.upper()} (Dependabot runs get Dependabot secrets, "
        "not Actions secrets)"
        if dependabot
        else "a secret of the job's environment"
    )
    errors = []
    if cloud and not env.get("PULUMI_ACCESS_TOKEN"):
        errors.append(
            "PULUMI_ACCESS_TOKEN is empty: the Pulumi Cloud backend needs it as "
            + where.format(name="PULUMI_ACCESS_TOKEN")
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
            f"{where.format(name='PULUMI_CONFIG_PASSPHRASE')}; an empty passphrase would encrypt the "
            "stack's secrets with nothing"
        )
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
