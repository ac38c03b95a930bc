"""Site load benchmark: how the page's first load looks to a reader, in figures.

It starts the local mode (in this process, on a free loopback port) with a page of history and
opens the site in Debian's Chromium:
  - first message: how long after navigation the first message is on the page, while every history
    request takes 150 ms longer (issue 32 item 14 moved this figure here from
    tests/test_site_browser.py, which keeps the request count);
  - layout shift: the sum of the page's `layout-shift` entries (the Layout Instability API, read
    with a PerformanceObserver) from navigation until it is live with its count and history, at
    phone (390 x 844) and desktop (1350 x 940) sizes;
  - Lighthouse, when its command is given (`--lighthouse`): the performance score and cumulative
    layout shift, mobile (its default: a mid-range phone, simulated slow 4G, CPU 4x slower) and
    desktop (`--preset=desktop`), against the same Chromium (CHROME_PATH): it downloads no browser.

    python benchmarks/site_load.py                      # 3 runs of each figure, no Lighthouse
    python benchmarks/site_load.py --lighthouse /tmp/lh/node_modules/.bin/lighthouse --runs 3

Lighthouse is not a dependency of the project (it is large and wants a newer Node than the site
needs): install it where you like, e.g. `npm i -E --prefix /tmp/lh lighthouse@12.2.3` (12.2.3 runs
on Node 20; 13 wants Node 22).

Targets (issue 31 item 3, issue 32 item 14): the first message within 2.5 s; layout shift under
0.05; Lighthouse performance 100 on mobile and desktop. Each figure is printed next to the load
average when it was taken (the machine is shared): a busy machine slows the first two and lowers
Lighthouse's score, whose simulated timings scale with the CPU it measures. The exit status is 0
either way: the figures are the result.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the repository's packages
from artifacts.site_files import SITE_DIR  # noqa: E402
from benchmarks.site_burst import CHROMIUM, FLAGS, Local, rows, wait_for  # noqa: E402

TIMEOUT_MS = 60_000
SLOW_HISTORY_S = 0.15
TARGET_FIRST_MESSAGE_MS = 2500
TARGET_SHIFT = 0.05
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1350, "height": 940}}
# Installed before the page's own script: the first message's time and every layout shift.
PROBE = """
window.shifts = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) if (!entry.hadRecentInput) window.shifts += entry.value;
}).observe({ type: "layout-shift", buffered: true });
new MutationObserver((_, observer) => {
  if (document.querySelector("#feed [data-id]")) {
    window.firstMessageAt = performance.now();
    observer.disconnect();
  }
}).observe(document, { childList: true, subtree: true });
"""


def load() -> str:
    """The one-minute load average and the CPU count, for the line beside a figure."""
    return f"load {os.getloadavg()[0]:.1f}/{os.cpu_count()}"


def first_message_ms(browser: Any, url: str) -> float:
    """Milliseconds from navigation to the first message shown, history requests slowed."""
    context = browser.new_context()

    def slow(route: Any) -> None:
        time.sleep(SLOW_HISTORY_S)
        route.continue_()

    context.route("**/api/messages**", slow)
    page = context.new_page()
    page.add_init_script(PROBE)
    page.goto(url)
    wait_for(page, "window.firstMessageAt !== undefined", TIMEOUT_MS / 1000)
    figure = float(page.evaluate("window.firstMessageAt"))
    context.close()
    return figure


def layout_shift(browser: Any, url: str, viewport: dict[str, int]) -> float:
    """The layout shifts of one first load, until live with a count and the history shown."""
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.add_init_script(PROBE)
    page.goto(url)
    page.wait_for_selector("body[data-connection=live]", timeout=TIMEOUT_MS)
    wait_for(page, "/^\\d+$/.test(document.getElementById('online').textContent)", TIMEOUT_MS / 1000)
    wait_for(page, "document.getElementById('feed').getAttribute('aria-busy') === 'false'")
    page.evaluate("new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
    figure = float(page.evaluate("window.shifts"))
    context.close()
    return figure


def lighthouse(command: str, url: str, form: str) -> tuple[float, float]:
    """One Lighthouse run: (performance score 0-100, cumulative layout shift)."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.json"
        preset = ["--preset=desktop"] if form == "desktop" else []
        subprocess.run(
            [
                command,
                url,
                *preset,
                "--only-categories=performance",
                "--output=json",
                f"--output-path={report}",
                "--quiet",
                f"--chrome-flags={' '.join(FLAGS)}",
            ],
            check=True,
            env={**os.environ, "CHROME_PATH": CHROMIUM},
            timeout=300,
        )
        result = json.loads(report.read_text())
    score = result["categories"]["performance"]["score"] * 100
    shift = result["audits"]["cumulative-layout-shift"]["numericValue"]
    return score, shift


def main() -> None:
    """Run the benchmark and print one line per figure."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="runs of each figure")
    parser.add_argument("--history", type=int, default=100, help="messages already stored")
    parser.add_argument("--lighthouse", help="the lighthouse command (none: no Lighthouse figures)")
    parser.add_argument("--site", type=Path, default=SITE_DIR, help="the site folder to serve")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, got {args.runs}")
    if args.lighthouse and not os.access(args.lighthouse, os.X_OK):
        parser.error(f"--lighthouse {args.lighthouse}: not an executable file")
    if not (args.site / "index.html").is_file():
        parser.error(f"--site {args.site}: no index.html there")

    from playwright.sync_api import sync_playwright

    local = Local(args.site)
    try:
        local.store(rows(args.history, 0))
        url = local.mode.url + "/"
        print(f"site load: {args.history} messages stored, {args.site}, {args.runs} runs of each")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            for number in range(1, args.runs + 1):
                figure = first_message_ms(browser, url)
                verdict = "pass" if figure < TARGET_FIRST_MESSAGE_MS else "FAIL"
                print(f"first message, run {number} ({load()}): {figure:.0f} ms: {verdict}")
            for name, viewport in VIEWPORTS.items():
                for number in range(1, args.runs + 1):
                    shift = layout_shift(browser, url, viewport)
                    verdict = "pass" if shift < TARGET_SHIFT else "FAIL"
                    print(f"layout shift, {name}, run {number} ({load()}): {shift:.4f}: {verdict}")
            browser.close()
        for form in ("mobile", "desktop") if args.lighthouse else ():
            for number in range(1, args.runs + 1):
                before = load()
                score, shift = lighthouse(args.lighthouse, url, form)
                verdict = "pass" if score >= 100 else "FAIL"
                print(
                    f"Lighthouse {form}, run {number} ({before}): performance {score:.0f}, "
                    f"CLS {shift:.4f}: {verdict}"
                )
    finally:
        local.stop()


if __name__ == "__main__":
    main()
