"""Distributed requests (docs/distributed-requests.md) against real agent processes on loopback, through the API."""

from __future__ import annotations

from tests.system.conftest import cron_file, firewall_file, spawn_worker

RULE = {"action": "accept", "protocol": "tcp", "ports": "8080", "source": "", "comment": "web alt"}


def test_one_node_down_applied_on_three_then_converges_without_a_click(cluster):
    """4 nodes, one agent stopped: applied on 3, desync on 1, the API says so; back → converged."""
    for name in ("n1", "n2", "n3", "n4"):
        cluster.add(name)
    cluster.stop("n4")

    operation = cluster.change("firewall", body=RULE)

    assert operation["status"] == "partial", operation
    outcomes = {n["node"]: n["outcome"] for n in operation["nodes"]}
    assert outcomes == {"n1": "applied", "n2": "applied", "n3": "applied", "n4": "unavailable"}
    assert "applied on 3 of 4 nodes (n1, n2, n3)" in operation["message"]
    assert "n4" in operation["message"] and "synchronized later" in operation["message"]
    assert cluster.desyncs() == {("n4", "firewall")}
    status, registry = cluster.api("GET", "/sync")
    assert status == 200 and [(r["node"], r["list"]) for r in registry["items"]] == [("n4", "firewall")]
    master = cluster.master("firewall")
    assert master["version"] == 1 and master["rows"] == [{"id": 1, **RULE}]
    for name in ("n1", "n2", "n3"):
        assert "tcp dport { 8080 } accept" in firewall_file(cluster, name)
        held = cluster.held(name, "firewall")
        assert (held["version"], held["hash"], held["rows"]) == (1, master["hash"], master["rows"])
    assert "8080" not in firewall_file(cluster, "n4")

    cluster.start("n4")
    cluster.set_policy(missed_polls=1)
    cluster.poll_and_sync()
    assert cluster.desyncs() == set()
    assert "tcp dport { 8080 } accept" in firewall_file(cluster, "n4")
    assert cluster.converged("firewall", ["n1", "n2", "n3", "n4"])
    assert cluster.node_state("n4") == "ready"


def test_all_targets_down_is_refused_with_both_numbers(cluster):
    """Policy 50 %, every agent down: refused, numbers in the message, nothing changed anywhere."""
    for name in ("n1", "n2"):
        cluster.add(name)
    cluster.set_policy(missed_polls=1)
    for name in ("n1", "n2"):
        cluster.stop(name)
    cluster.collect()
    operation = cluster.change("firewall", body=RULE)
    assert operation["status"] == "refused"
    assert "0 of 2 target nodes are ready (0%)" in operation["message"]
    assert "Not ready: n1 (unavailable), n2 (unavailable)" in operation["message"]
    assert "at least 50%" in operation["message"]
    assert cluster.master("firewall")["version"] == 0
    assert cluster.desyncs() == set()


def test_all_targets_down_with_policy_zero_fails_and_master_unchanged(cluster):
    """Policy 0 %, every agent down: failed, each node's error shown, master unchanged."""
    for name in ("n1", "n2"):
        cluster.add(name)
    cluster.set_policy(min_ready_percent=0)
    for name in ("n1", "n2"):
        cluster.stop(name)
    operation = cluster.change("firewall", body=RULE)
    assert operation["status"] == "failed", operation
    assert {n["outcome"] for n in operation["nodes"]} == {"unavailable"}
    assert all("cannot connect" in n["error"] for n in operation["nodes"])
    assert "master's list is unchanged (v0)" in operation["message"]
    assert cluster.master("firewall") == {"version": 0, "hash": cluster.master("firewall")["hash"], "rows": []}
    # They might have taken the request before the connection broke: they are re-synced to v0.
    assert cluster.desyncs() == {("n1", "firewall"), ("n2", "firewall")}
    for name in ("n1", "n2"):
        cluster.start(name)
    cluster.poll_and_sync()
    assert cluster.desyncs() == set()


