"""A hostile customer against their own account: changing the password without knowing the current one,
other customers' profiles and pages, redirects after login, and what the admin reads of their profile."""

from __future__ import annotations

from tests.conftest import Users, csrf_from
from tests.ispmgr.conftest import Billing
from tests.support.panel import logged_in
from tests.userdata.conftest import basic

NEW = "a password the thief chose"


def password_works(client, name: str, password: str) -> bool:
    return client.get("/api/v1/operations", headers=basic(name, password)).status_code == 200


def test_ispmgr_password_change_needs_the_password_not_a_session_or_token(app, client, cluster, actors):
    """usrparam changes the password only for a caller who gave the password in the call (authinfo): a
    session id or an API token in authinfo (a thief's, or a script's) cannot turn itself into the account."""
    alice = Billing(client, "alice")
    sid = alice.json("auth", username="alice", password=Users.PASSWORD, authinfo="")["auth"]["$id"]
    by_session = alice.json("usrparam", sok="ok", passwd=NEW, confirm=NEW, authinfo="", auth=sid)
    assert by_session["error"]["$type"] == "access" and by_session["error"]["$object"] == "passwd", by_session
    by_token = Billing(client, "alice", actors.tokens["owner"]).json("usrparam", sok="ok", passwd=NEW)
    assert by_token["error"]["$type"] == "access" and by_token["error"]["$object"] == "passwd", by_token
    assert password_works(client, "alice", Users.PASSWORD) and not password_works(client, "alice", NEW)
    # The session and the token still read her own settings; the password itself still changes it.
    assert alice.json("usrparam", authinfo="", auth=sid)["name"]["$"] == "alice"
    assert "ok" in alice.json("usrparam", sok="ok", passwd=NEW)
    assert password_works(client, "alice", NEW)
    # An administrator acting for a customer (a billing system's reset) still sets it.
    root = Billing(client, "root")
    assert "ok" in root.json("usrparam", su="bob", sok="ok", passwd=NEW)
    assert password_works(client, "bob", NEW)


def test_pages_with_a_customers_data_are_not_stored_by_caches(app, client, actors):
    """The page that shows a new API token once, the account and home pages, and the API's answers say
    `Cache-Control: no-store`: the browser's disk cache or a proxy does not keep the token or the data for
    whoever uses the machine next. Static files keep their own caching."""
    alice = logged_in(app, "alice")
    token = csrf_from(alice.get("/account/tokens").text)
    made = alice.post("/account/tokens", data={"name": "deploy", "csrf_token": token})
    assert made.status_code == 200 and "hf_" in made.text
    for answer in (made, alice.get("/account"), alice.get("/home"), alice.get("/home", headers={"HX-Request": "true"}),
                   client.get(f"/api/v1/users/{actors.ids['owner']}", headers=actors.bearer("owner"))):
        assert answer.status_code == 200 and "no-store" in answer.headers.get("Cache-Control", ""), answer.request.path
    assert "no-store" not in client.get("/static/hostfleet.js").headers.get("Cache-Control", "")


def test_a_password_change_on_my_account_ends_ispmgr_sessions_too(app, client, cluster, actors):
    """alice's /ispmgr session (a billing system's, or a thief's) ends when she changes her password on
    My account, as her other browsers' sessions do."""
    alice = Billing(client, "alice")
    sid = alice.json("auth", username="alice", password=Users.PASSWORD, authinfo="")["auth"]["$id"]
    assert alice.json("whoami", authinfo="", auth=sid)["user"]["$name"] == "alice"
    browser = logged_in(app, "alice")
    changed = browser.post("/account/password", data={"current_password": Users.PASSWORD, "new_password": NEW,
                                                       "confirm_password": NEW,
                                                       "csrf_token": csrf_from(browser.get("/account").text)})
    assert changed.status_code == 302
    assert alice.json("whoami", authinfo="", auth=sid)["error"]["$object"] == "session"


def test_login_next_never_leaves_the_panel(app, actors):
    """Whatever `next=` says, the browser is sent to a path of this panel (or the start page)."""
    for target in ("//evil.example", "/\\evil.example", "https://evil.example/", "\t//evil.example",
                   "/\t/evil.example", "/\r\nLocation: https://evil.example", "http:evil.example",
                   "///evil.example", "javascript:alert(1)", " //evil.example"):
        browser = app.test_client()
        page = browser.get("/login")
        answer = browser.post("/login", query_string={"next": target},
                              data={"username": "bob", "password": Users.PASSWORD, "csrf_token": csrf_from(page.text)})
        location = answer.headers["Location"]
        assert answer.status_code == 302 and location == "/", (target, location)


def test_guessing_elsewhere_does_not_stop_the_owner_changing_her_password(app, actors):
    """Someone guessing alice's password from many addresses puts her name over the account-wide limit;
    her logged-in session (which proves an earlier login, as a device cookie does) still changes her
    password, while guesses of the current password from a session still count per client."""
    app.config["LOGIN_ACCOUNT_RATE_LIMIT"] = "3 per minute"
    alice = logged_in(app, "alice")
    for number in range(4):
        thief = app.test_client()
        thief.environ_base["REMOTE_ADDR"] = f"192.0.2.{number + 10}"
        page = thief.get("/login")
        thief.post("/login", data={"username": "alice", "password": f"guess {number}",
                                   "csrf_token": csrf_from(page.text)})
    assert app.test_client().get("/api/v1/operations", headers=basic("alice")).status_code == 429
    changed = alice.post("/account/password", data={"current_password": Users.PASSWORD, "new_password": NEW,
                                                     "confirm_password": NEW,
                                                     "csrf_token": csrf_from(alice.get("/account").text)})
    assert changed.status_code == 302, changed.text
