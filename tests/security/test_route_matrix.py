"""Every route of the app × {admin, owner, other user, anonymous, expired session, wrong CSRF}, printed as a table.

The routes come from the app's url_map: a route this file does not classify fails the test. User-data routes
(and alice's data behind them) are the user-data access matrix's own tables, reused here with two more columns.
Kinds: public (anyone), user (any logged-in user), list (any user; the other user must not see alice's names),
own (alice's thing: owner and admin), self (the owner only, not even an admin), admin, logout, become (an
administrator logs in as alice: admin only, and the session is alice's afterwards).
"""

from __future__ import annotations

import time
from unittest import mock

import pytest
from itsdangerous import TimestampSigner
from sqlalchemy import select

from tests.conftest import free_port, run_worker_burst
from tests.userdata.conftest import basic
from tests.userdata.test_access_matrix import API_CALLS, NAMES, PAGES, World, print_table, session_client, unique

ACTORS = ("admin", "owner", "other", "anonymous", "expired")
COLUMNS = (*ACTORS, "wrong CSRF")
LOGINS = {"admin": "root", "owner": "alice", "other": "bob"}
CSRF_MESSAGE = "did not come from this panel"
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}


def _form(**values):
    return lambda ids: values


# (kind, method, path, body) for everything the user-data matrix does not list.
OTHER_API_CALLS = [
    ("public", "GET", "/api/v1/openapi.json", None),
    ("admin", "GET", "/api/v1/nodes", None),
    ("admin", "POST", "/api/v1/nodes", _form(name="Bad Name", address="127.0.0.1", password="x")),
    ("admin", "GET", "/api/v1/nodes/{node}", None),
    ("admin", "PATCH", "/api/v1/nodes/{node}", _form(weight=50)),
    ("admin", "DELETE", "/api/v1/nodes/{node}", None),
    ("admin", "POST", "/api/v1/nodes/{node}/retry", None),
    ("admin", "GET", "/api/v1/nodes/{node}/setup", None),
    ("admin", "POST", "/api/v1/nodes/{node}/sync", _form(lists=["firewall"])),
    ("admin", "POST", "/api/v1/nodes/{node}/update-agent", None),
    ("user", "GET", "/api/v1/operations", None),
    ("own", "GET", "/api/v1/operations/{operation}", None),
    ("admin", "GET", "/api/v1/policies", None),
    ("admin", "PUT", "/api/v1/policies", _form(min_ready_percent=50)),
    ("admin", "GET", "/api/v1/sync", None),
    ("admin", "GET", "/api/v1/firewall", None),
    ("admin", "POST", "/api/v1/firewall", _form(action="accept", protocol="tcp", ports="81")),
    ("admin", "PUT", "/api/v1/firewall/{firewall}", _form(action="accept", protocol="tcp", ports="82")),
    ("admin", "DELETE", "/api/v1/firewall/{firewall}", None),
    ("admin", "GET", "/api/v1/scheduler", None),
    ("admin", "POST", "/api/v1/scheduler", _form(schedule="@daily", user="root", command="true")),
    ("admin", "PUT", "/api/v1/scheduler/{scheduler}", _form(schedule="@hourly", user="root", command="true")),
    ("admin", "DELETE", "/api/v1/scheduler/{scheduler}", None),
    ("admin", "GET", "/api/v1/mail/whitelist", None),
    ("admin", "POST", "/api/v1/mail/whitelist", _form(sender="ok@example.org")),
    ("admin", "PUT", "/api/v1/mail/whitelist/{mail_whitelist}", _form(sender="ok2@example.org")),
    ("admin", "DELETE", "/api/v1/mail/whitelist/{mail_whitelist}", None),
    ("admin", "GET", "/api/v1/mail/blacklist", None),
    ("admin", "POST", "/api/v1/mail/blacklist", _form(sender="spam.example.org")),
    ("admin", "PUT", "/api/v1/mail/blacklist/{mail_blacklist}", _form(sender="spam2.example.org")),
    ("admin", "DELETE", "/api/v1/mail/blacklist/{mail_blacklist}", None),
    # /ispmgr answers 200 to everyone with its own doc.error (tests/ispmgr check who may do what there).
    ("public", "GET", "/ispmgr", None),
    ("public", "POST", "/ispmgr", None),
    ("admin", "GET", "/api/v1/plans", None),
    ("admin", "POST", "/api/v1/plans", lambda ids: {"name": unique()}),
    ("admin", "GET", "/api/v1/plans/{plan}", None),
    ("admin", "PUT", "/api/v1/plans/{plan}", _form(limits={"webdomains": 3})),
    ("admin", "DELETE", "/api/v1/plans/{plan}", None),
    ("list", "GET", "/api/v1/certificates", None),
    ("own", "GET", "/api/v1/certificates/{web}", None),
    # A name not the site's: refused before any operation starts (no CA is asked in the matrix).
    ("own", "POST", "/api/v1/certificates/{web}/acme", _form(names=["not-the-site.example.org"])),
    ("own", "PUT", "/api/v1/certificates/{web}/uploaded", _form(certificate="not PEM", key="not PEM")),
    ("own", "PUT", "/api/v1/certificates/{web}/switches", _form(redirect="not a boolean")),
    ("own", "DELETE", "/api/v1/certificates/{web}", None),
]

