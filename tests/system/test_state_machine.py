"""Property test: the distributed request and the sync job against a model.

A hypothesis state machine drives three real agent processes on loopback and the real Redis:
changes to the firewall and scheduler lists through the service the API calls, agents stopped
(a cut) and started, requests crashed at a random failpoint, sync rounds (some crashed too).
After every step the master holds exactly what the model says; after every run (all agents up,
sync rounds until no desync is left) every node's files equal the master's list.

Crashes are in-process: the failpoint raises (`HOSTFLEET_FAILPOINTS=<point>=raise`) inside a real
RQ SimpleWorker running the real job. A SIGKILLed worker process (as test_crash_matrix.py does)
costs a process start and a lease expiry, several seconds a crash, which would allow only a
handful of crashes in the time budget. What the raise leaves behind is what a kill leaves: the
transaction in progress is rolled back, the operation stays `running`, ListChange.committed says
which list the master holds and the desyncs say which node may differ. Two differences, both
covered by the crash matrix instead: the lock and alive key are released at once (a kill lets
them lapse), and the pushes already in flight finish (a kill may cut them, one of the outcomes
a raise can also give).
"""

from __future__ import annotations

import json
import os
import time

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from agent.ops import cron, firewall
from app.failpoints import ENV, POINTS
from tests.conftest import run_worker_burst
from tests.system.conftest import cron_file, firewall_file

NODES = ("p1", "p2", "p3")
LIST_NAMES = ("firewall", "scheduler")
DR_POINTS = sorted(p for p in POINTS if p.startswith("dr."))
# Sync rounds allowed at the end of a run before "did not converge" is a failure.
FINAL_ROUNDS = 6
MAX_EXAMPLES = int(os.environ.get("HOSTFLEET_PROPERTY_EXAMPLES", "8"))
STEPS = int(os.environ.get("HOSTFLEET_PROPERTY_STEPS", "10"))
# Shrinking replays runs against real processes for many minutes (past the suite's per-test
# timeout); a failure prints its steps unshrunk unless HOSTFLEET_PROPERTY_SHRINK=1.
PHASES = [Phase.explicit, Phase.generate] + ([Phase.shrink] if os.environ.get("HOSTFLEET_PROPERTY_SHRINK") else [])

FIREWALL_ROWS = st.fixed_dictionaries({
    "action": st.sampled_from(["accept", "drop"]),
    "protocol": st.sampled_from(["tcp", "udp"]),
    # Far below the agents' ephemeral ports, so a drop never locks the master out.
    "ports": st.integers(1000, 1999).map(str),
    "source": st.sampled_from(["", "198.51.100.0/24"]),
    "comment": st.sampled_from(["", "web", "db"]),
})
SCHEDULER_ROWS = st.fixed_dictionaries({
    "schedule": st.sampled_from(["*/5 * * * *", "0 3 * * *", "@daily"]),
    "user": st.just("root"),
    "command": st.integers(0, 99).map(lambda n: f"/usr/bin/true {n}"),
    "comment": st.sampled_from(["", "nightly"]),
    "enabled": st.booleans(),
})


def rendered(name: str, rows: list[dict]) -> str:
    """The file an agent writes for a list's rows."""
    if name == "firewall":
        return firewall.render([firewall.validate_row(r) for r in rows]).decode()
    return cron.render([cron.validate_row(r, {"root"}) for r in rows]).decode()


def node_file(cluster, node: str, name: str) -> str:
    """The list's file as it is under the node's private root."""
    return firewall_file(cluster, node) if name == "firewall" else cron_file(cluster, node)


