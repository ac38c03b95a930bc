"""The deploy command's real tools: the Pulumi CLI through the Automation API, the Azure sign-in the
deploy-time resources use, the preflight's readers, the smoke test and the cost estimate."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from pathlib import Path

from pulumi import automation as auto

from deploy.steps import Tools
from settings import Settings


def pulumi_version() -> str:
    """The CLI's version; `PulumiCommand` runs `pulumi version` and raises FileNotFoundError when
    there is no CLI, InvalidVersionError when it is older than the SDK needs."""
    return str(auto.PulumiCommand().version)


def select_stack(name: str, work_dir: Path) -> auto.Stack:
    """The existing stack (`pulumi stack select`); StackNotFoundError when the backend has none."""
    return auto.select_stack(name, work_dir=str(work_dir))


def create_stack(name: str, work_dir: Path) -> auto.Stack:
    """A new stack from `Pulumi.<name>.yaml` (`pulumi stack init`)."""
    return auto.create_stack(name, work_dir=str(work_dir))


def access_token() -> str:
    """An ARM token of the identity the deploy-time resources use (CLI login; OIDC in CI)."""
    from data_plane.azure_http import entra_token

    return entra_token()


def run_smoke(arguments: list[str]) -> int:
    """`python -m smoke` in this process."""
    from smoke.__main__ import main

    return main(arguments)


def estimate(settings: Settings, stack: str) -> str:
    """The monthly estimate from the committed price snapshot."""
    from cost.estimate import estimate_settings, render
    from cost.prices import load_snapshot

    return render(stack, estimate_settings(settings, load_snapshot()))


def backend_url() -> str:
    """The backend the CLI is logged in to (`pulumi whoami --json`: its `url`)."""
    return str(auto.LocalWorkspace(work_dir=str(Path(__file__).resolve().parent.parent)).who_am_i().url or "")


def secret_reader() -> Callable[[str], str] | None:
    """getpass on a terminal (nothing echoed); None without one (CI, a pipe)."""
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        return None
    return lambda prompt: getpass.getpass(prompt)


def ask(question: str) -> bool:
    """y/N on a terminal; no terminal means no (CI passes --yes)."""
    if not sys.stdin.isatty():
        print(f"{question} no terminal to answer on: pass --yes", file=sys.stderr)
        return False
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False


def real_tools() -> Tools:
    """The tools `python -m deploy` runs with."""
    from preflight.program import arm_reader, odbc_drivers

    return Tools(
        pulumi_version=pulumi_version,
        select_stack=select_stack,
        create_stack=create_stack,
        access_token=access_token,
        arm_reader=arm_reader,
        odbc_drivers=odbc_drivers,
        smoke=run_smoke,
        estimate=estimate,
        confirm=ask,
        backend_url=backend_url,
        ask_secret=secret_reader(),
        out=sys.stdout,
    )