def test_zero_targets_changes_the_master_only(cluster):
    """No mail node: a whitelist change is applied to the master only."""
    cluster.add("web1", roles=("web",))
    operation = cluster.change("mail/whitelist", body={"sender": "Friend@Example.ORG"})
    assert operation["status"] == "succeeded" and "master only" in operation["message"]
    assert cluster.master("mail_whitelist")["rows"] == [{"id": 1, "sender": "friend@example.org"}]
    assert cluster.desyncs() == set()


def test_mail_lists_reach_mail_nodes_only_and_exim_files(cluster):
    """Whitelist and blacklist go to nodes with role mail, into the files exim reads."""
    cluster.add("mx1", roles=("mail",))
    cluster.add("web1", roles=("web",))
    white = cluster.change("mail/whitelist", body={"sender": "partner.example"})
    black = cluster.change("mail/blacklist", body={"sender": "spam@bad.example"})
    assert white["status"] == black["status"] == "succeeded"
    assert [n["node"] for n in white["nodes"]] == ["mx1"]
    assert cluster.file("mx1", "etc/exim4/hostfleet/whitelist").splitlines() == ["*@partner.example"]
    assert "spam@bad.example" in cluster.file("mx1", "etc/exim4/hostfleet/blacklist")
    assert cluster.file("web1", "etc/exim4/hostfleet/whitelist") == ""
    assert cluster.held("mx1", "mail_blacklist")["rows"] == [{"id": 1, "sender": "spam@bad.example"}]


def test_edit_and_delete_rows(cluster):
    """Edit then delete a scheduler entry; the cron file follows."""
    cluster.add("n1")
    cluster.change("scheduler", body={"schedule": "*/5 * * * *", "user": "root", "command": "/bin/true"})
    assert "*/5 * * * * root /bin/true" in cron_file(cluster, "n1")
    edited = cluster.change("scheduler", "PUT", {"schedule": "@daily", "user": "root", "command": "echo 50%",
                                                 "enabled": False}, row_id=1)
    assert edited["status"] == "succeeded"
    assert "#@daily root echo 50\\%" in cron_file(cluster, "n1")
    deleted = cluster.change("scheduler", "DELETE", row_id=1)
    assert deleted["status"] == "succeeded" and cluster.master("scheduler")["rows"] == []
    assert "root" not in cron_file(cluster, "n1").split("PATH=")[-1]
    status, body = cluster.api("DELETE", "/scheduler/1")
    assert status == 404 and "no entry with id 1" in body["error"]


def test_one_failing_list_does_not_block_the_nodes_other_lists(cluster):
    """A cron user missing on n2: scheduler fails there and backs off; its firewall still syncs."""
    for name in ("n1", "n2"):
        cluster.add(name)
    cluster.add_os_user("n1", "backup")
    cron = cluster.change("scheduler", body={"schedule": "@hourly", "user": "backup", "command": "/bin/true"})
    assert cron["status"] == "partial"
    failed = {n["node"]: n for n in cron["nodes"]}["n2"]
    assert failed["outcome"] == "failed" and "no account 'backup' on this node" in failed["error"]
    cluster.stop("n2")
    cluster.change("firewall", body=RULE)
    cluster.start("n2")
    assert cluster.desyncs() == {("n2", "scheduler"), ("n2", "firewall")}
    summary = cluster.sync()
    assert summary[cluster.ids["n2"]]["firewall"] == "ok"
    assert "no account 'backup'" in summary[cluster.ids["n2"]]["scheduler"]
    assert cluster.desyncs() == {("n2", "scheduler")}
    status, registry = cluster.api("GET", "/sync")
    row = registry["items"][0]
    assert row["attempts"] == 1 and row["next_try_at"] and "backup" in row["last_error"]
    assert "8080" in firewall_file(cluster, "n2")
    assert cluster.node_state("n2") == "syncing"
    cluster.add_os_user("n2", "backup")
    status, answer = cluster.api("POST", f"/nodes/{cluster.ids['n2']}/sync", {"lists": ["scheduler"]})
    assert status == 202
    cluster.run_jobs()
    assert cluster.operation(answer["operation"]["id"])["status"] == "succeeded"
    assert cluster.desyncs() == set() and cluster.node_state("n2") == "ready"
    assert "@hourly backup /bin/true" in cron_file(cluster, "n2")


