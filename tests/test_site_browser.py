"""The site in headless Chromium (Debian's), with the official @microsoft/signalr client, against
the local mode: the live feed, its history, its recovery from outages, what it tells a screen
reader, how it lays out on a phone, and the publisher panel."""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from local_support import PUBLISH_KEY, LocalServer
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from artifacts.site_files import SITE_DIR
from local.server import start

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
DOCS = ROOT / "docs"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT = 15_000
UNKNOWN = "\N{EN DASH}"
"""What the presence count shows before the hub has sent one."""
PAGE_WEIGHT_LIMIT = 100 * 1024
"""First-load bytes before compression: HTML, script, styles, config, icon, SignalR client."""


class Server(LocalServer):
    """The local mode on a chosen port (0: a free one), so that a test can stop it and start it
    again where the page expects it, as a restarted service would be."""

    def __init__(self, db: str = ":memory:", port: int = 0) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.mode = self.run(start("127.0.0.1", port, PUBLISH_KEY, db, SITE_DIR))
        self.url = self.mode.url

    @property
    def port(self) -> int:
        """The port it listens on."""
        port = urlsplit(self.url).port
        assert port is not None
        return port

    def store(self, count: int, author: str = "hist", days_ago: int = 0, text: str = "old") -> None:
        """Write `count` messages straight into the database (a long history, fast)."""
        created = datetime.now(UTC) - timedelta(days=days_ago)
        rows = [
            {
                "messageKey": str(uuid.uuid4()),
                "text": f"{text} {index}" if count > 1 else text,
                "author": author,
                "createdAt": created.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            }
            for index in range(count)
        ]
        self.mode.database.upsert("dbo.Messages", rows)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def server() -> Iterator[Server]:
    local = Server()
    yield local
    local.stop()


def open_live(browser: Browser, server: LocalServer, path: str = "/", **context: Any) -> Page:
    """A new page at `path`, once it is live and its first catch-up is over; fails on a script
    error or a CSP violation.

    The page counts what the first connection's catch-up returns as history, by design, and the
    catch-up runs after the page says "live": a message a test stores before that read is over may
    come back as history rather than as news (CI saw 13 of a 520-message burst go uncounted that
    way). Tests about news therefore start once the feed is no longer busy."""
    page = browser.new_context(**context).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: errors.append(message.text) if "Content Security Policy" in message.text else None,
    )
    page.goto(server.url + path)
    page.wait_for_selector("body[data-connection=live]", timeout=TIMEOUT)
    page.wait_for_selector("#feed[aria-busy=false]", state="attached", timeout=TIMEOUT)
    assert errors == []
    return page


def feed_ids(page: Page) -> list[int]:
    """The ids of the messages shown, top to bottom."""
    ids = page.eval_on_selector_all("#feed [data-id]", "items => items.map(a => a.dataset.id)")
    return [int(i) for i in ids]


def message(page: Page, id_: int, part: str = "") -> str:
    """The selector of message `id_` (or of a part of it, e.g. `.text`)."""
    return f"#feed [data-id='{id_}'] {part}".strip()


# What a screen reader would be told: every non-empty text a live region takes, in order.
WATCH_REGION = """([selector, name]) => {
  const region = document.querySelector(selector);
  window[name] = [];
  let last = region.textContent;
  new MutationObserver(() => {
    const text = region.textContent;
    if (text && text !== last) window[name].push(text);
    last = text;
  }).observe(region, { childList: true, characterData: true, subtree: true });
}"""
STATUS_REGION = "#status[role=status], #status [role=status]"


def watch(page: Page, selector: str, name: str) -> None:
    """Record in `window[name]` every text the live region `selector` takes from now on."""
    page.evaluate(WATCH_REGION, [selector, name])


def wait_until(page: Page, expression: str, timeout_ms: int = TIMEOUT) -> None:
    """Poll `expression` in the page until it is true (the page's CSP forbids the eval behind
    `wait_for_function`)."""
    deadline = time.monotonic() + timeout_ms / 1000
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        page.wait_for_timeout(50)


def next_frames(page: Page) -> None:
    """Return once the page has drawn two more frames (observers and animation frames have run)."""
    page.evaluate("new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")


def spoken_count(text: str) -> int:
    """How many messages one announcement stands for."""
    match = re.match(r"(\d+) new messages", text)
    return int(match.group(1)) if match else 1


# the feed


def test_two_pages_receive_the_same_broadcast(browser: Browser, server: Server) -> None:
    first, second = open_live(browser, server), open_live(browser, server)
    status, accepted = server.publish("to everyone", "ada")
    assert status == 202
    for page in (first, second):
        page.wait_for_selector(message(page, 1), timeout=TIMEOUT)
        assert page.inner_text(message(page, 1, ".text")) == "to everyone"
        assert page.inner_text(message(page, 1, ".who")) == "ada"
        assert page.get_attribute(message(page, 1, "time"), "datetime") == accepted["createdAt"]
    expect(second.locator("#online")).to_have_text("2", timeout=TIMEOUT)


def test_history_loads_on_first_visit_newest_first(browser: Browser, server: Server) -> None:
    for index in range(3):
        server.publish(f"earlier {index}")
    page = open_live(browser, server)
    page.wait_for_selector(message(page, 3), timeout=TIMEOUT)
    assert feed_ids(page) == [3, 2, 1]
    assert page.is_hidden("#empty") and page.is_hidden("#loading")
    assert page.is_hidden("#older") and page.is_visible("#beginning")


def test_first_visit_shows_the_most_recent_page_of_a_long_history(browser: Browser, server: Server) -> None:
    server.store(250)
    page = open_live(browser, server)
    page.wait_for_selector(message(page, 250), timeout=TIMEOUT)
    assert feed_ids(page) == list(range(250, 150, -1))


def test_a_page_cut_off_and_restored_shows_the_gap_exactly_once(browser: Browser, server: Server) -> None:
    page = open_live(browser, server)
    server.publish("before the cut")
    page.wait_for_selector(message(page, 1), timeout=TIMEOUT)
    server.run(server.mode.hub.go_down())
    page.wait_for_selector("body[data-connection=reconnecting]", state="attached", timeout=TIMEOUT)
    for index in range(3):
        server.publish(f"while away {index}")
    server.call(server.mode.hub.come_back)
    page.wait_for_selector(message(page, 4), timeout=30_000)
    page.wait_for_selector("body[data-connection=live]", timeout=TIMEOUT)
    server.publish("after")
    page.wait_for_selector(message(page, 5), timeout=TIMEOUT)
    assert feed_ids(page) == [5, 4, 3, 2, 1]


def test_markup_in_a_message_is_shown_as_text(browser: Browser, server: Server) -> None:
    page = open_live(browser, server)
    text = "<script>window.pwned = true</script><b>bold?</b> <a href=javascript:alert(1)>x</a>"
    server.publish(text, "<img src=x onerror=alert(1)>")
    page.wait_for_selector(message(page, 1), timeout=TIMEOUT)
    assert page.inner_text(message(page, 1, ".text")) == text
    assert page.inner_text(message(page, 1, ".who")) == "<img src=x onerror=alert(1)>"
    markup = page.eval_on_selector_all("#feed script, #feed b, #feed img, #feed a", "nodes => nodes.length")
    assert markup == 0
    assert page.evaluate("window.pwned === undefined")


def test_links_are_clickable_only_for_http_and_https(browser: Browser, server: Server) -> None:
    page = open_live(browser, server)
    server.publish(
        "Docs: https://example.com/a?b=1&c=2. Wiki (https://en.wikipedia.org/wiki/X). "
        "Not these: javascript:alert(1) data:text/html,hi ftp://example.com/f"
    )
    page.wait_for_selector(message(page, 1), timeout=TIMEOUT)
    links = page.eval_on_selector_all(
        message(page, 1, "a"), "links => links.map(a => [a.getAttribute('href'), a.textContent, a.rel])"
    )
    assert links == [
        ["https://example.com/a?b=1&c=2", "https://example.com/a?b=1&c=2", "noopener noreferrer"],
        ["https://en.wikipedia.org/wiki/X", "https://en.wikipedia.org/wiki/X", "noopener noreferrer"],
    ]
    assert page.inner_text(message(page, 1, ".text")).endswith("ftp://example.com/f")


