"""The statistics collector against a real agent process, through real RQ jobs."""

import pytest

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


def _stats_of(app, node_id):
    with app.app_context():
        node = db.session.get(Node, node_id)
        return node.state, node.missed_polls, node.last_poll_error, node.stats, node.last_seen


def _collect(app):
    from app.services.collector import collect_stats

    with app.app_context():
        return collect_stats()


@pytest.mark.parametrize("answer, field", [
    ([], "the document: must be a JSON object, not list"),
    ("ok", "the document: must be a JSON object, not str"),
    ({"api_version": 1, "agent_version": "1", "uptime_s": 5, "load": [0.1], "disk": {"total": 1, "free": 1,
      "used_percent": 0}, "memory": {"total": 1, "available": 1, "used_percent": "lots"}},
     "memory.used_percent: must be a finite number"),
    ({"api_version": "1"}, "api_version: must be a whole number"),
], ids=["list", "string", "bad-figure", "text-version"])
def test_a_node_answering_statistics_of_the_wrong_shape_misses_its_poll_alone(app, agent_nodes, hostile_agent,
                                                                               auth, answer, field):
    """A compromised node answers its statistics poll with a list, a string or a figure that is not a
    number: its poll fails with the reason (recorded on the node, shown on its page), nothing of the
    answer is stored, and the other node's poll goes on."""
    hostile_agent.json("/v1/stats", answer)
    evil = hostile_agent.add_node(app)  # the lower id: it is applied first
    good = agent_nodes.add("good")
    summary = _collect(app)
    assert summary[good] == "ok"
    assert "statistics was refused" in summary[evil] and field in summary[evil], summary[evil]
    state, missed, error, stats, last_seen = _stats_of(app, evil)
    assert (state, missed, stats, last_seen) == ("ready", 1, None, None) and field in error
    assert _stats_of(app, good)[3]["memory"]["total"] > 0
    auth.login()
    page = auth.client.get(f"/cluster/nodes/{evil}")
    assert page.status_code == 200 and "statistics was refused" in page.text


@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "until-close"])
def test_a_node_answering_50_mb_is_refused_without_holding_it(app, agent_nodes, hostile_agent, declare_length):
    """A 50 MB statistics answer (declared, or sent until the connection closes) is refused at the cap
    with the node's URL in the reason; the master's memory never holds more than a few MB of it, and
    the other node's poll goes on."""
    import tracemalloc

    hostile_agent.stream("/v1/stats", 50 * 2**20, declare_length)
    evil = hostile_agent.add_node(app)
    good = agent_nodes.add("good")
    tracemalloc.start()
    try:
        summary = _collect(app)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary[good] == "ok"
    assert f"127.0.0.1:{hostile_agent.port}/v1/stats" in summary[evil]
    assert "is larger than the 4194304 bytes the master takes" in summary[evil], summary[evil]
    assert peak < 16 * 2**20, f"the poll held {peak / 2**20:.1f} MiB"
    assert _stats_of(app, evil)[1:4] == (1, summary[evil], None)


def test_a_node_dripping_its_answer_does_not_hold_the_poll(app, agent_nodes, hostile_agent):
    """A node that sends its answer a byte at a time is cut off when the answer's time is up (the read
    timeout plus a second per MiB allowed): the poll of every node ends in bounded time."""
    import time

    app.config["AGENT_TIMEOUT_S"] = 1.0
    hostile_agent.drip("/v1/stats", 10_000, every_s=0.2, for_s=60)
    evil = hostile_agent.add_node(app)
    good = agent_nodes.add("good")
    started = time.monotonic()
    summary = _collect(app)
    assert time.monotonic() - started < 15
    assert summary[good] == "ok"
    assert "did not arrive whole within 5s" in summary[evil], summary[evil]


def test_an_answer_that_fails_to_apply_is_that_nodes_missed_poll(app, agent_nodes, monkeypatch):
    """Applying one node's statistics raises (a fault no well-formed answer causes today, so it is
    injected): what was applied of it is rolled back to its savepoint, it counts as that node's missed
    poll with the reason, and the other node's answer is applied and committed."""
    from app.services import collector

    first = agent_nodes.add("first")
    second = agent_nodes.add("second")
    real = collector.absorb_software_report

    def fails_for_first(node, stats):
        if node.id == first:
            raise RuntimeError("injected")
        return real(node, stats)

    monkeypatch.setattr(collector, "absorb_software_report", fails_for_first)
    summary = _collect(app)
    assert summary[second] == "ok"
    assert "could not be applied (RuntimeError('injected'))" in summary[first]
    state, missed, error, stats, last_seen = _stats_of(app, first)
    assert (missed, stats, last_seen) == (1, None, None) and "injected" in error
    assert _stats_of(app, second)[1] == 0 and _stats_of(app, second)[3]["memory"]["total"] > 0