OTHER_PAGES = [
    ("public", "GET", "/static/hostfleet.css", None),
    ("public", "GET", "/login", None),
    ("public", "POST", "/login", _form(username="nobody", password="wrong password")),
    ("logout", "POST", "/logout", None),
    ("user", "GET", "/", None),
    ("admin", "GET", "/dashboard", None),
    ("user", "GET", "/home", None),
    ("user", "GET", "/account", None),
    ("user", "POST", "/account", _form(fullname="Matrix", comment="")),
    # A wrong current password: refused (400) for everyone logged in, so no session of the matrix ends.
    ("user", "POST", "/account/password", _form(current_password="not the password", new_password="another long one",
                                                confirm_password="another long one")),
    ("user", "GET", "/account/tokens", None),
    ("user", "POST", "/account/tokens", _form(name="matrix token")),
    ("self", "POST", "/account/tokens/{token}/delete", None),
    ("user", "GET", "/account/sftp", None),
    # A key that is not one: refused (400) for everyone logged in; the administrator has no hosting account (409).
    ("user", "POST", "/account/sftp", _form(key="ssh-ed25519 not-a-key")),
    ("self", "POST", "/account/sftp/keys/{sshkey}/delete", None),
    ("user", "GET", "/operations/", None),
    ("own", "GET", "/operations/{operation}", None),
    ("admin", "POST", "/operations/{operation}/retry", None),
    ("user", "POST", "/domains/web", lambda ids: {"name": f"{unique()}.example.com"}),
    # Bulk delete's question: any user may ask, and another user's question names none of alice's names.
    ("list", "POST", "/domains/web/delete-selected", lambda ids: {"ids": ids["web"], "step": "ask"}),
    ("list", "POST", "/domains/names/delete-selected", lambda ids: {"ids": ids["zone"], "step": "ask"}),
    ("list", "POST", "/mail/domains/delete-selected", lambda ids: {"ids": ids["empty"], "step": "ask"}),
    ("list", "POST", "/mail/mailboxes/delete-selected", lambda ids: {"ids": ids["mailbox"], "step": "ask"}),
    ("user", "POST", "/domains/names", lambda ids: {"name": f"{unique()}.example.org", "ip": "192.0.2.7"}),
    ("user", "POST", "/mail/domains", lambda ids: {"name": f"{unique()}.example.net"}),
    ("own", "POST", "/mail/mailboxes", lambda ids: {"address": f"{unique()}@{NAMES[2]}",
                                                    "password": "a long password"}),
    ("become", "POST", "/accounts/users/{user}/login-as", None),
    # Not logged in as anyone: the panel says so and sends the user home.
    ("user", "POST", "/login-as/return", None),
    ("admin", "POST", "/accounts/users", lambda ids: {"name": unique(), "password": "a long password",
                                                      "level": "user", "role_web": "y"}),
    ("admin", "GET", "/accounts/plans/", None),
    ("admin", "POST", "/accounts/plans/", lambda ids: {"name": unique(), "role_web": "y"}),
    ("admin", "GET", "/accounts/plans/{plan}", None),
    ("admin", "POST", "/accounts/plans/{plan}", _form(name="matrix", role_web="y", limit_webdomains="4")),
    ("admin", "POST", "/accounts/plans/{plan}/delete", None),
    ("list", "GET", "/domains/certificates/", None),
    ("own", "GET", "/domains/certificates/{web}", None),
    ("own", "POST", "/domains/certificates/{web}", _form(certificate="not PEM", key="not PEM")),
    ("own", "POST", "/domains/certificates/{web}/request", _form(names="not-the-site.example.org")),
    ("own", "POST", "/domains/certificates/{web}/switches", _form(redirect="y")),
    ("own", "POST", "/domains/certificates/{web}/delete", None),
    ("admin", "GET", "/cluster/nodes", None),
    ("admin", "GET", "/cluster/nodes/{node}", None),
    ("admin", "POST", "/cluster/nodes/{node}/check", None),
    ("admin", "POST", "/cluster/nodes/{node}/flags", _form(flag="maintenance")),
    ("admin", "POST", "/cluster/nodes/{node}/roles", _form(roles="web")),
    ("admin", "POST", "/cluster/nodes/{node}/retry", None),
    ("admin", "POST", "/cluster/nodes/{node}/update-agent", None),
    ("admin", "POST", "/cluster/nodes/{node}/remove", None),
    ("admin", "GET", "/cluster/nodes/add", None),
    ("admin", "POST", "/cluster/nodes/add", _form(name="Bad Name", address="127.0.0.1")),
    ("admin", "POST", "/cluster/nodes/add/confirm", _form(name="Bad Name", address="127.0.0.1")),
    ("admin", "GET", "/cluster/policies", None),
    ("admin", "POST", "/cluster/policies", _form(min_ready_percent="50", missed_polls="3", poll_interval_s="10",
                                                 placement_resource="disk", node_apt_source="")),
    ("admin", "GET", "/cluster/sync", None),
    ("admin", "POST", "/cluster/sync/{desync}/retry", None),
    ("admin", "POST", "/cluster/sync/nodes/{node}", None),
    ("admin", "GET", "/system/firewall", None),
    ("admin", "POST", "/system/firewall", _form(action="accept", protocol="tcp", ports="83")),
    ("admin", "GET", "/system/firewall/{firewall}/edit", None),
    ("admin", "POST", "/system/firewall/{firewall}/edit", _form(action="accept", protocol="tcp", ports="84")),
    ("admin", "POST", "/system/firewall/{firewall}/delete", None),
    ("admin", "GET", "/system/scheduler", None),
    ("admin", "POST", "/system/scheduler", _form(schedule="@daily", user="root", command="true")),
    ("admin", "GET", "/system/scheduler/{scheduler}/edit", None),
    ("admin", "POST", "/system/scheduler/{scheduler}/edit", _form(schedule="@weekly", user="root", command="true")),
    ("admin", "POST", "/system/scheduler/{scheduler}/delete", None),
    ("admin", "GET", "/mail/whitelist", None),
    ("admin", "POST", "/mail/whitelist", _form(sender="w@example.org")),
    ("admin", "GET", "/mail/whitelist/{mail_whitelist}/edit", None),
    ("admin", "POST", "/mail/whitelist/{mail_whitelist}/edit", _form(sender="w2@example.org")),
    ("admin", "POST", "/mail/whitelist/{mail_whitelist}/delete", None),
    ("admin", "GET", "/mail/blacklist", None),
    ("admin", "POST", "/mail/blacklist", _form(sender="b.example.org")),
    ("admin", "GET", "/mail/blacklist/{mail_blacklist}/edit", None),
    ("admin", "POST", "/mail/blacklist/{mail_blacklist}/edit", _form(sender="b2.example.org")),
    ("admin", "POST", "/mail/blacklist/{mail_blacklist}/delete", None),
]

