"""One name registry across zones, web domains, aliases and mail domains.

Each takeover the security review made as mallory while alice held victim.example is refused here with a
status and message naming the field, and nothing is stored or sent to a node. Then the rules around it:
an administrator's recorded override, public suffixes, reverse zones, the panel's and nodes' own names,
aliases, the proof of control by a TXT record (answered by a real DNS server on loopback).
"""

from __future__ import annotations

import socket
import threading

import pytest
from sqlalchemy import func, select

from tests.userdata.conftest import basic


@pytest.fixture
def world(app, client, cluster, users):
    """Node n1; alice holds the zone victim.example; mallory and bob are customers; root is an administrator."""
    node_id = cluster.node("n1")
    for name in ("alice", "mallory", "bob"):
        cluster.user(name)
    users.make("root", admin=True)
    zone = client.post("/api/v1/domains", json={"name": "victim.example", "ip": "192.0.2.1"}, headers=basic("alice"))
    assert zone.status_code == 201, zone.json
    return node_id


def snapshot(app, cluster, node_id) -> tuple:
    """The node's trees and the master's index and registry counts: what a refusal must leave as it was."""
    from app.extensions import db
    from app.models import (
        DomainIndex,
        MailboxIndex,
        MailDomainIndex,
        NameOverride,
        PendingWrite,
        WebDomainAlias,
        WebDomainIndex,
    )

    with app.app_context():
        counts = tuple(db.session.scalar(select(func.count()).select_from(m)) for m in (
            DomainIndex, WebDomainIndex, WebDomainAlias, MailDomainIndex, MailboxIndex, NameOverride, PendingWrite))
    return cluster.tree(node_id), counts


def refused(app, client, cluster, node_id, path, body, who, status, field, *words):
    """POST as `who` is refused with `status`, naming `field` and saying each word; nothing moved."""
    if path == "/api/v1/domains":
        body = {"ip": "192.0.2.9", **body}
    before = snapshot(app, cluster, node_id)
    answer = client.post(path, json=body, headers=basic(who))
    assert answer.status_code == status, answer.json
    assert list(answer.json["fields"]) == [field], answer.json
    for word in words:
        assert word in answer.json["error"], (word, answer.json)
    assert snapshot(app, cluster, node_id) == before, "a refused request stored or sent something"
    return answer.json


# ---------------------------------------------------------------- the review's takeovers, as mallory


def test_a_zone_under_another_owners_zone_is_refused(app, client, cluster, world):
    """mallory's zone shop.victim.example (bind would answer for alice's subdomain) → 409 naming name."""
    refused(app, client, cluster, world, "/api/v1/domains", {"name": "shop.victim.example", "ip": "192.0.2.9"},
            "mallory", 409, "name", "shop.victim.example is under victim.example, which another account holds",
            "one owner")


def test_a_web_domain_under_another_owners_zone_is_refused(app, client, cluster, world):
    """mallory's web domain mail.victim.example (her code could set cookies for .victim.example) → 409."""
    refused(app, client, cluster, world, "/api/v1/webdomains", {"name": "mail.victim.example"}, "mallory", 409,
            "name", "under victim.example, which another account holds")


def test_a_mail_domain_of_another_owners_zone_is_refused_and_the_owner_still_gets_it(app, client, cluster, world):
    """mallory's mail domain victim.example → 409; alice's own afterwards → 201 (it was hers to take)."""
    refused(app, client, cluster, world, "/api/v1/maildomains", {"name": "victim.example"}, "mallory", 409, "name",
            "victim.example is held by another account")
    mine = client.post("/api/v1/maildomains", json={"name": "victim.example"}, headers=basic("alice"))
    assert mine.status_code == 201, mine.json


def test_a_mail_domain_nobody_here_holds_needs_its_zone_or_a_proof(app, client, cluster, world):
    """mallory's mail domain gmail.com (every mail the node sends there would stay local) → 409 saying exactly
    what to do; her mailbox in it is then refused too (it is not her mail domain)."""
    from app.extensions import db
    from app.models import User
    from app.services.names import owner_token

    with app.app_context():
        token = owner_token(db.session.scalar(select(User).where(User.name == "mallory")))
    refused(app, client, cluster, world, "/api/v1/maildomains", {"name": "gmail.com"}, "mallory", 409, "name",
            "create the zone gmail.com first", "TXT record _hostfleet-challenge.gmail.com", f"value {token}",
            "ask an administrator")
    refused(app, client, cluster, world, "/api/v1/mailboxes", {"address": "victim@gmail.com",
                                                               "password": "a long password"},
            "mallory", 400, "address", "not one of your mail domains")


