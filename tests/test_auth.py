"""Logging in: hashes, clear errors, CSRF, rate limit, cookies, redirects, sessions."""

import pytest

from tests.conftest import Users, csrf_from

pytestmark = pytest.mark.real_password_hashes


def post_login(client, username, password, next_url=None, **kwargs):
    page = client.get("/login")
    url = "/login" + (f"?next={next_url}" if next_url else "")
    return client.post(url, data={"username": username, "password": password, "csrf_token": csrf_from(page.text)},
                       **kwargs)


def test_password_is_stored_as_argon2_hash(app, users):
    from app.extensions import db
    from app.models import User

    users.make("alice")
    with app.app_context():
        stored = db.session.query(User).filter_by(name="alice").one().password_hash
    assert stored.startswith("$argon2id$") and Users.PASSWORD not in stored


def test_login_then_logout(client, users):
    users.make("alice", admin=True)
    response = post_login(client, "alice", Users.PASSWORD)
    assert response.status_code == 302
    assert client.get("/cluster/nodes").status_code == 200
    token = csrf_from(client.get("/cluster/nodes").text)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/cluster/nodes").status_code == 302


def test_wrong_password_gets_a_clear_message(client, users):
    users.make("alice")
    response = post_login(client, "alice", "not the password")
    assert response.status_code == 400
    assert "Wrong user name or password." in response.text
    assert post_login(client, "nobody", "whatever").status_code == 400


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"username": "", "password": "x"}, "username", "Enter your user name."),
        ({"username": "alice", "password": ""}, "password", "Enter your password."),
        ({"username": "a" * 5000, "password": "x"}, "username", "Field cannot be longer than 64 characters."),
        ({"username": "alice", "password": "p" * 5000}, "password", "Field cannot be longer than 1024 characters."),
        ({"password": "x"}, "username", "Enter your user name."),
    ],
)
def test_bad_login_input_names_the_field(client, data, field, message):
    page = client.get("/login")
    response = client.post("/login", data={**data, "csrf_token": csrf_from(page.text)})
    assert response.status_code == 400
    assert f'data-field="{field}"' in response.text
    assert message in response.text


def test_wrong_type_login_input_is_a_clear_error(client):
    page = client.get("/login")
    response = client.post(
        "/login",
        data={"username": ["a", "b"], "password": b"\xff\xfe".decode("latin-1"), "csrf_token": csrf_from(page.text)},
    )
    assert response.status_code in (302, 400)
    response = client.post("/login", json={"username": "alice", "password": "x"})
    assert response.status_code == 400
    assert "csrf" in response.text.lower()


def test_login_without_csrf_is_refused(client, users):
    users.make("alice")
    response = client.post("/login", data={"username": "alice", "password": Users.PASSWORD})
    assert response.status_code == 400
    assert "reload the page" in response.text
    assert client.get("/cluster/nodes").status_code == 302


def test_login_is_rate_limited(app, client, users):
    """LOGIN_RATE_LIMIT wrong passwords for a name from an address: that address gets 429 for the name."""
    users.make("alice")
    app.config["LOGIN_RATE_LIMIT"] = "3 per minute"
    codes = [post_login(client, "alice", "wrong").status_code for _ in range(4)]
    assert codes == [400, 400, 400, 429]
    response = post_login(client, "alice", Users.PASSWORD)
    assert response.status_code == 429 and response.headers["Retry-After"] == "60"
    assert "Too many failed logins for this user from here" in response.text
    other = post_login(client, "alice", Users.PASSWORD, environ_base={"REMOTE_ADDR": "127.0.0.2"})
    assert other.status_code == 302, "the limit is per address and user"


def test_a_login_rate_limit_that_does_not_parse_stops_the_start(tmp_path, redis_url):
    from app import create_app
    from app.config import TestConfig

    config = TestConfig(tmp_path, redis_url)
    config.LOGIN_RATE_LIMIT = "ten a minute"
    with pytest.raises(ValueError, match="LOGIN_RATE_LIMIT: .*ten a minute"):
        create_app(config)


def test_session_cookie_flags(client, users):
    users.make("alice")
    response = post_login(client, "alice", Users.PASSWORD)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_session_is_renewed_on_login(client, users):
    users.make("alice")
    client.get("/login")
    before = client.get_cookie("session")
    post_login(client, "alice", Users.PASSWORD)
    after = client.get_cookie("session")
    assert before is not None and after is not None and before.value != after.value


@pytest.mark.parametrize(
    "target, expected",
    [
        ("/operations/", "/operations/"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_no_open_redirect_after_login(client, users, target, expected):
    users.make("alice", admin=True)
    response = post_login(client, "alice", Users.PASSWORD, next_url=target)
    assert response.status_code == 302
    assert response.headers["Location"] == expected


def test_password_change_ends_other_sessions(app, client, users):
    from app.extensions import db
    from app.models import User
    from app.services import accounts

    users.make("alice", admin=True)
    post_login(client, "alice", Users.PASSWORD)
    assert client.get("/cluster/nodes").status_code == 200
    with app.app_context():
        accounts.set_password(db.session.query(User).filter_by(name="alice").one(), "another password")
    assert client.get("/cluster/nodes").status_code == 302


def test_suspended_user_cannot_log_in(app, client, users):
    from app.extensions import db
    from app.models import User

    users.make("alice")
    with app.app_context():
        db.session.query(User).filter_by(name="alice").one().active = False
        db.session.commit()
    assert post_login(client, "alice", Users.PASSWORD).status_code == 400
