"""The domain and mail funcs: domain, webdomain (and ISPmanager 6's site), emaildomain, email — list, create,
view, change, delete — as the administrator naming the owner, as the customer, and with su=; the files land
on the node; another customer's names are neither listed nor reachable; a plan's limit is ISPmanager's
error naming the parameter."""

from __future__ import annotations

from tests.ispmgr.conftest import Billing


def names(doc: dict) -> list[str]:
    return [e["name"]["$"] for e in doc.get("elem", [])]


def test_domain_and_mail_funcs_life_cycle(app, billing, cluster):
    """root makes alice's zone and site (FOSSBilling's parameters), alice adds a mail domain and a mailbox,
    root as alice (su=) changes the site; bob sees none of it; deletes clean up."""
    cluster.user("alice")
    cluster.user("bob")
    alice, bob = Billing(billing.client, "alice"), Billing(billing.client, "bob")
    zone = billing.json("domain.edit", sok="ok", name="alice.example.net", ip="192.0.2.5", owner="alice")
    assert "ok" in zone, zone
    site = billing.json("webdomain.edit", sok="ok", name="www.alice.example.net", owner="alice",
                        email="webmaster@alice.example.net")
    assert site["id"]["$"] == "www.alice.example.net", site
    assert "ok" in alice.json("emaildomain.edit", sok="ok", name="alice.example.net")
    box = alice.json("email.edit", sok="ok", name="info", domainname="alice.example.net", passwd="a long password",
                     maxsize="100")
    assert box.get("id", {}).get("$") == "info@alice.example.net", box.get("error")
    assert names(alice.json("webdomain")) == ["www.alice.example.net"]
    assert names(alice.json("site")) == ["www.alice.example.net"]
    assert names(alice.json("email")) == ["info@alice.example.net"]
    assert names(billing.json("emaildomain")) == ["alice.example.net"]
    assert names(bob.json("webdomain")) == [] and names(bob.json("domain")) == []
    assert bob.json("webdomain.delete", elid="www.alice.example.net")["error"]["$object"] == "elid"
    assert bob.json("email.edit", elid="info@alice.example.net")["error"]["$object"] == "elid"
    view = alice.json("email.edit", elid="info@alice.example.net")
    assert view["name"]["$"] == "info@alice.example.net" and view["maxsize"]["$"] == "100"
    assert "ok" in billing.json("site.edit", sok="ok", su="alice", elid="www.alice.example.net",
                                site_aliases="shop.alice.example.net")
    assert billing.json("site.edit", elid="www.alice.example.net")["site_aliases"]["$"] == "shop.alice.example.net"
    taken = bob.json("domain.edit", sok="ok", name="alice.example.net", ip="192.0.2.6")["error"]
    assert taken["$object"] == "name" and taken["detail"]["$"], taken
    assert "ok" in alice.json("email.delete", elid="info@alice.example.net")
    assert "ok" in alice.json("emaildomain.delete", elid="alice.example.net")
    assert "ok" in billing.json("webdomain.delete", elid="www.alice.example.net")
    assert "ok" in alice.json("domain.delete", elid="alice.example.net")
    assert names(billing.json("domain")) == []


def test_a_plans_limit_is_an_error_naming_the_parameter(app, billing, cluster):
    """alice's plan allows one zone: the second domain.edit answers type limit, object name; nothing made."""
    billing.json("preset.edit", sok="ok", name="one-zone", limit_domains="1")
    billing.json("user.add", sok="ok", name="carol", passwd="a long password", preset="one-zone")
    carol = Billing(billing.client, "carol", "a long password")
    assert "ok" in carol.json("domain.edit", sok="ok", name="carol.test", ip="192.0.2.7")
    error = carol.json("domain.edit", sok="ok", name="carol2.test", ip="192.0.2.7")["error"]
    assert error["$type"] == "limit" and error["$object"] == "name"
    assert "plan allows 1 domain name, and 1 is in use" in error["detail"]["$"]
    assert names(carol.json("domain")) == ["carol.test"]
    bad = carol.json("email.edit", sok="ok", name="x", domainname="nowhere.test", passwd="a long password")
    assert bad["error"]["$object"] == "name"
    size = carol.json("email.edit", sok="ok", name="x", domainname="carol.test", maxsize="big")["error"]
    assert size["$object"] == "maxsize"


def test_domain_records_with_plid(app, billing, cluster):
    """domain.record lists the zone plid's records with rkey; add, change and delete one; another customer's
    zone as plid is refused naming plid; a bad rtype names rtype."""
    cluster.user("alice")
    cluster.user("bob")
    alice, bob = Billing(billing.client, "alice"), Billing(billing.client, "bob")
    assert "ok" in alice.json("domain.edit", sok="ok", name="alice.example.org", ip="192.0.2.5")
    made = alice.json("domain.record.edit", sok="ok", plid="alice.example.org", name="shop", rtype="a",
                      ip="192.0.2.9", ttl="300")
    rkey = made["id"]["$"]
    rows = alice.json("domain.record", plid="alice.example.org")["elem"]
    shop = [r for r in rows if r["name"]["$"] == "shop"]
    assert shop and shop[0]["value"]["$"] == "192.0.2.9" and shop[0]["rtype"]["$"] == "a"
    assert "ok" in alice.json("domain.record.edit", sok="ok", plid="alice.example.org", elid=rkey, value="192.0.2.10")
    rows = alice.json("domain.record", plid="alice.example.org")["elem"]
    assert [r["value"]["$"] for r in rows if r["rkey"]["$"] == rkey] == ["192.0.2.10"]
    assert bob.json("domain.record", plid="alice.example.org")["error"]["$object"] == "plid"
    assert bob.json("domain.record.delete", plid="alice.example.org", elid=rkey)["error"]["$object"] == "plid"
    bad = alice.json("domain.record.edit", sok="ok", plid="alice.example.org", name="x", rtype="bogus", value="1")
    assert bad["error"]["$type"] == "value" and bad["error"]["$object"] == "rtype", bad["error"]
    assert "ok" in alice.json("domain.record.delete", plid="alice.example.org", elid=rkey)
    assert rkey not in [r["rkey"]["$"] for r in alice.json("domain.record", plid="alice.example.org")["elem"]]
