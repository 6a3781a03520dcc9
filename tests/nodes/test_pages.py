"""Cluster → Nodes: add a node in two steps (host key, then the root credential), the node page and its
actions (flags, roles, remove), each answering HTMX too."""

from __future__ import annotations

from app.extensions import db
from app.models import Node, Operation
from app.services.setup import fingerprint_of
from tests.cluster.fakessh import FakeSSHServer
from tests.conftest import csrf_from, free_port


def counts(app) -> tuple[int, int]:
    with app.app_context():
        return db.session.query(Node).count(), db.session.query(Operation).count()




def test_form_step_one_names_bad_fields(app, client, auth):
    """Step 1 with bad values: 422 and each error under its field; nothing stored."""
    auth.login()
    page = client.get("/cluster/nodes/add")
    assert page.status_code == 200 and 'name="address"' in page.text
    response = client.post("/cluster/nodes/add", data={
        "csrf_token": csrf_from(page.text), "name": "Bad Name;", "address": "example.com\nserver {",
        "ssh_port": "70000", "roles": ["web", "nope"], "weight": "0"})
    assert response.status_code == 422
    for field in ("name", "address", "ssh_port", "roles", "weight"):
        assert f'data-field="{field}"' in response.text, field
    unreachable = client.post("/cluster/nodes/add", data={
        "csrf_token": csrf_from(page.text), "name": "n1", "address": "127.0.0.1", "ssh_port": str(free_port()),
        "roles": ["web"], "weight": "100"})
    assert unreachable.status_code == 422 and "cannot reach 127.0.0.1" in unreachable.text
    assert counts(app) == (0, 0)


def test_form_two_steps_against_a_loopback_sshd(app, client, auth):
    """Step 1 shows the host key; step 2 with the password adds the node and goes to its page."""
    auth.login()
    server = FakeSSHServer()
    try:
        token = csrf_from(client.get("/cluster/nodes/add").text)
        fields = {"csrf_token": token, "name": "n2", "address": "127.0.0.1", "ssh_port": str(server.port),
                  "roles": ["web", "mail"], "weight": "100"}
        step1 = client.post("/cluster/nodes/add", data=fields)
        assert step1.status_code == 200 and fingerprint_of(server.host_key) in step1.text
        wrong = client.post("/cluster/nodes/add/confirm", data={
            **fields, "host_key_fingerprint": fingerprint_of(server.host_key), "password": "wrong"})
        assert wrong.status_code == 422 and 'data-field="password"' in wrong.text
        assert counts(app) == (0, 0)
        changed = client.post("/cluster/nodes/add/confirm", data={
            **fields, "host_key_fingerprint": "SHA256:" + "C" * 43, "password": server.node.root_password})
        assert changed.status_code == 409 and "host key" in changed.text
        done = client.post("/cluster/nodes/add/confirm", data={
            **fields, "host_key_fingerprint": fingerprint_of(server.host_key), "password": server.node.root_password})
    finally:
        server.close()
    assert done.status_code == 302
    with app.app_context():
        node = db.session.scalar(db.select(Node).where(Node.name == "n2"))
        assert done.headers["Location"].endswith(f"/cluster/nodes/{node.id}")
        assert node.roles == ["web", "mail"]
    page = client.get(f"/cluster/nodes/{node.id}")
    assert 'id="setup-panel"' in page.text and 'data-step="8"' in page.text
    assert 'hx-trigger="load delay:1s"' in page.text
    fragment = client.get(f"/cluster/nodes/{node.id}", headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith("{") is False and "<html" not in fragment.text
    assert 'id="setup-log"' in fragment.text and "step 3/8" in fragment.text


def test_node_page_actions(app, client, auth, agent_nodes):
    """Flags toggle, roles change, retry refused when nothing failed, remove; each answers HTMX too."""
    node_id = agent_nodes.add("a1", roles=("web",))
    auth.login()
    token = csrf_from(client.get(f"/cluster/nodes/{node_id}").text)
    response = client.post(f"/cluster/nodes/{node_id}/flags", data={"csrf_token": token, "flag": "maintenance",
                                                                  "value": "on"})
    assert response.status_code == 302
    htmx = client.post(f"/cluster/nodes/{node_id}/flags", headers={"HX-Request": "true", "X-CSRFToken": token},
                       data={"flag": "users_locked", "value": "on"})
    assert htmx.status_code == 204 and htmx.headers["HX-Redirect"].endswith(f"/cluster/nodes/{node_id}")
    with app.app_context():
        node = db.session.get(Node, node_id)
        assert node.maintenance and node.users_locked
    response = client.post(f"/cluster/nodes/{node_id}/roles", data={"csrf_token": token, "roles": ["web", "dns"]})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Node, node_id).roles == ["web", "dns"]
    page = client.get(f"/cluster/nodes/{node_id}")
    assert "End maintenance" in page.text and 'id="retry"' not in page.text
    assert client.post(f"/cluster/nodes/{node_id}/remove", data={"csrf_token": token}).status_code == 302
    with app.app_context():
        assert db.session.get(Node, node_id) is None

