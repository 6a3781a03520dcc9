"""The holding node down, and a master crash between the agent's confirmation and the index write."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from tests.conftest import Users, csrf_from
from tests.userdata.conftest import basic


@pytest.fixture
def one_node(cluster):
    """A node with every role and alice and bob placed on it; alice holds the zones of her names."""
    node_id = cluster.node("n1")
    cluster.user("alice")
    cluster.user("bob")
    cluster.zones("alice", "example.com", "example.net")
    return node_id


def test_agent_stopped_then_started(app, client, cluster, one_node):
    """Stopped agent → a clear error naming the node and its state, nothing changed; started → works."""
    headers = basic("alice")
    assert client.post("/api/v1/webdomains", json={"name": "before.example.com"}, headers=headers).status_code == 201
    before = cluster.tree(one_node)
    agent = cluster.agent_nodes.agents[one_node]
    agent.stop()
    down = client.post("/api/v1/webdomains", json={"name": "during.example.com"}, headers=headers)
    assert down.status_code == 503, down.json
    assert "Node n1" in down.json["error"] and "nothing was changed" in down.json["error"]
    for _ in range(3):
        cluster.poll()
    refused = client.post("/api/v1/webdomains", json={"name": "during.example.com"}, headers=headers)
    assert refused.status_code == 503
    assert "Node n1" in refused.json["error"] and "is unavailable, not ready" in refused.json["error"]
    page = client.get("/api/v1/webdomains", headers=headers).json["items"]
    assert [(i["name"], i["available"]) for i in page] == [("before.example.com", False)]
    with app.app_context():
        from app.extensions import db
        from app.models import PendingWrite, WebDomainIndex

        assert db.session.scalars(select(WebDomainIndex.name)).all() == ["before.example.com"]
        assert db.session.scalars(select(PendingWrite)).all() == []
    agent.start()
    from tests.conftest import listening_on, wait_until

    wait_until(listening_on(agent.port), 15, what="the agent to listen again")
    assert cluster.tree(one_node) == before
    cluster.poll()
    again = client.post("/api/v1/webdomains", json={"name": "during.example.com"}, headers=headers)
    assert again.status_code == 201, again.json


def test_node_not_ready_refuses_before_sending(client, cluster, one_node):
    """A node in `syncing` is not asked at all: the error names it and its state."""
    headers = basic("alice")
    before = cluster.tree(one_node)
    cluster.set_state(one_node, "syncing")
    answer = client.post("/api/v1/maildomains", json={"name": "example.net"}, headers=headers)
    assert answer.status_code == 503 and "Node n1" in answer.json["error"] and "syncing" in answer.json["error"]
    assert cluster.tree(one_node) == before


def test_crash_after_agent_confirmed_is_repaired_by_the_next_poll(app, client, cluster, one_node, monkeypatch):
    """The agent applied the change but the master died before the index write: the next poll restores it."""
    from app.services import userdata

    headers = basic("alice")
    kept = client.post("/api/v1/webdomains", json={"name": "kept.example.com"}, headers=headers).json

    class Crash(BaseException):
        """The master process dying (not an error any handler would catch)."""

    def crash(*args):
        raise Crash()

    monkeypatch.setattr(userdata.crud, "confirm_claim", crash)  # a create's index write
    monkeypatch.setattr(userdata.crud, "end_write", crash)  # a delete's
    with pytest.raises(Crash):
        client.post("/api/v1/webdomains", json={"name": "lost.example.com"}, headers=headers)
    with pytest.raises(Crash):
        client.delete(f"/api/v1/webdomains/{kept['id']}", headers=headers)
    monkeypatch.undo()
    with app.app_context():
        from app.extensions import db

        db.session.rollback()
    listed = [(i["name"], i["state"]) for i in client.get("/api/v1/webdomains", headers=headers).json["items"]]
    assert listed == [("kept.example.com", "ready"), ("lost.example.com", "creating")], \
        "before the poll the crashed create is listed as being created, the crashed delete still listed"
    # Only an administrator's override gets another owner's create of it past the name registry (alice holds
    # example.com); the claim still refuses it.
    cluster.user("root-admin", admin=True)
    again = client.post("/api/v1/webdomains", json={"name": "lost.example.com", "owner": "bob", "override": True},
                        headers=basic("root-admin"))
    assert again.status_code == 409 and again.json["fields"] == {"name": "lost.example.com is being created"}
    vhosts = cluster.root(one_node) / "etc/nginx/hostfleet/alice"
    assert sorted(p.name for p in vhosts.iterdir()) == ["lost.example.com.conf"]
    cluster.poll()
    items = client.get("/api/v1/webdomains", headers=headers).json["items"]
    assert [(i["name"], i["owner"], i["node"]) for i in items] == [("lost.example.com", "alice", "n1")]
    with app.app_context():
        from app.models import PendingWrite

        # The delete's mark outlives the poll while its request could still land (see the next test).
        assert [m.name for m in db.session.scalars(select(PendingWrite))] == ["kept.example.com"]
        age_marks(app)
    cluster.poll()
    with app.app_context():
        assert db.session.scalars(select(PendingWrite)).all() == []


def age_marks(app) -> None:
    """Every pending mark as old as one whose write can no longer land."""
    from datetime import timedelta

    from app.extensions import db
    from app.models import PendingWrite
    from app.models.base import utcnow
    from app.services import userdata

    with app.app_context():
        old = utcnow() - timedelta(seconds=userdata.settle_seconds() + 1)
        db.session.execute(PendingWrite.__table__.update().values(started_at=old))
        db.session.commit()


def test_a_delete_that_lands_after_its_504_and_a_poll_still_leaves_the_index(app, client, cluster, one_node,
                                                                              monkeypatch):
    """Found by the soak: a delete sent while the node's link was cut got 504; the poll after the heal found
    the domain still on the node and dropped the delete's mark; the request, held up in the network, then
    reached the agent (inside its signature window) and deleted the domain, and the index kept it. A mark
    now stands as long as its write may still land, and the node is reconciled at each poll until then."""
    from agent.client import AgentClient, AgentError
    from app.extensions import db
    from app.models import Node, PendingWrite, WebDomainIndex
    from app.services.nodes import agent_client

    headers = basic("alice")
    made = client.post("/api/v1/webdomains", json={"name": "late.example.com"}, headers=headers).json

    def held_up(self, method, path, *args, **kwargs):
        raise AgentError("timeout", f"{self.base_url}{path}: no answer within 5s", url=path)

    monkeypatch.setattr(AgentClient, "request", held_up)
    answer = client.delete(f"/api/v1/webdomains/{made['id']}", headers=headers)
    monkeypatch.undo()
    assert answer.status_code == 504 and "may have been applied" in answer.json["error"]
    cluster.poll()  # the link is back: the node still holds the domain
    assert [i["name"] for i in client.get("/api/v1/webdomains", headers=headers).json["items"]] == [
        "late.example.com"]
    with app.app_context():
        agent_client(db.session.get(Node, one_node)).delete("/v1/webdomains/late.example.com")  # it lands
    cluster.poll()
    assert client.get("/api/v1/webdomains", headers=headers).json["items"] == []
    with app.app_context():
        assert db.session.scalars(select(WebDomainIndex)).all() == []
        assert [m.name for m in db.session.scalars(select(PendingWrite))] == ["late.example.com"]
    age_marks(app)
    cluster.poll()
    with app.app_context():
        assert db.session.scalars(select(PendingWrite)).all() == []


def test_full_reconcile_follows_changes_made_on_the_node(app, client, cluster, one_node):
    """Data added or removed on the node behind the master's back shows up after the periodic full pass."""
    from app.extensions import db
    from app.models import Node
    from app.queues import redis_connection
    from app.services.nodes import agent_client

    headers = basic("alice")
    gone = client.post("/api/v1/maildomains", json={"name": "gone.example.net"}, headers=headers).json
    with app.app_context():
        agent = agent_client(db.session.get(Node, one_node))
        agent.post("/v1/webdomains", json={"name": "side.example.com", "owner": "alice"})
        agent.delete("/v1/maildomains/gone.example.net")
    cluster.poll()
    assert [i["name"] for i in client.get("/api/v1/webdomains", headers=headers).json["items"]] == []
    stale = client.get(f"/api/v1/maildomains/{gone['id']}", headers=headers)
    assert stale.status_code == 404, "the index still has it; the node says it is gone"
    with app.app_context():
        redis_connection().delete("hostfleet:userdata:full-reconcile")
    cluster.poll()
    assert [(i["name"], i["owner"]) for i in client.get("/api/v1/webdomains", headers=headers).json["items"]] == [
        ("side.example.com", "alice")]
    assert client.get("/api/v1/maildomains", headers=headers).json["items"] == []