def test_changes_to_one_list_take_the_lock_in_the_order_they_were_made(cluster, app, tmp_path):
    """The worker holding the earlier change is slow to reach the lock; the later change, on
    another worker, gets there first and must still wait: the rules keep the order they were added."""
    import time

    from app.extensions import db
    from app.models import ListChange, Operation

    cluster.add("n1")
    ids = [cluster.api("POST", "/firewall", {**RULE, "ports": port})[1]["operation"]["id"] for port in ("7001", "7002")]
    log = open(tmp_path / "workers.log", "ab")
    first = spawn_worker(app, failpoints="dr.before_lock=sleep:4", log=log)
    deadline = time.monotonic() + 30
    with app.app_context():
        while db.session.get(Operation, ids[0]).status != "running":
            assert time.monotonic() < deadline and first.poll() is None, (tmp_path / "workers.log").read_text()
            db.session.rollback()
            time.sleep(0.02)
    second = spawn_worker(app, log=log)
    assert [w.wait(60) for w in (first, second)] == [0, 0], (tmp_path / "workers.log").read_text()
    with app.app_context():
        outcome = [(op.id, op.status, op.message) for op in (db.session.get(Operation, i) for i in ids)]
    assert [r["ports"] for r in cluster.master("firewall")["rows"]] == ["7001", "7002"], (
        outcome, (tmp_path / "workers.log").read_text()[-3000:])
    with app.app_context():
        assert [db.session.get(ListChange, i).base_version for i in ids] == [0, 1]
        assert "waiting for the firewall list's lock" in db.session.get(Operation, ids[1]).log
    assert cluster.converged("firewall", ["n1"])
    assert firewall_file(cluster, "n1").index("7001") < firewall_file(cluster, "n1").index("7002")


def test_a_change_waits_only_for_earlier_ones_a_live_worker_holds(cluster, app):
    """Taken off the queue by a worker → waited for; still in the queue, or its job gone → not
    (with one worker it would never run first); not enqueued yet → waited for a few seconds."""
    from datetime import timedelta

    from app.extensions import db
    from app.models import Operation
    from app.models.base import utcnow
    from app.queues import get_queue, redis_connection
    from app.services.distributed import _earlier_change_running

    cluster.add("n1")
    ids = [cluster.api("POST", "/firewall", {**RULE, "ports": port})[1]["operation"]["id"] for port in ("7001", "7002")]
    with app.app_context():
        redis, queue = redis_connection(), get_queue()
        earlier, later = (db.session.get(Operation, i) for i in ids)
        job_id = earlier.rq_job_id
        assert not _earlier_change_running(later, "firewall")
        assert not _earlier_change_running(later, "scheduler")
        # What a worker does when it dequeues: the job moves to the queue's intermediate list.
        redis.lrem(queue.key, 1, job_id)
        redis.rpush(queue.intermediate_queue_key, job_id)
        assert _earlier_change_running(later, "firewall")
        assert not _earlier_change_running(earlier, "firewall")
        redis.lrem(queue.intermediate_queue_key, 1, job_id)
        queue.fetch_job(job_id).delete()
        assert not _earlier_change_running(later, "firewall")
        earlier = db.session.get(Operation, ids[0])
        earlier.rq_job_id, earlier.created_at = None, utcnow()
        db.session.commit()
        assert _earlier_change_running(later, "firewall")
        earlier.created_at = utcnow() - timedelta(seconds=30)
        db.session.commit()
        assert not _earlier_change_running(later, "firewall")


