"""`python -m deploy <stack> [--preview-only] [--yes] [--destroy] [--from ENV] [--subscription ID]`;
exit codes as every command's (README, The commands): 1 a step failed, 2 the command line, 3 the
settings, 4 no sign-in or no passphrase."""

from __future__ import annotations

import argparse
import sys

from deploy.new_stack import NewStackError, write_stack_file
from deploy.steps import EXIT_USAGE, Options, Run, StepError, Tools
from deploy.steps import deploy as deploy_stack
from deploy.steps import destroy as destroy_stack
from preflight import sdk_logs

DESCRIPTION = """\
Deploy one stack: check its settings, the Pulumi CLI and its backend (asking for the stack's
secrets passphrase on a terminal when PULUMI_CONFIG_PASSPHRASE is unset), who is signed in to
Azure and what the subscription still needs; then preview with the policy pack, `pulumi up`, the
smoke test, and the monthly cost estimate. Each failure names its step and what to do.

A stack of your own: `python -m deploy alice --from dev` writes Pulumi.alice.yaml with dev's
settings and `instance: alice` (its own resource group), then deploys it.
Without the Pulumi CLI or Azure: `python -m preview <stack>` judges the stack offline."""


class Parser(argparse.ArgumentParser):
    """argparse, with the usage line left out of errors: one line, naming what is wrong."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (--help lists the options)\n")


def parser() -> argparse.ArgumentParser:
    """The command line."""
    result = Parser(
        prog="python -m deploy", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    result.add_argument("stack", help="the stack: reads Pulumi.<stack>.yaml (dev, prod, ...)")
    result.add_argument("--preview-only", action="store_true", help="stop after the preview")
    result.add_argument("--yes", action="store_true", help="do not ask before changing anything (CI)")
    result.add_argument("--destroy", action="store_true", help="delete the stack's resources")
    result.add_argument(
        "--from",
        dest="template",
        metavar="ENV",
        help="first write Pulumi.<stack>.yaml from this environment's settings (dev, test, review, prod)",
    )
    result.add_argument("--instance", help="with --from: the new stack's instance (default: its name)")
    result.add_argument("--subscription", help="subscription id (default: the stack's or the login's)")
    result.add_argument(
        "--verbose", action="store_true", help="show the Azure SDK's own log (sign-in attempts)"
    )
    return result


def parse(argv: list[str] | None) -> tuple[Options, str | None, str | None]:
    """The options, and `--from` / `--instance`; a wrong command line exits 2 with one line."""
    command = parser()
    arguments = command.parse_args(argv)
    if arguments.destroy and arguments.preview_only:
        command.error("--destroy and --preview-only: choose one")
    if arguments.template and arguments.destroy:
        command.error("--from makes a new stack: there is nothing to destroy yet")
    if arguments.instance is not None and not arguments.template:
        command.error("--instance goes with --from (an existing stack's instance is in its file)")
    sdk_logs.configure(arguments.verbose)
    options = Options(
        stack=arguments.stack,
        verbose=arguments.verbose,
        preview_only=arguments.preview_only,
        yes=arguments.yes,
        destroy=arguments.destroy,
        subscription=arguments.subscription,
    )
    return options, arguments.template, arguments.instance


def main(argv: list[str] | None = None, tools: Tools | None = None) -> int:
    """Run the command; 0 when every step passed, else the failed step's exit code."""
    options, template, instance = parse(argv)
    if tools is None:
        from deploy.automation import real_tools

        tools = real_tools()
    if template:
        try:
            written = write_stack_file(options.stack, template, instance, tools.root)
        except NewStackError as error:
            print(f"python -m deploy: {error}", file=sys.stderr)
            return EXIT_USAGE
        print(f"wrote {written.name} from Pulumi.{template}.yaml", file=tools.out, flush=True)
    run = Run(tools, options)
    try:
        (destroy_stack if options.destroy else deploy_stack)(run)
    except StepError as failure:
        print(str(failure), file=tools.out, flush=True)
        return failure.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