def test_a_message_is_an_article_with_its_time_and_day(browser: Browser, server: Server) -> None:
    server.store(1, author="yesterday", days_ago=1)
    server.publish("today's news", "ana")
    page = open_live(browser, server)
    page.wait_for_selector(message(page, 2), timeout=TIMEOUT)
    assert page.get_attribute("#feed", "role") == "feed"
    assert page.get_attribute("#feed", "aria-busy") == "false"
    assert page.eval_on_selector_all("#feed > *", "nodes => nodes.map(n => n.tagName)") == ["ARTICLE"] * 2
    assert page.get_attribute(message(page, 2), "aria-posinset") == "1"
    days = page.eval_on_selector_all(".day", "days => days.filter(d => !d.hidden).map(d => d.textContent)")
    assert days == ["Today", "Yesterday"]
    time_ = page.locator(message(page, 2, "time"))
    assert time_.inner_text() == "now"  # Intl.RelativeTimeFormat in the reader's locale (en-US here)
    assert time_.get_attribute("title")
    page.focus(message(page, 2))
    assert time_.get_attribute("title") in time_.inner_text()  # the exact time, shown on focus


def test_a_long_message_is_collapsed_behind_show_more(browser: Browser, server: Server) -> None:
    page = open_live(browser, server)
    server.publish("word " * 400, "long")
    page.wait_for_selector(message(page, 1), timeout=TIMEOUT)
    text = page.locator(message(page, 1, ".text"))
    more = page.locator(message(page, 1, ".more"))
    collapsed = text.bounding_box()
    assert collapsed is not None and more.get_attribute("aria-expanded") == "false"
    more.click()
    expanded = text.bounding_box()
    assert expanded is not None and expanded["height"] > 2 * collapsed["height"]
    assert more.get_attribute("aria-expanded") == "true" and more.inner_text() == "Show less"


# defect 1: reflow


@pytest.mark.parametrize("width", [390, 320])
def test_the_longest_author_and_word_wrap_at_phone_width(
    browser: Browser, server: Server, width: int
) -> None:
    server.publish("W" * 2000, "W" * 64)
    server.publish("https://example.com/" + "a" * 1900, "M" * 64)
    page = open_live(browser, server, "/#publish", viewport={"width": width, "height": 800})
    page.wait_for_selector(message(page, 2), timeout=TIMEOUT)
    for more in page.locator("#feed .more").all():
        more.click()
    sizes = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    print(f"page width at {width} px: {sizes[0]}")
    assert sizes == [width, width]


# defect 2: right-to-left names and texts


def test_right_to_left_author_and_text_keep_the_line_in_order(browser: Browser, server: Server) -> None:
    server.publish("مرحبا بالجميع، هذه رسالة قصيرة", "سارة")
    page = open_live(browser, server)
    page.wait_for_selector(message(page, 1), timeout=TIMEOUT)
    layout = page.evaluate(
        """(selector) => {
          const item = document.querySelector(selector);
          const who = item.querySelector('.who'), text = item.querySelector('.text');
          const time = item.querySelector('time');
          return {
            whoBidi: getComputedStyle(who).unicodeBidi,
            textDirection: getComputedStyle(text).direction,
            whoRight: who.getBoundingClientRect().right,
            timeLefts: [...time.getClientRects()].map(r => r.left),
          };
        }""",
        message(page, 1),
    )
    assert layout["whoBidi"] in ("isolate", "plaintext")
    assert layout["textDirection"] == "rtl"
    # The page reads left to right: the whole time stays after (right of) the name.
    assert all(left >= layout["whoRight"] - 1 for left in layout["timeLefts"]), layout


# defect 3: what a screen reader is told


def test_a_burst_of_21_is_announced_as_one_summary(browser: Browser, server: Server) -> None:
    page = open_live(browser, server)
    watch(page, "#announcer", "spoken")
    authors = ["Ana"] * 19 + ["Bo", "Cy"]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda pair: server.publish(f"burst {pair[0]}", pair[1]), enumerate(authors)))
    page.wait_for_selector(message(page, 21), timeout=TIMEOUT)
    page.wait_for_timeout(3500)
    spoken = page.evaluate("window.spoken")
    print(f"live-region updates for a burst of 21: {len(spoken)}")
    assert len(spoken) <= 2, spoken
    assert sum(spoken_count(text) for text in spoken) == 21
    assert re.fullmatch(r"21 new messages from \w+ and 2 others", spoken[-1]) or len(spoken) == 2


def test_history_is_not_announced_long_texts_are_cut_and_a_catch_up_is_counted(
    browser: Browser, server: Server
) -> None:
    server.publish("old news", "ana")
    page = open_live(browser, server)
    page.wait_for_selector(message(page, 1), timeout=TIMEOUT)
    page.wait_for_timeout(1500)
    assert page.text_content("#announcer") == ""
    watch(page, "#announcer", "spoken")
    server.publish("long " * 400, "bo")
    page.wait_for_selector(message(page, 2), timeout=TIMEOUT)
    wait_until(page, "window.spoken.length === 1")
    assert len(page.evaluate("window.spoken[0]")) <= 200
    server.run(server.mode.hub.go_down())
    page.wait_for_selector("body:not([data-connection=live])", timeout=TIMEOUT)
    for author in ("cy", "cy", "dee"):
        server.publish("while away", author)
    server.call(server.mode.hub.come_back)
    page.wait_for_selector(message(page, 5), timeout=30_000)
    wait_until(page, "window.spoken.length === 2")
    assert page.evaluate("window.spoken[1]") == "3 new messages from dee and cy"


# defect 4: recovery


def test_after_a_server_restart_the_page_is_live_within_5_seconds(browser: Browser, tmp_path: Path) -> None:
    db = str(tmp_path / "feed.db")
    server = Server(db)
    try:
        page = open_live(browser, server)
        console_errors: list[str] = []
        # The browser itself reports each refused request or socket; what the page's scripts
        # print is what counts.
        browser_network_logs = ("Failed to load resource", "WebSocket connection to")
        page.on(
            "console",
            lambda m: (
                console_errors.append(m.text)
                if m.type == "error" and not m.text.startswith(browser_network_logs)
                else None
            ),
        )
        expect(page.locator("#online")).to_have_text("1", timeout=TIMEOUT)
        page.wait_for_timeout(1500)  # past the first "live" being read out
        watch(page, STATUS_REGION, "statuses")
        port = server.port
        server.stop()
        page.wait_for_selector("body:not([data-connection=live])", timeout=TIMEOUT)
        presence_during_outage = page.inner_text("#presence")
        page.wait_for_timeout(8000)  # long enough for a backoff to grow
        server = Server(db, port)
        restarted = time.monotonic()
        page.wait_for_selector("body[data-connection=live]", timeout=60_000)
        seconds = time.monotonic() - restarted
        page.wait_for_timeout(1500)  # "live" is read out once it has lasted
        statuses = page.evaluate("window.statuses")
        print(f"restart to live: {seconds:.1f} s; status read out {len(statuses)} times: {statuses}")
        print(f"console errors: {len(console_errors)}: {console_errors}")
        assert seconds < 5
        assert presence_during_outage == "1 online (last known)"  # kept, and marked as old
        assert len(statuses) <= 2, statuses
        assert statuses == ["Connection lost. Reconnecting…", "Live again."]
        assert console_errors == []
        expect(page.locator("#online")).to_have_text("1", timeout=TIMEOUT)
    finally:
        server.stop()


def test_reconnect_now_and_a_stale_publish_error_cleared(browser: Browser, server: Server) -> None:
    page = open_live(browser, server, "/#publish")
    server.run(server.mode.hub.go_down())
    page.wait_for_selector("#reconnect:visible", timeout=TIMEOUT)
    page.route("**/api/messages/*", lambda route: route.abort("internetdisconnected"))
    page.fill("#publish-key", PUBLISH_KEY)
    page.fill("#text", "sent during the outage")
    page.click("#send")
    expect(page.locator("#publish-result")).to_contain_text("Could not reach", timeout=TIMEOUT)
    page.unroute("**/api/messages/*")
    page.wait_for_timeout(3000)  # the retries have backed off
    server.call(server.mode.hub.come_back)
    clicked = time.monotonic()
    # Dispatched, not clicked: Playwright's click would wait for ever on the button should an
    # automatic attempt win the race and hide it first.
    page.dispatch_event("#reconnect", "click")
    page.wait_for_selector("body[data-connection=live]", timeout=TIMEOUT)
    assert time.monotonic() - clicked < 1.5
    expect(page.locator("#publish-result")).to_have_text("")
    assert page.is_hidden("#reconnect")


