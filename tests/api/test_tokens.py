"""API tokens: made and revoked in the UI, used as Bearer credentials, never given the same id twice."""

import re

import pytest

from tests.conftest import csrf_from


def make_token(client, name="deploy script"):
    page = client.get("/account/tokens")
    response = client.post("/account/tokens", data={"name": name, "csrf_token": csrf_from(page.text)})
    match = re.search(r'<code id="new-token">([^<]+)</code>', response.text)
    return response, match.group(1) if match else None


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
