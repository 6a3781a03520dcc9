"""user.add's first site and mail domain, as a hostile customer ordering through a billing system would
pick them: names inside another customer's zone or mail domain, one refused after the other was made."""

from __future__ import annotations

from sqlalchemy import select

from tests.ispmgr.conftest import Billing
from tests.ispmgr.test_funcs import alice_data, names  # noqa: F401  (the fixture)
from tests.ispmgr.test_modules import api_user, on_node


def _index_names(app) -> set[str]:
    from app.extensions import db
    from app.models import WebDomainIndex

    with app.app_context():
        return set(db.session.scalars(select(WebDomainIndex.name)))


def test_a_mail_domain_refused_after_the_site_was_made_leaves_nothing(app, client, billing, cluster,
                                                                      alice_data):  # noqa: F811
    """webdomain_name free, emaildomain_name alice's: the error names emaildomain_name, and neither frank
    nor the site and zone made for him stay behind (another customer can take the name next)."""
    error = billing.json("user.add", sok="ok", name="frank", passwd="a long password",
                         webdomain_name="frank.example", emaildomain_name="alice.example.net")["error"]
    assert error["$object"] == "emaildomain_name" and "not created" in error["detail"]["$"], error
    assert api_user(client, "frank") is None and not on_node(cluster, "frank")
    assert "frank.example" not in _index_names(app)
    assert "ok" in billing.json("user.add", sok="ok", name="gina", passwd="a long password",
                                webdomain_name="frank.example", emaildomain_name="frank.example")
    gina = Billing(billing.client, "gina", "a long password")
    assert names(gina.json("webdomain")) == ["frank.example"]


def test_first_domains_inside_another_customers_zone_are_refused(app, client, billing, cluster,
                                                                 alice_data):  # noqa: F811
    """A site or mail domain under alice's zone is alice's to make: refused naming the parameter, no user."""
    for param, value in (("webdomain_name", "shop.alice.example.net"),
                         ("emaildomain_name", "mail.alice.example.net"),
                         ("webdomain_name", "ALICE.example.net"),
                         ("webdomain_name", "alice.example.net.")):
        doc = billing.json("user.add", sok="ok", name="mallory", passwd="a long password", **{param: value})
        assert "error" in doc and doc["error"]["$object"] == param, (param, value, doc)
        assert api_user(client, "mallory") is None and not on_node(cluster, "mallory")
    alice = alice_data
    assert "shop.alice.example.net" not in names(alice.json("webdomain"))


def test_user_add_with_a_taken_login_changes_nothing_of_its_owner(app, client, billing, cluster,
                                                                  alice_data):  # noqa: F811
    """user.add naming an existing customer or the administrator: ISPmanager's error (exists, or value for
    a reserved login); the account's
    password, fullname and sites are as they were (no profile or first domain lands on it)."""
    assert "ok" in billing.json("user.edit", sok="ok", elid="alice", fullname="Alice A")
    for login in ("alice", "root"):
        doc = billing.json("user.add", sok="ok", name=login, passwd="a hijacking password",
                           fullname="Mallory", comment="mine now", webdomain_name=f"{login}-x.example",
                           emaildomain_name=f"{login}-x.example")
        assert "error" in doc and doc["error"]["$type"] in ("exists", "value"), (login, doc)
    assert billing.json("user", elid="alice")["elem"][0]["fullname"]["$"] == "Alice A"
    assert "alice-x.example" not in names(alice_data.json("webdomain"))
    assert "error" in Billing(billing.client, "alice", "a hijacking password").json("whoami")
    assert "root-x.example" not in _index_names(app)


def test_a_first_domain_above_another_customers_zone_is_refused(app, client, billing, cluster,
                                                                alice_data):  # noqa: F811
    """example.net holds alice's zone alice.example.net: a new user's first site or mail domain there would
    make a zone over hers; refused naming the parameter, no user."""
    for param in ("webdomain_name", "emaildomain_name"):
        doc = billing.json("user.add", sok="ok", name="mallory", passwd="a long password",
                           **{param: "example.net"})
        assert "error" in doc and doc["error"]["$object"] == param, (param, doc)
        assert api_user(client, "mallory") is None and not on_node(cluster, "mallory")
