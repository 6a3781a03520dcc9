"""How the API authenticates: HTTP Basic or a Bearer token in a header, never the session cookie, and
wrong Basic passwords limited like the login form's."""

import pytest

from tests.api.helpers import basic


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


def test_api_ignores_the_session_cookie(client, auth):
    auth.login("alice", admin=True)
    assert client.get("/api/v1/nodes").status_code == 401


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