def test_a_mail_domain_tells_its_node_the_cluster_mail_nodes_and_no_customer_sees_them(app, client, cluster, world):
    """A hosted mail domain is delivered on its node only while its MX points at that node or another of
    the cluster's mail nodes (the agent's exim4.conf.j2): the create sends the mail nodes' addresses (a web
    node's is not one), which reach the file exim reads; the customer's answer and listing do not show them."""
    from app.extensions import db
    from app.models import Node

    for name, roles, address in (("mx2", ("mail",), "192.0.2.25"), ("web2", ("web",), "192.0.2.26")):
        node_id = cluster.node(name, roles=roles)
        with app.app_context():
            db.session.get(Node, node_id).address = address
            db.session.commit()
    made = client.post("/api/v1/maildomains", json={"name": "victim.example"}, headers=basic("alice"))
    assert made.status_code == 201, made.json
    assert made.json["node"] == "n1" and "mail_nodes" not in made.json, made.json
    listed = client.get("/api/v1/maildomains", headers=basic("alice")).json["items"]
    assert [d["name"] for d in listed] == ["victim.example"] and "mail_nodes" not in listed[0], listed
    nodes = (cluster.root(world) / "etc/exim4/hostfleet/mail_nodes").read_text().splitlines()
    assert "192.0.2.25" in nodes and "192.0.2.26" not in nodes, nodes


@pytest.mark.parametrize("name", ["co.uk", "github.io"])
def test_a_zone_for_a_public_suffix_is_refused(app, client, cluster, world, name):
    """A zone for co.uk (or github.io, from the list's private section) → 400 naming name."""
    refused(app, client, cluster, world, "/api/v1/domains", {"name": name}, "mallory", 400, "name",
            f"{name} is a public suffix")


def test_a_reverse_zone_is_refused_to_a_customer(app, client, cluster, world):
    """mallory's zone 2.0.192.in-addr.arpa → 403; an administrator may make it for her."""
    refused(app, client, cluster, world, "/api/v1/domains", {"name": "2.0.192.in-addr.arpa"}, "mallory", 403,
            "name", "reverse DNS name", "only an administrator")
    made = client.post("/api/v1/domains", json={"name": "2.0.192.in-addr.arpa", "owner": "mallory",
                                                    "ip": "192.0.2.9"},
                       headers=basic("root"))
    assert made.status_code == 201, made.json


# ---------------------------------------------------------------- the rules around them


def test_the_owner_of_a_zone_makes_web_and_mail_domains_under_it(client, world):
    """alice's zone covers her web domain, its aliases and her mail domains under it."""
    web = client.post("/api/v1/webdomains", json={"name": "victim.example", "aliases": ["www.victim.example"]},
                      headers=basic("alice"))
    assert web.status_code == 201, web.json
    shop = client.post("/api/v1/webdomains", json={"name": "shop.victim.example"}, headers=basic("alice"))
    assert shop.status_code == 201, shop.json
    assert client.post("/api/v1/maildomains", json={"name": "lists.victim.example"},
                       headers=basic("alice")).status_code == 201


def test_a_web_domain_with_dns_makes_its_zone_first(app, client, world):
    """With "dns": true a customer's web domain for a free name gets its zone made first, then the domain."""
    made = client.post("/api/v1/webdomains", json={"name": "fresh.example", "dns": True}, headers=basic("mallory"))
    assert made.status_code == 201, made.json
    assert made.json["dns"]["zone"] == "fresh.example" and made.json["dns"]["created_zone"] is True
    zones = client.get("/api/v1/domains", headers=basic("mallory")).json["items"]
    assert [z["name"] for z in zones] == ["fresh.example"]
    # Nothing of alice's is free that way: the zone would be under hers.
    assert client.post("/api/v1/webdomains", json={"name": "new.victim.example", "dns": True},
                       headers=basic("mallory")).status_code == 409


def test_a_zone_above_another_owners_name_is_refused(app, client, cluster, world):
    """mallory's zone example would be above alice's zone: refused as a public suffix; a parent that is not
    one is refused for the one-owner rule (bob's shop.bob.example, then mallory's zone bob.example)."""
    zone = client.post("/api/v1/domains", json={"name": "shop.bob.example", "ip": "192.0.2.9"}, headers=basic("bob"))
    assert zone.status_code == 201, zone.json
    refused(app, client, cluster, world, "/api/v1/domains", {"name": "bob.example"}, "mallory", 409, "name",
            "a name under bob.example is held by another account")


