"""Operations: a row per background job with its per-node outcome, via a real RQ worker."""

from tests.conftest import csrf_from, run_worker_burst


def test_check_now_records_per_node_outcome(app, client, auth, local_node):
    auth.login("root", admin=True)
    page = client.get(f"/cluster/nodes/{local_node.node_id}")
    response = client.post(f"/cluster/nodes/{local_node.node_id}/check", data={"csrf_token": csrf_from(page.text)})
    assert response.status_code == 302
    op_url = response.headers["Location"]
    assert "queued" in client.get(op_url).text
    run_worker_burst(app)
    detail = client.get(op_url).text
    assert "succeeded" in detail and "local: applied" not in detail
    assert "1 of 1 applied" in detail
    listing = client.get("/operations/").text
    assert "Check node local" in listing and "root" in listing and "local: applied" in listing
    api = client.application.test_client().get(
        "/api/v1/operations/" + op_url.rsplit("/", 1)[1],
        headers={"Authorization": "Basic " + __import__("base64").b64encode(b"root:correct horse battery").decode()},
    )
    assert api.status_code == 200
    assert api.json["status"] == "succeeded"
    assert api.json["nodes"] == [{"node_id": local_node.node_id, "node": "local", "outcome": "applied", "error": None}]


def test_check_of_an_unreachable_node_says_so(app, client, auth, local_node):
    auth.login("root", admin=True)
    local_node.stop()
    page = client.get(f"/cluster/nodes/{local_node.node_id}")
    response = client.post(f"/cluster/nodes/{local_node.node_id}/check", data={"csrf_token": csrf_from(page.text)})
    run_worker_burst(app)
    detail = client.get(response.headers["Location"]).text
    assert "failed" in detail and "unavailable" in detail
    assert "127.0.0.1" in detail, "the error names where it failed"


def test_users_see_only_their_operations(app, client, auth, users):
    from app.services import operations

    root_id = users.make("root", admin=True)
    with app.app_context():
        op_id = operations.start_operation("check_node", "root's check", "check_nodes", user_id=root_id).id
    auth.login("bob", admin=False)
    assert "root's check" not in client.get("/operations/").text
    assert client.get(f"/operations/{op_id}").status_code == 404