class DistributedModel(RuleBasedStateMachine):
    """The model: per list the rows and version the master must hold, and which agents run."""

    cluster = None
    app = None
    log: list[str] = []

    def __init__(self):
        super().__init__()
        self.lists = {name: self.cluster.master(name) for name in LIST_NAMES}
        self.up = {node: True for node in NODES}

    def _node_states(self) -> dict[str, tuple[str, bool]]:
        """Each node's state as the master recorded it (an input of the request, not its output)."""
        from app.extensions import db
        from app.models import Node

        with self.app.app_context():
            rows = db.session.execute(db.select(Node.name, Node.state, Node.maintenance)).all()
            db.session.rollback()
        return {name: (state, maintenance) for name, state, maintenance in rows}

    def _expect_commit(self, crash: str | None) -> bool:
        """What the master must hold after the request: True for the new list.

        Sent to nodes the master records as ready or syncing; confirmed by those whose agent
        runs; refused when fewer than the policy's 50% are ready. A crash before the commit
        leaves the old list, after it the new one; a failpoint the run does not reach is no crash.
        """
        states = self._node_states()
        ready = [n for n in NODES if states[n][0] in ("ready", "syncing") and not states[n][1]]
        confirmers = [n for n in ready if self.up[n]]
        passes = len(ready) * 100 >= 50 * len(NODES)
        reached = {
            None: False,
            "dr.before_lock": True,
            "dr.after_lock": True,
            "dr.after_desyncs": passes,
            "dr.after_some_sent": passes and bool(ready),
            "dr.after_confirm": passes and bool(confirmers),
            "dr.before_commit": passes,
            "dr.after_commit": passes and bool(confirmers),
        }[crash]
        if reached:
            return crash == "dr.after_commit"
        return passes and bool(confirmers)

    def _request(self, name: str, action: str, row: dict | None, row_id: int | None, crash: str | None):
        """Submit a change through the API's service, run its job in a real worker, check old/new."""
        from app.extensions import db
        from app.models import Operation
        from app.services import distributed, lists

        old = self.lists[name]
        new_rows = lists.apply_change(name, old["rows"], action, row_id, row, old["version"])
        commit = self._expect_commit(crash)
        with self.app.app_context():
            operation = distributed.request_change(name, action, row, row_id=row_id, user_id=None)
            operation_id = operation.id
        os.environ[ENV] = f"{crash}=raise" if crash else ""
        try:
            run_worker_burst(self.app, queues=("default",))
        finally:
            os.environ.pop(ENV, None)
        master = self.cluster.master(name)
        held = [master[k] for k in ("version", "rows")]
        assert held in ([old["version"], old["rows"]], [old["version"] + 1, new_rows]), "neither old nor new"
        if commit:
            self.lists[name] = {"version": old["version"] + 1, "rows": new_rows}
        self.log.append(f"{action} {name} crash={crash} -> {'new' if commit else 'old'}")
        if crash is None:
            with self.app.app_context():
                status = db.session.get(Operation, operation_id).status
                db.session.rollback()
            assert (status in ("succeeded", "partial")) == commit, (status, commit)

    @rule(name=st.sampled_from(LIST_NAMES), data=st.data(), crash=st.none() | st.sampled_from(DR_POINTS))
    def add_row(self, name, data, crash):
        """Add a row (firewall rule or scheduler entry), maybe crashing at a failpoint."""
        row = data.draw(FIREWALL_ROWS if name == "firewall" else SCHEDULER_ROWS, label="row")
        self._request(name, "add", row, None, crash)

    @rule(name=st.sampled_from(LIST_NAMES), pick=st.integers(0, 10**6),
          crash=st.none() | st.sampled_from(DR_POINTS))
    def delete_row(self, name, pick, crash):
        """Delete one of the list's rows, maybe crashing at a failpoint."""
        rows = self.lists[name]["rows"]
        if not rows:
            return
        self._request(name, "delete", None, rows[pick % len(rows)]["id"], crash)

    @precondition(lambda self: sum(self.up.values()) > 1)
    @rule(node=st.sampled_from(NODES))
    def cut(self, node):
        """Stop a node's agent (one always stays up: a property test of total outages is not the point)."""
        if self.up[node]:
            self.cluster.stop(node)
            self.up[node] = False
            self.log.append(f"cut {node}")

    @rule(node=st.sampled_from(NODES))
    def heal(self, node):
        """Start a stopped agent again."""
        if not self.up[node]:
            self.cluster.start(node)
            self.up[node] = True
            self.log.append(f"heal {node}")

    @rule(crash=st.booleans())
    def sync_round(self, crash):
        """The periodic job: one poll, then one sync round (crashed after a confirmed push, maybe)."""
        from app.failpoints import FailpointHit

        self.cluster.collect()
        os.environ[ENV] = "sync.after_push=raise" if crash else ""
        try:
            self.cluster.sync()
        except FailpointHit:
            pass
        finally:
            os.environ.pop(ENV, None)
        self.log.append(f"sync crash={crash}")

    @invariant()
    def master_matches_model(self):
        """The master holds exactly the model's lists (old or new of the last change, as predicted)."""
        for name in LIST_NAMES:
            master = self.cluster.master(name)
            assert [master["version"], master["rows"]] == [self.lists[name]["version"], self.lists[name]["rows"]], name

    @invariant()
    def a_node_that_differs_has_a_desync(self):
        """The distributed request's invariant, read from the nodes' files: a node whose list (the file under its root,
        or the version and hash its agent recorded) differs from the master's has a desync for it.
        Checked without polling, so the collector's drift detection cannot mend a lost desync."""
        desyncs = self.cluster.desyncs()
        for name in LIST_NAMES:
            master = self.cluster.master(name)
            for node in NODES:
                state = json.loads((self.cluster.root(node).parent / "state" / "lists.json").read_text())
                same = (node_file(self.cluster, node, name) == rendered(name, master["rows"])
                        and state.get(name) == {"version": master["version"], "hash": master["hash"]})
                assert same or (node, name) in desyncs, f"{node} differs from the master's {name} without a desync"

    def teardown(self):
        """Every agent up, sync until no desync is left (bounded), then every node holds the master's lists."""
        for node in NODES:
            self.heal(node)
        for _ in range(FINAL_ROUNDS):
            self.cluster.collect()
            with self.app.app_context():
                from app.services.sync import run_sync

                # The back-off would make a bounded wait depend on the clock; "retry now" for every row.
                run_sync(force=True)
            if not self.cluster.desyncs():
                break
        assert self.cluster.desyncs() == set(), "desyncs left after the final sync rounds"
        for name in LIST_NAMES:
            master = self.cluster.master(name)
            for node in NODES:
                assert node_file(self.cluster, node, name) == rendered(name, master["rows"]), (node, name)
                held = self.cluster.held(node, name)
                assert (held["version"], held["hash"]) == (master["version"], master["hash"]), (node, name)
        self._check_operations()

    def _check_operations(self):
        """Every request is finished, and its status says what the master committed."""
        from app.extensions import db
        from app.models import ListChange, Operation

        with self.app.app_context():
            for operation in db.session.scalars(db.select(Operation).where(Operation.kind == "list_change")):
                change = db.session.get(ListChange, operation.id)
                committed = bool(change and change.committed)
                finished = ("succeeded", "partial", "failed", "refused")
                assert operation.status in finished, (operation.id, operation.status)
                assert (operation.status in ("succeeded", "partial")) == committed, (operation.id, operation.message)
            db.session.rollback()


