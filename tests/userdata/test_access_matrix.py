"""Every user-data page and API call × {owner, other user, admin, anonymous}, printed as a table.

The owner is alice. Her data is (re)made before each request, so a delete by one actor does not
hide what the next one may do. Lists are asked of everyone: the other user must get 200 without
any of alice's names in it.
"""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select

from tests.conftest import Users, csrf_from
from tests.userdata.conftest import basic

ACTORS = ("owner", "other", "admin", "anonymous")
NAMES = ("alice-site.example.com", "alice-zone.example.com", "alice-mail.example.com", "box@alice-mail.example.com",
         "alice-empty.example.com")
# The zones that cover the web and mail domains alice makes herself (m1.example.com, m2.example.net).
COVERING_ZONES = ("example.com", "example.net")
_serial = itertools.count(1)


def new_ssh_key() -> str:
    """A fresh ed25519 public key line."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


class World:
    """Alice's data, re-created through the API as the admin whenever something removed it."""

    def __init__(self, app, client, cluster):
        self.app, self.client, self.cluster = app, client, cluster

    def ensure(self) -> dict:
        """Ids of alice, her web domain, zone, record, mail domain and mailbox (made when missing)."""
        from app.extensions import db
        from app.models import DomainIndex, MailboxIndex, MailDomainIndex, User, WebDomainIndex
        from app.services import ssh_keys

        with self.app.app_context():
            alice = db.session.scalar(select(User).where(User.name == "alice"))
            if alice is None:
                self.cluster.user("alice")
            elif not alice.active:
                alice.active = True
                db.session.commit()

            def find(model, column, value):
                return db.session.scalar(select(model.id).where(column == value))

            admin = basic("root")
            for zone_name in COVERING_ZONES:  # alice's own web and mail domains need their zones
                if find(DomainIndex, DomainIndex.name, zone_name) is None:
                    self._ok(self.client.post("/api/v1/domains", json={"name": zone_name, "owner": "alice",
                                                                       "ip": "192.0.2.1"}, headers=admin))
            if find(WebDomainIndex, WebDomainIndex.name, NAMES[0]) is None:
                self._ok(self.client.post("/api/v1/webdomains", json={"name": NAMES[0], "owner": "alice"},
                                          headers=admin))
            if find(DomainIndex, DomainIndex.name, NAMES[1]) is None:
                self._ok(self.client.post("/api/v1/domains", json={"name": NAMES[1], "owner": "alice",
                                                                   "ip": "192.0.2.1"}, headers=admin))
            if find(MailDomainIndex, MailDomainIndex.name, NAMES[2]) is None:
                self._ok(self.client.post("/api/v1/maildomains", json={"name": NAMES[2], "owner": "alice"},
                                          headers=admin))
            if find(MailDomainIndex, MailDomainIndex.name, NAMES[4]) is None:
                self._ok(self.client.post("/api/v1/maildomains", json={"name": NAMES[4], "owner": "alice"},
                                          headers=admin))
            if find(MailboxIndex, MailboxIndex.address, NAMES[3]) is None:
                self._ok(self.client.post("/api/v1/mailboxes", json={"address": NAMES[3],
                                                                     "password": "box password"}, headers=admin))
            zone = find(DomainIndex, DomainIndex.name, NAMES[1])
            records = self.client.get(f"/api/v1/domains/{zone}/records", headers=admin).json["items"]
            record = next((r["id"] for r in records if r["name"] == "matrix"), None)
            if record is None:
                record = self._ok(self.client.post(f"/api/v1/domains/{zone}/records", json={
                    "name": "matrix", "type": "A", "value": "192.0.2.9"}, headers=admin))["id"]
            alice = db.session.scalar(select(User).where(User.name == "alice"))
            if not ssh_keys.list_keys(alice):  # through the service: an API call here would cost a login each time
                ssh_keys.add_key(alice, {"key": new_ssh_key()})
            keys = ssh_keys.list_keys(alice)
            return {
                "sshkey": keys[0]["id"],
                "user": alice.id, "session": (alice.id, alice.session_epoch),
                "web": find(WebDomainIndex, WebDomainIndex.name, NAMES[0]), "zone": zone, "record": record,
                "maildomain": find(MailDomainIndex, MailDomainIndex.name, NAMES[2]),
                "mailbox": find(MailboxIndex, MailboxIndex.address, NAMES[3]),
                "empty": find(MailDomainIndex, MailDomainIndex.name, NAMES[4]),
            }

    @staticmethod
    def _ok(response):
        assert response.status_code < 300, response.json
        return response.json