def test_the_network_coming_back_retries_at_once(browser: Browser, server: Server) -> None:
    page = open_live(browser, server)
    server.run(server.mode.hub.go_down())
    page.context.set_offline(True)
    page.wait_for_selector("body[data-connection=offline]", timeout=TIMEOUT)
    expect(page.locator("#status-text")).to_have_text("Offline: waiting for the network")
    page.wait_for_timeout(1000)  # well into the long wait of an offline page
    server.call(server.mode.hub.come_back)
    back = time.monotonic()
    page.context.set_offline(False)
    page.wait_for_selector("body[data-connection=live]", timeout=TIMEOUT)
    assert time.monotonic() - back < 1.5


# defect 5: loading


def test_while_history_loads_the_page_says_so(browser: Browser, server: Server) -> None:
    server.publish("the only message")
    page = browser.new_context().new_page()
    held: list[Route] = []
    released = threading.Event()

    def hold(route: Route) -> None:
        if released.is_set():
            route.continue_()
        else:
            held.append(route)

    page.route("**/api/messages**", hold)
    page.goto(server.url + "/")
    deadline = time.monotonic() + 10
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert held, "the page asked for no history"
    assert page.get_by_text("No messages yet").is_hidden()
    assert page.is_visible("#loading")
    assert page.get_attribute("#feed", "aria-busy") == "true"
    # No "- online" as if that were a count: hidden until the hub tells (it may have by now).
    online = page.locator(".online")
    assert online.is_hidden() or re.fullmatch(r"\d+ online", online.inner_text())
    released.set()
    for route in held:
        route.continue_()
    page.wait_for_selector(message(page, 1), timeout=TIMEOUT)
    assert page.is_hidden("#loading") and page.get_by_text("No messages yet").is_hidden()


def test_first_load_reads_the_newest_page_in_at_most_two_requests(browser: Browser, server: Server) -> None:
    """The request count only: how soon the first message shows is a figure of the site load
    benchmark (benchmarks/site_load.py), where the machine's load is reported beside it."""
    server.store(300)
    context = browser.new_context()
    history: list[str] = []

    def count(route: Route) -> None:
        history.append(route.request.url)
        route.continue_()

    context.route("**/api/messages**", count)
    page = context.new_page()
    page.goto(server.url + "/")
    page.wait_for_selector(message(page, 300), timeout=30_000)
    page.wait_for_selector("body[data-connection=live]", timeout=TIMEOUT)
    expect(page.locator("#feed")).to_have_attribute("aria-busy", "false")  # the catch-up is over too
    print(f"history requests: {len(history)}")
    assert len(history) <= 2, history
    assert feed_ids(page) == list(range(300, 200, -1))


# defect 6: older history


def test_older_messages_are_reachable(browser: Browser, server: Server) -> None:
    server.store(250)
    page = open_live(browser, server)
    page.wait_for_selector(message(page, 250), timeout=TIMEOUT)
    assert feed_ids(page) == list(range(250, 150, -1))
    page.click("#older")
    page.wait_for_selector(message(page, 51), timeout=TIMEOUT)
    assert feed_ids(page) == list(range(250, 50, -1))
    page.click("#older")
    page.wait_for_selector(message(page, 1), timeout=TIMEOUT)
    assert feed_ids(page) == list(range(250, 0, -1))
    expect(page.locator("#older")).to_be_hidden()
    assert page.is_visible("#beginning")
    assert page.text_content("#announcer") == ""  # history is not news


# what is new


def test_new_messages_pill_title_count_and_highlight(browser: Browser, server: Server) -> None:
    server.store(40)
    page = open_live(browser, server, viewport={"width": 390, "height": 600})
    page.wait_for_selector(message(page, 40), timeout=TIMEOUT)
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    server.publish("while you read", "ana")
    page.wait_for_selector(message(page, 41), timeout=TIMEOUT)
    assert "fresh" in (page.get_attribute(message(page, 41), "class") or "")
    highlight = page.eval_on_selector(
        message(page, 41, ".card"), "c => getComputedStyle(c, '::before').animationName"
    )
    assert highlight == "arrive"  # the overlay whose opacity fades (see test_no_highlight_animation...)
    assert "fresh" not in (page.get_attribute(message(page, 40), "class") or "")
    expect(page.locator("#new-pill")).to_have_text("1 new message")
    page.click("#new-pill")
    wait_until(page, "window.scrollY === 0")
    expect(page.locator("#new-pill")).to_be_hidden()
    # A hidden tab counts what it has not shown in its title.
    page.evaluate(
        """() => {
          Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
          document.dispatchEvent(new Event('visibilitychange'));
        }"""
    )
    server.publish("one")
    server.publish("two")
    page.wait_for_selector(message(page, 43), timeout=TIMEOUT)
    assert page.title() == "(2) Broadcast"
    page.evaluate(
        """() => {
          Object.defineProperty(document, 'hidden', { configurable: true, get: () => false });
          document.dispatchEvent(new Event('visibilitychange'));
        }"""
    )
    assert page.title() == "Broadcast"


def test_no_highlight_animation_under_reduced_motion(browser: Browser, server: Server) -> None:
    page = open_live(browser, server, reduced_motion="reduce")
    server.publish("calm")
    page.wait_for_selector(message(page, 1), timeout=TIMEOUT)
    animation = page.eval_on_selector(
        message(page, 1, ".card"), "card => getComputedStyle(card, '::before').animationName"
    )
    assert animation == "none"


# the publisher panel


def test_publisher_panel_sends_and_shows_the_servers_errors(browser: Browser, server: Server) -> None:
    page = open_live(browser, server)
    assert page.is_hidden("#publisher")
    page.click("#publish-toggle")
    assert page.get_attribute("#publish-toggle", "aria-expanded") == "true"
    assert page.evaluate("location.hash") == "#publish"
    page.click("#send")
    assert page.get_attribute("#publish-key", "aria-invalid") == "true"
    assert page.evaluate("document.activeElement.id") == "publish-key"
    page.fill("#publish-key", "wrong-key")
    page.fill("#text", "hello")
    page.click("#send")
    expect(page.locator("#publish-result")).to_contain_text("refused", timeout=TIMEOUT)
    assert page.evaluate("document.activeElement.id") == "publish-key"
    page.fill("#publish-key", PUBLISH_KEY)
    page.eval_on_selector("#text", "el => el.removeAttribute('maxlength')")
    page.fill("#text", "x" * 1999 + "\U0001f600")  # an emoji is 2 UTF-16 units, as SQL Server counts
    assert page.inner_text("#text-count") == "2001 / 2000"
    page.click("#send")
    expect(page.locator("#publish-result")).to_contain_text(
        "2001 characters as SQL Server counts them", timeout=TIMEOUT
    )
    assert page.get_attribute("#text", "aria-invalid") == "true"
    assert page.evaluate("document.activeElement.id") == "text"
    page.fill("#author", "grace")
    page.fill("#text", "from the panel")
    assert page.get_attribute("#text", "aria-invalid") is None
    page.keyboard.press("Control+Enter")
    page.wait_for_selector(message(page, 1), timeout=TIMEOUT)
    assert page.inner_text(message(page, 1, ".who")) == "grace"
    assert page.inner_text("#publish-result") == "Sent."
    assert page.input_value("#text") == "" and page.inner_text("#text-count") == "0 / 2000"
    assert page.evaluate("sessionStorage.getItem('broadcast.functionKey')") == PUBLISH_KEY
    expect(page.locator("#publish-result")).to_have_text("", timeout=TIMEOUT)  # the success goes away
    page.click("#publish-toggle")
    assert page.is_hidden("#publisher") and page.evaluate("location.hash") == ""


