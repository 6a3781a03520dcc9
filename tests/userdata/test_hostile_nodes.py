"""A compromised node cannot write the master's index: its listings are checked, capped, and taken only
for owners placed on it (never an administrator, never a user placed elsewhere or unknown)."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select, update

STATS = {"api_version": 1, "agent_version": "1.0", "uptime_s": 5, "load": [0.1, 0.1, 0.1],
         "memory": {"total": 2**31, "available": 2**30, "used_percent": 50.0},
         "disk": {"path": "/", "total": 2**36, "free": 2**35, "used_percent": 50.0},
         "roles": {}, "software": {"state": "idle"}, "usage": {"measured_at": None, "owners": {}}, "lists": {}}


@pytest.fixture
def evil(app, cluster, hostile_agent):
    """A ready node whose agent lies, holding mallory's roles and the administrator boss's; alice and
    carol are placed on the honest node n1."""
    from app.extensions import db
    from app.models import Placement, User

    cluster.node("n1")
    for name in ("alice", "carol", "mallory"):
        cluster.user(name)
    cluster.user("boss", admin=True)
    hostile_agent.json("/v1/stats", STATS)
    for path in ("/v1/webdomains", "/v1/domains", "/v1/maildomains", "/v1/mailboxes"):
        hostile_agent.json(path, {"items": []})
    node_id = hostile_agent.add_node(app, "evil")
    with app.app_context():
        moved = select(User.id).where(User.name.in_(("mallory", "boss")))
        db.session.execute(update(Placement).where(Placement.user_id.in_(moved)).values(node_id=node_id))
        db.session.commit()
    return node_id


def index(app, model):
    """{key: (owner name, node name)} of one index table."""
    from app.extensions import db
    from app.models import MailboxIndex

    with app.app_context():
        rows = db.session.scalars(select(model)).all()
        return {(r.address if model is MailboxIndex else r.name): (r.owner.name, r.node.name) for r in rows}


def reconcile(app, node_id):
    from app.extensions import db
    from app.models import Node
    from app.services.userdata import reconcile_node

    with app.app_context():
        return reconcile_node(db.session.get(Node, node_id))


def test_a_node_cannot_hand_names_to_owners_not_placed_on_it(app, cluster, evil, hostile_agent, caplog):
    """The node lists names for an administrator, for a user placed on another node, for no panel user, a
    mailbox in a domain it does not hold, and an indexed name of mallory's as carol's: none is indexed or
    moved, each is logged with the reason; what mallory (placed there) holds is indexed for her."""
    from app.extensions import db
    from app.models import DomainIndex, MailboxIndex, MailDomainIndex, User, WebDomainIndex

    with app.app_context():
        mallory = db.session.scalar(select(User.id).where(User.name == "mallory"))
        db.session.add(WebDomainIndex(name="kept.example", owner_id=mallory, node_id=evil))
        db.session.commit()
    hostile_agent.json("/v1/webdomains", {"items": [
        {"name": "mallory.example", "owner": "mallory"},
        {"name": "boss.example", "owner": "boss"},
        {"name": "carol.example", "owner": "carol"},
        {"name": "ghost.example", "owner": "ghost"},
        {"name": "kept.example", "owner": "carol"},
    ]})
    hostile_agent.json("/v1/domains", {"items": [{"name": "mallory.example", "owner": "mallory"},
                                                 {"name": "alice.example", "owner": "alice"}]})
    hostile_agent.json("/v1/maildomains", {"items": [{"name": "mallory.example", "owner": "mallory"},
                                                     {"name": "boss-mail.example", "owner": "boss"}]})
    hostile_agent.json("/v1/mailboxes", {"items": [{"address": "info@mallory.example"},
                                                   {"address": "ceo@boss-mail.example"},
                                                   {"address": "x@carol-mail.example"}]})
    with caplog.at_level(logging.WARNING, logger="app.services.userdata"):
        summary = reconcile(app, evil)
    assert summary == {"added": 4, "removed": 0, "changed": 0, "skipped": 8}
    assert index(app, WebDomainIndex) == {"mallory.example": ("mallory", "evil"), "kept.example": ("mallory", "evil")}
    assert index(app, DomainIndex) == {"mallory.example": ("mallory", "evil")}
    assert index(app, MailDomainIndex) == {"mallory.example": ("mallory", "evil")}
    assert index(app, MailboxIndex) == {"info@mallory.example": ("mallory", "evil")}
    logged = caplog.text
    for reason in ("boss.example; not indexed for the owner it reports: boss is an administrator",
                   "carol.example; not indexed for the owner it reports: carol's web role is not placed on this node",
                   "ghost.example; not indexed for the owner it reports: ghost is not a panel user",
                   "kept.example; not indexed for the owner it reports: carol's web role",
                   "alice.example; not indexed for the owner it reports: alice's dns role is not placed",
                   "boss-mail.example; not indexed for the owner it reports: boss is an administrator",
                   "x@carol-mail.example; not indexed for the owner it reports: its mail domain carol-mail.example "
                   "is not indexed on this node"):
        assert reason in logged, reason


def test_a_node_cannot_hand_its_user_a_name_the_registry_gives_another(app, cluster, evil, hostile_agent, caplog):
    """Mallory is placed on the node, but the names it lists for her that the registry refuses her (a
    name under alice's zone, a public suffix) are not indexed; her own name is."""
    from app.extensions import db
    from app.models import DomainIndex, Node, User, WebDomainIndex

    with app.app_context():
        alice = db.session.scalar(select(User.id).where(User.name == "alice"))
        n1 = db.session.scalar(select(Node.id).where(Node.name == "n1"))
        db.session.add(DomainIndex(name="victim.example", owner_id=alice, node_id=n1))
        db.session.commit()
    hostile_agent.json("/v1/webdomains", {"items": [
        {"name": "shop.victim.example", "owner": "mallory"},
        {"name": "mallory.example", "owner": "mallory"},
    ]})
    hostile_agent.json("/v1/domains", {"items": [{"name": "co.uk", "owner": "mallory"}]})
    with caplog.at_level(logging.WARNING, logger="app.services.userdata"):
        summary = reconcile(app, evil)
    assert summary["skipped"] == 2
    assert index(app, WebDomainIndex) == {"mallory.example": ("mallory", "evil")}
    assert index(app, DomainIndex) == {"victim.example": ("alice", "n1")}
    assert ("shop.victim.example; not indexed for the owner it reports: shop.victim.example is under alice's"
            in caplog.text)
    assert "co.uk; not indexed for the owner it reports:" in caplog.text


@pytest.mark.parametrize("listing, field", [
    ([{"name": "mallory.example", "owner": "mallory"}], "the listing: must be a JSON object, not list"),
    ({"items": {"name": "mallory.example"}}, "items: must be a list"),
    ({"items": ["mallory.example"]}, "items[0]: must be a JSON object"),
    ({"items": [{"name": "MALLORY.example", "owner": "mallory"}]}, "items[0].name"),
    ({"items": [{"name": "ok.example", "owner": "mallory"}, {"name": "x.example", "owner": "../root"}]},
     "items[1].owner"),
    ({"items": [{"name": "ok.example", "owner": ["mallory"]}]}, "items[0].owner"),
], ids=["list", "items-object", "item-text", "not-canonical", "bad-owner", "owner-list"])
def test_a_listing_of_the_wrong_shape_changes_nothing(app, cluster, evil, hostile_agent, listing, field):
    """A listing that is not what an agent writes is refused as a whole, naming the field: the node is
    not reconciled (and says so), nothing of the index changes, the other nodes are reconciled."""
    from app.models import WebDomainIndex
    from app.queues import redis_connection
    from app.services.userdata import reconcile_after_poll

    hostile_agent.json("/v1/webdomains", listing)
    (n1,) = cluster.agent_nodes.agents
    with app.app_context():
        redis_connection().delete("hostfleet:userdata:full-reconcile")  # every node in full, now
        results = reconcile_after_poll([n1, evil])
    assert results[evil].startswith("not reconciled:") and "listing of web domains was refused" in results[evil]
    assert field in results[evil], results[evil]
    assert isinstance(results[n1], dict)
    assert index(app, WebDomainIndex) == {}


def test_a_listing_larger_than_the_cap_is_refused_without_holding_it(app, cluster, evil, hostile_agent):
    """A 50 MB listing is refused at AGENT_MAX_LISTING_BYTES (set to 8 MiB here) while it is read."""
    import tracemalloc

    from agent.client import AgentError

    app.config["AGENT_MAX_LISTING_BYTES"] = 8 * 2**20
    hostile_agent.stream("/v1/domains", 50 * 2**20, declare_length=False)
    tracemalloc.start()
    try:
        with pytest.raises(AgentError) as refused:
            reconcile(app, evil)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert refused.value.kind == "answer" and "larger than the 8388608 bytes" in str(refused.value)
    assert "/v1/domains" in str(refused.value)
    assert peak < 24 * 2**20, f"the reconciliation held {peak / 2**20:.1f} MiB"


def test_a_change_answered_with_50_mb_keeps_its_claim_for_the_poll(app, client, cluster, evil, hostile_agent):
    """mallory's create on the lying node is answered with 50 MB: 504 naming the node and saying the
    change may have been applied (the answer was refused unread), the claim stays for the poll."""
    from app.extensions import db
    from app.models import DomainIndex, User, WebDomainIndex
    from tests.userdata.conftest import basic

    with app.app_context():  # mallory's zone, which her web domain needs
        mallory = db.session.scalar(select(User.id).where(User.name == "mallory"))
        db.session.add(DomainIndex(name="big.example", owner_id=mallory, node_id=evil))
        db.session.commit()
    hostile_agent.stream("/v1/webdomains", 50 * 2**20, declare_length=True)
    answer = client.post("/api/v1/webdomains", json={"name": "big.example"}, headers=basic("mallory"))
    assert answer.status_code == 504, answer.json
    assert "Node evil's answer to the change for mallory's web domain big.example was refused" in answer.json["error"]
    assert "larger than the 4194304 bytes" in answer.json["error"] and "may have been applied" in answer.json["error"]
    with app.app_context():
        row = db.session.scalar(select(WebDomainIndex).where(WebDomainIndex.name == "big.example"))
        assert row is not None and row.claimed_at is not None


def test_a_node_cannot_use_up_the_quota_of_a_user_placed_elsewhere(app, cluster, evil, hostile_agent):
    """The lying node measures 5 GB for alice (placed on n1, with nothing on the liar) and 1 MB for mallory
    (placed on it): alice's use is what her own nodes measure, mallory's counts the liar's figure."""
    from app.extensions import db
    from app.models import User
    from app.services.users import disk_used

    hostile_agent.json("/v1/stats", {**STATS, "usage": {"measured_at": 1_800_000_000.0,
                                                         "owners": {"alice": 5 * 2**30, "mallory": 2**20}}})
    cluster.poll()
    with app.app_context():
        used = {name: disk_used(db.session.scalar(select(User).where(User.name == name)))
                for name in ("alice", "mallory")}
    assert used["mallory"] == 2**20
    assert (used["alice"] or 0) < 2**30, used
