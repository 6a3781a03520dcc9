"""The hostile corpus on every field of every user-data API call and form.

Each value must get a 4xx naming the field, nothing stored on the master and nothing sent: the
agent's root and state trees stay byte-for-byte the same. Values that are legitimate in a field
(a password full of shell syntax, a plain folder as document root, a blank optional field) may
be accepted; then the trees may change and become the new reference.
"""

from __future__ import annotations

import itertools
import json
import re
import unicodedata
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.conftest import Users, csrf_from
from tests.userdata.conftest import basic

CORPUS = json.loads((Path(__file__).parents[2] / "agent/tests/hostile_corpus.json").read_text())
VALUES = [
    (item["why"], item["repeat"][0] * item["repeat"][1] if "repeat" in item else item["value"])
    for item in CORPUS["values"]
]
_serial = itertools.count(1)
pytestmark = pytest.mark.slow
FREE_TEXT = {"password"}
BLANK_MEANS_UNSET = {"docroot", "aliases", "nameservers", "priority", "ttl", "ip", "records", "limits", "nodes",
                     "quota_mb", "owner_admin_blank", "forward"}


NUMBER_RANGES = {"quota_mb": (0, 10_000_000), "ttl": (0, 2**31 - 1), "priority": (0, 65535)}


def n() -> int:
    """A fresh number for unique names."""
    return next(_serial)