def test_sending_again_after_a_lost_answer_publishes_once(browser: Browser, server: Server) -> None:
    """The first answer is lost on the way back (the request reached the API); the user sends
    again, and the message is stored and broadcast once: the page reuses the message's key."""
    page = open_live(browser, server, "/#publish")
    keys: list[str] = []

    def lose_the_answer(route: Route) -> None:
        keys.append(route.request.url.rsplit("/", 1)[1])
        route.fetch()  # the API stores the message ...
        route.abort("connectionreset")  # ... and its answer never arrives

    page.route("**/api/messages/*", lose_the_answer)
    page.fill("#publish-key", PUBLISH_KEY)
    page.fill("#text", "exactly once")
    page.click("#send")
    expect(page.locator("#publish-result")).to_contain_text("Could not reach", timeout=TIMEOUT)
    page.unroute("**/api/messages/*")
    page.wait_for_selector(message(page, 1), timeout=TIMEOUT)  # it was stored and broadcast
    page.route(
        "**/api/messages/*",
        lambda route: (keys.append(route.request.url.rsplit("/", 1)[1]), route.continue_()),
    )
    page.click("#send")
    expect(page.locator("#publish-result")).to_have_text("Sent.", timeout=TIMEOUT)
    assert len(keys) == 2 and keys[0] == keys[1]
    status, page_of_history = server.request("GET", "/api/messages?after=0&take=10")
    assert status == 200 and [m["text"] for m in page_of_history["messages"]] == ["exactly once"]
    assert feed_ids(page) == [1]
    # Another message gets another key.
    page.fill("#text", "and one more")
    page.click("#send")
    page.wait_for_selector(message(page, 2), timeout=TIMEOUT)
    assert len(set(keys)) == 2


def test_publish_in_the_address_opens_the_panel(browser: Browser, server: Server) -> None:
    page = open_live(browser, server, "/#publish")
    assert page.is_visible("#publish-key")
    assert page.inner_text("label[for=publish-key]").startswith("Publish key")


# the page as a whole


def test_first_load_weight_and_origins(browser: Browser, server: Server) -> None:
    context = browser.new_context()
    page = context.new_page()
    sizes: dict[str, int] = {}
    origins: set[str] = set()

    def record(response: Any) -> None:
        url = urlsplit(response.url)
        origins.add(f"{url.scheme}://{url.netloc}")
        if not url.path.startswith(("/api/", "/client/")):
            sizes[url.path] = len(response.body())

    page.on("response", record)
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-connection=live]", timeout=TIMEOUT)
    page.wait_for_load_state("networkidle")
    total = sum(sizes.values())
    print(f"first load: {total} bytes in {sorted(sizes)}")
    expected = {"/", "/app.js", "/styles.css", "/config.json", "/favicon.svg", "/vendor/signalr.min.js"}
    assert expected <= set(sizes)
    assert total < PAGE_WEIGHT_LIMIT
    assert origins == {server.url}


def test_skip_link_moves_to_the_feed(browser: Browser, server: Server) -> None:
    page = open_live(browser, server)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to messages"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "feed"


def test_dark_mode_follows_the_system(browser: Browser, server: Server) -> None:
    colours = {}
    for scheme in ("light", "dark"):
        page = open_live(browser, server, color_scheme=scheme)
        colours[scheme] = page.evaluate(
            "(root => [root.backgroundColor, root.colorScheme])(getComputedStyle(document.documentElement))"
        )
    assert colours["light"][0] == "rgb(255, 255, 255)"
    assert colours["dark"][0] == "rgb(13, 17, 23)"
    assert colours["dark"][1] == "light dark"


def test_screenshots_phone_and_desktop_light_and_dark(browser: Browser, server: Server) -> None:
    """Saved under test-artifacts/; BROADCAST_UPDATE_SCREENSHOTS=1 also refreshes docs/."""
    server.store(
        1, author="Grace", days_ago=1, text="Welcome! What is published here reaches everyone at once."
    )
    for text, author in (
        ("Doors open at 18:00. Directions: https://example.com/venue", "Ana"),
        ("مرحبا! نراكم هناك", "سارة"),
        ("The slides are up. Questions welcome after the talk. " * 14, "Bo"),
        ("Live now.", None),
    ):
        server.publish(text, author)
    ARTIFACTS.mkdir(exist_ok=True)
    shots = {  # the desktop shots show the publisher panel too
        "phone": ("/", {"width": 390, "height": 844}),
        "desktop": ("/#publish", {"width": 1280, "height": 1000}),
    }
    for name, (path_, viewport) in shots.items():
        for scheme in ("light", "dark"):
            page = open_live(
                browser, server, path_, viewport=viewport, color_scheme=scheme, reduced_motion="reduce"
            )
            page.wait_for_selector(message(page, 5), timeout=TIMEOUT)
            expect(page.locator("#online")).not_to_have_text(UNKNOWN, timeout=TIMEOUT)
            page.wait_for_timeout(300)
            path = ARTIFACTS / f"site-{name}-{scheme}.png"
            page.screenshot(path=str(path))
            page.context.close()
            assert path.stat().st_size > 10_000
            if os.environ.get("BROADCAST_UPDATE_SCREENSHOTS") == "1":
                (DOCS / path.name).write_bytes(path.read_bytes())


def test_unknown_path_gets_the_404_page(browser: Browser, server: Server) -> None:
    page = browser.new_page()
    response = page.goto(server.url + "/no/such/page")
    assert response is not None and response.status == 404
    assert page.inner_text("h1") == "Page not found"
    icon = page.get_attribute("link[rel=icon]", "href")
    assert icon is not None and page.request.get(server.url + icon).ok


# issue 22, item 1: a burst on a slow phone

