"""Every func the contract file lists, in JSON and XML (the two shapes must say the same), as the administrator,
as the administrator acting as a customer (su=) and as the customer; user.add making the first site and mail
domain (and undoing the user when one is refused); fullname and comment kept; group elids with ", "; su=
refusals; a hostile value in every parameter of every func answers doc.error naming that parameter and
changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.ispmgr.conftest import Billing
from tests.ispmgr.test_modules import api_user, on_node
from tests.userdata.conftest import basic


def same_in_both(billing: Billing, name: str, **params) -> dict:
    """The JSON doc of a call, after checking its XML twin carries the same elements and fields."""
    doc = billing.json(name, **params)
    xml = billing.xml(name, method="POST", **params)
    assert ("error" in doc) == (xml.find("error") is not None), (name, doc, xml)
    if "elem" in doc:
        assert isinstance(doc["elem"], list)
        as_xml = [{c.tag: c.text or "" for c in e} for e in xml.findall("elem")]
        as_json = [{k: val.get("$", "") for k, val in e.items()} for e in doc["elem"]]
        assert as_xml == as_json, name
    else:
        assert not xml.findall("elem"), name
    return doc


def names(doc: dict) -> list[str]:
    return [e["name"]["$"] for e in doc.get("elem", [])]


@pytest.fixture
def alice_data(billing, cluster):
    """alice (a customer) with a zone, a site, a mail domain and a mailbox, made through /ispmgr."""
    cluster.user("alice")
    cluster.user("bob")
    alice = Billing(billing.client, "alice")
    assert "ok" in alice.json("domain.edit", sok="ok", name="alice.example.net", ip="192.0.2.5")
    assert "ok" in alice.json("webdomain.edit", sok="ok", name="www.alice.example.net")
    assert "ok" in alice.json("emaildomain.edit", sok="ok", name="alice.example.net")
    assert "ok" in alice.json("email.edit", sok="ok", name="info", domainname="alice.example.net",
                              passwd="a long password")
    return alice


LISTS = ("webdomain", "site", "domain", "emaildomain", "email", "ipaddr", "whoami", "license.info", "usrparam")


def test_every_func_in_json_and_xml_as_admin_su_and_customer(app, billing, cluster, alice_data):
    """Lists and form views in both shapes; su=alice and alice herself see the same, bob sees none of it."""
    alice, bob = alice_data, Billing(billing.client, "bob")
    billing.json("preset.edit", sok="ok", name="Basic", limit_webdomains="2")
    for name in ("user", "preset"):
        assert same_in_both(billing, name)["elem"]
    assert same_in_both(billing, "preset.edit", elid="Basic")["limit_webdomains"]["$"] == "2"
    assert same_in_both(billing, "user.edit", elid="alice")["name"]["$"] == "alice"
    for name in LISTS:
        as_alice = same_in_both(alice, name)
        assert same_in_both(billing, name, su="alice") == as_alice, name
        if name in ("webdomain", "site", "domain", "emaildomain", "email"):
            assert names(as_alice) and not names(same_in_both(bob, name)), name
    assert names(alice.json("ipaddr")) == ["127.0.0.1"]
    assert alice.json("ipaddr")["elem"][0]["family"]["$"] == "ipv4"
    records = same_in_both(alice, "domain.record", plid="alice.example.net")["elem"]
    assert records and same_in_both(billing, "domain.record", plid="alice.example.net", su="alice")["elem"] == records
    assert same_in_both(bob, "domain.record", plid="alice.example.net")["error"]["$object"] == "plid"
    for name, key in (("webdomain.edit", "www.alice.example.net"), ("site.edit", "www.alice.example.net"),
                      ("email.edit", "info@alice.example.net")):
        assert "error" not in same_in_both(alice, name, elid=key), name
        assert same_in_both(bob, name, elid=key)["error"]["$object"] == "elid", name


def test_user_add_makes_the_first_site_and_mail_domain_and_keeps_fullname(app, client, billing, cluster):
    """Blesta's user.add with webdomain_name and emaildomain_name: the user gets the zone, the site and the mail
    domain (as ISPmanager makes them); fullname and comment are shown by func=user and user.edit and changed by
    user.edit."""
    made = billing.xml("user.add", method="POST", sok="ok", name="carol", passwd="a long password",
                       confirm="a long password", fullname="Carol Doe", comment="order 42",
                       webdomain_name="carol-shop.example", emaildomain_name="carol-shop.example")
    assert made.find("error") is None and made.find("ok") is not None
    carol = Billing(billing.client, "carol", "a long password")
    assert names(carol.json("webdomain")) == ["carol-shop.example"]
    assert names(carol.json("emaildomain")) == ["carol-shop.example"]
    assert names(carol.json("domain")) == ["carol-shop.example"]
    row = billing.json("user", elid="carol")["elem"][0]
    assert row["fullname"]["$"] == "Carol Doe" and row["comment"]["$"] == "order 42"
    assert billing.xml("user.edit", elid="carol").findtext("fullname") == "Carol Doe"
    assert "ok" in billing.json("user.edit", sok="ok", elid="carol", fullname="Carol Roe")
    assert billing.json("user.edit", elid="carol")["fullname"]["$"] == "Carol Roe"
    off = billing.json("user.add.finish", sok="ok", name="dave", passwd="a long password",
                       webdomain_name="dave.example", emaildomain_name="dave.example", webdomain="off",
                       emaildomain="off")
    assert "ok" in off and names(Billing(billing.client, "dave", "a long password").json("webdomain")) == []


def test_a_refused_first_domain_undoes_the_user(app, client, billing, cluster, alice_data):
    """webdomain_name held by alice: the answer is doc.error naming webdomain_name (not ok), and no user erin is
    left in the panel or on the node, so the billing system's retry with another name succeeds."""
    for shape in ("json", "xml"):
        params = {"sok": "ok", "name": "erin", "passwd": "a long password", "webdomain_name": "alice.example.net"}
        if shape == "json":
            error = billing.json("user.add", **params)["error"]
            assert error["$object"] == "webdomain_name" and "not created" in error["detail"]["$"], error
        else:
            error = billing.xml("user.add", method="POST", **params).find("error")
            assert error.get("object") == "webdomain_name" and "not created" in error.findtext("msg")
        assert api_user(client, "erin") is None and not on_node(cluster, "erin")
    assert "ok" in billing.json("user.add", sok="ok", name="erin", passwd="a long password",
                                webdomain_name="erin.example")