def test_two_changes_to_one_list_are_serialized_and_two_lists_run_in_parallel(cluster, app, tmp_path):
    """Two worker processes: two firewall changes take turns (v1 then v2, both rules kept);
    a firewall and a scheduler change overlap in time."""
    from app.extensions import db
    from app.models import ListChange, Operation

    cluster.add("n1")
    cluster.add("n2")
    ids = []
    for body in ({**RULE, "ports": "7001"}, {**RULE, "ports": "7002"}):
        status, answer = cluster.api("POST", "/firewall", body)
        ids.append(answer["operation"]["id"])
    # Each request sleeps 1 s with its lock held, so without the lock both would read v0.
    log = open(tmp_path / "workers.log", "ab")
    workers = [spawn_worker(app, failpoints="dr.after_desyncs=sleep:1", log=log) for _ in range(2)]
    assert [w.wait(60) for w in workers] == [0, 0], (tmp_path / "workers.log").read_text()
    master = cluster.master("firewall")
    assert master["version"] == 2 and [r["ports"] for r in master["rows"]] == ["7001", "7002"]
    with app.app_context():
        bases = sorted(db.session.get(ListChange, i).base_version for i in ids)
    assert bases == [0, 1]
    assert cluster.converged("firewall", ["n1", "n2"])
    nft = firewall_file(cluster, "n1")
    assert "7001" in nft and "7002" in nft

    ids = [cluster.api("POST", "/firewall", {**RULE, "ports": "7003"})[1]["operation"]["id"],
           cluster.api("POST", "/scheduler", {"schedule": "@daily", "user": "root", "command": "/bin/true"})[1][
               "operation"]["id"]]
    workers = [spawn_worker(app, failpoints="dr.after_desyncs=sleep:2", log=log) for _ in range(2)]
    assert [w.wait(60) for w in workers] == [0, 0], (tmp_path / "workers.log").read_text()
    with app.app_context():
        ops = [db.session.get(Operation, i) for i in ids]
        assert [op.status for op in ops] == ["succeeded", "succeeded"], [op.message for op in ops]
        # Overlapping intervals: each started before the other finished.
        assert ops[0].started_at < ops[1].finished_at and ops[1].started_at < ops[0].finished_at


def test_a_desync_registered_meanwhile_does_not_fail_the_request(cluster, monkeypatch):
    """Another process registers a desync for a target after the request read the registry and before it
    registers its own (the collector finding drift, say): the request goes on, applies everywhere and
    clears it. Before, the duplicate row failed the job and recovery reported "the worker stopped"."""
    from sqlalchemy import create_engine, text

    from app.extensions import db
    from app.services import distributed

    for name in ("n1", "n2"):
        cluster.add(name)
    with cluster.app.app_context():
        url = db.engine.url
    n2, done = cluster.ids["n2"], []

    def meanwhile(values, **kwargs):
        # The request's first sort is of the desyncs it read, before it writes anything.
        if not done:
            done.append(True)
            engine = create_engine(url)
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO desyncs (node_id, list, since, attempts) "
                                  "VALUES (:node, 'firewall', CURRENT_TIMESTAMP, 0)"), {"node": n2})
            engine.dispose()
        return sorted(values, **kwargs)

    monkeypatch.setattr(distributed, "sorted", meanwhile, raising=False)
    operation = cluster.change("firewall", body=RULE)
    assert operation["status"] == "succeeded", operation
    assert {n["node"]: n["outcome"] for n in operation["nodes"]} == {"n1": "applied", "n2": "applied"}
    assert done and cluster.desyncs() == set()


def test_a_deleted_rules_id_is_never_given_again(cluster):
    """A stale page's or client's id must name nothing, never a newer rule: rule 2 deleted, the next rule
    added gets an id past every one given (4, one past the list's version; 2 before); a second delete of 2 is
    refused with 404 and the rules stay."""
    cluster.add("n1")
    for port in (8001, 8002):
        assert cluster.change("firewall", body={**RULE, "ports": str(port)})["status"] == "succeeded"
    assert cluster.change("firewall", "DELETE", row_id=2)["status"] == "succeeded"
    assert cluster.change("firewall", body={**RULE, "ports": "8003"})["status"] == "succeeded"
    assert [(r["id"], r["ports"]) for r in cluster.master("firewall")["rows"]] == [(1, "8001"), (4, "8003")]
    status, answer = cluster.api("DELETE", "/firewall/2")
    assert status == 404 and "2" in answer["error"], answer
    assert [r["id"] for r in cluster.master("firewall")["rows"]] == [1, 4]
