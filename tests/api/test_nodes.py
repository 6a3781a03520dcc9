"""API: /nodes: the node's shape, and nodes are for administrators."""

from tests.api.helpers import NODE_KEYS, basic


def test_api_basic_auth_and_node_shape(client, users, local_node_row):
    users.make("root", admin=True)
    response = client.get("/api/v1/nodes", headers=basic("root"))
    assert response.status_code == 200
    (node,) = response.json["items"]
    assert NODE_KEYS <= set(node)
    assert node["is_local"] is True and node["state"] == "new" and node["roles"] == ["web"]
    one = client.get(f"/api/v1/nodes/{node['id']}", headers=basic("root"))
    assert one.status_code == 200 and one.json["desyncs"] == []
    missing = client.get("/api/v1/nodes/999", headers=basic("root"))
    assert missing.status_code == 404 and "999" in missing.json["error"]


def test_api_nodes_are_for_admins(client, users, local_node_row):
    users.make("bob")
    assert client.get("/api/v1/nodes", headers=basic("bob")).status_code == 403
    assert client.get(f"/api/v1/nodes/{local_node_row}", headers=basic("bob")).status_code == 403


def test_refusals_answer_error_and_fields_and_change_nothing(app, client, users, local_node_row):
    """Each refusal of a /nodes route comes from a service error (or the agent's validators) through the
    API's one handler: its status, {"error", "fields"}, and the node as it was."""
    from app.extensions import db
    from app.models import Node

    users.make("root", admin=True)
    node = f"/api/v1/nodes/{local_node_row}"
    missing = client.get("/api/v1/nodes/999", headers=basic("root"))
    assert (missing.status_code, missing.json) == (404, {"error": "No node with id 999.", "fields": {}})
    local = client.patch(node, json={"roles": ["web", "dns"]}, headers=basic("root"))
    assert (local.status_code, local.json) == (409, {"error": "local's roles cannot change on the local node",
                                                     "fields": {"roles": "cannot change on the local node"}})
    not_object = client.patch(node, json=["web"], headers=basic("root"))
    assert (not_object.status_code, not_object.json) == (
        422, {"error": "Invalid input: body", "fields": {"body": "must be a JSON object"}})
    bad = client.patch(node, json={"weight": 0, "colour": "red"}, headers=basic("root"))
    assert bad.status_code == 422 and bad.json["error"] == "Invalid input: colour, weight"
    assert bad.json["fields"]["colour"] == "unknown field" and "weight" in bad.json["fields"]
    removal = client.delete(node, headers=basic("root"))
    assert removal.status_code == 409 and "local node" in removal.json["error"] and removal.json["fields"] == {}
    sync = client.post(f"{node}/sync", json={"lists": ["nonsense"]}, headers=basic("root"))
    assert sync.status_code == 400 and set(sync.json["fields"]) == {"lists"}
    assert sync.json["error"].startswith("Invalid lists: must be a list of: ")
    with app.app_context():
        row = db.session.get(Node, local_node_row)
        assert (row.roles, row.weight) == (["web"], 100)