COUNT_LAYOUT_READS = """() => {
  window.layoutReads = 0;
  const read = Element.prototype.getBoundingClientRect;
  Element.prototype.getBoundingClientRect = function () {
    window.layoutReads++;
    return read.call(this);
  };
  window.perFrame = [];
  window.topPerFrame = [];
  let shown = 0;
  const tick = () => {
    const now = document.querySelectorAll('#feed article').length;
    if (now !== shown) {
      window.perFrame.push(now - shown);
      window.topPerFrame.push(Number(document.querySelector('#feed article').dataset.id));
    }
    shown = now;
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""


def test_a_burst_is_added_in_frames_without_measuring_each_message(browser: Browser, server: Server) -> None:
    """The page measures the layout once per batch at most, not once per message (each read
    forces a layout), and adds a burst over several frames, a slice at a time, the newest slice
    first: the top of the feed is final from the first frame, later slices go in below it."""
    # The hub's frames are held until the whole burst is there, then sent as one: the page receives
    # all 150 at once whatever the trigger's batching, as a burst from a busy hub arrives.
    context = browser.new_context(viewport={"width": 390, "height": 844})
    relay = HeldHub()
    context.route_web_socket("**", lambda socket: relay.attach(socket))
    page = context.new_page()
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-connection=live]", timeout=TIMEOUT)
    page.wait_for_selector("#feed[aria-busy=false]", state="attached", timeout=TIMEOUT)
    page.evaluate(COUNT_LAYOUT_READS)
    relay.holding = True
    server.store(150)
    deadline = time.monotonic() + TIMEOUT / 1000
    while relay.held_invocations("newMessage") < 150:
        assert time.monotonic() < deadline, f"the hub sent {relay.held_invocations('newMessage')} of 150"
        page.wait_for_timeout(20)
    relay.release_as_one_frame()
    page.wait_for_selector(message(page, 150), timeout=TIMEOUT)
    wait_until(page, "document.querySelectorAll('#feed article').length === 150")
    reads, per_frame, tops = page.evaluate("[window.layoutReads, window.perFrame, window.topPerFrame]")
    print(f"burst of 150: {reads} layout reads; articles added per frame: {per_frame}; on top: {tops}")
    assert reads <= 10, reads
    assert len(per_frame) >= 2, per_frame  # over several frames, not all at once
    # The newest slice goes in first and the later ones below it: once the newest message is on top
    # it stays there while older slices are added (one at a time, oldest first, it would be on top
    # for the last frame only).
    assert tops[-1] == 150 and tops.count(150) >= 2, tops
    assert tops == sorted(tops), tops
    assert feed_ids(page) == list(range(150, 0, -1))


# item 2: the reader's place

# As in Safari: the document's scroller does no scroll anchoring (set through the CSSOM, which the
# page's CSP allows, unlike a style element).
NO_SCROLL_ANCHORING = "document.documentElement.style.setProperty('overflow-anchor', 'none', 'important')"


@pytest.mark.parametrize("anchoring", [False, True])
def test_the_readers_place_is_kept_in_code_and_never_trimmed(
    browser: Browser, server: Server, anchoring: bool
) -> None:
    """Without the browser's scroll anchoring (Safari has none), a reader scrolled down to an
    older message keeps it where it is while 520 new ones arrive above, and it is not removed
    although the feed holds 500; back at the newest, the feed is trimmed again."""
    server.store(40)
    page = open_live(browser, server, viewport={"width": 390, "height": 600}, reduced_motion="reduce")
    if not anchoring:
        page.evaluate(NO_SCROLL_ANCHORING)
    page.wait_for_selector(message(page, 40), timeout=TIMEOUT)
    page.eval_on_selector(message(page, 10), "a => a.scrollIntoView({ block: 'center' })")
    next_frames(page)  # the observer has seen the reader leave the top
    before = page.eval_on_selector(message(page, 10), "a => a.getBoundingClientRect().top")
    assert 0 < before < 600
    server.store(520, text="new")
    page.wait_for_selector(message(page, 560), state="attached", timeout=30_000)
    next_frames(page)
    after = page.eval_on_selector(message(page, 10), "a => a.getBoundingClientRect().top")
    print(f"message being read: {before:.0f} px from the top, then {after:.0f} px")
    assert abs(after - before) <= 2
    assert page.locator(message(page, 1)).count() == 1  # older than the one read, still there
    expect(page.locator("#new-pill")).to_have_text("520 new messages")
    page.click("#new-pill")
    wait_until(page, "document.querySelectorAll('#feed article').length === 500")
    assert feed_ids(page)[0] == 560


def test_what_the_first_catch_up_brings_above_a_reader_who_scrolled_away_is_counted(
    browser: Browser, server: Server
) -> None:
    """Messages published while the page's first catch-up is on its way, read by that catch-up
    before their live copies come (held here with Playwright's WebSocket routing), go in above a
    reader who has already scrolled down: they are history (not announced), but the pill counts
    them, since the reader has not seen them. CI saw 13 of 520 go uncounted this way."""
    server.store(40)
    context = browser.new_context(viewport={"width": 390, "height": 600}, reduced_motion="reduce")
    held_catch_up: list[Route] = []
    context.route("**/api/messages/after/**", lambda route: held_catch_up.append(route))
    relay = HeldHub()
    context.route_web_socket("**", lambda socket: relay.attach(socket))
    page = context.new_page()
    page.goto(server.url + "/")
    page.wait_for_selector(message(page, 40), timeout=TIMEOUT)
    page.eval_on_selector(message(page, 10), "a => a.scrollIntoView({ block: 'center' })")
    next_frames(page)
    relay.holding = True  # what the hub sends from now on waits
    server.store(13, text="while loading")
    deadline = time.monotonic() + TIMEOUT / 1000
    while not held_catch_up:
        assert time.monotonic() < deadline, "the page never asked for its first catch-up"
        page.wait_for_timeout(20)
    for route in held_catch_up:
        route.continue_()
    expect(page.locator("#feed")).to_have_attribute("aria-busy", "false", timeout=TIMEOUT)
    assert page.locator(message(page, 53)).count() == 1  # brought by the catch-up
    relay.release()  # the live copies, now duplicates
    next_frames(page)
    expect(page.locator("#new-pill")).to_have_text("13 new messages")
    assert page.locator("#feed [data-id]").count() == 53


class HeldHub:
    """Relays the page's hub WebSocket to the local mode, holding what the hub sends while
    `holding` (Playwright's `route_web_socket`)."""

    def __init__(self) -> None:
        self.holding = False
        self.held: list[str | bytes] = []
        self.page_side: Any = None

    def attach(self, socket: Any) -> None:
        """Connect the page's socket to the real hub, both ways."""
        self.page_side = socket
        hub = socket.connect_to_server()
        socket.on_message(lambda frame: hub.send(frame))
        hub.on_message(lambda frame: self._to_page(frame))

    def _to_page(self, frame: str | bytes) -> None:
        if self.holding:
            self.held.append(frame)
        else:
            self.page_side.send(frame)

    def release(self) -> None:
        """Send what was held, in order, and stop holding."""
        self.holding = False
        for frame in self.held:
            self.page_side.send(frame)
        self.held.clear()

    def release_as_one_frame(self) -> None:
        """Send what was held as one WebSocket frame, and stop holding: SignalR's JSON protocol ends
        each message with the record separator 0x1E, so one frame may carry many ("SignalR Hub
        Protocol", TextMessageFormat), and the page receives them all in one task."""
        self.holding = False
        self.page_side.send("".join(str(frame) for frame in self.held))
        self.held.clear()

    def held_invocations(self, target: str) -> int:
        """How many invocations of `target` are being held."""
        invocation = re.compile(rf'"target":\s*"{re.escape(target)}"')
        return sum(len(invocation.findall(str(frame))) for frame in self.held)


# item 3: a failed history load


def test_a_failed_history_load_retries_by_itself_and_offers_retry(browser: Browser, server: Server) -> None:
    server.publish("from history")
    page = browser.new_context().new_page()
    answers: list[int] = []

    def fail_twice(route: Route) -> None:
        if len(answers) < 2:
            answers.append(503)
            route.fulfill(status=503, json={"error": {"code": "unavailable", "message": "busy"}})
        else:
            answers.append(200)
            route.continue_()

    page.route("**/api/messages/before/**", fail_twice)
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-connection=live]", timeout=TIMEOUT)
    expect(page.locator("#load-retry")).to_be_visible(timeout=TIMEOUT)
    shown = page.inner_text("#load-error")
    assert "connection" not in shown.lower() and "could not be loaded" in shown, shown
    page.click("#load-retry")  # the second attempt, at once; it fails too
    page.wait_for_selector(message(page, 1), timeout=TIMEOUT)
    assert answers == [503, 503, 200]  # the third came by itself, with no reconnect
    assert page.inner_text(message(page, 1, ".text")) == "from history"
    assert page.is_hidden("#load-error")


# item 4: display spoofing

COMBINING_BELOW = "".join(chr(code) for code in range(0x0316, 0x031A)) * 10


def test_what_could_pass_for_something_else_is_shown_as_it_is(browser: Browser, server: Server) -> None:
    """Names with invisible or bidi characters (stored before the API refused them, so served here
    by a stand-in for the history page) show their code points; a non-ASCII host is shown as the
    punycode host the link leads to; balanced parentheses stay in a link; stacked combining marks
    stay inside their message."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    shown = [
        (
            4,
            "\u202enimda",
            "Pay at https://\u0430pple.com/pay (see https://en.wikipedia.org/wiki/Foo_(bar)).",
        ),
        (3, "adm\u200bin", "x" + COMBINING_BELOW),
        (2, "plain", "second"),
        (1, "plain", "first"),
    ]
    history = {
        "messages": [
            {"id": id_, "key": str(uuid.uuid4()), "text": text, "author": author, "createdAt": now}
            for id_, author, text in shown
        ]
    }
    context = browser.new_context(reduced_motion="reduce", viewport={"width": 600, "height": 900})
    context.route("**/api/messages/before/**", lambda route: route.fulfill(json=history))
    page = context.new_page()
    page.goto(server.url + "/")
    page.wait_for_selector(message(page, 4), timeout=TIMEOUT)
    assert page.inner_text(message(page, 3, ".who")) == "admU+200Bin"
    assert page.inner_text(message(page, 4, ".who")) == "U+202Enimda"
    links = page.eval_on_selector_all(
        message(page, 4, "a"), "links => links.map(a => [a.getAttribute('href'), a.textContent])"
    )
    assert links == [
        ["https://xn--pple-43d.com/pay", "https://xn--pple-43d.com/pay"],
        ["https://en.wikipedia.org/wiki/Foo_(bar)", "https://en.wikipedia.org/wiki/Foo_(bar)"],
    ]
    assert page.inner_text(message(page, 4, ".text")).endswith("Foo_(bar)).")
    page.mouse.move(0, 0)

    def gap_below(id_: int) -> bytes:
        """The strip between message `id_`'s card and the next one: background only, unless ink
        from the card spills into it."""
        box = page.locator(message(page, id_, ".card")).bounding_box()
        assert box is not None
        return page.screenshot(
            clip={"x": box["x"], "y": box["y"] + box["height"] + 1, "width": box["width"], "height": 6}
        )

    assert gap_below(3) == gap_below(2)


# item 5: keyboard and publisher


def test_the_publisher_and_the_feed_follow_the_keyboard(browser: Browser, server: Server) -> None:
    server.store(120, text="https://example.com/link in message")
    page = open_live(browser, server)
    page.wait_for_selector(message(page, 120), timeout=TIMEOUT)
    # Tab leaves a long feed at once: the feed is one stop (with the current message's controls).
    page.focus(message(page, 120))
    presses = 0
    while page.evaluate("document.activeElement.id") != "older":
        page.keyboard.press("Tab")
        presses += 1
        assert presses <= 10, f"Tab reached {page.evaluate('document.activeElement.outerHTML.slice(0, 80)')}"
    page.focus(message(page, 120))
    page.keyboard.press("PageDown")
    assert page.evaluate("document.activeElement.dataset.id") == "119"
    page.keyboard.press("Control+End")
    assert page.evaluate("document.activeElement.id") == "older"
    page.focus(message(page, 119))
    page.keyboard.press("Control+Home")
    assert page.evaluate("document.activeElement.id") == "publish-toggle"
    # The publisher: Enter in the key and the name moves on, never sends an empty message.
    page.keyboard.press("Enter")
    page.fill("#publish-key", PUBLISH_KEY)
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "author"
    page.keyboard.type("ana")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "text"
    assert page.inner_text("#publish-result") == ""
    page.keyboard.press("Enter")  # an empty message: refused here, and the refusal goes on typing
    expect(page.locator("#publish-result")).to_have_text("Write a message first.")
    page.keyboard.type("two")
    expect(page.locator("#publish-result")).to_have_text("")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("lines")
    page.keyboard.press("Enter")
    page.wait_for_selector(message(page, 121), timeout=TIMEOUT)
    assert page.inner_text(message(page, 121, ".text")) == "two\nlines"
    page.keyboard.press("Escape")
    assert page.is_hidden("#publisher")
    assert page.evaluate("document.activeElement.id") == "publish-toggle"


def test_the_publisher_refuses_what_the_api_refuses(browser: Browser, server: Server) -> None:
    """The rules of functions/contract.py: no invisible, bidi or control characters in a name, no
    text that is empty once invisible characters are removed; nothing is sent."""
    page = open_live(browser, server, "/#publish")
    sent: list[str] = []
    page.route("**/api/messages/*", lambda route: (sent.append(route.request.url), route.abort()))
    page.fill("#publish-key", PUBLISH_KEY)
    for author, text, error, field in (
        ("adm\u200bin", "hello", "The name contains invisible", "author"),
        ("\u202enimda", "hello", "The name contains invisible", "author"),
        ("ana\u0085", "hello", "The name contains invisible", "author"),
        ("\u0391dmin", "hello", "could pass for another one (mixes Greek and Latin)", "author"),
        ("ana", "\u200b\u2060\ufeff \u200f", "Write a message first.", "text"),
        # Issue 30, item 9: Unicode's whole Default_Ignorable_Code_Point set, blanks and lone marks.
        ("ad\u2065min", "hello", "The name contains invisible", "author"),
        ("\u0301ana", "hello", "The name contains invisible", "author"),
        ("ana", "\U000e0080\u2800 \u0301", "Write a message first.", "text"),
    ):
        page.fill("#author", author)
        page.fill("#text", text)
        page.click("#send")
        expect(page.locator("#publish-result")).to_contain_text(error)
        assert page.get_attribute(f"#{field}", "aria-invalid") == "true"
    assert sent == []


# item 6: a link to a message


def test_a_message_link_opens_older_pages_and_copy_link_gives_it(browser: Browser, server: Server) -> None:
    server.store(250)
    context = browser.new_context(viewport={"width": 390, "height": 700})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(server.url + "/#m20")
    page.wait_for_selector(message(page, 20), timeout=TIMEOUT)
    wait_until(page, "document.activeElement.id === 'm20'")
    assert "linked" in (page.get_attribute(message(page, 20), "class") or "")
    box = page.locator(message(page, 20)).bounding_box()
    assert box is not None and 0 <= box["y"] < 700
    assert feed_ids(page)[-1] <= 20  # two older pages were read to reach it
    page.hover(message(page, 21))
    page.click(message(page, 21, ".copy"))
    expect(page.locator("#copy-status")).to_have_text("Link copied.")
    assert page.evaluate("navigator.clipboard.readText()") == f"{server.url}/#m21"


# item 7: new since the last visit


def test_a_line_marks_what_is_new_since_the_last_visit(browser: Browser, server: Server) -> None:
    server.store(3)
    context = browser.new_context()
    first = context.new_page()
    first.goto(server.url + "/")
    first.wait_for_selector(message(first, 3), timeout=TIMEOUT)
    assert first.locator(".since").count() == 0  # a first visit: nothing is "new since"
    first.close()
    server.store(2, text="since")
    again = context.new_page()
    again.goto(server.url + "/")
    again.wait_for_selector(message(again, 5), timeout=TIMEOUT)
    assert again.eval_on_selector_all(
        ".since", "lines => lines.map(l => [l.closest('article').dataset.id, l.textContent])"
    ) == [["4", "New since your last visit"]]


# item 8: honest status


def test_a_silent_server_is_reported_and_the_count_kept_as_stale(browser: Browser, server: Server) -> None:
    """The hub stops sending (no close, no ping): the page says "Reconnecting…" within the client's
    server timeout (20 s here, 30 s by default), and the count it last had is kept, marked."""
    context = browser.new_context()
    silent = threading.Event()

    def relay(socket: Any) -> None:
        hub = socket.connect_to_server()
        hub.on_message(lambda frame: None if silent.is_set() else socket.send(frame))

    page = context.new_page()
    page.route_web_socket(re.compile(r"/client/"), relay)
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-connection=live]", timeout=TIMEOUT)
    expect(page.locator("#online")).to_have_text("1", timeout=TIMEOUT)
    silent.set()
    went_silent = time.monotonic()
    page.wait_for_selector("body:not([data-connection=live])", timeout=25_000)
    seconds = time.monotonic() - went_silent
    print(f"a silent hub is reported after {seconds:.1f} s")
    assert seconds < 22
    expect(page.locator("#status-text")).to_have_text(re.compile("Reconnecting…|Offline"))
    assert page.inner_text("#presence") == "1 online (last known)"
    assert page.get_attribute("#presence", "data-stale") == "true"
    silent.clear()
    page.wait_for_selector("body[data-connection=live]", timeout=30_000)
    expect(page.locator("#presence-stale")).to_be_hidden(timeout=TIMEOUT)


# item 9: small screens and forced colours


def test_a_short_window_keeps_the_header_out_of_the_way(browser: Browser, server: Server) -> None:
    """400 % zoom of a 1280 x 800 window: 320 x 200 CSS pixels."""
    server.store(30)
    page = open_live(browser, server, viewport={"width": 320, "height": 200})
    page.wait_for_selector(message(page, 30), timeout=TIMEOUT)
    assert page.eval_on_selector(".bar", "bar => getComputedStyle(bar).position") == "static"
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    server.store(123)
    expect(page.locator("#new-pill")).to_have_text("123 new messages", timeout=TIMEOUT)
    pill = page.eval_on_selector(
        "#new-pill", "p => [p.getBoundingClientRect().height, parseFloat(getComputedStyle(p).lineHeight)]"
    )
    assert pill[0] < 2 * pill[1], pill  # one line


def test_forced_colours_keep_the_status_dot_and_the_pressed_state(browser: Browser, server: Server) -> None:
    page = open_live(browser, server, forced_colors="active")
    colour = "el => getComputedStyle(el).backgroundColor"
    assert page.eval_on_selector(".dot", colour) != page.eval_on_selector(".bar", colour)
    released = page.eval_on_selector("#publish-toggle", colour)
    page.click("#publish-toggle")
    assert page.eval_on_selector("#publish-toggle", colour) != released


# item 11: weight


def test_the_script_ships_minified_with_its_source_map(browser: Browser, server: Server) -> None:
    page = browser.new_page()
    script = page.request.get(server.url + "/app.js")
    source_map = page.request.get(server.url + "/app.js.map")
    assert script.ok and source_map.ok
    size = len(script.body())
    print(f"app.js: {len((SITE_DIR / 'app.js').read_bytes())} bytes as written, {size} as served")
    assert size < 0.6 * len((SITE_DIR / "app.js").read_bytes())
    assert script.text().rstrip().endswith("//# sourceMappingURL=app.js.map")
    assert source_map.headers["content-type"] == "application/json"
    assert source_map.json()["sourcesContent"] == [(SITE_DIR / "app.js").read_text()]


# issue 31: the live feed, round four

# Animation frames held back, as a browser holds them in a hidden tab or between a scroll and its
# frame: the page's callbacks wait in `window.heldFrames` until the test runs them.
HOLD_FRAMES = """() => {
  window.realFrame = window.requestAnimationFrame.bind(window);
  window.heldFrames = [];
  window.requestAnimationFrame = (callback) => window.heldFrames.push(callback);
}"""
RELEASE_FRAMES = """() => {
  window.requestAnimationFrame = window.realFrame;
  const now = performance.now();
  for (const callback of window.heldFrames.splice(0)) callback(now);
}"""
SET_HIDDEN = """(hidden) => {
  Object.defineProperty(document, 'hidden', { configurable: true, get: () => hidden });
  Object.defineProperty(document, 'visibilityState', {
    configurable: true, get: () => (hidden ? 'hidden' : 'visible'),
  });
  document.dispatchEvent(new Event('visibilitychange'));
}"""


def test_an_arrival_in_the_frame_of_a_scroll_is_counted(browser: Browser, server: Server) -> None:
    """Item 2: the reader scrolls down and, in the same frame, before the intersection observer has
    reported it, a message is added: it goes in above the reader, so the pill counts it."""
    server.store(40)
    page = open_live(browser, server, viewport={"width": 390, "height": 600})
    page.wait_for_selector(message(page, 40), timeout=TIMEOUT)
    page.evaluate(HOLD_FRAMES)
    server.publish("while you scroll", "ana")
    wait_until(page, "window.heldFrames.length > 0")  # received, waiting for its frame
    page.evaluate(f"() => {{ window.scrollTo(0, document.body.scrollHeight); ({RELEASE_FRAMES})(); }}")
    page.wait_for_selector(message(page, 41), state="attached", timeout=TIMEOUT)
    expect(page.locator("#new-pill")).to_have_text("1 new message")
    assert page.evaluate("window.scrollY") > 0


def test_a_tab_hidden_as_a_message_arrives_counts_it_in_the_title(browser: Browser, server: Server) -> None:
    """Item 6: a message arrives while the page is shown, the tab is hidden before the frame that
    would draw it (a hidden tab gets none), and more arrive: the title counts each on arrival, and
    they are drawn once the tab is shown again."""
    page = open_live(browser, server)
    page.evaluate(HOLD_FRAMES)
    server.publish("just as the tab is hidden")
    wait_until(page, "window.heldFrames.length > 0")
    page.evaluate(SET_HIDDEN, True)
    expect(page).to_have_title("(1) Broadcast")
    server.publish("while hidden")
    expect(page).to_have_title("(2) Broadcast", timeout=TIMEOUT)
    page.evaluate(SET_HIDDEN, False)
    page.evaluate(RELEASE_FRAMES)
    page.wait_for_selector(message(page, 2), timeout=TIMEOUT)
    assert feed_ids(page) == [2, 1]
    assert page.title() == "Broadcast"


def test_a_live_page_says_offline_as_soon_as_the_browser_knows(browser: Browser, server: Server) -> None:
    """Item 1: the network drops under a live page (its socket is not closed: it would only time
    out): the page says so within 2 s, keeps the count as the last known one, and is live again
    as soon as the network is back."""
    page = open_live(browser, server)
    expect(page.locator("#online")).to_have_text("1", timeout=TIMEOUT)
    dropped = time.monotonic()
    page.context.set_offline(True)
    page.wait_for_selector("body[data-connection=offline]", timeout=25_000)
    seconds = time.monotonic() - dropped
    print(f"offline shown after {seconds:.2f} s")
    assert seconds < 2
    expect(page.locator("#status-text")).to_have_text("Offline: waiting for the network")
    expect(page.locator("#presence")).to_have_text("1 online (last known)")
    back = time.monotonic()
    page.context.set_offline(False)
    page.wait_for_selector("body[data-connection=live]", timeout=TIMEOUT)
    assert time.monotonic() - back < 1.5
    server.publish("after the outage")
    page.wait_for_selector(message(page, 1), timeout=TIMEOUT)


# Every layout shift from the start (the Layout Instability API), as Lighthouse sums them.
WATCH_SHIFTS = """
window.shifts = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    if (!entry.hadRecentInput) window.shifts.push([entry.value, entry.sources.map((s) => s.node?.className)]);
  }
}).observe({ type: "layout-shift", buffered: true });
"""


@pytest.mark.parametrize(
    "viewport", [{"width": 390, "height": 844}, {"width": 1350, "height": 940}], ids=["phone", "desktop"]
)
def test_the_first_load_does_not_shift_the_layout(
    browser: Browser, server: Server, viewport: dict[str, int]
) -> None:
    """Item 3: from the first byte until the page is live with its count and a page of history, the
    layout shifts add up to less than 0.05 (Lighthouse's "good" cumulative layout shift is 0.1)."""
    server.store(100, text="The doors open at 18:00, see https://example.com/venue for directions")
    context = browser.new_context(viewport=viewport)
    context.add_init_script(WATCH_SHIFTS)
    page = context.new_page()
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-connection=live]", timeout=TIMEOUT)
    expect(page.locator("#online")).to_have_text("1", timeout=TIMEOUT)
    expect(page.locator("#feed")).to_have_attribute("aria-busy", "false")
    next_frames(page)
    shifts = page.evaluate("window.shifts")
    total = sum(value for value, _ in shifts)
    print(f"layout shift at {viewport['width']} px: {total:.4f} from {shifts}")
    assert total < 0.05, shifts


