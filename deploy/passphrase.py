"""The stack's secrets passphrase, when Pulumi needs one: asked on a terminal, never echoed or written.

The Automation API runs every CLI command with `--non-interactive` (installed SDK,
`automation/_cmd.py`), so the CLI cannot ask for the passphrase itself: it reads
`PULUMI_CONFIG_PASSPHRASE`, then `PULUMI_CONFIG_PASSPHRASE_FILE`, and otherwise fails with "passphrase
must be set with PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE environment variables"
(pulumi/pulumi, `pkg/secrets/passphrase/manager.go`, `readPassphrase`). This module decides whether the
stack uses the passphrase provider and, if neither variable is set, asks for it on the terminal and
puts it in this process's environment only, which the CLI it starts inherits (`_cmd.py` runs it with
`{**os.environ, ...}`). Sources: docs/sources/deploy-and-cost.md.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PASSPHRASE = "PULUMI_CONFIG_PASSPHRASE"
PASSPHRASE_FILE = "PULUMI_CONFIG_PASSPHRASE_FILE"
SERVICE_SCHEMES = ("https://", "http://")
"""Pulumi Cloud (app.pulumi.com or self-hosted) is reached over HTTP(S); the self-managed backends
are `file://`, `azblob://`, `s3://`, `gs://`, `postgres://`."""


@dataclass(frozen=True)
class Need:
    """Whether the stack's secrets need a passphrase, and whether it would be a new one."""

    passphrase: bool
    new: bool
    """No `encryptionsalt` in the stack file yet: `pulumi stack init` will set one (asked twice)."""


class PassphraseMissingError(Exception):
    """A passphrase is needed, none is set, and there is no terminal to ask on."""


def stack_document(stack: str, root: Path) -> dict[str, Any]:
    """`Pulumi.<stack>.yaml` as a mapping (its secrets settings sit beside `config`)."""
    document = yaml.safe_load((root / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))
    return document if isinstance(document, dict) else {}


def need(document: dict[str, Any], backend_url: str) -> Need:
    """The passphrase provider is in use when the stack file says so (`encryptionsalt`, or
    `secretsprovider: passphrase`), or when it names no provider and the backend is self-managed
    (`file://`, `azblob://`, ...), whose default provider is the passphrase; Pulumi Cloud's default
    is its own service, and another named provider (`azurekeyvault://...`) needs none."""
    provider = document.get("secretsprovider")
    salt = document.get("encryptionsalt")
    if provider not in (None, "", "passphrase"):
        return Need(passphrase=False, new=False)
    if salt or provider == "passphrase":
        return Need(passphrase=True, new=not salt)
    self_managed = not backend_url.startswith(SERVICE_SCHEMES)
    return Need(passphrase=self_managed, new=self_managed)


ATTEMPTS = 3


def provide(
    stack: str,
    needed: Need,
    environ: MutableMapping[str, str],
    ask: Callable[[str], str] | None,
    say: Callable[[str], None],
) -> str:
    """Make the passphrase available to the CLI; returns how (one line, never the passphrase).

    `ask` reads one line without echo (getpass) and is None when no terminal is attached. Pulumi
    reads `PULUMI_CONFIG_PASSPHRASE` even when it is empty, so a set variable is used as it is."""
    if not needed.passphrase:
        return "the stack's secrets provider needs no passphrase"
    if PASSPHRASE in environ or environ.get(PASSPHRASE_FILE):
        name = PASSPHRASE if PASSPHRASE in environ else PASSPHRASE_FILE
        return f"passphrase from {name}"
    if ask is None:
        raise PassphraseMissingError(
            f"stack {stack} encrypts its secrets with a passphrase, {PASSPHRASE} is not set, and there "
            "is no terminal to ask on"
        )
    prompt = f"Passphrase for the secrets of stack {stack}{' (new: remember it)' if needed.new else ''}: "
    for _ in range(ATTEMPTS):
        phrase = ask(prompt)
        if not phrase:
            say("an empty passphrase protects nothing: type one")
        elif needed.new and ask("Type it again: ") != phrase:
            say("the two did not match")
        else:
            environ[PASSPHRASE] = phrase  # this process and the CLI it starts; written nowhere
            return "passphrase read from the terminal (not echoed, not stored)"
    raise PassphraseMissingError(f"no passphrase for stack {stack} after {ATTEMPTS} attempts")


EXPORT_HINT = (
    f"run it on a terminal to be asked, or `export {PASSPHRASE}=<the stack's passphrase>` "
    f"(or {PASSPHRASE_FILE}=<a file holding it>), then run this again"
)
