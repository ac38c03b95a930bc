"""A stack of your own from an environment's settings: `python -m deploy alice --from dev` writes
`Pulumi.alice.yaml` with dev's settings and `instance: alice`, so its resource group is
`rg-<workload>-dev-alice` and it shares nothing with dev. The template's secrets settings are not
copied: the new stack gets its own when it is created."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from settings import ENVIRONMENTS, PROJECT

INSTANCE = re.compile(r"[a-z][a-z0-9]{0,9}")
"""The `instance` setting's rule (settings/declarations.py): up to 10 lowercase letters or digits."""
STACK_NAME = re.compile(r"[A-Za-z0-9_.-]+")
"""The characters Pulumi allows in a stack name."""


class NewStackError(ValueError):
    """The new stack cannot be made as asked (the message says why and what to do)."""


def instance_for(stack: str, given: str | None) -> str:
    """The new stack's instance: `--instance`, or the stack's own name when it fits the rule."""
    instance = given if given is not None else stack
    if not INSTANCE.fullmatch(instance):
        source = "--instance" if given is not None else f"the stack name {stack!r}"
        raise NewStackError(
            f"{source} cannot be the stack's instance (up to 10 lowercase letters or digits, starting "
            "with a letter): pass --instance <name>, e.g. --instance "
            f"{re.sub(r'[^a-z0-9]', '', stack.lower()).lstrip('0123456789')[:10] or 'me'}"
        )
    return instance


def write_stack_file(stack: str, template: str, instance: str | None, root: Path) -> Path:
    """`Pulumi.<stack>.yaml` from `Pulumi.<template>.yaml`'s settings with its own instance; refuses to
    overwrite a stack file or to start from one that is not an environment's."""
    if not STACK_NAME.fullmatch(stack):
        raise NewStackError(f"{stack!r} is not a stack name (letters, digits, '-', '_', '.')")
    target = root / f"Pulumi.{stack}.yaml"
    if target.exists():
        raise NewStackError(f"{target.name} exists already: deploy it with `python -m deploy {stack}`")
    source = root / f"Pulumi.{template}.yaml"
    if template not in ENVIRONMENTS or not source.is_file():
        known = ", ".join(e for e in ENVIRONMENTS if (root / f"Pulumi.{e}.yaml").is_file())
        raise NewStackError(f"--from {template}: name an environment's stack file ({known})")
    document = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    config = dict(document.get("config") or {})
    config.setdefault(f"{PROJECT}:environment", template)
    config[f"{PROJECT}:instance"] = instance_for(stack, instance)
    header = (
        f"# Made by `python -m deploy {stack} --from {template}`: {template}'s settings, instance "
        f"{config[f'{PROJECT}:instance']}\n# (its own resource group). Change any setting here, or with "
        f"`pulumi config set --stack {stack}`.\n"
    )
    target.write_text(header + yaml.safe_dump({"config": config}, sort_keys=False), encoding="utf-8")
    return target
