"""In a real browser: a hosting user logs in, adds a web domain and sees it in the list."""

from __future__ import annotations

import pytest
import requests

from tests.browser.conftest import browser, page, panel, screenshot  # noqa: F401  (fixtures)
from tests.userdata.conftest import seed_account_files

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PASSWORD = "a browser password"


def test_user_adds_a_web_domain(page, panel):  # noqa: F811
    """The admin makes a user through the API; the user lands on their home page, follows its link, adds a site
    in the UI and the list shows it (the form's DNS box, ticked as the page offers it, makes the site's zone
    first: the user holds no zone yet)."""
    seed_account_files(panel.data / "local-node" / "root")
    made = requests.post(panel.url + "/api/v1/users", auth=("admin", panel.password), timeout=30,
                         json={"name": "webuser", "password": PASSWORD, "roles": ["web", "dns"]})
    assert made.status_code == 201, made.text
    page.goto(panel.url + "/login")
    page.fill("input[name=username]", "webuser")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(panel.url + "/home")
    page.click("text=add a web domain")
    page.wait_for_url(panel.url + "/domains/web")
    assert "No web domains yet." in page.locator("#webdomains-table").inner_text()
    page.fill("#new-webdomain input[name=name]", "browser.example.com")
    page.fill("#new-webdomain input[name=aliases]", "www.browser.example.com")
    page.click("#new-webdomain button[type=submit]")
    page.wait_for_url(panel.url + "/domains/web")
    row = page.locator("#webdomains-table tr", has_text="browser.example.com")
    row.wait_for(timeout=10_000)
    assert "local" in row.inner_text()
    assert "browser.example.com is live on local" in page.locator(".flash").inner_text()
    screenshot(page, "webdomain-added")
    row.locator("a").click()
    page.wait_for_url("**/domains/web/*")
    assert "www.browser.example.com" in page.locator("dl.facts").inner_text()
    screenshot(page, "webdomain-detail")
    vhost = panel.data / "local-node/root/etc/nginx/hostfleet/webuser/browser.example.com.conf"
    assert "server_name browser.example.com www.browser.example.com;" in vhost.read_text()
    assert page.js_errors == []
