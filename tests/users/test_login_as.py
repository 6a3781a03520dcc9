"""Log in as a user: an administrator becomes a customer in their browser, with a banner and a way back;
each start and end is recorded where administrators look, never where the customer does."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.conftest import Users, csrf_from
from tests.support.panel import logged_in
from tests.userdata.conftest import basic

BANNER = "You are logged in as <strong>alice</strong> (administrator root)"




def post(browser, path: str, **data):
    """A form post with the session's CSRF token."""
    token = csrf_from(browser.get("/account").text)
    return browser.post(path, data={**data, "csrf_token": token})


def records(app) -> list[tuple[str, str, int | None, dict]]:
    """(kind, title, starter, params) of every log-in-as record."""
    from app.extensions import db
    from app.models import Operation

    with app.app_context():
        rows = db.session.scalars(select(Operation).where(Operation.kind.like("login_as%")).order_by(Operation.id))
        return [(r.kind, r.title, r.created_by_id, r.params) for r in rows]


def account(app, name: str):
    """(password hash, session epoch, token count) of an account."""
    from app.extensions import db
    from app.models import User

    with app.app_context():
        user = db.session.scalar(select(User).where(User.name == name))
        return user.password_hash, user.session_epoch, len(user.tokens)


@pytest.fixture
def people(app, users):
    """root (administrator), alice and bob (customers), by id."""
    return {"root": users.make("root", admin=True), "alice": users.make("alice"), "bob": users.make("bob")}


def test_admin_becomes_the_customer_and_returns_to_their_page(app, people):
    """root logs in as alice: alice's home and menus with the banner, no admin page; Return lands on alice's
    page as root again; both steps are on root's Operations page and alice's user page, with the address."""
    root = logged_in(app, "root")
    user_page = root.get(f"/accounts/users/{people['alice']}")
    assert f'action="/accounts/users/{people["alice"]}/login-as"' in user_page.text
    assert "Log in as alice" in user_page.text
    became = post(root, f"/accounts/users/{people['alice']}/login-as")
    assert became.status_code == 302 and became.headers["Location"] == "/"
    home = root.get("/", follow_redirects=True)
    assert BANNER in home.text and 'action="/login-as/return"' in home.text
    assert 'href="/accounts/users"' not in home.text and 'href="/account/tokens"' in home.text
    for path in ("/account", "/operations/", "/domains/web"):
        assert BANNER in root.get(path).text, path
    assert root.get("/accounts/users").status_code == 403
    assert root.get(f"/accounts/users/{people['bob']}").status_code == 403
    back = post(root, "/login-as/return")
    assert back.status_code == 302 and back.headers["Location"] == f"/accounts/users/{people['alice']}"
    page = root.get(back.headers["Location"])
    assert page.status_code == 200 and "You are logged in as" not in page.text
    assert "root logged in as alice from 127.0.0.1" in page.text
    assert "root left the session as alice (returned to their account) from 127.0.0.1" in page.text
    kinds = [(kind, starter, params["user_id"], params["address"]) for kind, _, starter, params in records(app)]
    assert kinds == [("login_as", people["root"], people["alice"], "127.0.0.1"),
                     ("login_as_end", people["root"], people["alice"], "127.0.0.1")]
    assert "root logged in as alice" in root.get("/operations/").text


def test_the_customer_sees_no_trace_but_the_banner(app, people):
    """alice's own session, Operations page and API list nothing of root's visit, and have no banner."""
    root = logged_in(app, "root")
    post(root, f"/accounts/users/{people['alice']}/login-as")
    as_alice = root.get("/operations/")
    assert "root logged in as alice" not in as_alice.text
    alice = logged_in(app, "alice")
    for path in ("/", "/operations/", "/account"):
        text = alice.get(path, follow_redirects=True).text
        assert "You are logged in as" not in text and "root" not in text, path
    listed = alice.get("/api/v1/operations", headers=basic("alice")).get_json()
    assert all(not op["kind"].startswith("login_as") for op in listed["items"])
    assert len(records(app)) == 1


@pytest.mark.parametrize("target, status, why", [
    ("other admin", 409, "is an administrator"),
    ("suspended", 409, "is suspended"),
])
def test_refused_targets_write_nothing(app, users, people, target, status, why):
    """Not into another administrator, not into a suspended customer: refused with why, nothing recorded,
    root stays root."""
    from app.extensions import db
    from app.models import User
    from app.services import users as users_service

    if target == "other admin":
        subject = users.make("toor", admin=True)
    else:
        subject = people["bob"]
        with app.app_context():
            users_service.set_active(db.session.get(User, subject), False)
    root = logged_in(app, "root")
    refused = post(root, f"/accounts/users/{subject}/login-as")
    assert refused.status_code == 303 and refused.headers["Location"] == f"/accounts/users/{subject}"
    page = root.get(refused.headers["Location"])
    assert why in page.text and "You are logged in as" not in page.text
    assert root.get("/accounts/users").status_code == 200
    assert records(app) == []