def test_aliases_are_indexed_and_refused_like_names(app, client, cluster, world):
    """An alias under alice's zone is refused when created and when added by a change (409 naming aliases);
    an alias mallory holds keeps alice (and a web domain of mallory's own) from the name."""
    zone = client.post("/api/v1/domains", json={"name": "mallory.example", "ip": "192.0.2.9"}, headers=basic("mallory"))
    assert zone.status_code == 201, zone.json
    refused(app, client, cluster, world, "/api/v1/webdomains",
            {"name": "mallory.example", "aliases": ["www.victim.example"]}, "mallory", 409, "aliases",
            "www.victim.example is under victim.example, which another account holds")
    site = client.post("/api/v1/webdomains", json={"name": "mallory.example", "aliases": ["www.mallory.example"]},
                       headers=basic("mallory"))
    assert site.status_code == 201, site.json
    before = snapshot(app, cluster, world)
    changed = client.put(f"/api/v1/webdomains/{site.json['id']}", json={"aliases": ["victim.example"]},
                         headers=basic("mallory"))
    assert changed.status_code == 409 and list(changed.json["fields"]) == ["aliases"], changed.json
    assert snapshot(app, cluster, world) == before
    # An alias given by an administrator (no zone needed) holds its name against every other owner.
    other = client.post("/api/v1/webdomains", json={"name": "two.mallory.example", "owner": "mallory",
                                                    "aliases": ["held.example"]}, headers=basic("root"))
    assert other.status_code == 201, other.json
    refused(app, client, cluster, world, "/api/v1/domains", {"name": "held.example"}, "alice", 409, "name",
            "held.example is held by another account")
    served = refused(app, client, cluster, world, "/api/v1/webdomains", {"name": "held.example"}, "alice", 409,
                     "name", "held.example is already served by another account's web domain alias")
    assert "mallory" not in served["error"] and "two.mallory.example" not in served["error"], served
    refused(app, client, cluster, world, "/api/v1/webdomains", {"name": "www.mallory.example"}, "mallory", 409,
            "name", "already served by mallory's web domain alias www.mallory.example")
    # Dropping an alias frees it.
    dropped = client.put(f"/api/v1/webdomains/{other.json['id']}", json={"aliases": []}, headers=basic("mallory"))
    assert dropped.status_code == 200, dropped.json
    freed = client.post("/api/v1/domains", json={"name": "held.example", "ip": "192.0.2.9"}, headers=basic("alice"))
    assert freed.status_code == 201, freed.json


def test_an_administrator_overrides_the_one_owner_rule_and_it_is_recorded(app, client, cluster, world):
    """Without "override" an administrator is refused too (the message says how to override); with it the
    name is made and the decision kept: who, when, what was set aside. A customer's override is refused."""
    from app.extensions import db
    from app.models import NameOverride, User
    from app.services import names

    body = {"name": "shop.victim.example", "owner": "mallory", "ip": "192.0.2.9"}
    refused(app, client, cluster, world, "/api/v1/domains", body, "root", 409, "name", '"override": true')
    refused(app, client, cluster, world, "/api/v1/domains", {"name": "shop.victim.example", "override": True},
            "mallory", 403, "override", "only an administrator")
    made = client.post("/api/v1/domains", json={**body, "override": True}, headers=basic("root"))
    assert made.status_code == 201, made.json
    with app.app_context():
        kept = db.session.scalars(select(NameOverride)).all()
        assert [(o.kind, o.name, o.owner.name, o.granted_by) for o in kept] == [
            ("domains", "shop.victim.example", "mallory", "root")]
        assert "alice's zone victim.example" in kept[0].refused and kept[0].granted_at is not None
        mallory = db.session.scalar(select(User).where(User.name == "mallory"))
        assert names.may_hold(mallory, "domains", "shop.victim.example")  # the override holds
        assert not names.may_hold(mallory, "webdomains", "www.shop.victim.example")  # nothing more
        alice = db.session.scalar(select(User).where(User.name == "alice"))
        assert names.may_hold(alice, "domains", "victim.example"), "the override does not count against alice"
        assert not names.may_hold(alice, "webdomains", "shop.victim.example")