def legitimate(field: str, value: object, api: bool) -> bool:
    """Whether a value may be accepted in this field."""
    if field in FREE_TEXT and isinstance(value, str):
        return len(value) >= 8 and not any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in value)
    if field in BLANK_MEANS_UNSET and (value is None or (isinstance(value, str) and not value.strip())):
        return True
    if field in ("php", "active", "dns", "override") and isinstance(value, bool):
        return True
    if field == "docroot" and isinstance(value, str):
        return all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", p) and p != ".." for p in value.split("/"))
    if field == "record.name" and isinstance(value, str):
        return all(re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", p) for p in value.split("."))
    if field in NUMBER_RANGES and not api and isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        value = int(value)
    if field in NUMBER_RANGES and not isinstance(value, bool) and isinstance(value, int):
        return NUMBER_RANGES[field][0] <= value <= NUMBER_RANGES[field][1]
    if not api and field in ("php",):
        return True
    return False


class Target:
    """The world the hostile values are thrown at, and how to tell that nothing moved."""

    def __init__(self, app, client, cluster, node_id):
        self.app, self.client, self.cluster, self.node_id = app, client, cluster, node_id
        self.ids = {}

    def snapshot(self) -> tuple:
        """The agent's trees and the master's index counts."""
        from app.extensions import db
        from app.models import DomainIndex, MailboxIndex, MailDomainIndex, PendingWrite, User, WebDomainIndex

        with self.app.app_context():
            counts = tuple(db.session.scalar(select(func.count()).select_from(m)) for m in
                           (DomainIndex, MailboxIndex, MailDomainIndex, WebDomainIndex, User, PendingWrite))
        return self.cluster.tree(self.node_id), counts


@pytest.fixture
def target(app, client, cluster, users):
    """A node, the admin root, alice with a zone and record, a web domain, a mail domain and a mailbox."""
    node_id = cluster.node("n1")
    users.make("root", admin=True)
    cluster.user("alice")
    world = Target(app, client, cluster, node_id)
    alice = basic("alice")
    world.ids["zone"] = client.post("/api/v1/domains", json={"name": "example.com", "ip": "192.0.2.1"},
                                    headers=alice).json["id"]
    world.ids["web"] = client.post("/api/v1/webdomains", json={"name": "site.example.com"}, headers=alice).json["id"]
    cluster.zones("alice", "example.net")
    record = {"name": "base", "type": "A", "value": "192.0.2.2"}
    world.ids["record"] = client.post(f"/api/v1/domains/{world.ids['zone']}/records", json=record,
                                      headers=alice).json["id"]
    client.post("/api/v1/maildomains", json={"name": "example.net"}, headers=alice)
    mailbox = {"address": "base@example.net", "password": "a long password"}
    world.ids["mailbox"] = client.post("/api/v1/mailboxes", json=mailbox, headers=alice).json["id"]
    with app.app_context():
        from app.extensions import db
        from app.models import User
        from app.services.accounts import create_token

        world.ids["alice"] = db.session.scalar(select(User.id).where(User.name == "alice"))
        # Bearer tokens: an argon2 check per request would make thousands of requests slow.
        world.tokens = {name: {"Authorization": "Bearer " + create_token(
            db.session.scalar(select(User).where(User.name == name)), "hostile")[1]} for name in ("alice", "root")}
    return world


# case name → (actor, method, path, valid body(n), field, wrap the value in a list)
API_CASES = {}


def _api(prefix, actor, method, path, make, fields, wrapped=()):
    for field in fields:
        API_CASES[f"{prefix}.{field}"] = (actor, method, path, make, field, field in wrapped)


_api("users.create", "root", "POST", "/api/v1/users",
     lambda i: {"name": f"h{i}", "password": "a long password", "roles": ["web"]},
     ("name", "password", "level", "roles", "limits", "nodes", "active"), wrapped=("roles",))
_api("users.update", "root", "PUT", "/api/v1/users/{alice}", lambda i: {},
     ("password", "level", "roles", "limits", "nodes", "active"), wrapped=("roles",))
_api("webdomains.create", "alice", "POST", "/api/v1/webdomains",
     lambda i: {"name": f"w{i}.example.com", "php": False},
     ("name", "aliases", "owner", "php", "docroot", "dns", "override"),
     wrapped=("aliases",))
_api("webdomains.create_as_admin", "root", "POST", "/api/v1/webdomains",
     lambda i: {"name": f"a{i}.example.com", "owner": "alice"}, ("owner",))
_api("webdomains.update", "alice", "PUT", "/api/v1/webdomains/{web}", lambda i: {},
     ("aliases", "php", "docroot", "override"),
     wrapped=("aliases",))
_api("domains.create", "alice", "POST", "/api/v1/domains", lambda i: {"name": f"z{i}.example.org", "ip": "192.0.2.1"},
     ("name", "owner", "ip", "nameservers", "records", "override"), wrapped=("nameservers", "records"))
_api("records.create", "alice", "POST", "/api/v1/domains/{zone}/records",
     lambda i: {"name": f"r{i}", "type": "A", "value": "192.0.2.3", "ttl": 300},
     ("name", "type", "value", "ttl", "priority"))
_api("records.update", "alice", "PUT", "/api/v1/domains/{zone}/records/{record}",
     lambda i: {"value": "192.0.2.4"}, ("name", "type", "value", "ttl", "priority"))
_api("maildomains.create", "alice", "POST", "/api/v1/maildomains", lambda i: {"name": f"m{i}.example.net"},
     ("name", "owner", "dns", "override"))
_api("mailboxes.create", "alice", "POST", "/api/v1/mailboxes",
     lambda i: {"address": f"box{i}@example.net", "password": "a long password", "quota_mb": 10},
     ("address", "password", "quota_mb", "forward"), wrapped=("forward",))
_api("mailboxes.update", "alice", "PUT", "/api/v1/mailboxes/{mailbox}", lambda i: {"quota_mb": 5},
     ("password", "quota_mb", "forward"), wrapped=("forward",))

_api("sshkeys.add", "alice", "POST", "/api/v1/users/{alice}/sshkeys", lambda i: {}, ("key",))

LEGIT_AS = {"records.create.name": "record.name", "records.update.name": "record.name"}


def test_hostile_values_in_the_api(target):
    """Every API field: 4xx naming the field, index unchanged, agent trees unchanged."""
    failures = []
    before = target.snapshot()
    for case, (actor, method, path, make, field, wrapped) in API_CASES.items():
        legit_field = LEGIT_AS.get(case, field)
        for why, value in VALUES:
            body = {**make(n()), field: [value] if wrapped else value}
            response = target.client.open(path.format(**target.ids), method=method, json=body,
                                          headers=target.tokens[actor])
            after = target.snapshot()
            if response.status_code < 300 and legitimate(legit_field, value, api=True):
                before = after
                continue
            named = (response.json or {}).get("fields", {}) if response.is_json else {}
            if not 400 <= response.status_code < 500:
                failures.append((case, why, response.status_code, response.text[:200]))
            elif not any(key == field or key.startswith((f"{field}.", f"{field}[")) for key in named):
                failures.append((case, why, "field not named", response.text[:200]))
            elif after != before:
                failures.append((case, why, "something was stored or sent"))
            before = after
    for failure in failures:
        print(failure)
    print(f"\n{len(API_CASES)} API fields x {len(VALUES)} hostile values: {len(failures)} failures")
    assert failures == []


# case name → (actor, path, valid form data(n), field)
FORM_CASES = {}


def _form(prefix, actor, path, make, fields):
    for field in fields:
        FORM_CASES[f"{prefix}.{field}"] = (actor, path, make, field)


_form("webdomain.create", "alice", "/domains/web", lambda i: {"name": f"w{i}.example.com"},
      ("name", "aliases", "docroot"))
_form("webdomain.create_as_admin", "root", "/domains/web", lambda i: {"name": f"a{i}.example.com", "owner": "alice"},
      ("owner",))
_form("webdomain.edit", "alice", "/domains/web/{web}", lambda i: {}, ("aliases", "docroot"))
_form("zone.create", "alice", "/domains/names", lambda i: {"name": f"z{i}.example.org", "ip": "192.0.2.1"},
      ("name", "ip", "nameservers"))
_form("record.add", "alice", "/domains/names/{zone}",
      lambda i: {"name": f"r{i}", "type": "A", "value": "192.0.2.5", "ttl": "300"},
      ("name", "type", "value", "ttl", "priority"))
_form("record.edit", "alice", "/domains/names/{zone}/records/{record}",
      lambda i: {"name": "base", "type": "A", "value": "192.0.2.6", "ttl": "300"},
      ("name", "type", "value", "ttl", "priority"))
_form("sshkey.add", "alice", "/account/sftp", lambda i: {}, ("key",))
_form("maildomain.create", "alice", "/mail/domains", lambda i: {"name": f"m{i}.example.net"}, ("name",))
_form("maildomain.create_as_admin", "root", "/mail/domains", lambda i: {"name": f"o{i}.example.net",
                                                                         "owner": "alice"}, ("owner",))
_form("mailbox.create", "alice", "/mail/mailboxes",
      lambda i: {"address": f"fbox{i}@example.net", "password": "a long password", "quota_mb": "1"},
      ("address", "password", "quota_mb"))
_form("mailbox.edit", "alice", "/mail/mailboxes/{mailbox}", lambda i: {"quota_mb": "2"},
      ("password", "quota_mb", "forward"))
_form("user.create", "root", "/accounts/users",
      lambda i: {"name": f"f{i}", "password": "a long password", "level": "user", "role_web": "y"},
      ("name", "password", "level", "limit_webdomains", "limit_disk_mb", "node_web"))
_form("user.edit", "root", "/accounts/users/{alice}",
      lambda i: {"level": "user", "role_web": "y", "role_dns": "y", "role_mail": "y"},
      ("password", "level", "limit_mailboxes", "node_mail"))

FORM_LEGIT = {"record.add.name": "record.name", "record.edit.name": "record.name", "limit_webdomains": "quota_mb",
              "limit_disk_mb": "quota_mb", "limit_mailboxes": "quota_mb", "node_web": "nodes", "node_mail": "nodes"}
# A form field that stands for another API field in the error (node_web shows nodes.web, blank = unset).
FORM_ERROR_FIELD = {}


# Form fields where a blank means "keep" or "the default" (an edit form's password, the level).
FORM_BLANK_OK = {"mailbox.edit.password", "user.edit.password", "user.create.level", "user.edit.level"}


def form_legitimate(case: str, value: str) -> bool:
    """Form-only legitimacy: blanks that mean keep/default; a typed "true" is a fine user name."""
    if case in FORM_BLANK_OK and not value.strip():
        return True
    return case == "user.create.name" and re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", value) is not None


def form_value(value: object) -> str:
    """What a browser would send for the value."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def logged_in(app, name: str):
    """A client with a session for name, and its CSRF token."""
    client = app.test_client()
    login = client.get("/login")
    client.post("/login", data={"username": name, "password": Users.PASSWORD, "csrf_token": csrf_from(login.text)})
    return client, csrf_from(client.get("/account/tokens").text)


# Every form field times every hostile value, each followed by a snapshot of the agents' trees: about
# two minutes on an idle machine, so the default 300 s timeout leaves no room on a loaded one.
@pytest.mark.timeout(900)
def test_hostile_values_in_the_forms(app, target):
    """Every form field: 400 with the error under the field, index unchanged, agent trees unchanged."""
    sessions = {name: logged_in(app, name) for name in ("alice", "root")}
    failures = []
    before = target.snapshot()
    for case, (actor, path, make, field) in FORM_CASES.items():
        client, token = sessions[actor]
        legit_field = FORM_LEGIT.get(case, FORM_LEGIT.get(field, field))
        for why, value in VALUES:
            data = {**make(n()), field: form_value(value), "csrf_token": token}
            response = client.post(path.format(**target.ids), data=data)
            after = target.snapshot()
            if response.status_code < 400 and (legitimate(legit_field, form_value(value), api=False)
                                               or form_legitimate(case, form_value(value))):
                before = after
                continue
            if response.status_code != 400:
                failures.append((case, why, response.status_code, response.text[-300:]))
            elif f'data-field="{field}"' not in response.text:
                failures.append((case, why, "field not named", re.findall(r'data-field="[^"]+"[^<]*', response.text)))
            elif after != before:
                failures.append((case, why, "something was stored or sent"))
            before = after
    for failure in failures:
        print(failure)
    print(f"\n{len(FORM_CASES)} form fields x {len(VALUES)} hostile values: {len(failures)} failures")
    assert failures == []
