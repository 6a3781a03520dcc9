"""The statistics collector against a real agent process, through real RQ jobs."""

from app.extensions import db
from app.models import Node, NodeStateChange
from app.queues import get_queue
from tests.conftest import run_worker_burst, wait_until


def node_state(app, node_id):
    with app.app_context():
        return db.session.get(Node, node_id).state


def history(app, node_id):
    with app.app_context():
        rows = db.session.query(NodeStateChange).filter_by(node_id=node_id).order_by(NodeStateChange.id).all()
        return [(r.from_state, r.to_state, r.reason) for r in rows]


def poll_once(app):
    """One periodic tick through a real RQ worker: enqueue it, let the worker run it."""
    from redis import Redis

    from app.jobs.periodic import tick

    Redis.from_url(app.config["REDIS_URL"]).delete("hostfleet:periodic:collect_stats")
    with app.app_context():
        get_queue("periodic").enqueue(tick)
    run_worker_burst(app)


def test_local_node_reaches_ready_from_an_empty_data_dir(app, local_node):
    assert node_state(app, local_node.node_id) == "connecting"
    poll_once(app)
    assert node_state(app, local_node.node_id) == "ready"
    states = [(f, t) for f, t, _ in history(app, local_node.node_id)]
    assert states == [(None, "new"), ("new", "connecting"), ("connecting", "ready")]
    with app.app_context():
        node = db.session.get(Node, local_node.node_id)
        assert node.agent_version and node.api_version == 1
        assert node.stats["memory"]["total"] > 0 and node.last_seen is not None
        assert node.cert_fingerprint and node.agent_secret


def test_agent_down_then_back(app, local_node):
    from app.services.policies import get_policy

    with app.app_context():
        get_policy().missed_polls = 2
        db.session.commit()
    poll_once(app)
    assert node_state(app, local_node.node_id) == "ready"
    local_node.stop()
    poll_once(app)
    assert node_state(app, local_node.node_id) == "ready", "one missed poll is not enough"
    poll_once(app)
    assert node_state(app, local_node.node_id) == "unavailable"
    local_node.start()
    wait_until(lambda: _answers(app, local_node.node_id), 15, what="the agent to come back")
    poll_once(app)
    assert node_state(app, local_node.node_id) == "ready"
    rows = history(app, local_node.node_id)
    assert [(f, t) for f, t, _ in rows[-2:]] == [("ready", "unavailable"), ("unavailable", "ready")]
    assert "missed 2 polls in a row" in rows[-2][2]
    assert rows[-1][2].startswith("back after missed polls")


def _answers(app, node_id):
    from agent.client import AgentError
    from app.services.nodes import agent_client

    with app.app_context():
        try:
            agent_client(db.session.get(Node, node_id)).stats()
            return True
        except AgentError:
            return False


def test_changed_certificate_is_not_trusted(app, local_node):
    with app.app_context():
        node = db.session.get(Node, local_node.node_id)
        node.cert_fingerprint = "00" * 32
        db.session.commit()
        from app.services.collector import collect_stats

        summary = collect_stats()
    assert "certificate" in summary[local_node.node_id].lower()


def test_incompatible_agent_api_version(app, local_node):
    from app.services.collector import record_poll_success

    with app.app_context():
        node = db.session.get(Node, local_node.node_id)
        record_poll_success(node, {"api_version": 99, "agent_version": "9.9"})
        db.session.commit()
        assert node.state == "incompatible"
        assert "API version 99" in node.history[0].reason


def test_poll_interval_comes_from_the_policy(app, local_node):
    from redis import Redis

    from app.jobs.periodic import tick

    Redis.from_url(app.config["REDIS_URL"]).delete("hostfleet:periodic:collect_stats")
    assert "collect_stats" in tick()
    assert "collect_stats" not in tick(), "a second tick within the interval does not poll again"
