"""The site in headless Chromium (Debian's), with the official @microsoft/signalr client, against
the local mode."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from local_support import PUBLISH_KEY, LocalServer
from playwright.sync_api import Browser, Page, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
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


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def server() -> Iterator[LocalServer]:
    local = LocalServer()
    yield local
    local.stop()


def open_live(browser: Browser, server: LocalServer) -> Page:
    page = browser.new_context().new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: errors.append(message.text) if "Content Security Policy" in message.text else None,
    )
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-connection=live]", timeout=TIMEOUT)
    assert errors == []
    return page


def feed_ids(page: Page) -> list[int]:
    return [int(i) for i in page.eval_on_selector_all("#feed li", "items => items.map(li => li.dataset.id)")]


def test_two_pages_receive_the_same_broadcast(browser: Browser, server: LocalServer) -> None:
    first, second = open_live(browser, server), open_live(browser, server)
    status, accepted = server.publish("to everyone", "ada")
    assert status == 202
    for page in (first, second):
        page.wait_for_selector("#feed li[data-id='1']", timeout=TIMEOUT)
        assert page.inner_text("#feed li[data-id='1'] .text") == "to everyone"
        assert page.inner_text("#feed li[data-id='1'] .who") == "ada"
        assert page.get_attribute("#feed li[data-id='1'] time", "datetime") == accepted["createdAt"]
    expect(second.locator("#online")).to_have_text("2", timeout=TIMEOUT)


def test_history_loads_on_first_visit_newest_first(browser: Browser, server: LocalServer) -> None:
    for index in range(3):
        server.publish(f"earlier {index}")
    page = open_live(browser, server)
    page.wait_for_selector("#feed li[data-id='3']", timeout=TIMEOUT)
    assert feed_ids(page) == [3, 2, 1]
    assert page.is_hidden("#empty")


def test_first_visit_shows_the_most_recent_page_of_a_long_history(
    browser: Browser, server: LocalServer
) -> None:
    for index in range(250):
        server.publish(f"old {index}")
    page = open_live(browser, server)
    page.wait_for_selector("#feed li[data-id='250']", timeout=TIMEOUT)
    assert feed_ids(page) == list(range(250, 150, -1))


def test_a_page_cut_off_and_restored_shows_the_gap_exactly_once(
    browser: Browser, server: LocalServer
) -> None:
    page = open_live(browser, server)
    server.publish("before the cut")
    page.wait_for_selector("#feed li[data-id='1']", timeout=TIMEOUT)
    server.run(server.mode.hub.go_down())
    page.wait_for_selector("body[data-connection=reconnecting]", state="attached", timeout=TIMEOUT)
    for index in range(3):
        server.publish(f"while away {index}")
    server.call(server.mode.hub.come_back)
    page.wait_for_selector("#feed li[data-id='4']", timeout=30_000)
    page.wait_for_selector("body[data-connection=live]", timeout=TIMEOUT)
    server.publish("after")
    page.wait_for_selector("#feed li[data-id='5']", timeout=TIMEOUT)
    assert feed_ids(page) == [5, 4, 3, 2, 1]


def test_markup_in_a_message_is_shown_as_text(browser: Browser, server: LocalServer) -> None:
    page = open_live(browser, server)
    text = "<script>window.pwned = true</script><b>bold?</b>"
    server.publish(text, "<img src=x onerror=alert(1)>")
    page.wait_for_selector("#feed li[data-id='1']", timeout=TIMEOUT)
    assert page.inner_text("#feed li[data-id='1'] .text") == text
    assert page.inner_text("#feed li[data-id='1'] .who") == "<img src=x onerror=alert(1)>"
    assert page.eval_on_selector_all("#feed script, #feed b, #feed img", "nodes => nodes.length") == 0
    assert page.evaluate("window.pwned === undefined")


def test_publisher_panel_sends_and_shows_the_servers_errors(browser: Browser, server: LocalServer) -> None:
    page = open_live(browser, server)
    assert page.get_attribute("#publisher", "open") is None
    page.click("#publisher summary")
    page.fill("#function-key", "wrong-key")
    page.fill("#text", "hello")
    page.click("#send")
    expect(page.locator("#publish-result")).to_contain_text("refused", timeout=TIMEOUT)
    page.fill("#function-key", PUBLISH_KEY)
    page.eval_on_selector("#text", "el => el.removeAttribute('maxlength')")
    page.fill("#text", "x" * 2001)
    page.click("#send")
    expect(page.locator("#publish-result")).to_contain_text("2001 characters; at most 2000", timeout=TIMEOUT)
    page.fill("#author", "grace")
    page.fill("#text", "from the panel")
    page.keyboard.press("Tab")
    page.click("#send")
    page.wait_for_selector("#feed li[data-id='1']", timeout=TIMEOUT)
    assert page.inner_text("#feed li[data-id='1'] .who") == "grace"
    assert page.inner_text("#publish-result") == "Sent."
    assert page.evaluate("sessionStorage.getItem('broadcast.functionKey')") == PUBLISH_KEY
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 390, "height": 720})
    page.screenshot(path=str(ARTIFACTS / "site-phone.png"), full_page=True)
    page.set_viewport_size({"width": 1024, "height": 640})
    page.screenshot(path=str(ARTIFACTS / "site.png"), full_page=True)
    assert (ARTIFACTS / "site.png").stat().st_size > 10_000


def test_unknown_path_gets_the_404_page(browser: Browser, server: LocalServer) -> None:
    page = browser.new_page()
    response = page.goto(server.url + "/no/such/page")
    assert response is not None and response.status == 404
    assert page.inner_text("h1") == "Page not found"