def test_a_dead_permalink_says_so_visibly(browser: Browser, server: Server) -> None:
    """Item 5: a link to a message that is not there (removed, or never was) says so on screen,
    not only to a screen reader, until dismissed."""
    server.store(3)
    page = browser.new_context().new_page()
    page.goto(server.url + "/#m9999")
    page.wait_for_selector(message(page, 3), timeout=TIMEOUT)
    notice = page.locator("#notice")
    expect(notice).to_be_visible(timeout=TIMEOUT)
    expect(notice).to_contain_text("That message is no longer here")
    page.click("#notice-dismiss")
    expect(notice).to_be_hidden()


@pytest.mark.parametrize(
    ("locale", "now_word", "yesterday_word"), [("de-DE", "jetzt", "Gestern"), ("ar-EG", "الآن", "أمس")]
)
def test_times_are_in_the_readers_locale(
    browser: Browser, server: Server, locale: str, now_word: str, yesterday_word: str
) -> None:
    """Item 7: dates, times and relative times follow the browser's languages (the interface texts
    stay in their one table); the times say which language they are in."""
    server.store(1, author="older", days_ago=3)
    server.store(1, author="yesterday", days_ago=1)
    server.publish("now")
    page = open_live(browser, server, locale=locale)
    page.wait_for_selector(message(page, 3), timeout=TIMEOUT)
    when = page.locator(message(page, 3, "time"))
    expected = page.evaluate(
        """([locale, at]) => new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'medium' })
             .format(new Date(at))""",
        [locale, when.get_attribute("datetime")],
    )
    assert when.get_attribute("title") == expected
    assert (when.get_attribute("lang") or "").split("-")[0] == locale.split("-")[0]
    assert page.inner_text(message(page, 3, "time .ago")) == now_word
    days = page.eval_on_selector_all(".day", "days => days.filter(d => !d.hidden).map(d => d.textContent)")
    weekday = page.evaluate(
        """([locale, at]) => new Intl.DateTimeFormat(locale, { weekday: 'long' }).format(new Date(at))""",
        [locale, page.get_attribute(message(page, 1, "time"), "datetime")],
    )
    assert days[1] == yesterday_word and weekday in days[2], days


