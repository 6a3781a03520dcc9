"""In a real browser: add a lab node through Cluster → Nodes → Add, confirm its host key, watch it become ready."""

from __future__ import annotations

import threading

import pytest

from tests.browser.conftest import screenshot
from tests.cluster.labpanel import LabPanel, reset

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(1200)]


@pytest.fixture(scope="module")
def lab_panel(lab_nodes, tmp_path_factory):
    """The whole panel pointed at the lab's repository."""
    from tests.lab.lab import Lab

    lab_nodes(4)
    panel = LabPanel(tmp_path_factory.mktemp("browserlab"), Lab().repo_line, workers=1).start()
    yield panel
    panel.stop()


def test_add_a_node_in_the_browser(page, lab_panel, lab_nodes):
    """Two steps (host key, then the root password), then the live step list until `ready`, without reloads."""
    node = lab_nodes(4)[3]
    reset(node)
    page.goto(lab_panel.url + "/login")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", lab_panel.panel.password)
    page.click("button[type=submit]")
    page.wait_for_url(lab_panel.url + "/dashboard")
    page.goto(lab_panel.url + "/cluster/nodes")
    page.click("#add-node-link")
    page.fill("input[name=name]", "browser1")
    page.fill("input[name=address]", node.address)
    page.uncheck("input[name=roles][value=dns]")
    page.uncheck("input[name=roles][value=mail]")
    page.click("button:has-text('Connect and show the host key')")
    fingerprint = page.locator("#host-key-fingerprint").inner_text()
    expected = node.exec("ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[1]
    assert fingerprint == f"ssh-ed25519 {expected}"
    screenshot(page, "add-node-host-key")
    page.fill("input[name=password]", "not the password")
    page.click("button:has-text('set the node up')")
    assert "refused the root login" in page.locator(".error[data-field=password]").inner_text()
    page.fill("input[name=password]", node.root_password)
    page.click("button:has-text('set the node up')")
    page.wait_for_url(lab_panel.url + "/cluster/nodes/*")
    node_id = int(page.url.rsplit("/", 1)[1])
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    page.locator("li[data-step='5'][data-status='done']").wait_for(timeout=300_000)
    screenshot(page, "add-node-setup-steps")
    done = threading.Event()

    def clear_unowned():
        # The `users` synchronizer has no runner in this tree yet; see LabPanel.clear_unowned.
        while not done.wait(1):
            data = lab_panel.node(node_id)
            if data["state"] == "syncing":
                lab_panel.clear_unowned(data)

    helper = threading.Thread(target=clear_unowned, daemon=True)
    helper.start()
    try:
        page.locator("h1 .badge[data-state=ready]").wait_for(timeout=600_000)
    finally:
        done.set()
    assert navigations == [], "the node page must update without reloading"
    assert page.locator("li[data-status=done]").count() == 8
    assert page.locator("[data-software]").inner_text() == "done"
    assert page.locator("td[data-package=nginx]").inner_text() == "installed"
    assert page.locator("#node-detail").get_attribute("hx-trigger") is None
    screenshot(page, "add-node-ready")
    assert node.exec(["dpkg", "-s", "nginx"]).returncode == 0
    assert page.js_errors == []
