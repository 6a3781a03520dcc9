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
    from app.jobs.nodes import check_nodes
    from app.services import operations

    root_id = users.make("root", admin=True)
    with app.app_context():
        op_id = operations.start_operation("check_node", "root's check", check_nodes, user_id=root_id).id
    auth.login("bob", admin=False)
    assert "root's check" not in client.get("/operations/").text
    assert client.get(f"/operations/{op_id}").status_code == 404