def test_timeout_keeps_the_claim_and_the_poll_settles_it(app, client, cluster, one_node, monkeypatch):
    """The agent applied the change but its answer never came: 504 saying so, then the poll indexes it."""
    from agent.client import AgentClient, AgentError
    from app.extensions import db
    from app.models import PendingWrite, WebDomainIndex

    real = AgentClient.request

    def slow_answer(self, method, path, *args, **kwargs):
        status, body = real(self, method, path, *args, **kwargs)
        if method == "POST" and path == "/v1/webdomains":
            raise AgentError("timeout", f"{self.base_url}{path}: no answer within 5s", url=path)
        return status, body

    monkeypatch.setattr(AgentClient, "request", slow_answer)
    answer = client.post("/api/v1/webdomains", json={"name": "slow.example.com"}, headers=basic("alice"))
    monkeypatch.undo()
    assert answer.status_code == 504 and "may have been applied" in answer.json["error"]
    with app.app_context():
        claims = db.session.execute(select(WebDomainIndex.name).where(WebDomainIndex.claimed_at.is_not(None)))
        assert claims.scalars().all() == ["slow.example.com"]
    # Until the poll: listed as being created (so the name's 409 "is being created" can be seen), and
    # it cannot be opened, changed or deleted.
    (item,) = client.get("/api/v1/webdomains", headers=basic("alice")).json["items"]
    assert (item["name"], item["state"], item["node"]) == ("slow.example.com", "creating", "n1")
    for method in ("GET", "PUT", "DELETE"):
        refused = client.open(f"/api/v1/webdomains/{item['id']}", method=method, headers=basic("alice"),
                              json={"php": True} if method == "PUT" else None)
        assert refused.status_code == 409, (method, refused.status_code)
        assert "is being created on node n1" in refused.json["error"]
    assert client.get(f"/api/v1/webdomains/{item['id']}", headers=basic("bob")).status_code == 404
    client.post("/login", data={"username": "alice", "password": Users.PASSWORD,
                                "csrf_token": csrf_from(client.get("/login").text)})
    page = client.get("/domains/web")
    row = page.text[page.text.index(f'id="webdomain-{item["id"]}"'):].split("</tr>")[0]
    assert 'data-state="creating"' in row and "<a " not in row and "Delete" not in row, row
    assert "every 5s" in page.text, "the table refreshes itself while a create is in flight"
    cluster.poll()
    (item,) = client.get("/api/v1/webdomains", headers=basic("alice")).json["items"]
    assert (item["name"], item["state"]) == ("slow.example.com", "ready")
    assert client.get(f"/api/v1/webdomains/{item['id']}", headers=basic("alice")).status_code == 200
    page = client.get("/domains/web")
    assert 'data-state="creating"' not in page.text and "every 5s" not in page.text
    with app.app_context():
        assert db.session.scalars(select(WebDomainIndex.claimed_at)).all() == [None]
        assert db.session.scalars(select(PendingWrite)).all() == []