API = [(kind, m, p, b, True) for kind, m, p, b in API_CALLS + OTHER_API_CALLS]
ROUTES = API + [(kind, m, p, b, False) for kind, m, p, b in PAGES + OTHER_PAGES]

LIST_ROWS = {"firewall": ("/api/v1/firewall", {"action": "accept", "protocol": "tcp", "ports": "8080"}),
             "scheduler": ("/api/v1/scheduler", {"schedule": "@daily", "user": "root", "command": "true"}),
             "mail_whitelist": ("/api/v1/mail/whitelist", {"sender": "friend@example.org"}),
             "mail_blacklist": ("/api/v1/mail/blacklist", {"sender": "spammer.example.org"})}


class MatrixWorld(World):
    """Alice's user data (the user-data matrix's) plus a spare node, a desync, alice's operation and token."""

    list_rows: dict[str, int] = {}

    def make_list_rows(self) -> None:
        """One row in each system-wide list, through the API and a worker run."""
        from app.services import lists

        for path, body in LIST_ROWS.values():
            self._ok(self.client.post(path, json=body, headers=basic("root")))
        run_worker_burst(self.app)
        with self.app.app_context():
            for name in LIST_ROWS:
                rows = lists.list_to_dict(name)["items"]
                assert rows, f"no {name} row after the worker ran"
                self.list_rows[name] = rows[0]["id"]

    def ensure(self) -> dict:
        """The user-data ids, and the spare node, its desync, alice's operation and alice's token."""
        from app.extensions import db
        from app.models import ApiToken, Desync, Node, NodeState, Operation, Plan, User
        from app.services import accounts, plans
        from app.services.nodes import change_state, create_node

        ids = super().ensure()
        with self.app.app_context():
            spare = db.session.scalar(select(Node).where(Node.name == "spare"))
            if spare is None:
                # Nothing listens on its agent port: a check fails at once instead of waiting for a timeout.
                spare = create_node("spare", "127.0.0.1", roles=["web"], reason="matrix", agent_port=free_port())
                db.session.flush()
                change_state(spare, NodeState.ERROR, "matrix")
            if not spare.desyncs:
                db.session.add(Desync(node=spare, list="firewall"))
            alice = db.session.get(User, ids["user"])
            operation = db.session.scalar(select(Operation.id).where(Operation.created_by_id == alice.id))
            if operation is None:
                row = Operation(kind="test", title="alice's operation", created_by_id=alice.id, params={})
                db.session.add(row)
                db.session.flush()
                operation = row.id
            db.session.commit()
            token = db.session.scalar(select(ApiToken.id).where(ApiToken.user_id == alice.id))
            if token is None:
                token = accounts.create_token(alice, "matrix")[0].id
            desync = db.session.scalar(select(Desync.id).where(Desync.node_id == spare.id))
            plan = db.session.scalar(select(Plan.id).where(Plan.name == "matrix"))
            if plan is None:
                plan = plans.create_plan({"name": "matrix"}).id
            return {**ids, "node": spare.id, "desync": desync, "operation": operation, "token": token,
                    "plan": plan, **self.list_rows}


