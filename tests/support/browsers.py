"""Playwright driving Debian's chromium (no browser download), against a panel started like `make run`."""

import os
import shutil
import sqlite3

import pytest

from tests.panel import new_panel

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "browser", "screenshots")


@pytest.fixture(scope="module")
def browser():
    """A headless Debian chromium, or a skip saying why there is none."""
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (make test installs it when run as root)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic"],
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def panel(tmp_path_factory):
    """The whole panel, as `make run` starts it."""
    running = new_panel(tmp_path_factory.mktemp("browser")).start()
    running.wait_ready()
    yield running
    running.stop()


@pytest.fixture
def page(browser):
    """A fresh browser page that records JavaScript errors."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.js_errors = []
    page.on("pageerror", lambda error: page.js_errors.append(str(error)))
    # A 4xx answer to a form post is logged by chromium as a failed load; only script errors count.
    page.on(
        "console",
        lambda msg: msg.type == "error"
        and not msg.text.startswith("Failed to load resource")
        and page.js_errors.append(msg.text),
    )
    yield page
    context.close()


def log_in(page, panel, name, password):
    """Log in through the form; return the page it lands on."""
    page.goto(panel.url + "/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return page.url


def reset_local_node(panel, state="connecting"):
    """Put the local node back to a state the collector will move on by itself."""
    with sqlite3.connect(panel.data / "hostfleet.db") as conn:
        conn.execute("UPDATE nodes SET state = ? WHERE is_local = 1", (state,))
        conn.execute(
            "INSERT INTO node_state_changes (node_id, at, from_state, to_state, reason) "
            "SELECT id, CURRENT_TIMESTAMP, 'ready', ?, 'browser test: watch it come back' "
            "FROM nodes WHERE is_local = 1",
            (state,),
        )


def screenshot(page, name):
    """Save a screenshot under tests/browser/screenshots/."""
    os.makedirs(SCREENSHOTS, exist_ok=True)
    page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"), full_page=True)