def test_limits_are_enforced_from_the_index(app, client, cluster, users):
    """A limit of 1 web domain: the second is refused with 409 naming the field, before the node is asked."""
    node_id = cluster.node("n1")
    users.make("root", admin=True)
    cluster.user("lim", limits={"webdomains": 1})
    cluster.zones("lim", "example.com")
    assert client.post("/api/v1/webdomains", json={"name": "one.example.com"}, headers=basic("lim")).status_code == 201
    before = cluster.tree(node_id)
    second = client.post("/api/v1/webdomains", json={"name": "two.example.com"}, headers=basic("lim"))
    assert second.status_code == 409 and second.json["fields"]["name"] == \
        "your plan allows 1 web domain; delete one or ask your provider for a larger plan"
    assert "lim's plan allows 1 web domain, and 1 is in use" in second.json["error"]
    assert cluster.tree(node_id) == before
    again = client.post("/api/v1/webdomains", json={"name": "one.example.com"}, headers=basic("lim"))
    assert again.status_code == 409 and again.json["fields"] == {"name": "one.example.com exists"}, \
        "a duplicate at the limit is refused as the duplicate it is"


def test_a_limit_is_named_in_its_plural(app, client, cluster):
    """Two mailboxes allowed: the third is refused as "2 mailboxes", not "mailboxs", with what to do next."""
    cluster.node("n1")
    cluster.user("lim", limits={"mailboxes": 2})
    cluster.zones("lim", "example.com")
    assert client.post("/api/v1/maildomains", json={"name": "example.com"}, headers=basic("lim")).status_code == 201
    for local in ("a", "b", "c"):
        made = client.post("/api/v1/mailboxes", json={"address": f"{local}@example.com", "password": "a long secret"},
                           headers=basic("lim"))
    assert made.status_code == 409, made.json
    assert made.json["fields"] == {
        "address": "your plan allows 2 mailboxes; delete one or ask your provider for a larger plan"}