def test_group_elids_and_su_refusals(app, client, billing, cluster, alice_data):
    """elid "a, b" deletes both records of a zone (plid) and both sites; a customer's su= to another, an
    administrator's su= to nobody: refused in both shapes, nothing changed."""
    alice = alice_data
    for host in ("a", "b"):
        assert "ok" in alice.json("domain.record.edit", sok="ok", plid="alice.example.net", name=host,
                                  rtype="a", value="192.0.2.9")
    rkeys = [e["rkey"]["$"] for e in alice.json("domain.record", plid="alice.example.net")["elem"]
             if e["name"]["$"] in ("a", "b")]
    assert len(rkeys) == 2
    gone = alice.xml("domain.record.delete", method="POST", plid="alice.example.net", elid=", ".join(rkeys))
    assert gone.find("ok") is not None
    left = [e["rkey"]["$"] for e in alice.json("domain.record", plid="alice.example.net")["elem"]]
    assert not set(rkeys) & set(left)
    assert "ok" in alice.json("webdomain.edit", sok="ok", name="shop.alice.example.net")
    assert "ok" in billing.json("site.delete", su="alice", elid="www.alice.example.net, shop.alice.example.net")
    assert names(alice.json("site")) == []
    for name in ("webdomain", "email", "usrparam", "domain.record", "ipaddr"):
        error = alice.json(name, su="bob", plid="alice.example.net")["error"]
        assert error["$type"] == "access" and error["$object"] == "su", (name, error)
        assert alice.xml(name, su="bob").find("error").get("object") == "su"
    assert billing.json("webdomain", su="nobody")["error"]["$object"] == "su"
    assert alice.json("user.delete", su="root", elid="bob")["error"]["$type"] == "access"
    assert api_user(client, "bob") is not None


