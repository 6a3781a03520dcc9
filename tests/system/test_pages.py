"""System → Firewall, Scheduler; Mail → Whitelist, Blacklist; Cluster → Policies, Synchronization pages."""

from __future__ import annotations

import pytest

from agent.tests.test_hostile import VALUES
from tests.conftest import csrf_from, run_worker_burst

PAGES = {
    "/system/firewall": {"action": "accept", "protocol": "tcp", "ports": "443", "source": "", "comment": "https"},
    "/system/scheduler": {"schedule": "@daily", "user": "root", "command": "/bin/true", "comment": "",
                          "enabled": "y"},
    "/mail/whitelist": {"sender": "friend.example"},
    "/mail/blacklist": {"sender": "spam@bad.example"},
}


def _operations(app):
    from app.extensions import db
    from app.models import Operation

    with app.app_context():
        return db.session.query(Operation).count()


@pytest.fixture
def admin(client, auth):
    """A logged-in administrator."""
    auth.login("root", admin=True)
    return client


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("hx", [False, True])
def test_add_answers_at_once_and_the_operation_page_shows_the_result(admin, app, agent_nodes, path, hx):
    """A valid add redirects to the live operation page; the job then applies it."""
    agent_nodes.add("n1")
    page = admin.get(path)
    assert page.status_code == 200
    headers = {"HX-Request": "true"} if hx else {}
    response = admin.post(path, data={**PAGES[path], "csrf_token": csrf_from(page.text)}, headers=headers)
    if hx:
        assert response.status_code == 204 and response.headers["HX-Redirect"].startswith("/operations/")
        target = response.headers["HX-Redirect"]
    else:
        assert response.status_code == 302 and "/operations/" in response.headers["Location"]
        target = response.headers["Location"]
    assert 'hx-trigger="load delay:1s"' in admin.get(target).text, "the queued operation's page polls"
    run_worker_burst(app)
    final = admin.get(target, headers={"HX-Request": "true"}).text
    assert "hx-trigger" not in final and "succeeded" in final and "applied" in final
    listing = admin.get(path).text
    assert 'id="row-1"' in listing and "Every node holds it." in listing and 'data-polling="no"' in listing
    fragment = admin.get(path, headers={"HX-Request": "true"}).text
    assert fragment.lstrip().startswith("<div id=\"list-page\"") and 'id="list-form"' not in fragment


def test_list_polls_while_a_change_runs_but_not_the_form(admin, app, agent_nodes):
    """A queued change makes the status part poll; the form is outside it."""
    agent_nodes.add("n1")
    page = admin.get("/mail/blacklist")
    admin.post("/mail/blacklist", data={"sender": "x.example", "csrf_token": csrf_from(page.text)})
    page = admin.get("/mail/blacklist").text
    assert 'data-polling="yes"' in page and page.index('id="list-form"') > page.index("</table>\n</div>")
    run_worker_burst(app)
    assert 'data-polling="no"' in admin.get("/mail/blacklist", headers={"HX-Request": "true"}).text


@pytest.mark.parametrize("path,field", [(p, f) for p, row in PAGES.items() for f in row if f != "enabled"])
def test_hostile_values_in_forms_show_the_error_under_the_field(admin, app, path, field):
    """Every hostile string in every form field: 400, the error under that field, no operation."""
    from agent.tests.test_hostile import _legitimate

    token = csrf_from(admin.get(path).text)
    name = path.split("/")[-1]
    case = f"{'mail_' + name if path.startswith('/mail') else name}.{field}"
    for why, value in VALUES:
        if not isinstance(value, str):
            continue
        before = _operations(app)
        response = admin.post(path, data={**PAGES[path], field: value, "csrf_token": token})
        if response.status_code == 302 and _legitimate(case, value):
            continue
        assert response.status_code == 400, (path, field, why, response.status_code)
        assert f'data-field="{field}"' in response.text, (path, field, why)
        assert _operations(app) == before


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


def test_policies_page_saves_and_refuses_bad_values(admin, app):
    """The policies form stores valid values and shows an error under a bad one."""
    page = admin.get("/cluster/policies")
    assert page.status_code == 200 and 'value="50"' in page.text
    data = {"min_ready_percent": "60", "missed_polls": "3", "poll_interval_s": "10", "placement_resource": "disk",
            "node_apt_source": "", "csrf_token": csrf_from(page.text)}
    assert admin.post("/cluster/policies", data=data).status_code == 302
    bad = admin.post("/cluster/policies", data={**data, "min_ready_percent": "150"})
    assert bad.status_code == 400 and 'data-field="min_ready_percent"' in bad.text
    bad = admin.post("/cluster/policies", data={**data, "node_apt_source": "deb http://x/ b main; reboot"})
    assert bad.status_code == 400 and 'data-field="node_apt_source"' in bad.text
    assert 'value="60"' in admin.get("/cluster/policies").text


def test_sync_page_retry_and_resync(admin, app, agent_nodes):
    """Synchronization: a desync row with retry-now; re-sync a list or everything on a node."""
    from app.extensions import db
    from app.models import Desync, Node
    from app.services.desyncs import register_desync

    node_id = agent_nodes.add("n1")
    with app.app_context():
        register_desync(db.session.get(Node, node_id), "firewall")
        db.session.commit()
        desync_id = db.session.scalar(db.select(Desync.id))
    page = admin.get("/cluster/sync")
    assert "Retry now" in page.text and 'hx-trigger="load delay:2s"' in page.text
    fragment = admin.get("/cluster/sync", headers={"HX-Request": "true"}).text
    assert fragment.startswith('<div id="sync-table"')
    token = csrf_from(page.text)
    assert admin.post(f"/cluster/sync/{desync_id}/retry", data={"csrf_token": token}).status_code == 302
    run_worker_burst(app)
    assert "No desyncs" in admin.get("/cluster/sync").text
    response = admin.post(f"/cluster/sync/nodes/{node_id}", data={"list": "scheduler", "csrf_token": token})
    assert response.status_code == 302
    run_worker_burst(app)
    assert "succeeded" in admin.get(response.headers["Location"]).text
    response = admin.post(f"/cluster/sync/nodes/{node_id}", data={"csrf_token": token})
    assert response.status_code == 302
    # Not run here: "everything" includes the roles and software synchronizers of node setup.
    from app.models import Operation

    with app.app_context():
        operation = db.session.scalars(db.select(Operation).order_by(Operation.id.desc())).first()
        assert {"firewall", "scheduler", "mail_whitelist", "mail_blacklist"} <= set(operation.params["lists"])


def test_pages_are_for_admins(client, auth):
    """A user gets 403 on every page of this area."""
    auth.login("bob", admin=False)
    for path in ("/system/firewall", "/system/scheduler", "/mail/whitelist", "/mail/blacklist", "/cluster/policies",
                 "/system/firewall/1/edit"):
        assert client.get(path).status_code == 403, path
