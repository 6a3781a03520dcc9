"""System → Firewall: the list page with its add form; each change a distributed request."""

from __future__ import annotations

from tests.conftest import csrf_from, run_worker_burst
from tests.system_list_pages import PAGES, ListPageTests


class TestFirewallPage(ListPageTests):
    PATH = "/system/firewall"


def test_edit_and_delete_from_the_page(admin, app, agent_nodes):
    """Edit prefills the form; saving and deleting start distributed requests."""
    agent_nodes.add("n1")
    page = admin.get("/system/firewall")
    admin.post("/system/firewall", data={**PAGES["/system/firewall"], "csrf_token": csrf_from(page.text)})
    run_worker_burst(app)
    edit = admin.get("/system/firewall/1/edit")
    assert edit.status_code == 200 and 'value="443"' in edit.text
    response = admin.post("/system/firewall/1/edit", data={**PAGES["/system/firewall"], "ports": "8443",
                                                           "csrf_token": csrf_from(edit.text)})
    assert response.status_code == 302
    run_worker_burst(app)
    assert "8443" in admin.get("/system/firewall").text
    response = admin.post("/system/firewall/1/delete", data={"csrf_token": csrf_from(edit.text)})
    assert response.status_code == 302
    run_worker_burst(app)
    assert 'id="row-1"' not in admin.get("/system/firewall").text
    assert admin.get("/system/firewall/9/edit").status_code == 404

