"""My account: full name and comment, a password change that asks for the current password and ends the
account's other sessions, the link to API tokens."""

from __future__ import annotations

from tests.conftest import Users, csrf_from
from tests.support.panel import logged_in
from tests.userdata.conftest import basic

NEW = "a brand new passphrase"




def post_password(browser, current: str, new: str, confirm: str | None = None):
    token = csrf_from(browser.get("/account").text)
    return browser.post("/account/password", data={"current_password": current, "new_password": new,
                                                   "confirm_password": new if confirm is None else confirm,
                                                   "csrf_token": token})


def stored(app, name: str):
    from sqlalchemy import select

    from app.extensions import db
    from app.models import User

    with app.app_context():
        user = db.session.scalar(select(User).where(User.name == name))
        return user.password_hash, user.fullname, user.comment, user.session_epoch


def test_password_change_ends_other_sessions_and_the_old_password(app, client, users):
    """alice changes her password: she stays logged in here, her other browser is logged out, the old
    password opens neither the login form nor the API, the new one does."""
    users.make("alice")
    browser = logged_in(app, "alice")
    other = logged_in(app, "alice")
    assert other.get("/account").status_code == 200
    page = browser.get("/account")
    assert page.status_code == 200 and 'href="/account/tokens"' in page.text
    changed = post_password(browser, Users.PASSWORD, NEW)
    assert changed.status_code == 302 and changed.headers["Location"].endswith("/account")
    assert "other sessions are logged out" in browser.get("/account").text
    after = other.get("/account")
    assert after.status_code == 302 and "/login" in after.headers["Location"]
    assert client.get("/api/v1/operations", headers=basic("alice")).status_code == 401
    assert client.get("/api/v1/operations", headers=basic("alice", NEW)).status_code == 200
    refused = app.test_client()
    login_page = refused.get("/login")
    assert refused.post("/login", data={"username": "alice", "password": Users.PASSWORD,
                                        "csrf_token": csrf_from(login_page.text)}).status_code == 400
    assert logged_in(app, "alice", NEW).get("/account").status_code == 200


def test_wrong_current_password_is_refused_under_its_field(app, users):
    """A wrong current password, a short new one or a mismatch: 400 naming the field, nothing written."""
    users.make("alice")
    browser = logged_in(app, "alice")
    before = stored(app, "alice")
    wrong = post_password(browser, "not my password", NEW)
    assert wrong.status_code == 400
    assert 'data-field="current_password">Current password: is not your current password' in wrong.text
    short = post_password(browser, Users.PASSWORD, "short")
    assert short.status_code == 400 and 'data-field="new_password">New password: must be at least 8' in short.text
    mismatch = post_password(browser, Users.PASSWORD, NEW, confirm=NEW + "x")
    assert mismatch.status_code == 400 and 'data-field="confirm_password"' in mismatch.text
    missing = post_password(browser, "", NEW)
    assert missing.status_code == 400 and 'data-field="current_password"' in missing.text
    assert stored(app, "alice") == before
    assert browser.get("/account").status_code == 200


def test_full_name_and_comment_are_saved_and_bad_ones_refused(app, users):
    """The profile form saves; a control character or an over-long name is refused under its field."""
    users.make("alice")
    browser = logged_in(app, "alice")
    token = csrf_from(browser.get("/account").text)
    saved = browser.post("/account", data={"fullname": "  Alice Liddell ", "comment": "call after 5",
                                           "csrf_token": token})
    assert saved.status_code == 302
    assert stored(app, "alice")[1:3] == ("Alice Liddell", "call after 5")
    assert 'value="Alice Liddell"' in browser.get("/account").text
    bad = browser.post("/account", data={"fullname": "Alice\x07", "comment": "x", "csrf_token": token})
    assert bad.status_code == 400 and 'data-field="fullname">Full name: contains a control character' in bad.text
    long = browser.post("/account", data={"fullname": "A", "comment": "y" * 1025, "csrf_token": token})
    assert long.status_code == 400 and 'data-field="comment">Comment: longer than 1024' in long.text
    assert stored(app, "alice")[1:3] == ("Alice Liddell", "call after 5")


def test_another_user_neither_sees_nor_changes_it(app, users):
    """bob's account page shows bob; his password change changes only his own password."""
    users.make("alice")
    users.make("bob")
    alice = logged_in(app, "alice")
    token = csrf_from(alice.get("/account").text)
    alice.post("/account", data={"fullname": "Alice Liddell", "comment": "", "csrf_token": token})
    before = stored(app, "alice")
    bob = logged_in(app, "bob")
    page = bob.get("/account").text
    assert "Alice Liddell" not in page and "<dd>bob</dd>" in page
    assert post_password(bob, Users.PASSWORD, NEW).status_code == 302
    assert stored(app, "alice") == before
    assert alice.get("/account").status_code == 200
    assert logged_in(app, "alice").get("/account").status_code == 200


def test_wrong_current_passwords_count_against_the_login_limit(app, users):
    """Guessing the current password from a session is limited like guessing it at the login form."""
    app.config["LOGIN_ACCOUNT_RATE_LIMIT"] = "3 per minute"
    app.config["LOGIN_RATE_LIMIT"] = "3 per minute"
    users.make("alice")
    browser = logged_in(app, "alice")
    codes = [post_password(browser, f"guess number {i}", NEW).status_code for i in range(4)]
    assert codes[:3] == [400, 400, 400] and codes[3] == 429