def unique() -> str:
    """A fresh name."""
    return f"m{next(_serial)}"


# (label, kind, method, path, body) — kind: "own" (owner and admin may, other may not), "list" (all may;
# the other user must not see alice's names), "admin" (administrators only).
API_CALLS = [
    ("list", "GET", "/api/v1/webdomains", None),
    ("own", "POST", "/api/v1/webdomains", lambda ids: {"name": f"{unique()}.example.com", "owner": "alice"}),
    ("own", "GET", "/api/v1/webdomains/{web}", None),
    ("own", "PUT", "/api/v1/webdomains/{web}", lambda ids: {"php": True}),
    ("own", "DELETE", "/api/v1/webdomains/{web}", None),
    ("list", "GET", "/api/v1/domains", None),
    ("own", "POST", "/api/v1/domains", lambda ids: {"name": f"{unique()}.example.org", "owner": "alice",
                                                    "ip": "192.0.2.3"}),
    ("own", "GET", "/api/v1/domains/{zone}", None),
    ("own", "GET", "/api/v1/domains/{zone}/records", None),
    ("own", "POST", "/api/v1/domains/{zone}/records", lambda ids: {"name": unique(), "type": "A",
                                                                   "value": "192.0.2.4"}),
    ("own", "PUT", "/api/v1/domains/{zone}/records/{record}", lambda ids: {"value": "192.0.2.5"}),
    ("own", "DELETE", "/api/v1/domains/{zone}/records/{record}", None),
    ("own", "DELETE", "/api/v1/domains/{zone}", None),
    ("list", "GET", "/api/v1/maildomains", None),
    ("own", "POST", "/api/v1/maildomains", lambda ids: {"name": f"{unique()}.example.net", "owner": "alice"}),
    ("own", "GET", "/api/v1/maildomains/{maildomain}", None),
    ("list", "GET", "/api/v1/mailboxes", None),
    ("own", "POST", "/api/v1/mailboxes", lambda ids: {"address": f"{unique()}@{NAMES[2]}",
                                                      "password": "a long password"}),
    ("own", "GET", "/api/v1/mailboxes/{mailbox}", None),
    ("own", "PUT", "/api/v1/mailboxes/{mailbox}", lambda ids: {"quota_mb": 5}),
    ("own", "DELETE", "/api/v1/mailboxes/{mailbox}", None),
    ("own", "DELETE", "/api/v1/maildomains/{empty}", None),
    ("admin", "GET", "/api/v1/users", None),
    ("own", "GET", "/api/v1/users/{user}", None),
    ("own", "GET", "/api/v1/users/{user}/location", None),
    ("admin", "POST", "/api/v1/users", lambda ids: {"name": unique(), "password": "a long password",
                                                    "roles": ["web"]}),
    ("admin", "PUT", "/api/v1/users/{user}", lambda ids: {"limits": {"webdomains": 50}}),
    ("own", "GET", "/api/v1/users/{user}/sshkeys", None),
    ("own", "POST", "/api/v1/users/{user}/sshkeys", lambda ids: {"key": new_ssh_key()}),
    ("own", "DELETE", "/api/v1/users/{user}/sshkeys/{sshkey}", None),
    ("admin", "DELETE", "/api/v1/users/{user}", None),
]

PAGES = [
    ("list", "GET", "/domains/web", None),
    ("own", "GET", "/domains/web/{web}", None),
    ("own", "POST", "/domains/web/{web}", lambda ids: {"aliases": "", "docroot": "www/site"}),
    ("own", "POST", "/domains/web/{web}/delete", None),
    ("list", "GET", "/domains/names", None),
    ("own", "GET", "/domains/names/{zone}", None),
    ("own", "POST", "/domains/names/{zone}", lambda ids: {"name": unique(), "type": "A", "value": "192.0.2.6",
                                                         "ttl": "300"}),
    ("own", "POST", "/domains/names/{zone}/records/{record}", lambda ids: {"name": "matrix", "type": "A",
                                                                          "value": "192.0.2.8", "ttl": "60"}),
    ("own", "POST", "/domains/names/{zone}/records/{record}/delete", None),
    ("own", "POST", "/domains/names/{zone}/delete", None),
    ("list", "GET", "/mail/domains", None),
    ("list", "GET", "/mail/mailboxes", None),
    ("own", "GET", "/mail/mailboxes/{mailbox}", None),
    ("own", "POST", "/mail/mailboxes/{mailbox}", lambda ids: {"quota_mb": "7"}),
    ("own", "POST", "/mail/mailboxes/{mailbox}/delete", None),
    ("own", "POST", "/mail/domains/{empty}/delete", None),
    ("admin", "GET", "/accounts/users", None),
    ("admin", "GET", "/accounts/users/{user}", None),
    ("admin", "GET", "/accounts/users/{user}/location", None),
    ("admin", "POST", "/accounts/users/{user}/suspend", None),
    ("admin", "POST", "/accounts/users/{user}/resume", None),
    ("admin", "POST", "/accounts/users/{user}", lambda ids: {"level": "user", "role_web": "y", "role_dns": "y",
                                                             "role_mail": "y"}),
    ("admin", "POST", "/accounts/users/{user}/delete", None),
]


