"""Dashboard: nodes by state, desyncs, failed and running operations, customers near a limit, each linked
to the page where it is fixed; for administrators only."""

from __future__ import annotations

import re

from app.extensions import db
from app.models import Desync, DomainIndex, Node, Operation, User, UserAccount
from tests.conftest import csrf_from, run_worker_burst


def section(page: str, name: str) -> str:
    match = re.search(rf'<section id="dashboard-{name}">(.*?)</section>', page, re.S)
    assert match, name
    return match.group(1)


def test_all_is_well_on_an_empty_cluster(admin):
    page = admin.get("/dashboard").text
    assert 'id="all-well"' in page and "All is well" in page
    assert "No nodes yet" in page and "No desyncs" in page and "No customer is at 90 %" in page


def test_login_sends_administrators_to_the_dashboard(client, auth):
    auth.login("root", admin=True)
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/dashboard")
    page = client.get("/dashboard").text
    assert '<a class="menu-item active" href="/dashboard" aria-current="page">Dashboard</a>' in page


def test_customers_get_403(client, auth):
    auth.login("bob", admin=False)
    assert client.get("/dashboard").status_code == 403
    assert client.get("/dashboard", headers={"HX-Request": "true"}).status_code == 403
    assert ">Dashboard</a>" not in client.get("/operations/").text


def test_failed_operation_and_desync_appear_linked(app, admin, agent_nodes):
    """A re-sync to a node whose agent is gone fails; it and the node's desync are listed and linked."""
    from app.services.desyncs import register_desync

    node_id = agent_nodes.add("n1")
    with app.app_context():
        register_desync(db.session.get(Node, node_id), "firewall")
        db.session.commit()
    agent_nodes.agents[node_id].stop()
    token = csrf_from(admin.get("/cluster/sync").text)
    response = admin.post(f"/cluster/sync/nodes/{node_id}", data={"list": "scheduler", "csrf_token": token})
    assert response.status_code == 302
    run_worker_burst(app, queues=("default",))
    with app.app_context():
        operation = db.session.scalars(db.select(Operation).order_by(Operation.id.desc())).first()
        assert operation.status in ("failed", "partial"), (operation.status, operation.message)
        count = db.session.scalar(db.select(db.func.count()).select_from(Desync))
    page = admin.get("/dashboard").text
    assert 'id="all-well"' not in page
    operations = section(page, "operations")
    assert f'href="/operations/{operation.id}"' in operations and operation.title in operations
    desyncs = section(page, "desyncs")
    assert 'href="/cluster/sync"' in desyncs and f"{count} desync" in desyncs and "on n1" in desyncs


def test_nodes_in_maintenance_or_locked_are_not_shown_ready(app, admin, agent_nodes):
    """Dashboard and nodes list show maintenance and users-locked, not a green ready."""
    ready = agent_nodes.add("n1")
    kept = agent_nodes.add("n2")
    locked = agent_nodes.add("n3")
    with app.app_context():
        db.session.get(Node, kept).maintenance = True
        db.session.get(Node, locked).users_locked = True
        db.session.commit()
    nodes = section(admin.get("/dashboard").text, "nodes")
    assert re.search(rf'id="nodes-maintenance">.*?data-state="maintenance".*?href="/cluster/nodes/{kept}">n2<',
                     nodes, re.S), nodes
    assert re.search(rf'id="nodes-users-locked">.*?href="/cluster/nodes/{locked}">n3<', nodes, re.S), nodes
    assert re.search(r'id="nodes-ready">.*?href="/cluster/nodes">1 node<', nodes, re.S), nodes
    table = admin.get("/cluster/nodes").text
    rows = {node_id: re.search(rf'<tr id="node-{node_id}">(.*?)</tr>', table, re.S).group(1)
            for node_id in (ready, kept, locked)}
    assert 'data-state="ready"' in rows[ready]
    assert 'data-state="maintenance"' in rows[kept] and 'data-state="ready"' not in rows[kept]
    assert 'data-state="users-locked"' in rows[locked] and 'data-state="ready"' not in rows[locked]
    detail = admin.get(f"/cluster/nodes/{kept}").text
    assert re.search(r'<h1>n2 <span class="badge state-maintenance" data-state="maintenance"', detail)


def test_customer_at_90_percent_of_a_limit_is_listed(app, admin, users):
    """9 of 10 domain names is listed, linked to the user page; 8 of 10 is not."""
    from app.services.nodes import create_node

    near, below, none_allowed = users.make("carol"), users.make("dave"), users.make("erin")
    with app.app_context():
        node = create_node("n1", "127.0.0.1", roles=["dns"], reason="test", agent_port=1, agent_secret="00" * 32,
                           cert_fingerprint="00" * 32)
        db.session.flush()
        for uid, (user_id, count) in enumerate(((near, 9), (below, 8)), start=5000):
            db.session.add(UserAccount(user_id=user_id, uid=uid, gid=uid, roles=["dns"], limits={"domains": 10}))
            name = db.session.get(User, user_id).name
            for i in range(count):
                db.session.add(DomainIndex(name=f"d{i}.{name}.example", owner_id=user_id, node_id=node.id))
        db.session.add(UserAccount(user_id=none_allowed, uid=5100, gid=5100, roles=["dns"], limits={"domains": 0}))
        db.session.commit()
    limits = section(admin.get("/dashboard").text, "limits")
    assert f'<a href="/accounts/users/{near}">carol</a>' in limits and "9 of 10 domain names (90 %)" in limits
    assert "dave" not in limits and "erin" not in limits


def test_a_queued_operation_is_listed_and_the_page_polls(app, admin):
    from app.services import operations

    with app.app_context():
        operation = operations.start_operation("check_node", "Check every node", "check_nodes", user_id=None,
                                               targets=[])
        db.session.commit()
        operation_id = operation.id
    fragment = admin.get("/dashboard", headers={"HX-Request": "true"}).text
    assert 'hx-trigger="load delay:2s"' in fragment and 'data-polling="yes"' in fragment
    assert f'<a href="/operations/{operation_id}">Check every node</a>' in section(fragment, "operations")
    run_worker_burst(app)
    fragment = admin.get("/dashboard", headers={"HX-Request": "true"}).text
    assert 'data-polling="no"' in fragment and f"running-{operation_id}" not in fragment
