"""`python -m preview <stack> [--policy-config FILE]`: the program under mocks, checked by the policy
pack, printing each violation. Exits 1 when a mandatory policy is violated."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pulumi_policy import EnforcementLevel

from mocks import ROOT, run_stack
from preview.policy_check import check


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m preview", description=__doc__)
    parser.add_argument("stack", help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument(
        "--policy-config", type=Path, help="JSON policy config, as for `pulumi preview --policy-pack-config`"
    )
    arguments = parser.parse_args(argv)
    if not (ROOT / f"Pulumi.{arguments.stack}.yaml").is_file():
        parser.error(f"no Pulumi.{arguments.stack}.yaml in {ROOT}")
    config = json.loads(arguments.policy_config.read_text()) if arguments.policy_config else {}
    run = run_stack(arguments.stack)
    declared = [r for r in run.resources if r.type.startswith("azure-native:")]
    violations = check(run, config)
    print(f"stack {arguments.stack}: {len(declared)} Azure resources checked by the policy pack")
    for violation in violations:
        print(
            f"  [{violation.enforcement.value}] {violation.policy}: {violation.message}\n"
            f"      {violation.resource}"
        )
    mandatory = [v for v in violations if v.enforcement == EnforcementLevel.MANDATORY]
    print(f"{len(mandatory)} mandatory, {len(violations) - len(mandatory)} advisory violation(s)")
    return 1 if mandatory else 0


if __name__ == "__main__":
    sys.exit(main())