@pytest.fixture
def matrix_world(app, client, cluster, actors):
    """alice's data on a loopback agent node, system-wide list rows and the extras the other routes need."""
    # Every session of the matrix logs in through the form; the login rate limit is tests/test_auth.py's subject.
    app.config["LOGIN_RATE_LIMIT"] = "10000 per minute"
    world = MatrixWorld(app, client, cluster)
    world.make_list_rows()
    return world


def outcome(response) -> str:
    """login (401 or sent to the login page), csrf (400 naming the form), denied (403/404), refused (another
    400), ok (anything else below 500, 409/422 included: the call got past the gate)."""
    code = response.status_code
    if code == 401 or (code in (302, 303) and "/login" in response.headers.get("Location", "")):
        return "login"
    if code == 400 and CSRF_MESSAGE in response.text:
        return "csrf"
    if code in (403, 404):
        return "denied"
    if code == 400:
        return "refused"
    return "ok" if code < 500 else f"HTTP {code}"


def expected(kind: str, column: str, method: str, api: bool) -> set[str]:
    """The answers that are right for a kind of route in a column."""
    if column == "wrong CSRF":
        # The API never takes the session cookie, so a browser session with a forged token is anonymous there.
        return {"login"} if api else {"csrf"}
    if column in ("anonymous", "expired") and not api and method in STATE_CHANGING:
        # No session (or one past its lifetime) holds no CSRF secret: the form is refused before the login check.
        return {"login", "csrf"} | ({"refused"} if kind == "public" and column == "anonymous" else set())
    if kind == "public":
        return {"ok", "refused"}
    if kind == "logout" or column in ("anonymous", "expired"):
        return {"login"}
    allowed = {"user": ACTORS, "list": ACTORS, "own": ("admin", "owner"), "self": ("owner",),
               "admin": ("admin",), "become": ("admin",)}[kind]
    return {"ok", "refused"} if column in allowed else {"denied", "refused"}


def expired_session(app) -> str:
    """The cookie of the admin's session, signed one minute beyond the configured lifetime ago."""
    client = app.test_client()
    age = app.permanent_session_lifetime.total_seconds() + 60
    with mock.patch.object(TimestampSigner, "get_timestamp", lambda self: int(time.time() - age)):
        session_client_into(client, "root")
    return client.get_cookie("session").value


def session_client_into(client, name: str) -> None:
    """Log an existing test client in through the login form."""
    from tests.conftest import Users, csrf_from

    page = client.get("/login")
    response = client.post("/login", data={"username": name, "password": Users.PASSWORD,
                                           "csrf_token": csrf_from(page.text)})
    assert response.status_code == 302, response.text


class Browsers:
    """A logged-in session per actor, renewed when a route ended it (logout, alice re-made or suspended)."""

    def __init__(self, app):
        self.app = app
        self.sessions: dict[str, tuple] = {}
        self.alice_session = None
        self.expired_cookie = expired_session(app)

    def get(self, actor: str, ids: dict):
        """(client, csrf token) for the actor."""
        if actor == "owner" and ids["session"] != self.alice_session:
            self.sessions.pop("owner", None)
            self.alice_session = ids["session"]
        if actor not in self.sessions:
            self.sessions[actor] = session_client(self.app, LOGINS.get(actor))
        return self.sessions[actor]

    def forget(self, actor: str) -> None:
        """Drop a session a route ended."""
        self.sessions.pop(actor, None)


