"""What a review stack has cost so far, for its pull request comment: the estimate's daily figure
(`python -m cost review --json`, from the committed price snapshot) times the days since the stack's
first update (`pulumi stack history --json`). An estimate, not a bill: it says so, and says from what.

`python -m pipeline.review_cost --history FILE --estimate FILE [--now ISO-8601]` prints one Markdown
line; a history or estimate it cannot read is named on stderr with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.cost_diff import money


def first_update(history: Any) -> datetime:
    """The start of the stack's oldest update: `pulumi stack history --json` lists updates with
    `startTime` (`2006-01-02T15:04:05.000Z07:00`, pkg/cmd/pulumi/cmd/time.go)."""
    if not isinstance(history, list) or not history:
        raise ValueError("expected the non-empty JSON list that `pulumi stack history --json` prints")
    try:
        starts = [datetime.fromisoformat(str(update["startTime"])) for update in history]
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"an update without a readable startTime: {error}") from error
    return min(start if start.tzinfo else start.replace(tzinfo=UTC) for start in starts)


def daily(estimate: Any) -> Mapping[str, float]:
    """The `daily` figure of `python -m cost review --json`, per currency."""
    if not isinstance(estimate, dict) or not isinstance(estimate.get("daily"), dict) or not estimate["daily"]:
        raise ValueError("expected `python -m cost review --json`, whose `daily` gives a figure per currency")
    return {str(currency): float(amount) for currency, amount in estimate["daily"].items()}


def so_far(per_day: Mapping[str, float], since: datetime, now: datetime, stack: str = "review") -> str:
    """The comment's line: the amount, the days, the daily figure and where it comes from."""
    days = max((now - since).total_seconds(), 0.0) / 86400
    spent = {currency: amount * days for currency, amount in per_day.items()}
    return (
        f"Cost so far: about {money(spent)} ({days:.1f} days since the first `up` at "
        f"{since.strftime('%Y-%m-%d %H:%M')} UTC, times {money(per_day)} a day from "
        f"`python -m cost {stack}`: the committed price snapshot's estimate, not the bill)."
    )


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read {path}: {error}") from error


def main(argv: list[str] | None = None) -> int:
    """Print the line, or 2 with what could not be read."""
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.review_cost", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--history", type=Path, required=True, help="pulumi stack history --json")
    parser.add_argument("--estimate", type=Path, required=True, help="python -m cost review --json")
    parser.add_argument("--now", type=datetime.fromisoformat, default=None, help="default: now (UTC)")
    arguments = parser.parse_args(argv)
    now: datetime = arguments.now or datetime.now(UTC)
    try:
        estimate = _read(arguments.estimate)
        since = first_update(_read(arguments.history))
        line = so_far(daily(estimate), since, now, str(estimate.get("stack", "review")))
    except ValueError as error:
        print(f"python -m pipeline.review_cost: {error}", file=sys.stderr)
        return 2
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
