"""The holding node down, and a master crash between the agent's confirmation and the index write."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.userdata.conftest import basic


@pytest.fixture
def one_node(cluster):
    """A node with every role and alice placed on it."""
    node_id = cluster.node("n1")
    cluster.user("alice")
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

    def crash(pending):
        raise Crash()

    monkeypatch.setattr(userdata, "end_write", crash)
    with pytest.raises(Crash):
        client.post("/api/v1/webdomains", json={"name": "lost.example.com"}, headers=headers)
    with pytest.raises(Crash):
        client.delete(f"/api/v1/webdomains/{kept['id']}", headers=headers)
    monkeypatch.undo()
    with app.app_context():
        from app.extensions import db

        db.session.rollback()
    names = [i["name"] for i in client.get("/api/v1/webdomains", headers=headers).json["items"]]
    assert names == ["kept.example.com"], "before the poll the index misses the crash's changes"
    vhosts = cluster.root(one_node) / "etc/nginx/hostfleet/alice"
    assert sorted(p.name for p in vhosts.iterdir()) == ["lost.example.com.conf"]
    cluster.poll()
    items = client.get("/api/v1/webdomains", headers=headers).json["items"]
    assert [(i["name"], i["owner"], i["node"]) for i in items] == [("lost.example.com", "alice", "n1")]
    with app.app_context():
        from app.models import PendingWrite

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


def test_timeout_keeps_the_pending_mark_and_the_poll_settles_it(app, client, cluster, one_node, monkeypatch):
    """The agent applied the change but its answer never came: 504 saying so, then the poll indexes it."""
    from agent.client import AgentClient, AgentError
    from app.extensions import db
    from app.models import PendingWrite

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
        assert [p.name for p in db.session.scalars(select(PendingWrite))] == ["slow.example.com"]
    assert client.get("/api/v1/webdomains", headers=basic("alice")).json["items"] == []
    cluster.poll()
    assert [i["name"] for i in client.get("/api/v1/webdomains", headers=basic("alice")).json["items"]] == [
        "slow.example.com"]
    with app.app_context():
        assert db.session.scalars(select(PendingWrite)).all() == []


def test_limits_are_enforced_from_the_index(app, client, cluster, users):
    """A limit of 1 web domain: the second is refused with 409 naming the field, before the node is asked."""
    node_id = cluster.node("n1")
    users.make("root", admin=True)
    cluster.user("lim", limits={"webdomains": 1})
    assert client.post("/api/v1/webdomains", json={"name": "one.example.com"}, headers=basic("lim")).status_code == 201
    before = cluster.tree(node_id)
    second = client.post("/api/v1/webdomains", json={"name": "two.example.com"}, headers=basic("lim"))
    assert second.status_code == 409 and "limit of 1 web domains" in second.json["fields"]["name"]
    assert cluster.tree(node_id) == before
