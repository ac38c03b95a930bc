"""`python -m cost <stack> [--live] [--currency USD] [--log-gb 1] [--json]`: the stack's monthly
estimate, as text or (`--json`) as one JSON object for other programs (the pull request's cost
comment, `python -m pipeline.cost_diff`). Exit codes as every command's (README, The commands): 2 the
command line (an unknown stack), 3 the stack's settings."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

import pulumi

from cost.estimate import DEFAULT_LOG_GB, HOURS_PER_MONTH, Estimate, estimate_settings, render
from cost.prices import load_live, load_snapshot
from settings import Settings, SettingsError, load_settings, stack_file

EXIT_USAGE = 2
EXIT_SETTINGS = 3
DESCRIPTION = """\
What the stack costs a month, priced per resource from its settings: from the committed price
snapshot (cost/prices.json, each line with its source, region, currency and date), or with --live
from the Azure Retail Prices API for the stack's region. It names what is easy to miss: a
serverless database the SQL trigger keeps resumed, always-ready instances billed around the clock,
Log Analytics ingestion, and what a review stack costs a day."""
REVIEW_INSTANCE = "pr0"
"""Pulumi.review.yaml is a template: the review workflow adds `instance: pr<number>`."""


def stack_settings(stack: str) -> Settings:
    """The validated settings of `Pulumi.<stack>.yaml` (the review template with an instance)."""
    config = stack_file(stack)
    if stack == "review":
        config.setdefault("broadcast:instance", REVIEW_INSTANCE)
    pulumi.runtime.set_all_config(config, [])
    return load_settings(pulumi.Config("broadcast"), stack=stack)


def as_json(stack: str, estimate: Estimate, origin: str, per_day: bool) -> dict[str, Any]:
    """The estimate as `--json` prints it: monthly totals per currency (the snapshot's lines come in
    the currency their source gave), each item, and what is not priced."""
    totals = estimate.totals()
    return {
        "stack": stack,
        "origin": origin,
        "monthly": totals,
        "daily": {currency: total * 24 / HOURS_PER_MONTH for currency, total in totals.items()}
        if per_day
        else None,
        "items": [
            {
                "what": item.what,
                "monthly": item.monthly,
                "currency": item.line.currency if item.line else None,
                "priceLine": item.line.key if item.line else None,
                "note": item.note,
            }
            for item in estimate.items
        ],
        "unpriced": estimate.unpriced,
    }


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    """Print the estimate; 2 for an unknown stack, 3 with each reason when its settings are wrong."""
    parser = argparse.ArgumentParser(prog="python -m cost", description=DESCRIPTION)
    parser.add_argument("stack", help="the stack: reads Pulumi.<stack>.yaml")
    parser.add_argument("--live", action="store_true", help="read prices from the Azure Retail Prices API")
    parser.add_argument("--currency", default="USD", help="with --live: the currency (USD)")
    parser.add_argument("--log-gb", type=float, default=DEFAULT_LOG_GB, help="Log Analytics GB a month")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    arguments = parser.parse_args(argv)
    if arguments.log_gb < 0:
        parser.error("--log-gb must be 0 or more")
    try:
        settings = stack_settings(arguments.stack)
    except FileNotFoundError as error:
        parser.error(str(error))
    except SettingsError as error:
        print(f"python -m cost: stack {arguments.stack}: {error}", file=sys.stderr)
        return EXIT_SETTINGS
    prices = load_live(settings.location, arguments.currency) if arguments.live else load_snapshot()
    estimate = estimate_settings(settings, prices, arguments.log_gb)
    per_day = settings.environment == "review"
    if arguments.json:
        text = json.dumps(as_json(arguments.stack, estimate, prices.origin, per_day), indent=2)
    else:
        text = render(arguments.stack, estimate, prices.origin, per_day=per_day)
    print(text, file=out or sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