def outcome(response, page: bool) -> str:
    """ok (2xx, or a redirect that is not to the login page), denied (403/404 or a 400 refusal), login."""
    code = response.status_code
    if code == 401 or (page and code == 302 and "/login" in response.headers.get("Location", "")):
        return "login"
    if code in (400, 403, 404):
        return "denied"
    if code < 400:
        return "ok"
    return f"HTTP {code}"


def expected(kind: str, actor: str) -> str:
    """What each actor must get for a kind of route."""
    if actor == "anonymous":
        return "login"
    if kind == "list":
        return "ok"
    if kind == "admin":
        return "ok" if actor == "admin" else "denied"
    return "denied" if actor == "other" else "ok"


@pytest.fixture
def world(app, client, cluster, users):
    """A node, the admin root, alice (owner) and bob (another user), and alice's data."""
    cluster.node("n1")
    users.make("root", admin=True)
    cluster.user("bob")
    return World(app, client, cluster)


def session_client(app, name: str | None):
    """A test client logged in through the login form (None: anonymous), and its session's CSRF token."""
    client = app.test_client()
    if name is None:
        # An anonymous browser still has a session and a CSRF token (from the login page).
        return client, csrf_from(client.get("/login").text)
    page = client.get("/login")
    client.post("/login", data={"username": name, "password": Users.PASSWORD, "csrf_token": csrf_from(page.text)})
    return client, csrf_from(client.get("/account/tokens").text)


def print_table(title: str, rows: list[list[str]]) -> None:
    """The matrix as a table on stdout."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print(f"\n{title}")
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


def test_api_access_matrix(app, client, world):
    """API: owner and admin may, the other user gets 403/404 (lists without alice's data), anonymous 401."""
    auth = {"owner": basic("alice"), "other": basic("bob"), "admin": basic("root"), "anonymous": {}}
    rows = [["call", *ACTORS]]
    failures = []
    for kind, method, path, body in API_CALLS:
        cells = []
        for actor in ACTORS:
            ids = world.ensure()
            url = path.format(**ids)
            response = client.open(url, method=method, json=body(ids) if body else None, headers=auth[actor])
            got = outcome(response, page=False)
            if kind == "list" and actor == "other" and any(n in response.text for n in NAMES):
                got = "LEAK"
            cells.append(f"{response.status_code} {got}")
            if got != expected(kind, actor):
                failures.append((method, path, actor, response.status_code, response.text[:200]))
        rows.append([f"{method} {path}", *cells])
    print_table("API access matrix (alice owns the data)", rows)
    assert failures == []


def test_page_access_matrix(app, world):
    """Pages: owner and admin may, the other user gets 403/404 (lists without alice's data), anonymous → login."""
    sessions = {"owner": None, "other": None, "admin": None, "anonymous": None}
    alice_session = None
    rows = [["page", *ACTORS]]
    failures = []
    for kind, method, path, body in PAGES:
        cells = []
        for actor in ACTORS:
            ids = world.ensure()
            if sessions[actor] is None or (actor == "owner" and ids["session"] != alice_session):
                # alice was deleted and made again, or suspended (which ends sessions): log in afresh.
                sessions[actor] = session_client(app, {"owner": "alice", "other": "bob", "admin": "root"}.get(actor))
                alice_session = ids["session"] if actor == "owner" else alice_session
            client, token = sessions[actor]
            url = path.format(**ids)
            data = {**(body(ids) if body else {}), "csrf_token": token or ""}
            response = client.open(url, method=method, data=data if method == "POST" else None)
            got = outcome(response, page=True)
            if kind == "list" and actor == "other" and any(n in response.text for n in NAMES):
                got = "LEAK"
            cells.append(f"{response.status_code} {got}")
            if got != expected(kind, actor):
                failures.append((method, path, actor, response.status_code, response.text[:300]))
        rows.append([f"{method} {path}", *cells])
    print_table("Page access matrix (alice owns the data)", rows)
    assert failures == []
