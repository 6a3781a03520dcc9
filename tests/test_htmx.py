"""Every HTMX endpoint answers a whole page without HX-Request and a fragment with it."""

import pytest

from tests.conftest import run_worker_burst


@pytest.fixture
def scene(app, client, auth):
    """An admin logged in, one node and one finished operation."""
    from app.extensions import db
    from app.models import Node
    from app.services import operations
    from app.services.nodes import create_node

    auth.login("root", admin=True)
    with app.app_context():
        node = create_node("n1", "127.0.0.1", roles=["web"], reason="test", agent_port=1, agent_secret="00" * 32,
                           cert_fingerprint="00" * 32)
        db.session.commit()
        op = operations.start_operation("check_node", "Check node n1", "check_nodes", user_id=None,
                                        targets=[db.session.get(Node, node.id)])
        ids = {"node": node.id, "operation": op.id}
    run_worker_burst(app)
    return ids


ENDPOINTS = [
    ("/dashboard", 'id="dashboard"'),
    ("/cluster/nodes", 'id="nodes-table"'),
    ("/cluster/nodes/{node}", 'id="node-detail"'),
    ("/cluster/sync", 'id="sync-table"'),
    ("/operations/", 'id="operations-table"'),
    ("/operations/{operation}", 'id="operation-detail"'),
]


@pytest.mark.parametrize("path, marker", ENDPOINTS)
def test_page_and_fragment(client, scene, path, marker):
    url = path.format(**scene)
    page = client.get(url)
    assert page.status_code == 200 and "<html" in page.text and marker in page.text
    fragment = client.get(url, headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text and marker in fragment.text
    assert "HX-Request" in fragment.headers.get("Vary", "")


@pytest.mark.parametrize("path, marker", ENDPOINTS)
def test_htmx_request_without_login_redirects_the_page(app, scene, path, marker):
    anonymous = app.test_client()
    response = anonymous.get(path.format(**scene), headers={"HX-Request": "true"})
    assert response.status_code == 401 and "/login" in response.headers["HX-Redirect"]


def test_polling_stops_when_nothing_is_in_progress(client, scene, app):
    from app.extensions import db
    from app.models import Node

    polling = client.get("/cluster/nodes", headers={"HX-Request": "true"}).text
    assert 'hx-trigger="load delay:1s"' in polling, "a node in `new` keeps the table polling"
    with app.app_context():
        db.session.get(Node, scene["node"]).state = "ready"
        db.session.commit()
    settled = client.get("/cluster/nodes", headers={"HX-Request": "true"}).text
    assert 'hx-trigger="load' not in settled and 'data-polling="no"' in settled


def test_operation_row_polls_while_queued(client, app, scene):
    from app.extensions import db
    from app.models import Node
    from app.services import operations

    with app.app_context():
        op_id = operations.start_operation("check_node", "again", "check_nodes", user_id=None,
                                           targets=[db.session.get(Node, scene["node"])]).id
    fragment = client.get(f"/operations/{op_id}", headers={"HX-Request": "true"}).text
    assert 'hx-trigger="load delay:1s"' in fragment and "queued" in fragment
    run_worker_burst(app)
    done = client.get(f"/operations/{op_id}", headers={"HX-Request": "true"}).text
    assert "hx-trigger" not in done


def test_state_changing_htmx_call_needs_csrf(client, scene):
    response = client.post(f"/cluster/nodes/{scene['node']}/check", headers={"HX-Request": "true"})
    assert response.status_code == 400
