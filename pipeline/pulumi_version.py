"""The Pulumi CLI version the workflows install: the `pulumi==` pin of requirements.txt, the one
place it is written (the CLI and the SDK are released together), so Dependabot's bump of the SDK
moves the CLI too.

`python -m pipeline.pulumi_version [--github-output FILE]` prints `version=<x.y.z>` (and appends it to
FILE, for `steps.<id>.outputs.version`), or names what is wrong and exits 2.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^pulumi==(\S+)\s*(?:#.*)?$", re.M)
VERSION = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+")


def pinned(requirements: str) -> str:
    """The one exact `pulumi==x.y.z` pin of a requirements file."""
    pins = PIN.findall(requirements)
    if len(pins) != 1:
        raise ValueError(f"expected one `pulumi==<x.y.z>` line, found {len(pins)}")
    if not VERSION.fullmatch(pins[0]):
        raise ValueError(f"pulumi=={pins[0]} is not a release version x.y.z (the CLI has no other)")
    return str(pins[0])


def main(argv: list[str] | None = None) -> int:
    """Print version=...; 2 with the reason when requirements.txt has no single exact pin."""
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.pulumi_version", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--requirements", type=Path, default=ROOT / "requirements.txt")
    parser.add_argument("--github-output", type=Path, help="the file to append version=... to")
    arguments = parser.parse_args(argv)
    try:
        version = pinned(arguments.requirements.read_text())
    except (OSError, ValueError) as error:
        print(f"python -m pipeline.pulumi_version: {arguments.requirements}: {error}", file=sys.stderr)
        return 2
    print(f"version={version}")
    if arguments.github_output:
        with arguments.github_output.open("a") as output:
            output.write(f"version={version}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