HOSTILE = ("\x00", "a\x01b", "\u202e", "x" * 5000)
# func → (parameters of a call that would change something, the parameters a hostile value must be refused in)
CHANGES = {
    "user.add": ({"sok": "ok", "name": "zed", "passwd": "a long password", "fullname": "Zed", "comment": "c",
                  "preset": "Basic", "limit_webdomains": "3", "webdomain_name": "zed.example",
                  "emaildomain_name": "zed.example"},
                 ("name", "passwd", "confirm", "fullname", "comment", "preset", "limit_webdomains", "limit_quota",
                  "webdomain_name", "emaildomain_name")),
    "user.edit": ({"sok": "ok", "elid": "alice", "preset": "Basic", "limit_emails": "4", "fullname": "A"},
                  ("elid", "preset", "limit_emails", "fullname", "comment", "passwd", "name")),
    "user.suspend": ({"elid": "alice"}, ("elid",)),
    "user.delete": ({"elid": "bob"}, ("elid",)),
    "preset.edit": ({"sok": "ok", "name": "Extra", "limit_db": "1"}, ("name", "limit_db", "elid")),
    "preset.delete": ({"elid": "Spare"}, ("elid",)),
    "usrparam": ({"sok": "ok", "su": "bob", "passwd": "a new long password"}, ("su", "passwd", "confirm")),
    "session.newkey": ({"username": "bob", "key": "k" * 20}, ("username", "key")),
    "domain.edit": ({"sok": "ok", "name": "new.example.org", "ip": "192.0.2.4", "owner": "bob"},
                    ("name", "ip", "owner")),
    "webdomain.edit": ({"sok": "ok", "name": "new.alice.example.net", "owner": "alice",
                        "aliases": "w.alice.example.net"}, ("name", "owner", "aliases")),
    "site.edit": ({"sok": "ok", "site_name": "s.alice.example.net", "owner": "alice"}, ("site_name", "owner",
                                                                                         "site_aliases")),
    "emaildomain.edit": ({"sok": "ok", "name": "bob.example.org", "owner": "bob"}, ("name", "owner")),
    "email.edit": ({"sok": "ok", "su": "alice", "name": "sales", "domainname": "alice.example.net",
                    "passwd": "a long password", "maxsize": "10"},
                   ("su", "name", "domainname", "passwd", "maxsize", "forward")),
    "domain.record.edit": ({"sok": "ok", "su": "alice", "plid": "alice.example.net", "name": "h", "rtype": "a",
                            "value": "192.0.2.8", "ttl": "300"}, ("plid", "name", "rtype", "value", "ttl", "prio")),
    "domain.record.delete": ({"su": "alice", "plid": "alice.example.net", "elid": "1"}, ("plid", "elid")),
    "webdomain.delete": ({"elid": "www.alice.example.net"}, ("elid",)),
    "email.delete": ({"su": "alice", "elid": "info@alice.example.net"}, ("elid",)),
    "emaildomain.delete": ({"elid": "alice.example.net"}, ("elid",)),
    "domain.delete": ({"elid": "alice.example.net"}, ("elid",)),
}


def snapshot(app) -> tuple:
    """What any func could change: users (name, active, plan, limits, password, fullname), plans, the indexes."""
    from app.extensions import db
    from app.models import DomainIndex, MailboxIndex, MailDomainIndex, Plan, User, UserAccount, WebDomainIndex

    with app.app_context():
        users = db.session.execute(select(User.name, User.active, User.password_hash, User.fullname, User.comment,
                                          UserAccount.plan_id, UserAccount.limits)
                                   .outerjoin(UserAccount).order_by(User.name)).all()
        plans = db.session.execute(select(Plan.name, Plan.limits).order_by(Plan.name)).all()
        counts = [db.session.scalar(select(func.count()).select_from(m))
                  for m in (WebDomainIndex, DomainIndex, MailDomainIndex, MailboxIndex)]
    return [tuple(map(str, u)) for u in users], [tuple(map(str, p)) for p in plans], counts


def test_a_hostile_value_in_any_parameter_is_refused_naming_it(app, client, billing, cluster, alice_data):
    """For every func that changes something and every parameter it reads: each hostile value (NUL, a control
    character, a format character, 5,000 characters) → doc.error whose object is that parameter, in JSON and in
    a strictly parsed XML, and nothing in the panel changed."""
    from app.extensions import db
    from app.models import User
    from app.services import accounts

    with app.app_context():
        token = accounts.create_token(db.session.scalar(select(User).where(User.name == "root")), "billing")[1]
    billing = Billing(billing.client, "root", token)  # a token: no argon2 check on each of the calls below
    billing.json("preset.edit", sok="ok", name="Basic")
    billing.json("preset.edit", sok="ok", name="Spare")
    before = snapshot(app)
    for name, (good, params) in CHANGES.items():
        for param in params:
            for hostile in HOSTILE:
                error = billing.json(name, **{**good, param: hostile}).get("error")
                assert error and error["$object"] == param and error["detail"]["$"], (name, param, hostile, error)
            xml = billing.xml(name, method="POST", **{**good, param: HOSTILE[0]}).find("error")
            assert xml is not None and xml.get("object") == param, (name, param)
    assert snapshot(app) == before
    assert client.get("/api/v1/operations", headers=basic("bob")).status_code == 200
