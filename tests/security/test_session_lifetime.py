"""Sessions end after a configurable idle lifetime; every request within it renews it."""

from __future__ import annotations

import time
from datetime import timedelta
from unittest import mock

from itsdangerous import TimestampSigner

from tests.conftest import Users, csrf_from


def login_at(client, name: str, seconds_ago: float) -> None:
    """Log in through the form with the session cookie signed `seconds_ago`."""
    with mock.patch.object(TimestampSigner, "get_timestamp", lambda self: int(time.time() - seconds_ago)):
        page = client.get("/login")
        response = client.post("/login", data={"username": name, "password": Users.PASSWORD,
                                               "csrf_token": csrf_from(page.text)})
    assert response.status_code == 302


def test_default_idle_lifetime_is_a_few_hours(app):
    """Four hours unless SESSION_IDLE_MINUTES says otherwise."""
    assert app.permanent_session_lifetime == timedelta(hours=4)


def test_idle_lifetime_comes_from_the_environment(tmp_path, redis_url, monkeypatch):
    """SESSION_IDLE_MINUTES sets it."""
    from app.config import TestConfig

    monkeypatch.setenv("SESSION_IDLE_MINUTES", "15")
    assert TestConfig(tmp_path, redis_url).PERMANENT_SESSION_LIFETIME == timedelta(minutes=15)


def test_session_older_than_the_lifetime_is_logged_out(app, client, users):
    """A session cookie signed longer ago than the lifetime is no session: pages send to the login form."""
    users.make("root", admin=True)
    login_at(client, "root", app.permanent_session_lifetime.total_seconds() + 60)
    response = client.get("/cluster/nodes")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_session_within_the_lifetime_works_and_is_renewed(app, client, users):
    """A session used before the lifetime ran out goes on, and the answer carries a freshly signed cookie."""
    users.make("root", admin=True)
    login_at(client, "root", app.permanent_session_lifetime.total_seconds() - 60)
    before = client.get_cookie("session").value
    response = client.get("/cluster/nodes")
    assert response.status_code == 200
    after = client.get_cookie("session")
    assert after.value != before and after.expires is not None
    # The renewed cookie is good for a whole lifetime again.
    expires_in = after.expires.timestamp() - time.time()
    assert abs(expires_in - app.permanent_session_lifetime.total_seconds()) < 120


def test_login_cookie_expires_with_the_lifetime(app, client, users):
    """The cookie set at login carries the lifetime (the browser drops it too)."""
    users.make("root", admin=True)
    page = client.get("/login")
    response = client.post("/login", data={"username": "root", "password": Users.PASSWORD,
                                           "csrf_token": csrf_from(page.text)})
    assert "Expires=" in response.headers["Set-Cookie"]
