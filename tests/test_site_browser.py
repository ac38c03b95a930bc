"""The site in headless Chromium (Debian's), with the official @microsoft/signalr client, against
the local mode: the live feed, its history, its recovery from outages, what it tells a screen
reader, how it lays out on a phone, and the publisher panel."""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
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
"""What the presence count shows while it is not known."""
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
                "messageKey": f"00000000-0000-4000-8000-{index:012d}",
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
    """A new page at `path`, once it is live; fails on a script error or a CSP violation."""
    page = browser.new_context(**context).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: errors.append(message.text) if "Content Security Policy" in message.text else None,
    )
    page.goto(server.url + path)
    page.wait_for_selector("body[data-connection=live]", timeout=TIMEOUT)
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
    assert time_.inner_text() == "just now"
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
        presence_during_outage = page.inner_text("#online")
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
        assert presence_during_outage == UNKNOWN
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
    server.store(300)
    context = browser.new_context()
    history: list[str] = []

    def slow_network(route: Route) -> None:
        history.append(route.request.url)
        time.sleep(0.15)
        route.continue_()

    context.route("**/api/messages**", slow_network)
    page = context.new_page()
    page.add_init_script(
        """new MutationObserver((_, observer) => {
             if (document.querySelector('#feed [data-id]')) {
               window.firstMessageAt = performance.now();
               observer.disconnect();
             }
           }).observe(document, { childList: true, subtree: true });"""
    )
    page.goto(server.url + "/")
    page.wait_for_selector(message(page, 300), timeout=30_000)
    page.wait_for_selector("body[data-connection=live]", timeout=TIMEOUT)
    page.wait_for_timeout(500)
    first_message_ms = page.evaluate("window.firstMessageAt")
    print(f"history requests: {len(history)}; first message after {first_message_ms:.0f} ms")
    assert len(history) <= 2, history
    assert first_message_ms < 2500
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
        message(page, 1, ".card"), "card => getComputedStyle(card).animationName"
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
