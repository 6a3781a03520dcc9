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
