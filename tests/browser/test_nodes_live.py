"""In a real browser: log in, open Cluster → Nodes, watch the local node become ready without a reload."""

import pytest

from tests.browser.conftest import reset_local_node, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def log_in(page, panel, password=None):
    page.goto(panel.url + "/login")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", password or panel.password)
    page.click("button[type=submit]")


def test_wrong_password_shows_a_message(page, panel):
    log_in(page, panel, password="wrong password")
    assert page.locator(".error[data-field=password]").inner_text() == "Password: Wrong user name or password."
    assert page.js_errors == []


def test_nodes_page_turns_ready_by_itself(page, panel):
    log_in(page, panel)
    page.wait_for_url(panel.url + "/dashboard")
    reset_local_node(panel)
    navigations = []
    page.goto(panel.url + "/cluster/nodes")
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    badge = page.locator("#node-1 .badge")
    assert badge.inner_text() == "connecting"
    screenshot(page, "nodes-connecting")
    badge.filter(has_text="ready").wait_for(timeout=30_000)
    assert navigations == [], "the page must not reload"
    assert page.locator("#nodes-table").get_attribute("data-polling") == "no"
    screenshot(page, "nodes-ready")
    page.click("#node-1 a")
    page.wait_for_url(panel.url + "/cluster/nodes/1")
    history = page.locator("table.history").inner_text()
    assert "connecting" in history and "ready" in history and "the agent answers" in history
    screenshot(page, "node-detail")
    assert page.js_errors == []


def test_sidebar_and_api_token(page, panel):
    log_in(page, panel)
    page.click("nav >> text=Firewall")
    page.wait_for_url(panel.url + "/system/firewall**")
    assert "Firewall" in page.locator("h1").inner_text()
    page.click("text=API tokens")
    page.fill("input[name=name]", "billing")
    page.click("button:has-text('Create token')")
    assert page.locator("#new-token").inner_text().startswith("hf_")
    assert page.js_errors == []