def call(app, browsers: Browsers, column: str, kind: str, method: str, url: str, body, api: bool):
    """One cell's request (an API POST without a body sends {}, as the API asks of every client)."""
    ids_json = {} if body is None and api and method == "POST" else body
    if column == "expired":
        client = app.test_client()
        client.set_cookie("session", browsers.expired_cookie)
        return client.open(url, method=method, json=ids_json if api else None,
                           data=None if api else {**(body or {}), "csrf_token": ""})
    if column == "wrong CSRF":
        actor = "admin" if kind in ("admin", "public", "logout", "become") else "owner"
        client, _ = browsers.get(actor, browsers.ids)
        headers = {"X-CSRFToken": "forged", "HX-Request": "true"}
        if api:
            return client.open(url, method=method, json=ids_json, headers=headers)
        return client.open(url, method=method, data={**(body or {}), "csrf_token": "forged"}, headers=headers)
    if api:
        headers = basic(LOGINS[column]) if column in LOGINS else {}
        return app.test_client().open(url, method=method, json=ids_json, headers=headers)
    client, token = browsers.get(column, browsers.ids)
    data = {**(body or {}), "csrf_token": token} if method != "GET" else None
    response = client.open(url, method=method, data=data)
    if kind in ("logout", "become"):
        browsers.forget(column)
    return response


def classified_routes(app) -> set[tuple[str, str]]:
    """(endpoint, method) of every route the table names, resolved through the url_map."""
    adapter = app.url_map.bind("localhost")
    sample = dict.fromkeys(("web", "zone", "record", "maildomain", "mailbox", "empty", "user", "node", "desync",
                            "operation", "token", "plan", "sshkey", *LIST_ROWS), 1)
    return {(adapter.match(path.format(**sample), method=method)[0], method) for _, method, path, _, _ in ROUTES}


def routes_of_the_databases_matrix(app) -> set[tuple[str, str]]:
    """(endpoint, method) of every route tests/databases/test_access_matrix.py holds to its own matrix (owner,
    other user, admin, anonymous, against a private MariaDB the world here does not have)."""
    from tests.databases.test_access_matrix import API, PAGES

    adapter = app.url_map.bind("localhost")
    paths = [(method, "/api/v1" + path) for method, path, _, _ in API] + [(row[0], row[1]) for row in PAGES]
    return {(adapter.match(path.format(db=1, user=1), method=method)[0], method) for method, path in paths}


def served_routes(app) -> set[tuple[str, str]]:
    """(endpoint, method) of every route the app serves."""
    return {(rule.endpoint, method) for rule in app.url_map.iter_rules()
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def test_every_route_is_classified(app):
    """A new route fails here until it has a row (kind, method, path, body) in the matrix."""
    missing = served_routes(app) - classified_routes(app) - routes_of_the_databases_matrix(app)
    assert missing == set(), f"routes without a row in the access matrix: {sorted(missing)}"


def test_route_matrix(app, matrix_world):
    """Every route × {admin, owner, other, anonymous, expired session, wrong CSRF}: no cell wrong."""
    browsers = Browsers(app)
    rows = [["route", *COLUMNS]]
    failures = []
    ids = None
    for kind, method, path, body, api in ROUTES:
        cells = []
        for column in COLUMNS:
            if column == "wrong CSRF" and (method not in STATE_CHANGING or kind == "public" and api):
                cells.append("—")
                continue
            if ids is None:
                ids = browsers.ids = matrix_world.ensure()
            url = path.format(**ids)
            response = call(app, browsers, column, kind, method, url, body(ids) if body else None, api)
            got = outcome(response)
            if method in STATE_CHANGING:
                ids = None  # the request may have removed or changed alice's data: check it before the next cell
            if kind == "list" and column == "other" and any(n in response.text for n in NAMES):
                got = "LEAK"
            cells.append(f"{response.status_code} {got}")
            if got not in expected(kind, column, method, api):
                failures.append((method, path, column, response.status_code, response.text[:200]))
        rows.append([f"{method} {path} [{kind}]", *cells])
    print_table("Access matrix: every route (alice owns the data; expired = the admin's session past its "
                "lifetime; wrong CSRF = an allowed session with a forged token)", rows)
    print(f"route matrix: {len(rows) - 1} routes × {len(COLUMNS)} columns, {len(failures)} wrong cells")
    assert failures == []
