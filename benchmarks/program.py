"""Program benchmark: function package build time (cold and cached), package size, and the time
to evaluate the Pulumi program under mocks (the part of `pulumi preview` that is ours).

    python benchmarks/program.py            # targets: cached build < 1 s, evaluation < 3 s
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "functions")]

from artifacts.function_package import build_package, pip_installer  # noqa: E402
from mocks import run_stack  # noqa: E402


def main() -> None:
    wheelhouse = ROOT / "build" / "wheels"
    installer = pip_installer(wheelhouse if wheelhouse.is_dir() else None)
    os.environ.setdefault("BROADCAST_WHEELHOUSE", str(wheelhouse))
    with tempfile.TemporaryDirectory() as cache:
        started = time.perf_counter()
        package = build_package("3.11", cache_dir=Path(cache), installer=installer)
        cold = time.perf_counter() - started
        cached_runs = []
        for _ in range(5):
            started = time.perf_counter()
            build_package("3.11", cache_dir=Path(cache), installer=installer)
            cached_runs.append(time.perf_counter() - started)
    print(
        f"package build, cold:     {cold:8.2f} s   ({'local wheelhouse' if wheelhouse.is_dir() else 'PyPI'})"
    )
    print(f"package build, cached:   {statistics.median(cached_runs) * 1000:8.1f} ms  (target < 1 s)")
    print(f"package size:            {package.size / 1024:8.0f} KiB")
    for stack in ("dev", "prod"):
        run_stack(stack)  # warm: imports and the package cache
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            result = run_stack(stack)
            timings.append(time.perf_counter() - started)
        print(
            f"program under mocks, {stack:4} {statistics.median(timings):8.2f} s   "
            f"({len(result.resources)} resources; target < 3 s)"
        )


if __name__ == "__main__":
    main()
