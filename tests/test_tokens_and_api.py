"""API tokens made in the UI, and the JSON API with Basic and Bearer authentication."""

import base64
import re

import pytest

from tests.conftest import Users, csrf_from

NODE_KEYS = {"id", "name", "address", "state", "roles", "is_local", "maintenance", "users_locked", "last_seen"}


def basic(name, password=Users.PASSWORD):
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


def make_token(client, name="deploy script"):
    page = client.get("/account/tokens")
    response = client.post("/account/tokens", data={"name": name, "csrf_token": csrf_from(page.text)})
    match = re.search(r'<code id="new-token">([^<]+)</code>', response.text)
    return response, match.group(1) if match else None


@pytest.fixture
def local_node_row(app):
    """A node row as the local node's is right after first start (no agent needed)."""
    from app.extensions import db
    from app.services.nodes import create_node

    with app.app_context():
        node = create_node("local", "127.0.0.1", roles=["web"], is_local=True, reason="test")
        db.session.commit()
        return node.id


def test_token_is_shown_once_and_works_as_bearer(client, auth, local_node_row):
    auth.login("alice", admin=True)
    response, token = make_token(client)
    assert response.status_code == 200 and token and token.startswith("hf_")
    assert token not in client.get("/account/tokens").text
    fresh = client.application.test_client()
    api = fresh.get("/api/v1/nodes", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 200
    assert {n["name"] for n in api.json["items"]} == {"local"}


def test_revoked_token_is_refused(client, auth):
    auth.login("alice", admin=True)
    _, token = make_token(client)
    page = client.get("/account/tokens")
    token_id = re.search(r"/account/tokens/(\d+)/delete", page.text).group(1)
    client.post(f"/account/tokens/{token_id}/delete", data={"csrf_token": csrf_from(page.text)})
    fresh = client.application.test_client()
    assert fresh.get("/api/v1/nodes", headers={"Authorization": f"Bearer {token}"}).status_code == 401


@pytest.mark.parametrize(
    "name, message",
    [
        ("", "Give the token a name"),
        ("x" * 65, "At most 64 characters."),
        ("x" * 100_000, "At most 64 characters."),
        ("bad\nname", "Letters, digits, spaces"),
        ("<script>", "Letters, digits, spaces"),
    ],
)
def test_bad_token_name_names_the_field(app, client, auth, name, message):
    from app.extensions import db
    from app.models import ApiToken

    auth.login("alice", admin=True)
    response, token = make_token(client, name)
    assert response.status_code == 400 and token is None
    assert 'data-field="name"' in response.text and message in response.text
    with app.app_context():
        assert db.session.query(ApiToken).count() == 0


def test_token_form_without_csrf_is_refused(client, auth):
    auth.login("alice", admin=True)
    assert client.post("/account/tokens", data={"name": "x"}).status_code == 400


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


@pytest.mark.parametrize(
    "headers",
    [{}, basic("root", "wrong"), {"Authorization": "Bearer hf_nope"}, {"Authorization": "Digest x"}],
)
def test_api_refuses_without_valid_credentials(client, users, headers):
    """401 with a JSON error naming both ways in, and no Basic challenge (a browser would remember the answer)."""
    users.make("root", admin=True)
    response = client.get("/api/v1/nodes", headers=headers)
    assert response.status_code == 401
    assert "HTTP Basic" in response.json["error"] and "Bearer" in response.json["error"]
    assert "WWW-Authenticate" not in response.headers


def test_api_nodes_are_for_admins(client, users, local_node_row):
    users.make("bob")
    assert client.get("/api/v1/nodes", headers=basic("bob")).status_code == 403
    assert client.get(f"/api/v1/nodes/{local_node_row}", headers=basic("bob")).status_code == 403


def test_api_ignores_the_session_cookie(client, auth):
    auth.login("alice", admin=True)
    assert client.get("/api/v1/nodes").status_code == 401


def test_openapi_document_is_valid(client):
    from openapi_spec_validator import validate

    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.json
    validate(spec)
    assert {"/api/v1/nodes", "/api/v1/nodes/{node_id}", "/api/v1/operations/{operation_id}"} <= set(spec["paths"])
    node_schema = spec["components"]["schemas"]["Node"]
    assert NODE_KEYS <= set(node_schema["properties"])
    assert {"basicAuth", "bearerAuth"} <= set(spec["components"]["securitySchemes"])


def test_wrong_basic_passwords_are_rate_limited_like_the_login_form(app, client, users, local_node_row):
    """The API's HTTP Basic is no way around the login form's limit: after LOGIN_RATE_LIMIT wrong
    passwords for a name from one address every Basic attempt for it from there gets 429, the right
    password too, until the window passes; right passwords do not count, and a Bearer token is not affected."""
    users.make("root", admin=True)
    app.config["LOGIN_RATE_LIMIT"] = "3 per minute"
    for _ in range(5):
        assert client.get("/api/v1/nodes", headers=basic("root")).status_code == 200
    codes = [client.get("/api/v1/nodes", headers=basic("root", "wrong")).status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    refused = client.get("/api/v1/nodes", headers=basic("root"))
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "60"
    assert "Too many failed logins" in refused.json["error"]
    other = client.get("/api/v1/nodes", headers=basic("root"), environ_base={"REMOTE_ADDR": "127.0.0.2"})
    assert other.status_code == 200, "the limit is per address and user"
    auth = client.application.test_client()
    with app.app_context():
        from app.extensions import db
        from app.models import User
        from app.services.accounts import create_token

        _, token = create_token(db.session.scalar(db.select(User).where(User.name == "root")), "script")
        db.session.commit()
    assert auth.get("/api/v1/nodes", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_ids_of_deleted_accounts_tokens_and_nodes_are_never_given_again(app):
    """A stale page's "delete user 2" or "revoke token 1" must name nothing, never a newer account or
    token: SQLite would give a new row the highest deleted id without AUTOINCREMENT (migration 0007)."""
    from app.extensions import db
    from app.models import ApiToken, Node, User
    from app.services import accounts
    from app.services.nodes import create_node

    with app.app_context():
        for model, make in ((User, lambda i: accounts.create_user(f"gone{i}", "a long password")),
                            (Node, lambda i: create_node(f"n{i}", f"198.18.0.{i + 10}", roles=[], reason="test")),
                            (ApiToken, lambda i: accounts.create_token(
                                accounts.create_user(f"holder{i}", "a long password"), "t")[0])):
            first = make(1)
            db.session.commit()
            first_id = first.id
            db.session.delete(first)
            db.session.commit()
            second = make(2)
            db.session.commit()
            assert second.id > first_id, model.__tablename__
