"""In a real browser, the main flows on a whole panel with two more nodes on loopback: a hosting user adds a
mail domain and a mailbox; the admin adds a firewall rule while one node is down and reads each node's outcome.
Every page is screenshotted and must log no JavaScript error."""

from __future__ import annotations

import pytest
import requests

from tests.browser.conftest import browser, log_in, page, panel, screenshot  # noqa: F401  (fixtures)
from tests.panel import add_loopback_nodes

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PASSWORD = "a browser password"
DOMAIN = "browser-mail.example.com"


@pytest.fixture(scope="module")
def nodes(panel, tmp_path_factory):  # noqa: F811
    """Two loopback agents (w1, w2) in the panel besides its own server."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        agents = add_loopback_nodes(panel, tmp_path_factory.mktemp("flow-agents"), ("w1", "w2"), monkeypatch)
        yield agents
        agents.stop_all()


def test_user_adds_a_mail_domain_and_a_mailbox(page, panel, nodes):  # noqa: F811
    """A user with the mail and dns roles adds a domain (its zone made first), then a mailbox in it; both lists
    show them on their node."""
    made = requests.post(panel.url + "/api/v1/users", auth=("admin", panel.password), timeout=30,
                         json={"name": "mailuser", "password": PASSWORD, "roles": ["mail", "dns"]})
    assert made.status_code == 201, made.text
    log_in(page, panel, "mailuser", PASSWORD)
    page.goto(panel.url + "/mail/domains")
    page.fill("#new-maildomain input[name=name]", DOMAIN)
    dns = page.locator("#new-maildomain input[name=dns]")
    if dns.count() and not dns.is_checked():
        dns.check()  # the user holds no zone yet: the page makes the domain's zone first
    page.click("#new-maildomain button[type=submit]")
    row = page.locator("#maildomains-table tr", has_text=DOMAIN)
    row.wait_for(timeout=15_000)
    screenshot(page, "maildomain-added")
    page.goto(panel.url + "/mail/mailboxes")
    page.fill("#new-mailbox input[name=address]", f"info@{DOMAIN}")
    page.fill("#new-mailbox input[name=password]", "a mailbox password")
    page.fill("#new-mailbox input[name=quota_mb]", "100")
    page.click("#new-mailbox button[type=submit]")
    box = page.locator("#mailboxes-table tr", has_text=f"info@{DOMAIN}")
    box.wait_for(timeout=15_000)
    screenshot(page, "mailbox-added")
    assert "a mailbox password" not in page.content()
    # Deleting asks first (the mail goes with the mailbox): cancelled, nothing happens; confirmed, it goes.
    box.locator("summary", has_text="Delete").click()
    question = box.locator(".confirm-box")
    assert question.inner_text().startswith(f"Delete mailbox info@{DOMAIN}? Its mail is deleted with it.")
    question.get_by_role("button", name="Cancel").click()
    assert not question.is_visible()
    assert page.locator("#mailboxes-table tr", has_text=f"info@{DOMAIN}").count() == 1
    box.locator("summary", has_text="Delete").click()
    with page.expect_navigation():
        question.get_by_role("button", name=f"Delete mailbox info@{DOMAIN}").click()
    assert page.locator("#mailboxes-table tr", has_text=f"info@{DOMAIN}").count() == 0
    assert "Mailbox deleted." in page.content()
    assert page.js_errors == []


def test_firewall_rule_with_one_node_down_shows_each_outcome(page, panel, nodes):  # noqa: F811
    """w2's agent is stopped: the operation page ends `partial`, applied on two nodes and unavailable on w2."""
    w2 = next(agent for agent in nodes.agents.values() if agent.root.parent.name == "w2")
    w2.stop()
    try:
        log_in(page, panel, "admin", panel.password)
        page.goto(panel.url + "/system/firewall")
        screenshot(page, "firewall-list")
        page.fill("#list-form input[name=ports]", "8081")
        page.fill("#list-form input[name=comment]", "browser rule")
        page.click("#list-form button[type=submit]")
        page.wait_for_url("**/operations/*")
        detail = page.locator("#operation-detail")
        page.locator("#operation-detail .outcome-unavailable").wait_for(timeout=30_000)
        page.wait_for_function("!document.querySelector('#operation-detail').hasAttribute('hx-trigger')",
                               timeout=30_000)
        text = detail.inner_text()
        outcomes = {row.locator("td").nth(0).inner_text(): row.locator("td").nth(1).inner_text()
                    for row in detail.locator("tbody tr").all()}
        screenshot(page, "firewall-one-node-down")
        assert outcomes == {"local": "applied", "w1": "applied", "w2": "unavailable"}, text
        assert "partial" in text.lower()
        assert page.js_errors == []
    finally:
        w2.start()