def test_two_creates_of_one_name_on_two_nodes_at_once_reach_only_one_node(app, cluster, monkeypatch):
    """Alice's create is at her node when Bob, placed on another node, creates the same name: the name is
    claimed in the index before any node is asked, so Bob gets 409 and his node is never asked."""
    from agent.client import AgentClient

    n1, n2 = cluster.node("n1"), cluster.node("n2")
    cluster.user("alice", roles=("web",), nodes={"web": n1})
    cluster.user("bob", roles=("web",), nodes={"web": n2})
    # Neither holds a zone (no dns role): an administrator creates for each, as for names whose DNS is elsewhere.
    cluster.user("root-admin", admin=True)
    before = cluster.tree(n2)
    at_node, bob_done = threading.Event(), threading.Event()
    real = AgentClient.request

    def held_at_the_node(self, method, path, *args, **kwargs):
        if method == "POST" and path == "/v1/webdomains" and not at_node.is_set():
            at_node.set()
            assert bob_done.wait(30), "Bob's create did not end while Alice's was at her node"
        return real(self, method, path, *args, **kwargs)

    monkeypatch.setattr(AgentClient, "request", held_at_the_node)
    answers = {}

    def create(user):
        answers[user] = app.test_client().post("/api/v1/webdomains", json={"name": "same.example.com",
                                                                           "owner": user},
                                               headers=basic("root-admin"))

    alice = threading.Thread(target=create, args=("alice",))
    alice.start()
    assert at_node.wait(30), "Alice's create never reached her node"
    create("bob")
    bob_done.set()
    alice.join(30)
    assert answers["alice"].status_code == 201, answers["alice"].json
    assert answers["alice"].json["node"] == "n1"
    assert answers["bob"].status_code == 409, answers["bob"].json
    assert answers["bob"].json["fields"] == {"name": "same.example.com is being created"}
    assert cluster.tree(n2) == before, "Bob's node was asked"
    again = app.test_client().post("/api/v1/webdomains", json={"name": "same.example.com", "owner": "bob"},
                                   headers=basic("root-admin"))
    assert again.status_code == 409 and again.json["fields"] == {"name": "same.example.com exists"}


def test_a_refused_create_frees_its_name_and_an_abandoned_claim_is_removed(app, client, cluster, one_node):
    """The node refuses a create: nothing stays claimed. A claim whose master died before asking the node is
    kept while its create could still be running, then removed by the poll; the name is free again."""
    from datetime import timedelta

    from app.extensions import db
    from app.models import Node, User, WebDomainIndex
    from app.models.base import utcnow
    from app.queues import redis_connection
    from app.services import userdata
    from app.services.nodes import agent_client

    headers = basic("alice")
    with app.app_context():  # the node holds a name the index does not (made behind the master's back)
        agent_client(db.session.get(Node, one_node)).post("/v1/webdomains", json={"name": "side.example.com",
                                                                                 "owner": "alice"})
    refused = client.post("/api/v1/webdomains", json={"name": "side.example.com"}, headers=headers)
    assert refused.status_code == 409 and "exists" in refused.json["error"], refused.json
    with app.app_context():
        assert db.session.scalars(select(WebDomainIndex)).all() == []
        owner = db.session.scalar(select(User).where(User.name == "alice"))
        row_id = userdata.claim(userdata.KINDS["webdomains"], owner, db.session.get(Node, one_node),
                                "orphan.example.com")
    cluster.poll()
    taken = client.post("/api/v1/webdomains", json={"name": "orphan.example.com"}, headers=headers)
    assert taken.status_code == 409, "a young claim is kept: its create may still be waiting on the node"
    with app.app_context():
        old = utcnow() - timedelta(seconds=userdata.settle_seconds() + 1)
        db.session.execute(WebDomainIndex.__table__.update().where(WebDomainIndex.id == row_id)
                           .values(claimed_at=old))
        db.session.commit()
    cluster.poll()
    with app.app_context():
        assert db.session.scalars(select(WebDomainIndex.name)).all() == []
        # The name the node held behind the master's back is indexed by the full reconciliation (every
        # few minutes); a claim's poll asked the node for the claimed name only.
        redis_connection().delete("hostfleet:userdata:full-reconcile")
    cluster.poll()
    with app.app_context():
        assert db.session.scalars(select(WebDomainIndex.name)).all() == ["side.example.com"]
    assert client.post("/api/v1/webdomains", json={"name": "orphan.example.com"}, headers=headers).status_code == 201


