"""`python -m smoke --url <site url> [--key <function key>] [--wait SECONDS]` (see smoke/__init__.py).

Exit codes: 0 every step passed; 1 a step failed (its line says what came back); 2 the command line
is wrong (a URL that is not http(s)://host/..., a --wait that is not a finite number of seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import math
import sys
import time
from typing import TextIO

import smoke
from smoke.steps import STEPS, Context, StepFailedError, url_problem


async def run(context: Context, out: TextIO) -> bool:
    """Run every step in order, one line each; stop at the first failure."""
    try:
        for name, step in STEPS:
            started = time.perf_counter()
            try:
                outcome = step(context)
                detail = await outcome if inspect.isawaitable(outcome) else outcome
            except StepFailedError as failure:
                took = (time.perf_counter() - started) * 1000
                print(f"FAIL {name:<9} {took:7.0f} ms  {failure}", file=out, flush=True)
                return False
            except Exception as error:  # what the deployment answered broke a step: say it in one line
                took = (time.perf_counter() - started) * 1000
                print(f"FAIL {name:<9} {took:7.0f} ms  {type(error).__name__}: {error}", file=out, flush=True)
                return False
            took = (time.perf_counter() - started) * 1000
            print(f"ok   {name:<9} {took:7.0f} ms  {detail}", file=out, flush=True)
        return True
    finally:
        if context.listener is not None:
            await context.listener.close()


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    """Parse the command line and run the steps; 0 when every step passed."""
    parser = argparse.ArgumentParser(prog="python -m smoke", description=smoke.__doc__)
    parser.add_argument("--url", required=True, help="the site's URL (the stack output siteUrl)")
    parser.add_argument("--key", help="a function key for PUT /api/messages/<key> (without it, no publish)")
    parser.add_argument("--wait", type=float, default=60, help="seconds to wait for each broadcast (60)")
    arguments = parser.parse_args(argv)
    if (problem := url_problem(arguments.url)) is not None:
        parser.error(
            f"--url {arguments.url!r}: {problem}; give the site's URL, e.g. "
            "https://<account>.z6.web.core.windows.net/"
        )
    if not math.isfinite(arguments.wait) or arguments.wait <= 0:
        parser.error(f"--wait {arguments.wait}: give a positive, finite number of seconds, e.g. 60")
    url = arguments.url if arguments.url.endswith("/") else arguments.url + "/"
    context = Context(site_url=url, key=arguments.key, wait_seconds=arguments.wait)
    return 0 if asyncio.run(run(context, out)) else 1


if __name__ == "__main__":
    sys.exit(main())
