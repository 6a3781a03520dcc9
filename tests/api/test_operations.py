"""API: /operations: users see only the operations they started."""

from tests.api.helpers import basic


def test_users_see_only_their_operations_through_the_api(app, client, users):
    from app.services import operations

    root_id = users.make("root", admin=True)
    bob_id = users.make("bob")
    with app.app_context():
        roots = operations.start_operation("check_node", "root's check", "check_nodes", user_id=root_id).id
        bobs = operations.start_operation("check_node", "bob's check", "check_nodes", user_id=bob_id).id
    assert [op["id"] for op in client.get("/api/v1/operations", headers=basic("bob")).json["items"]] == [bobs]
    hidden = client.get(f"/api/v1/operations/{roots}", headers=basic("bob"))
    assert (hidden.status_code, hidden.json) == (404, {"error": f"No operation with id {roots}.", "fields": {}})
    assert client.get(f"/api/v1/operations/{bobs}", headers=basic("bob")).status_code == 200
    listed = client.get("/api/v1/operations", headers=basic("root")).json["items"]
    assert {op["id"] for op in listed} == {roots, bobs}