def test_requests_cuts_and_crashes_converge_to_the_model(cluster, app, capsys):
    """Random changes, cuts, heals, crashes and sync rounds: the master follows the model, the nodes converge."""
    for node in NODES:
        cluster.add(node)
    # A stopped agent shows as unavailable after one missed poll, so the pre-check sees cuts.
    cluster.set_policy(missed_polls=1)
    # Every node starts with both files written (an agent that never got a list has no file).
    first_rule = {"action": "accept", "protocol": "tcp", "ports": "22"}
    first_entry = {"schedule": "@hourly", "user": "root", "command": "/bin/true"}
    assert cluster.change("firewall", body=first_rule)["status"] == "succeeded"
    assert cluster.change("scheduler", body=first_entry)["status"] == "succeeded"
    DistributedModel.cluster, DistributedModel.app, DistributedModel.log = cluster, app, []
    started = time.monotonic()
    try:
        run_state_machine_as_test(DistributedModel, settings=settings(
            max_examples=MAX_EXAMPLES, stateful_step_count=STEPS, derandomize=True, database=None,
            deadline=None, phases=PHASES,
            suppress_health_check=list(HealthCheck),
        ))
    finally:
        steps = DistributedModel.log
        with capsys.disabled():
            crashes = sum("crash=dr." in s or "crash=True" in s for s in steps)
            print(f"\nstate machine: {MAX_EXAMPLES} runs, {len(steps)} steps ({crashes} crashed, "
                  f"{sum(s.startswith('cut') for s in steps)} cuts) in {time.monotonic() - started:.1f} s")