def test_a_list_counts_outcomes_and_names_only_the_nodes_that_did_not_apply(app, client, auth):
    """A change to 20 nodes: the list shows counts and the two that did not apply, not 20 badges;
    the API list says so (nodes_complete false); the operation's own page and API have all 20."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import Operation, OperationNode, User

    auth.login("root", admin=True)
    with app.app_context():
        root_id = db.session.scalar(select(User.id).where(User.name == "root"))
    outcomes = ["applied"] * 18 + ["failed", "unavailable"]
    with app.app_context():
        big = Operation(kind="list_change", title="Firewall: add rule", created_by_id=root_id, status="partial")
        big.nodes = [OperationNode(node_name=f"n{i:02}", outcome=o, error=None if o == "applied" else f"e{i}")
                     for i, o in enumerate(outcomes)]
        small = Operation(kind="check_node", title="Check node n00", created_by_id=root_id, status="succeeded")
        small.nodes = [OperationNode(node_name="n00", outcome="applied")]
        db.session.add_all([big, small])
        db.session.commit()
        big_id = big.id
    listing = client.get("/operations/").text
    row = listing[listing.index(f'id="operation-{big_id}"'):]
    row = row[:row.index("</tr>")]
    assert "applied: 18" in row and "failed: 1" in row and "unavailable: 1" in row
    assert "n18: failed" in row and "n19: unavailable" in row and "n00: applied" not in row
    assert "n00: applied" in listing, "an operation with few targets still names each"
    headers = {"Authorization": "Basic " + __import__("base64").b64encode(b"root:correct horse battery").decode()}
    items = {op["id"]: op for op in client.get("/api/v1/operations", headers=headers).json["items"]}
    assert items[big_id]["outcomes"] == {"applied": 18, "failed": 1, "unavailable": 1}
    assert items[big_id]["nodes_complete"] is False
    assert [(n["node"], n["outcome"], n["error"]) for n in items[big_id]["nodes"]] == [
        ("n18", "failed", "e18"), ("n19", "unavailable", "e19")]
    assert [op["nodes_complete"] for op in items.values() if op["id"] != big_id] == [True]
    assert len(client.get(f"/api/v1/operations/{big_id}", headers=headers).json["nodes"]) == 20
    assert client.get(f"/operations/{big_id}").text.count("outcome-applied") == 18


def test_a_refused_change_names_the_node_and_is_retried_from_its_page(app, client, auth, local_node):
    """The only node in maintenance: adding a firewall rule is refused naming it; out of maintenance, Retry
    on the operation's page asks for the same rule again and it is applied. A change that succeeded, or a
    retry by a customer, is refused; a retried delete of a row gone since says so and starts nothing."""
    import base64

    from sqlalchemy import func, select

    from app.extensions import db
    from app.models import Node, NodeState, Operation
    from app.services.nodes import change_state

    with app.app_context():
        change_state(db.session.get(Node, local_node.node_id), NodeState.READY, "set up as at first start")
        db.session.commit()
    auth.login("root", admin=True)
    api = client.application.test_client()
    admin = {"Authorization": "Basic " + base64.b64encode(b"root:correct horse battery").decode()}
    node_url = f"/api/v1/nodes/{local_node.node_id}"
    assert api.patch(node_url, json={"maintenance": True}, headers=admin).status_code == 200
    rule = {"action": "accept", "protocol": "tcp", "ports": "8443", "source": "", "comment": "retried"}
    started = api.post("/api/v1/firewall", json=rule, headers=admin)
    assert started.status_code == 202, started.json
    run_worker_burst(app)
    op_url = f"/operations/{started.json['operation']['id']}"
    detail = client.get(op_url).text
    assert "refused" in detail and "Not ready: local (in maintenance)" in detail and "Retry this change" in detail

    assert api.patch(node_url, json={"maintenance": False}, headers=admin).status_code == 200
    retried = client.post(op_url + "/retry", data={"csrf_token": csrf_from(detail)})
    assert retried.status_code == 303
    new_url = retried.headers["Location"]
    assert new_url != op_url and "retried as operation #" in client.get(op_url).text
    run_worker_burst(app)
    assert "succeeded" in client.get(new_url).text
    assert [r["ports"] for r in api.get("/api/v1/firewall", headers=admin).json["items"]] == ["8443"]

    assert "Retry this change" not in client.get(new_url).text
    again = client.post(new_url + "/retry", data={"csrf_token": csrf_from(detail)})
    assert again.status_code == 303 and again.headers["Location"].endswith(new_url)
    assert "only a change to a system-wide list that failed or was refused" in client.get(new_url).text

    with app.app_context():
        before = db.session.scalar(select(func.count()).select_from(Operation))
    row_id = api.get("/api/v1/firewall", headers=admin).json["items"][0]["id"]
    assert api.patch(node_url, json={"maintenance": True}, headers=admin).status_code == 200
    gone = api.delete(f"/api/v1/firewall/{row_id}", headers=admin).json["operation"]["id"]
    run_worker_burst(app)
    assert api.patch(node_url, json={"maintenance": False}, headers=admin).status_code == 200
    assert api.delete(f"/api/v1/firewall/{row_id}", headers=admin).status_code == 202
    run_worker_burst(app)
    page = client.get(f"/operations/{gone}").text
    refused = client.post(f"/operations/{gone}/retry", data={"csrf_token": csrf_from(page)})
    assert refused.status_code == 303
    assert "Not retried: Firewall has no rule with id" in client.get(f"/operations/{gone}").text
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Operation)) == before + 2

    client.post("/logout", data={"csrf_token": csrf_from(page)})
    auth.login("bob", admin=False)
    customer = client.post(f"/operations/{gone}/retry", data={"csrf_token": csrf_from(client.get("/account").text)})
    assert customer.status_code in (403, 404)
