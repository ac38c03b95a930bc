"""`python -m deploy <stack> [--preview-only] [--yes] [--destroy] [--subscription ID]` (see
deploy/__init__.py). Exits 1 with the failed step and what to do."""

from __future__ import annotations

import argparse
import sys

import deploy
from deploy.steps import Options, Run, StepError, Tools
from deploy.steps import deploy as deploy_stack
from deploy.steps import destroy as destroy_stack


def parse(argv: list[str] | None) -> Options:
    """The command line, refused with one clear message when it is wrong."""
    parser = argparse.ArgumentParser(
        prog="python -m deploy", description=deploy.__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("stack", help="the stack: reads Pulumi.<stack>.yaml (dev, prod, ...)")
    parser.add_argument("--preview-only", action="store_true", help="stop after the preview")
    parser.add_argument("--yes", action="store_true", help="do not ask before changing anything (CI)")
    parser.add_argument("--destroy", action="store_true", help="delete the stack's resources")
    parser.add_argument("--subscription", help="subscription id (default: the stack's or the login's)")
    arguments = parser.parse_args(argv)
    if arguments.destroy and arguments.preview_only:
        parser.error("--destroy and --preview-only: choose one")
    return Options(
        stack=arguments.stack,
        preview_only=arguments.preview_only,
        yes=arguments.yes,
        destroy=arguments.destroy,
        subscription=arguments.subscription,
    )


def main(argv: list[str] | None = None, tools: Tools | None = None) -> int:
    """Run the command; 0 when every step passed."""
    options = parse(argv)
    if tools is None:
        from deploy.automation import real_tools

        tools = real_tools()
    run = Run(tools, options)
    try:
        (destroy_stack if options.destroy else deploy_stack)(run)
    except StepError as failure:
        print(str(failure), file=tools.out, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
