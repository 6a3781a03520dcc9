"""Real faults, not simulated ones: Redis killed and restarted, the web process killed
after answering, the whole panel killed, an agent killed while it applies. Each ends with the
cluster converged: every target's files hold the master's list, no desync is left, the master's
list is the old or the new one and the operation's recorded outcome says which. The module
prints the results as a table (fault × outcome).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import psutil
import pytest
import requests

from tests.conftest import AgentNodes, free_port, listening_on, redis_server_binary, wait_until
from tests.panel import Panel, add_loopback_nodes, new_panel
from tests.system.conftest import firewall_file, spawn_worker
from tests.system.crashmatrix import check_converged, rendered

NODES = ("f1", "f2", "f3")
RESULTS: list[tuple[str, str, str, str]] = []


def rule(port: int) -> dict:
    """A firewall rule that locks nobody out."""
    return {"action": "accept", "protocol": "tcp", "ports": str(port)}


class OwnedRedis:
    """A redis-server this module owns (its port, its dir, appendonly as in production), to kill."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> OwnedRedis:
        """Start it (again, on the same port and dir: the AOF brings the data back)."""
        self.proc = subprocess.Popen(
            [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.workdir),
             "--appendonly", "yes", "--save", "", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_until(listening_on(self.port), 10, what="the owned redis-server to listen")
        return self

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a crash would."""
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def owned_redis(tmp_path):
    """A real redis-server with appendonly, owned by the test."""
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = OwnedRedis(workdir).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(owned_redis):
    """The app, the workers and the queues of this module use the owned Redis."""
    return owned_redis.url


@pytest.fixture(scope="module", autouse=True)
def fault_table(request):
    """Print fault × outcome once the module's tests ran."""
    RESULTS.clear()
    yield
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if not RESULTS:
        return
    # Printed past pytest's capture, as capsys.disabled() does for a function-scoped test.
    with capture.global_and_fixture_disabled():
        print(f"\n\n{'fault':<56}| master after | operation | outcome")
        print(f"{'-' * 56}|--------------|-----------|----------")
        for fault, master, status, outcome in RESULTS:
            print(f"{fault:<56}| {master:<13}| {status:<10}| {outcome}")


def converge(cluster, app, timeout: float = 45) -> None:
    """What the periodic job does (a poll, then a sync round), until no desync is left."""
    from app.services.distributed import list_busy

    def settled():
        with app.app_context():
            if list_busy("firewall"):
                # A dead holder's lock lapses within one lease; the sync job skips the list until then.
                return False
        cluster.poll_and_sync()
        return not cluster.desyncs()

    wait_until(settled, timeout, interval=0.5, what="no desync left")


def submit(cluster, port: int) -> int:
    """Queue a firewall change through the API; returns the operation id."""
    status, answer = cluster.api("POST", "/firewall", rule(port))
    assert status == 202, answer
    return answer["operation"]["id"]


def start_cluster(cluster) -> None:
    """Three loopback nodes holding a first rule."""
    cluster.set_policy(missed_polls=1)
    for name in NODES:
        cluster.add(name)
    assert cluster.change("firewall", body=rule(8000))["status"] == "succeeded"


def outcomes_recorded(app, operation_id: int):
    """A predicate: every node's answer to the request is committed (the worker is past sending)."""
    from app.extensions import db
    from app.models import OperationNode

    def check():
        with app.app_context():
            rows = db.session.scalars(db.select(OperationNode.outcome).where(
                OperationNode.operation_id == operation_id)).all()
            db.session.rollback()
        return len(rows) == len(NODES) and "pending" not in rows

    return check


def test_redis_killed_between_sending_and_committing(cluster, app, owned_redis, tmp_path):
    """Redis SIGKILLed while the job waits between the nodes' answers and the master's commit, then restarted."""
    start_cluster(cluster)
    old = cluster.master("firewall")
    operation_id = submit(cluster, 9301)
    with open(tmp_path / "worker.log", "ab") as log:
        worker = spawn_worker(app, "default", failpoints="dr.before_commit=sleep:4", log=log)
        wait_until(outcomes_recorded(app, operation_id), 30, interval=0.05, what="every node's answer")
        owned_redis.kill()
        # Down for longer than the lease's renewal period (a third of 3 s).
        time.sleep(2)
        owned_redis.start()
        assert worker.wait(60) == 0, (tmp_path / "worker.log").read_text()
    converge(cluster, app)
    facts = check_converged(cluster, app, NODES, operation_id, old)
    master, status = facts["master"], facts["status"]
    RESULTS.append(("redis SIGKILLed between sending and committing", master, status, "converged"))


def test_redis_killed_with_the_job_queued(cluster, app, owned_redis, tmp_path):
    """Redis SIGKILLed right after the API answered 202, restarted: the queued job survives and runs."""
    start_cluster(cluster)
    old = cluster.master("firewall")
    operation_id = submit(cluster, 9302)
    owned_redis.kill()
    owned_redis.start()
    with open(tmp_path / "worker.log", "ab") as log:
        assert spawn_worker(app, "default", log=log).wait(60) == 0
    # Had the kill come before the AOF held the enqueue (everysec), recovery queues it again.
    cluster.sync()
    cluster.run_jobs()
    converge(cluster, app)
    facts = check_converged(cluster, app, NODES, operation_id, old)
    master, status = facts["master"], facts["status"]
    assert master == "new", "the queued job survives, or is queued again: the change must land"
    RESULTS.append(("redis SIGKILLed with the job queued", master, status, "converged"))


def test_agent_killed_mid_apply_is_rolled_back_and_synced(cluster, app, monkeypatch, tmp_path):
    """An agent SIGKILLed with the new files written: restarted, its journal puts the old files
    back, the node keeps its desync and the sync job brings it to the master's list."""
    from agent.failpoints import ENV as AGENT_FAILPOINTS

    start_cluster(cluster)
    victim = cluster.agent(NODES[0])
    victim.stop()
    monkeypatch.setenv(AGENT_FAILPOINTS, "apply.after_write=sleep:30")
    cluster.start(NODES[0])
    monkeypatch.delenv(AGENT_FAILPOINTS)
    old = cluster.master("firewall")
    before = firewall_file(cluster, NODES[0])
    journal = victim.root.parent / "state" / "apply-journal.json"
    operation_id = submit(cluster, 9303)
    with open(tmp_path / "worker.log", "ab") as log:
        worker = spawn_worker(app, "default", log=log)

        def applying():
            return journal.exists() and "9303" in firewall_file(cluster, NODES[0])

        wait_until(applying, 30, interval=0.02, what="the agent to be in the middle of applying")
        victim.proc.kill()
        victim.proc.wait()
        assert worker.wait(60) == 0
    assert (NODES[0], "firewall") in cluster.desyncs()
    cluster.start(NODES[0])
    assert not journal.exists() and firewall_file(cluster, NODES[0]) == before, "the journal restores the old file"
    converge(cluster, app)
    facts = check_converged(cluster, app, NODES, operation_id, old)
    master, status = facts["master"], facts["status"]
    assert (master, status) == ("new", "partial"), "two nodes applied it; the killed one is synchronized"
    RESULTS.append(("agent SIGKILLed mid-apply (files written)", master, status, "converged"))


def test_a_job_abandoned_before_its_first_step_is_queued_again_and_runs_once(cluster, app):
    """What the power cut can leave, made deterministic: RQ took the job and its worker died before
    the request's first step. Recovery queues it again, the change lands once, and the abandoned
    copy, were it to run after all, changes nothing."""
    from datetime import timedelta

    from rq.job import JobStatus

    from app.extensions import db
    from app.jobs.system import distribute_list_change
    from app.models import Operation
    from app.models.base import utcnow
    from app.queues import fetch_job, get_queue
    from app.services.operations import ABANDONED_GRACE_S
    from app.services.sync import recover_interrupted_operations

    start_cluster(cluster)
    operation_id = submit(cluster, 9306)
    with app.app_context():
        abandoned = db.session.get(Operation, operation_id).rq_job_id
        job = fetch_job(abandoned)
        get_queue().remove(job)
        job.set_status(JobStatus.STARTED)
        job.started_at = utcnow() - timedelta(seconds=ABANDONED_GRACE_S + 1)
        job.save()
        assert recover_interrupted_operations() == []
        operation = db.session.get(Operation, operation_id)
        assert operation.status == "queued" and operation.rq_job_id != abandoned
        assert "queued again" in operation.log
    cluster.run_jobs()
    after = cluster.master("firewall")
    assert [r["ports"] for r in after["rows"]] == ["8000", "9306"]
    assert cluster.operation(operation_id)["status"] == "succeeded"
    assert distribute_list_change(operation_id) == "succeeded"
    assert cluster.master("firewall") == after, "the second copy must not apply the change again"


# The whole panel, as `make run` starts it.

def panel_nodes(panel: Panel, tmp_path, monkeypatch) -> AgentNodes:
    """Two loopback agent nodes added to the running panel's database (the local node is the third)."""
    return add_loopback_nodes(panel, tmp_path / "agents", ("w1", "w2"), monkeypatch)


def panel_roots(panel: Panel, nodes: AgentNodes) -> list:
    """Every node's private root: the local node's and the loopback agents'."""
    return [panel.data / "local-node" / "root", *(agent.root for agent in nodes.agents.values())]


def panel_post(panel: Panel, path: str, body: dict) -> requests.Response:
    return requests.post(panel.url + path, json=body, auth=("admin", panel.password), timeout=60)


def panel_converged(panel: Panel, roots: list, operation_id: int):
    """A predicate: the operation finished, no desync, every node's file is the master's list."""

    def check():
        operation = panel.api(f"/api/v1/operations/{operation_id}").json()
        if operation["status"] in ("queued", "running") or panel.api("/api/v1/sync").json()["items"]:
            return None
        master = panel.api("/api/v1/firewall").json()
        for root in roots:
            file = root / "etc/hostfleet/firewall.nft"
            # The local node's agent also closes loopback to hosting accounts (its agent.json says so).
            config = root.parent / "agent.json"
            closed = json.loads(config.read_text()).get("closed_loopback_uids") if config.exists() else None
            if not file.exists() or file.read_text() != rendered(master["items"], closed):
                return None
        return master, operation

    return check


def kill_processes(pids: list[int]) -> None:
    """SIGKILL each process that still exists."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def kill_after_answer(panel: Panel, port: int, power_cut: bool) -> tuple[int, dict]:
    """Submit a firewall change; right after the 202, SIGKILL gunicorn (or every process of the
    panel, as a power cut would). Returns the operation id and the master's list before."""
    old = panel.api("/api/v1/firewall").json()
    answer = panel_post(panel, "/api/v1/firewall", rule(port))
    children = [psutil.Process(pid) for pid in panel.descendants()]
    web = [p.pid for p in children if "gunicorn" in " ".join(p.cmdline())]
    kill_processes(web if not power_cut else [panel.proc.pid, *(p.pid for p in children)])
    assert answer.status_code == 202, answer.text
    assert web, "no gunicorn process found"
    if power_cut:
        panel.proc.wait()
    else:
        panel.stop()
    return answer.json()["operation"]["id"], old


def judge_panel(old: dict, master: dict, operation: dict) -> str:
    """'old' or 'new', checking that the operation's recorded outcome says the same."""
    state = "old" if (master["version"], master["hash"]) == (old["version"], old["hash"]) else "new"
    assert state == "old" or master["version"] == old["version"] + 1
    if state == "new":
        assert operation["status"] in ("succeeded", "partial"), operation
    else:
        assert operation["status"] == "failed" and "unchanged" in operation["message"], operation
    return state


def test_web_process_and_whole_panel_killed_after_answering(tmp_path, monkeypatch):
    """A whole panel (`make run`) with two loopback nodes besides its own: gunicorn SIGKILLed right
    after the 202 and the panel restarted on its data dir, then every process SIGKILLed right after
    a 202 (a power cut) and restarted. Each time the cluster converges."""
    env = {"HOSTFLEET_LIST_LEASE_S": "3"}
    panel = new_panel(tmp_path).start(env=env)
    nodes = panel_nodes(panel, tmp_path, monkeypatch)
    running = panel
    try:
        panel.wait_ready()
        roots = panel_roots(panel, nodes)
        first = panel_post(panel, "/api/v1/firewall", rule(8000)).json()["operation"]["id"]
        wait_until(panel_converged(panel, roots, first), 60, interval=0.3, what="the first rule everywhere")
        for fault, port, power_cut in (("web (gunicorn) SIGKILLed after the 202, panel restarted", 9304, False),
                                       ("whole panel SIGKILLed after the 202, restarted", 9305, True)):
            operation_id, old = kill_after_answer(running, port, power_cut)
            running = Panel(data=panel.data, port=panel.port).start(env=env)
            assert running.password == panel.password
            master, operation = wait_until(panel_converged(running, roots, operation_id), 60, interval=0.5,
                                           what=f"the cluster to converge after: {fault}")
            RESULTS.append((fault, judge_panel(old, master, operation), operation["status"], "converged"))
    finally:
        nodes.stop_all()
        running.stop()
