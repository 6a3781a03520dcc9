"""Logging out, and a password change, end every copy of the session cookie."""

from __future__ import annotations

from tests.conftest import csrf_from
from tests.support.panel import logged_in
from tests.userdata.conftest import basic


def copy_of(app, browser):
    """Another client holding the same session cookie (a copy an attacker took)."""
    thief = app.test_client()
    thief.set_cookie("session", browser.get_cookie("session").value)
    return thief


def test_a_cookie_copied_before_logout_opens_nothing_after(app, users):
    """Copied before Log out: afterwards it leads to the login form, and it is not renewed."""
    users.make("root", admin=True)
    browser = logged_in(app, "root")
    thief = copy_of(app, browser)
    assert thief.get("/cluster/nodes").status_code == 200
    token = csrf_from(browser.get("/cluster/nodes").text)
    assert browser.post("/logout", data={"csrf_token": token}).status_code == 302
    after = thief.get("/cluster/nodes")
    assert after.status_code == 302 and "/login" in after.headers["Location"]
    assert thief.get("/api/v1/nodes").status_code == 401
    # Logging in again works, with a fresh session.
    assert logged_in(app, "root").get("/cluster/nodes").status_code == 200


def test_a_cookie_copied_before_a_password_change_opens_nothing_after(app, client, users):
    """An administrator changes alice's password through the API: every session of alice's ends."""
    users.make("root", admin=True)
    alice_id = users.make("alice")
    browser = logged_in(app, "alice")
    thief = copy_of(app, browser)
    assert thief.get("/domains/web").status_code == 200
    changed = client.put(f"/api/v1/users/{alice_id}", json={"password": "another long password"},
                         headers=basic("root"))
    assert changed.status_code == 200, changed.text
    for session in (browser, thief):
        response = session.get("/domains/web")
        assert response.status_code == 302 and "/login" in response.headers["Location"]