def test_may_hold_answers_for_every_kind(app, client, world):
    """The function other code asks (the reconciliation of a node's listing): another owner's name, parent or
    child in any kind, a public suffix and a reverse name are not held by a customer; their own are."""
    from app.extensions import db
    from app.models import User
    from app.services import names

    with app.app_context():
        alice, mallory = (db.session.scalar(select(User).where(User.name == n)) for n in ("alice", "mallory"))
        assert names.may_hold(alice, "webdomains", "www.victim.example")
        assert names.may_hold(alice, "domains", "victim.example")
        for kind, name in (("domains", "victim.example"), ("webdomains", "victim.example"),
                           ("aliases", "a.b.victim.example"), ("maildomains", "victim.example"),
                           ("mailboxes", "postmaster@victim.example"), ("domains", "co.uk"),
                           ("domains", "2.0.192.in-addr.arpa"), ("webdomains", "hostfleet.test")):
            assert not names.may_hold(mallory, kind, name), (kind, name)
        assert "alice's zone victim.example" in names.why_not(mallory, "maildomains", "victim.example")
        assert names.may_hold(mallory, "webdomains", "elsewhere.example")


@pytest.mark.parametrize("name", ["hostfleet.test", "panel.hostfleet.test", "x.panel.hostfleet.test",
                                  "nodes.example", "n9.nodes.example", "a.n9.nodes.example"])
def test_the_panels_and_nodes_host_names_are_refused_to_customers(app, client, cluster, world, name):
    """The panel's name (PANEL_HOST_NAMES) and a node's host name, with their parents and children."""
    from app.extensions import db
    from app.services.nodes import create_node

    with app.app_context():
        create_node("n9", "n9.nodes.example", roles=["web"], reason="test")
        db.session.commit()
    refused(app, client, cluster, world, "/api/v1/domains", {"name": name}, "mallory", 403, "name",
            "host name", "only an administrator")


@pytest.mark.parametrize(("path", "name"), [("/api/v1/webdomains", "github.io"), ("/api/v1/maildomains", "co.uk")])
def test_public_suffixes_are_refused_to_administrators_too(app, client, cluster, world, path, name):
    """No override makes a public suffix a name to hold."""
    refused(app, client, cluster, world, path, {"name": name, "owner": "mallory", "override": True}, "root", 400,
            "name", "public suffix")


class TxtServer:
    """A DNS server on loopback (UDP) that answers TXT records it is given and NXDOMAIN otherwise."""

    def __init__(self):
        self.records: dict[str, str] = {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        import dns.flags
        import dns.message
        import dns.rcode
        import dns.rdatatype
        import dns.rrset

        while True:
            try:
                wire, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            query = dns.message.from_wire(wire)
            answer = dns.message.make_response(query)
            answer.flags |= dns.flags.AA
            question = query.question[0]
            value = self.records.get(question.name.to_text().rstrip("."))
            if value is not None and question.rdtype == dns.rdatatype.TXT:
                answer.answer.append(dns.rrset.from_text(question.name, 60, "IN", "TXT", f'"{value}"'))
            else:
                answer.set_rcode(dns.rcode.NXDOMAIN)
            self.sock.sendto(answer.to_wire(), peer)

    def close(self):
        self.sock.close()


@pytest.fixture
def txt_server(app):
    """A loopback DNS server the panel looks proofs of control up on."""
    server = TxtServer()
    app.config["NAME_PROOF_RESOLVERS"] = [("127.0.0.1", server.port)]
    yield server
    server.close()


def test_a_txt_record_with_the_owners_token_proves_control_of_an_external_name(app, client, cluster, world,
                                                                              txt_server):
    """A web domain whose DNS is elsewhere: refused until _hostfleet-challenge.<name> answers the owner's
    token; another owner's token does not do."""
    from app.extensions import db
    from app.models import User
    from app.services.names import owner_token

    with app.app_context():
        tokens = {n: owner_token(db.session.scalar(select(User).where(User.name == n))) for n in ("alice", "mallory")}
    assert tokens["alice"] != tokens["mallory"]
    txt_server.records["_hostfleet-challenge.external.example"] = tokens["alice"]
    refused(app, client, cluster, world, "/api/v1/webdomains", {"name": "external.example"}, "mallory", 409, "name",
            "_hostfleet-challenge.external.example", tokens["mallory"])
    txt_server.records["_hostfleet-challenge.external.example"] = tokens["mallory"]
    made = client.post("/api/v1/webdomains", json={"name": "external.example", "aliases": ["www.external.example"]},
                       headers=basic("mallory"))
    assert made.status_code == 201, made.json  # the registrable domain's proof covers its www alias