@pytest.mark.parametrize("width", [195, 320])
def test_the_open_publisher_fits_a_small_window(browser: Browser, server: Server, width: int) -> None:
    """Item 8: 200 % zoom on a small phone leaves about 195 CSS pixels; nothing overflows, not
    even with the publisher open and an error shown."""
    page = open_live(browser, server, "/#publish", viewport={"width": width, "height": 700})
    page.click("#send")  # "Enter the publish key first."
    expect(page.locator("#publish-result")).not_to_have_text("")
    sizes = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert sizes == [width, width]


@pytest.mark.parametrize("width", [390, 320])
def test_the_phone_header_keeps_its_height_whatever_the_state(
    browser: Browser, server: Server, width: int
) -> None:
    """Item 8: connecting, live with its count, offline with "Reconnect now" and a stale count:
    the header is as high in each, so the feed below never moves."""
    context = browser.new_context(viewport={"width": width, "height": 700})
    held: list[Route] = []
    context.route("**/api/negotiate**", lambda route: held.append(route))
    page = context.new_page()
    page.goto(server.url + "/")
    wait_until(page, "document.body.dataset.connection === 'connecting'")
    height = "document.querySelector('.bar').getBoundingClientRect().height"
    heights = {"connecting": page.evaluate(height)}
    for route in held:
        route.continue_()
    context.unroute("**/api/negotiate**")
    page.wait_for_selector("body[data-connection=live]", timeout=TIMEOUT)
    expect(page.locator("#online")).to_have_text("1", timeout=TIMEOUT)
    heights["live"] = page.evaluate(height)
    context.set_offline(True)
    page.wait_for_selector("#reconnect:visible", timeout=TIMEOUT)
    expect(page.locator("#presence-stale")).to_be_attached()
    heights["offline"] = page.evaluate(height)
    widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    print(f"header at {width} px: {heights}")
    assert len(set(heights.values())) == 1, heights
    assert widths == [width, width]


