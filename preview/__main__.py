"""`python -m preview <stack> [--policy-config FILE]`: the program under mocks, checked by the policy
pack with the config `make deploy` uses (`policies/config.<environment>.json`), printing each
violation; no Pulumi CLI and no Azure needed.

Exit codes: 0 no mandatory violation; 1 a mandatory policy is violated; 2 the command line is wrong
(an unknown stack, a --policy-config file that is missing or not a policy config); 3 the stack file
or one of its settings is invalid (each bad key is named). Every error is one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import runpy
import sys
from pathlib import Path
from typing import Any

import pulumi
from pulumi_policy import EnforcementLevel

from mocks import ROOT, run
from preview.config_file import environment_config
from preview.policy_check import check
from settings import SettingsError, load_settings, stack_file

EXIT_VIOLATION = 1
EXIT_USAGE = 2
EXIT_SETTINGS = 3
_LEVELS = {level.value for level in EnforcementLevel}


def policy_config(path: Path) -> dict[str, Any]:
    """A `--policy-pack-config` file: a JSON object of policy name -> enforcement level, or -> an
    object of the policy's settings with an optional `enforcementLevel`. ValueError says what is wrong."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ValueError(f"--policy-config {path}: cannot read it ({error.strerror or error})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"--policy-config {path}: not valid JSON ({error})") from None
    if not isinstance(document, dict):
        raise ValueError(f"--policy-config {path}: must be a JSON object of policy names")
    for name, entry in document.items():
        level = entry.get("enforcementLevel", "mandatory") if isinstance(entry, dict) else entry
        if not isinstance(entry, dict | str) or level not in _LEVELS:
            levels = ", ".join(sorted(_LEVELS))
            raise ValueError(
                f"--policy-config {path}: policy {name!r} needs an enforcement level ({levels}) "
                "or an object of its settings"
            )
    return document


def main(argv: list[str] | None = None, root: Path = ROOT) -> int:
    """Check one stack; `root` is where its `Pulumi.<stack>.yaml` is (the project, or a test's)."""
    parser = argparse.ArgumentParser(
        prog="python -m preview", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("stack", help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument(
        "--policy-config",
        type=Path,
        help="JSON policy config, as for `pulumi preview --policy-pack-config` "
        "(default: policies/config.<environment>.json, as `make deploy` uses)",
    )
    arguments = parser.parse_args(argv)
    if not (root / f"Pulumi.{arguments.stack}.yaml").is_file():
        parser.error(f"no Pulumi.{arguments.stack}.yaml in {root}")
    try:
        # The settings are checked before the program runs, as the program checks them first: a bad
        # value is one line naming the key, not a traceback from inside the mocked deployment.
        stack_config = stack_file(arguments.stack, root)
        pulumi.runtime.set_all_config(stack_config, [])
        settings = load_settings(pulumi.Config("broadcast"), stack=arguments.stack)
    except SettingsError as error:
        print(f"python -m preview: stack {arguments.stack}: {error}", file=sys.stderr)
        return EXIT_SETTINGS
    config_path = arguments.policy_config or environment_config(settings.environment, root / "policies")
    try:
        config = policy_config(config_path) if config_path else {}
    except ValueError as error:
        parser.error(str(error))
    program = run(
        lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"), stack_config, arguments.stack
    )
    declared = [r for r in program.resources if r.type.startswith("azure-native:")]
    violations = check(program, config)
    shown = config_path.relative_to(root) if config_path and config_path.is_relative_to(root) else config_path
    judged = f"with {shown}" if shown else "with the pack's defaults (no policy config)"
    print(f"stack {arguments.stack}: {len(declared)} Azure resources checked by the policy pack {judged}")
    for violation in violations:
        print(
            f"  [{violation.enforcement.value}] {violation.policy}: {violation.message}\n"
            f"      {violation.resource}"
        )
    mandatory = [v for v in violations if v.enforcement == EnforcementLevel.MANDATORY]
    print(f"{len(mandatory)} mandatory, {len(violations) - len(mandatory)} advisory violation(s)")
    return EXIT_VIOLATION if mandatory else 0


if __name__ == "__main__":
    sys.exit(main())