def test_a_connection_broken_after_the_change_went_out_is_not_called_nothing_changed(app, client, cluster,
                                                                                      one_node, monkeypatch):
    """The node applied the create but the connection broke before its answer: 504 "may have been applied"
    (not 503 "nothing was changed"), the claim stays, and the poll indexes the domain the node holds."""
    from agent.client import AgentClient

    real = AgentClient._exchange

    def applied_then_broken(self, conn, method, target, *args):
        answer = real(self, conn, method, target, *args)
        if method == "POST" and target == "/v1/webdomains":
            raise ConnectionResetError(104, "Connection reset by peer")
        return answer

    monkeypatch.setattr(AgentClient, "_exchange", applied_then_broken)
    answer = client.post("/api/v1/webdomains", json={"name": "broken.example.com"}, headers=basic("alice"))
    monkeypatch.undo()
    assert answer.status_code == 504, answer.json
    error = answer.json["error"]
    assert "connection broke after the change" in error and "may have been applied" in error, error
    assert (cluster.root(one_node) / "etc/nginx/hostfleet/alice/broken.example.com.conf").exists()
    items = client.get("/api/v1/webdomains", headers=basic("alice")).json["items"]
    assert [(i["name"], i["state"]) for i in items] == [("broken.example.com", "creating")]
    cluster.poll()
    items = client.get("/api/v1/webdomains", headers=basic("alice")).json["items"]
    assert [(i["name"], i["node"], i["state"]) for i in items] == [("broken.example.com", "n1", "ready")]


def test_a_poll_settles_a_claim_by_asking_for_that_name_only(app, client, cluster, one_node, monkeypatch):
    """A claim in flight is settled by a GET of its name, not by the node's four whole listings: kept while
    the node does not hold it, confirmed once it does. Held there by another owner, the node is
    reconciled in full, where the registry keeps the claimed name from the owner the node reports."""
    from agent.client import AgentClient
    from app.extensions import db
    from app.models import Node, User, WebDomainIndex
    from app.services import userdata
    from app.services.nodes import agent_client

    cluster.poll()  # the first poll of a process reconciles every node in full
    with app.app_context():
        owner = db.session.scalar(select(User).where(User.name == "alice"))
        db.session.expunge(owner)  # stays loaded: on PostgreSQL claim() commits in this session, expiring it
        node = db.session.get(Node, one_node)
        row_id = userdata.claim(userdata.KINDS["webdomains"], owner, node, "inflight.example.com")
    asked = []
    real = AgentClient.request

    def recorded(self, method, path, *args, **kwargs):
        asked.append(path)
        return real(self, method, path, *args, **kwargs)

    monkeypatch.setattr(AgentClient, "request", recorded)
    lists = {"/v1/webdomains", "/v1/domains", "/v1/maildomains", "/v1/mailboxes"}
    cluster.poll()
    assert "/v1/webdomains/inflight.example.com" in asked and not lists & set(asked), asked
    with app.app_context():
        assert db.session.get(WebDomainIndex, row_id).claimed_at is not None, "not held yet: its create may wait"
        agent_client(db.session.get(Node, one_node)).post("/v1/webdomains", json={"name": "inflight.example.com",
                                                                                 "owner": "alice"})
    asked.clear()
    cluster.poll()
    assert not lists & set(asked), asked
    with app.app_context():
        assert db.session.get(WebDomainIndex, row_id).claimed_at is None
        claim = userdata.claim(userdata.KINDS["webdomains"], owner, db.session.get(Node, one_node),
                               "bobs.example.com")
        agent_client(db.session.get(Node, one_node)).post("/v1/webdomains", json={"name": "bobs.example.com",
                                                                                 "owner": "bob"})
    asked.clear()
    cluster.poll()
    assert lists <= set(asked), "held by another owner: the node reconciled in full"
    with app.app_context():
        # The claimed name is alice's in the registry: a node's word does not hand it to bob. Her claim
        # stays unconfirmed (and goes once abandoned; the name is then free for the node's owner).
        row = db.session.get(WebDomainIndex, claim)
        assert row.claimed_at is not None and row.owner.name == "alice"
        userdata.claim(userdata.KINDS["webdomains"], owner, db.session.get(Node, one_node), "more.example.com")
    monkeypatch.setattr(userdata.reconcile, "SETTLE_ONE_BY_ONE_MAX", 0)
    asked.clear()
    cluster.poll()
    assert lists <= set(asked), "more claims than are worth asking for one by one: the whole listings"