def test_copy_link_shows_only_on_the_message_touched(browser: Browser, server: Server) -> None:
    """Item 8: on a touch screen "Copy link" is not on every card: a tap on a message shows its
    own, and no invisible button waits to be tapped on the others."""
    server.store(5)
    page = open_live(browser, server, viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    page.wait_for_selector(message(page, 5), timeout=TIMEOUT)
    assert page.evaluate("matchMedia('(hover: none)').matches")
    visible = "#feed .copy:visible"
    expect(page.locator(visible)).to_have_count(0)
    page.tap(message(page, 3, ".text"))
    expect(page.locator(visible)).to_have_count(1)
    assert page.locator(message(page, 3, ".copy")).is_visible()


def test_new_since_the_last_visit_after_a_long_absence_and_while_away(
    browser: Browser, server: Server
) -> None:
    """Item 8: more than a page arrived since the last visit: the line is under the oldest shown
    (all are new) and moves down as older pages are read; and what arrived while the reader was
    scrolled away from the newest is not counted as seen."""
    server.store(40)
    context = browser.new_context(viewport={"width": 390, "height": 600})
    first = context.new_page()
    first.goto(server.url + "/")
    first.wait_for_selector(message(first, 40), timeout=TIMEOUT)
    first.wait_for_selector("body[data-connection=live]", timeout=TIMEOUT)
    first.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    wait_until(first, "window.scrollY > 0")
    server.publish("while scrolled away")
    expect(first.locator("#new-pill")).to_have_text("1 new message", timeout=TIMEOUT)
    first.close()  # pagehide: what is stored as seen is 40, not 41
    server.store(150, text="since")
    again = context.new_page()
    again.goto(server.url + "/")
    again.wait_for_selector(message(again, 191), timeout=TIMEOUT)
    since = ".since", "lines => lines.map(l => l.closest('article').dataset.id)"
    expect(again.locator(".since")).to_have_count(1)
    assert again.eval_on_selector_all(*since) == ["92"]  # the oldest of the newest page: all new
    again.click("#older")
    again.wait_for_selector(message(again, 41), timeout=TIMEOUT)
    expect(again.locator(message(again, 41, ".since"))).to_have_count(1)
    assert again.eval_on_selector_all(*since) == ["41"]


# Names for the one rule of functions/names.py and the site (issue 31 item 4): what passes, what
# mixes scripts, what is Cyrillic posing as Latin.
NAMES_TO_JUDGE = [
    "Admin",
    "\u0391dmin",  # a Greek capital alpha
    "Ana \u30a2\u30ca",  # Latin with Katakana: allowed, as Latin with Japanese
    "\u5c71\u7530 Taro",
    "\uae40 Kim",
    "\u0414\u0438\u043c\u0430",  # all Cyrillic, not all look-alikes
    "Dima \u0414\u0438\u043c\u0430",
    "\u0430\u0440\u0435",  # all Cyrillic look-alikes: "are"
    "\u1f08\u0398\u0397\u039d\u0391",
    "\u0645\u062d\u0645\u062f",
    "Jos\u00e9 2",
    "x\u0640y",  # Arabic tatweel (Script_Extensions: Arabic, Syriac, ...) beside Latin
]


def test_text_that_reads_differently_from_what_was_written_is_shown_as_it_is(
    browser: Browser, server: Server
) -> None:
    """Item 4: reordering characters in a text are shown as code points (no override runs on); a
    link's host stands apart from its label; a name that mixes scripts or is Cyrillic posing as
    Latin is marked, by the same rule as the API's (functions/names.py), which refuses it."""
    from names import disguise

    status, answer = server.publish("hello", "\u0391dmin")
    assert status == 400 and answer["error"]["code"] == "invalid_author", answer
    # Names stored before the rule: served by a stand-in for the history page (the local database
    # holds the contract's rules as a CHECK constraint would, and refuses them).
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    shown = [(id_, name, "judged") for id_, name in enumerate(NAMES_TO_JUDGE, start=1)]
    count = len(NAMES_TO_JUDGE) + 1
    shown.append((count, "ana", "invoice_\u202efdp.exe (open it) https://example.com/https://bank.com"))
    history = {
        "messages": [
            {"id": id_, "key": str(uuid.uuid4()), "text": text, "author": author, "createdAt": now}
            for id_, author, text in reversed(shown)
        ]
    }
    context = browser.new_context()
    context.route("**/api/messages/before/**", lambda route: route.fulfill(json=history))
    page = context.new_page()
    page.goto(server.url + "/")
    page.wait_for_selector(message(page, count), timeout=TIMEOUT)
    text = page.inner_text(message(page, count, ".text"))
    assert text.startswith("invoice_U+202Efdp.exe (open it)") and "\u202e" not in text, text
    assert page.inner_text(message(page, count, "a .host")) == "example.com"
    assert page.get_attribute(message(page, count, "a"), "href") == "https://example.com/https://bank.com"
    marks = {
        name: page.eval_on_selector(
            message(page, id_, ".who"), "who => who.querySelector('.disguised')?.textContent ?? null"
        )
        for id_, name in enumerate(NAMES_TO_JUDGE, start=1)
    }
    expected = {name: disguise(name) for name in NAMES_TO_JUDGE}
    assert {name: how is not None for name, how in marks.items()} == {
        name: how is not None for name, how in expected.items()
    }
    assert marks["\u0391dmin"] == "mixes Greek and Latin" == expected["\u0391dmin"]
    assert expected["\u0430\u0440\u0435"] and marks["Ana \u30a2\u30ca"] is None