def test_customers_and_impersonated_sessions_cannot_log_in_as(app, people):
    """A customer may not log in as anyone; nor may root while being alice (no chain)."""
    alice = logged_in(app, "alice")
    assert post(alice, f"/accounts/users/{people['bob']}/login-as").status_code == 403
    root = logged_in(app, "root")
    post(root, f"/accounts/users/{people['alice']}/login-as")
    assert post(root, f"/accounts/users/{people['bob']}/login-as").status_code == 403
    assert BANNER in root.get("/", follow_redirects=True).text
    assert [kind for kind, *_ in records(app)] == ["login_as"]


def test_impersonated_session_cannot_touch_password_or_tokens(app, people):
    """Being alice, root cannot change her password, create or revoke her API tokens or SFTP keys; the pages
    say so."""
    from app.extensions import db
    from app.models import User
    from app.services import accounts

    with app.app_context():
        token, _ = accounts.create_token(db.session.get(User, people["alice"]), "billing")
        token_id = token.id
    before = account(app, "alice")
    root = logged_in(app, "root")
    post(root, f"/accounts/users/{people['alice']}/login-as")
    assert "cannot change their password" in root.get("/account").text
    assert "cannot create or revoke their API tokens" in root.get("/account/tokens").text
    changed = post(root, "/account/password", current_password=Users.PASSWORD, new_password="a brand new passphrase",
                   confirm_password="a brand new passphrase")
    assert changed.status_code == 403
    assert post(root, "/account/tokens", name="sneaky").status_code == 403
    assert post(root, f"/account/tokens/{token_id}/delete").status_code == 403
    assert post(root, "/account/sftp", key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC7Zx x").status_code == 403
    assert post(root, "/account/sftp/keys/1/delete").status_code == 403
    assert account(app, "alice") == before


def test_logout_while_impersonating_ends_both(app, people):
    """Logging out as alice logs root out (all root's sessions, as root's own logout does); alice's own
    sessions go on."""
    root = logged_in(app, "root")
    root_elsewhere = logged_in(app, "root")
    alice = logged_in(app, "alice")
    post(root, f"/accounts/users/{people['alice']}/login-as")
    out = post(root, "/logout")
    assert out.status_code == 302 and out.headers["Location"] == "/login"
    assert "/login" in root.get("/").headers["Location"]
    assert "/login" in root_elsewhere.get("/").headers["Location"]
    assert alice.get("/account").status_code == 200
    assert [(kind, title.split(" from ")[0]) for kind, title, *_ in records(app)] == [
        ("login_as", "root logged in as alice"), ("login_as_end", "root left the session as alice (logged out)")]


def test_session_ends_when_either_side_changes(app, people):
    """The impersonated session ends when root's sessions end elsewhere, or alice becomes an administrator,
    or alice is suspended: never a session with rights neither had."""
    from app.extensions import db
    from app.models import User
    from app.services import accounts
    from app.services import users as users_service

    root = logged_in(app, "root")
    post(root, f"/accounts/users/{people['alice']}/login-as")
    with app.app_context():
        accounts.end_sessions(db.session.get(User, people["root"]))
    assert "/login" in root.get("/").headers["Location"]

    root = logged_in(app, "root")
    post(root, f"/accounts/users/{people['alice']}/login-as")
    with app.app_context():
        db.session.get(User, people["alice"]).level = "admin"
        db.session.commit()
    assert "/login" in root.get("/accounts/users").headers["Location"]
    with app.app_context():
        db.session.get(User, people["alice"]).level = "user"
        db.session.commit()

    root = logged_in(app, "root")
    post(root, f"/accounts/users/{people['alice']}/login-as")
    with app.app_context():
        users_service.set_active(db.session.get(User, people["alice"]), False)
    assert "/login" in root.get("/").headers["Location"]


def test_api_takes_no_session(app, people):
    """The API answers credentials, never the impersonated session's cookie."""
    root = logged_in(app, "root")
    assert post(root, f"/accounts/users/{people['alice']}/login-as").status_code == 302
    assert BANNER in root.get("/", follow_redirects=True).text
    assert root.get("/api/v1/operations").status_code == 401
    assert root.get("/api/v1/users", headers=basic("root")).status_code == 200
    assert root.get("/api/v1/users", headers=basic("alice")).status_code == 403


def test_return_without_impersonating_changes_nothing(app, people):
    """Return for a session that is nobody else's: a message, the same user, nothing recorded."""
    alice = logged_in(app, "alice")
    answer = post(alice, "/login-as/return")
    assert answer.status_code == 302 and answer.headers["Location"] == "/"
    assert "You are not logged in as another user." in alice.get("/", follow_redirects=True).text
    assert records(app) == []
