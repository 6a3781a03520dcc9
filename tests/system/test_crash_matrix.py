"""The crash-point matrix: a worker SIGKILLed at every step of a distributed request and of the
sync job, then a fresh worker; the cluster must converge to the master's list every time.

The node set is a parameter (`make_nodes`): loopback agents here; the lab's Debian nodes plug in
the same way once node setup over SSH lands.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.conftest import wait_until
from tests.system.conftest import spawn_worker
from tests.system.crashmatrix import DR_POINTS, check_converged, check_expected, print_matrix

pytestmark = pytest.mark.slow

NODES = ("c1", "c2", "c3", "c4")


def settle(cluster, app, log):
    """Wait for the dead worker's lease (its lock and its "alive" key) to lapse, then let a fresh
    worker recover and sync."""
    from app.queues import redis_connection
    from app.services.distributed import ALIVE_PREFIX, list_busy

    def free():
        with app.app_context():
            return not list_busy("firewall") and not redis_connection().keys(ALIVE_PREFIX + "*")

    wait_until(free, 30, what="the dead worker's lease to lapse")
    time.sleep(0.2)
    for _ in range(3):
        with app.app_context():
            from app.jobs.system import sync_round
            from app.queues import get_queue

            get_queue().enqueue(sync_round)
        assert spawn_worker(app, "default", log=log).wait(60) == 0
        if not cluster.desyncs():
            break


def submit(cluster, port: int) -> int:
    """Queue a firewall change through the API; returns the operation id."""
    status, answer = cluster.api("POST", "/firewall", {"action": "accept", "protocol": "tcp", "ports": str(port)})
    assert status == 202
    return answer["operation"]["id"]


def run_dr_cell(cluster, app, nodes, point: str, port: int, log, simple: bool = True) -> dict:
    """Kill the worker at a failpoint of the distributed request, then converge.

    simple: the worker runs the job itself and dies; otherwise RQ's forked work horse dies and
    the worker process survives it (RQ marks the job failed; the operation is still `running`).
    """
    old = cluster.master("firewall")
    operation_id = submit(cluster, port)
    worker = spawn_worker(app, "default", failpoints=f"{point}=kill", log=log, simple=simple)
    code = worker.wait(60)
    if simple:
        assert code == -signal.SIGKILL, f"the worker was not killed at {point}"
    else:
        assert code != -signal.SIGKILL, "the forking worker outlives its work horse"
    settle(cluster, app, log)
    return check_converged(cluster, app, nodes, operation_id, old)


def run_sync_cell(cluster, app, nodes, port: int, log) -> dict:
    """A node misses a change; the sync job is killed after it pushed and the node confirmed."""
    old = cluster.master("firewall")
    cluster.stop(nodes[-1])
    operation_id = submit(cluster, port)
    assert spawn_worker(app, "default", log=log).wait(60) == 0
    cluster.start(nodes[-1])
    with app.app_context():
        from app.jobs.system import sync_round
        from app.queues import get_queue

        get_queue().enqueue(sync_round)
    worker = spawn_worker(app, "default", failpoints="sync.after_push=kill", log=log)
    assert worker.wait(60) == -signal.SIGKILL
    assert (nodes[-1], "firewall") in cluster.desyncs(), "killed before the clear: the desync must still be there"
    settle(cluster, app, log)
    return check_converged(cluster, app, nodes, operation_id, old)


def run_agent_kill_cell(cluster, app, nodes, port: int, log) -> dict:
    """An agent SIGKILLed while it applies the list (its reload takes 2 s); restarted, it converges."""
    old = cluster.master("firewall")
    victim = cluster.agent(nodes[0])
    (victim.root.parent / "slow").touch()
    operation_id = submit(cluster, port)
    worker = spawn_worker(app, "default", log=log)

    def applying():
        return os.path.exists(victim.root.parent / "reloading")

    wait_until(applying, 30, interval=0.02, what="the agent to start applying")
    victim.proc.kill()
    victim.proc.wait()
    assert worker.wait(60) == 0
    os.unlink(victim.root.parent / "reloading")
    os.unlink(victim.root.parent / "slow")
    cluster.start(nodes[0])
    cluster.collect()
    settle(cluster, app, log)
    return check_converged(cluster, app, nodes, operation_id, old)


def test_crash_point_matrix(cluster, app, tmp_path, capsys):
    """Every failpoint × SIGKILL → converged; the matrix is printed."""
    cluster.set_policy(missed_polls=1)
    for name in NODES:
        home = cluster.agent_nodes.base / name
        # The first node's firewall reload turns slow on demand, so the agent can be killed in the middle of it.
        script = f"if [ -e {home}/slow ]; then touch {home}/reloading; sleep 2; fi"
        reload = {"firewall": ["/bin/sh", "-c", script]} if name == NODES[0] else None
        cluster.add(name, reload_commands=reload)
    log = open(tmp_path / "workers.log", "ab")
    first = cluster.change("firewall", body={"action": "accept", "protocol": "tcp", "ports": "8000"})
    assert first["status"] == "succeeded"

    table = []
    for port, point in enumerate(DR_POINTS, start=9001):
        facts = run_dr_cell(cluster, app, NODES, point, port, log)
        table.append((point, facts))
    for port, point in enumerate(("dr.after_some_sent", "dr.after_commit"), start=9050):
        table.append((f"{point} (forked horse)", run_dr_cell(cluster, app, NODES, point, port, log, simple=False)))
    table.append(("sync.after_push", run_sync_cell(cluster, app, NODES, 9100, log)))
    table.append(("agent killed mid-apply", run_agent_kill_cell(cluster, app, NODES, 9200, log)))

    print_matrix(table, capsys)
    check_expected(table)
