"""In the lab: four Debian nodes added over SSH through the API, then every claim of docs/distributed-requests.md
shown with each node's lists read back from the node itself (`nft list table inet hostfleet`, the files
the agent writes), never from the master's database.

The panel runs as `make run` starts it, with a short poll interval and lease so the module stays quick.
Scenarios that need their own workers (serialization, the crash matrix) come last: they stop the
runner from restarting its default worker and run workers with failpoints armed instead.
"""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import datetime

import pytest

from app.services.sync import SYNC_INTERVAL_S
from tests.cluster.labpanel import LabPanel, reset
from tests.conftest import wait_until
from tests.system.crashmatrix import DR_POINTS, check_expected, judge, print_matrix, rendered

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

POLL_S = 2
AGENT_TIMEOUT_S = 3
LEASE_S = 3
ROLES = {"lc1": ["mail"], "lc2": ["mail"], "lc3": [], "lc4": []}
NFT_FILE = "/etc/hostfleet/firewall.nft"
CRON_FILE = "/etc/cron.d/hostfleet"
WHITELIST = "/etc/exim4/hostfleet/whitelist"
OWNER_UNIT = "hostfleet-test-nft-owner"
# A process that owns `table inet hostfleet` (nft's `flags owner`): the kernel refuses any other
# process's change to that table, as it would for a table another firewall tool manages.
OWN_TABLE = (
    f"systemd-run --unit={OWNER_UNIT} /bin/sh -c "
    "\"(printf 'delete table inet hostfleet\\nadd table inet hostfleet { flags owner; }\\n'; exec sleep 3600)"
    " | nft -i\""
)


def rule(port: int) -> dict:
    """An accept rule for one TCP port (each scenario uses its own ports)."""
    return {"action": "accept", "protocol": "tcp", "ports": str(port), "source": "", "comment": f"lab {port}"}


CRON = {"schedule": "17 3 * * *", "user": "root", "command": "/usr/bin/true lab-cron", "comment": "lab"}


class LabCluster:
    """The panel, its four lab nodes, and read-backs from the nodes themselves."""

    def __init__(self, panel: LabPanel, nodes: dict, ids: dict[str, int], local_id: int):
        self.panel = panel
        self.nodes = nodes
        self.ids = ids
        self.local_id = local_id

    def api(self, method: str, path: str, body=None) -> tuple[int, dict]:
        """Call /api/v1 as the admin; (status, json)."""
        response = self.panel.request(method, f"/api/v1{path}", body)
        return response.status_code, (response.json() if response.content else {})

    def submit(self, path: str, body=None, method: str = "POST") -> int:
        """Queue a list change; returns its operation id."""
        status, answer = self.api(method, f"/{path}", body)
        assert status == 202, (status, answer)
        return answer["operation"]["id"]

    def change(self, path: str, body=None, method: str = "POST") -> dict:
        """Submit a change and wait until its operation finished."""
        return self.panel.wait_operation(self.submit(path, body, method), timeout=120)

    def master(self, path: str) -> dict:
        """The master's list as the API shows it: {items, version, hash}."""
        status, body = self.api("GET", f"/{path}")
        assert status == 200
        return body

    def desyncs(self) -> set[tuple[str, str]]:
        """(node, list) of every row of the sync registry (GET /api/v1/sync)."""
        return {(r["node"], r["list"]) for r in self.api("GET", "/sync")[1]["items"]}

    def registry(self) -> list[dict]:
        """The sync registry's rows."""
        return self.api("GET", "/sync")[1]["items"]

    def operation_final(self, operation_id: int) -> dict | None:
        """The operation once it is no longer queued or running."""
        operation = self.panel.operation(operation_id)
        return operation if operation["status"] not in ("queued", "running") else None

    def state(self, name: str) -> str:
        """The node's state as the API shows it."""
        return self.panel.node(self.ids[name])["state"]

    def wait_state(self, name: str, states, timeout: float = 60) -> dict:
        """Wait until the node is in one of the states."""
        return self.panel.wait_state(self.ids[name], states, timeout=timeout, interval=0.2)

    def file(self, name: str, path: str) -> str:
        """A file as the node holds it ('' when missing); `local` is the master's own node."""
        if name == "local":
            local = self.panel.data / "local-node" / "root" / path.lstrip("/")
            return local.read_text() if local.exists() else ""
        return self.nodes[name].exec(["cat", path], check=False).stdout

    def nft(self, name: str) -> str:
        """`nft list table inet hostfleet` in the node's kernel."""
        return self.nodes[name].exec("nft list table inet hostfleet", check=False).stdout

    def nft_ports(self, name: str) -> list[str]:
        """The ports of the loaded rules, in order."""
        return [re.sub(r"[{} ]", "", m) for m in re.findall(r"dport (\{[^}]*\}|\S+)", self.nft(name))]

    def firewall_held(self, rows: list[dict]) -> dict[str, bool]:
        """Per target: the node's file is what the agent renders for these rows, and its kernel loaded it."""
        expected_file, ports = rendered(rows), [r["ports"].replace(" ", "") for r in rows]
        # The master's own node also closes loopback to hosting accounts (its agent.json says so).
        config = self.panel.data / "local-node" / "agent.json"
        closed = json.loads(config.read_text()).get("closed_loopback_uids") if config.exists() else None
        held = {"local": self.file("local", NFT_FILE) == rendered(rows, closed)}
        for name in self.nodes:
            held[name] = self.file(name, NFT_FILE) == expected_file and self.nft_ports(name) == ports
        return held

    def converged(self) -> bool:
        """No desync anywhere and every target holds the master's firewall list in its file and kernel."""
        return not self.desyncs() and all(self.firewall_held(self.master("firewall")["items"]).values())

    def cut(self, *names: str) -> None:
        """Cut the nodes' links and wait until the collector marks them unavailable."""
        for name in names:
            self.nodes[name].cut()
        for name in names:
            self.wait_state(name, "unavailable", timeout=POLL_S * 2 + AGENT_TIMEOUT_S + 30)

    def heal(self, *names: str) -> None:
        """Bring the links back (nothing else: the cluster must converge by itself)."""
        for name in names:
            self.nodes[name].heal()


@pytest.fixture(scope="module")
def cluster(lab_nodes, tmp_path_factory):
    """A panel with four lab nodes (two with role mail) added in parallel through the API, all ready."""
    from tests.lab.lab import Lab

    started = time.monotonic()
    nodes = dict(zip(ROLES, lab_nodes(4), strict=True))
    threads = [threading.Thread(target=reset, args=(node,)) for node in nodes.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    panel = LabPanel(tmp_path_factory.mktemp("labcluster"), Lab().repo_line, workers=4, poll_interval_s=POLL_S,
                     missed_polls=1, env={"HOSTFLEET_LIST_LEASE_S": str(LEASE_S),
                                          "AGENT_TIMEOUT_S": str(AGENT_TIMEOUT_S)}).start()
    try:
        answers = {}

        def add(name):
            answers[name] = panel.add(nodes[name], name, roles=ROLES[name])

        threads = [threading.Thread(target=add, args=(name,)) for name in nodes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for answer in answers.values():
            assert answer.status_code == 202, answer.text
        ids = {name: answer.json()["node"]["id"] for name, answer in answers.items()}
        for node_id in ids.values():
            panel.wait_state(node_id, "ready", timeout=900)
        local_id = next(n["id"] for n in panel.request("GET", "/api/v1/nodes").json()["items"] if n["is_local"])
        print(f"\nlab cluster: 4 nodes added over SSH and ready in {time.monotonic() - started:.0f} s")
        yield LabCluster(panel, nodes, ids, local_id)
    finally:
        for node in nodes.values():
            node.exec(f"systemctl stop {OWNER_UNIT}", check=False)
            if node.is_cut():
                node.heal()
        panel.stop()


def test_one_node_cut_applied_on_the_others_then_converges_without_a_click(cluster, capsys):
    """lc4 cut: a firewall rule is applied everywhere else, lc4 keeps a desync; healed, it converges by itself."""
    cluster.cut("lc4")
    operation = cluster.change("firewall", rule(8101))
    assert operation["status"] == "partial", operation
    outcomes = {n["node"]: n for n in operation["nodes"]}
    assert {k: v["outcome"] for k, v in outcomes.items()} == {
        "local": "applied", "lc1": "applied", "lc2": "applied", "lc3": "applied", "lc4": "unavailable"}
    assert "not sent: the node is unavailable" in outcomes["lc4"]["error"]
    assert "applied on 4 of 5 nodes" in operation["message"]
    assert "unavailable on lc4" in operation["message"] and "synchronized later" in operation["message"]
    assert cluster.desyncs() == {("lc4", "firewall")}, (
        cluster.nft_ports("lc4"), cluster.panel.sql("SELECT at, to_state, reason FROM node_state_changes "
                                                    "WHERE node_id = ?", (cluster.ids["lc4"],)))
    assert [d["list"] for d in cluster.panel.node(cluster.ids["lc4"])["desyncs"]] == ["firewall"]
    for name in ("lc1", "lc2", "lc3"):
        assert "8101" in cluster.nft_ports(name), name
        assert "tcp dport { 8101 } accept" in cluster.file(name, NFT_FILE)
    assert "8101" not in cluster.nft_ports("lc4") and "8101" not in cluster.file("lc4", NFT_FILE)

    healed = time.monotonic()
    cluster.heal("lc4")
    wait_until(lambda: "8101" in cluster.nft_ports("lc4") and not cluster.desyncs(), 60, interval=0.1,
               what="lc4 to converge after the heal")
    elapsed = time.monotonic() - healed
    cluster.wait_state("lc4", "ready", timeout=10)
    assert cluster.converged()
    with capsys.disabled():
        print(f"\nheal → converged (lc4's kernel holds the rule, no desync): {elapsed:.1f} s "
              f"(poll interval {POLL_S} s, sync interval {SYNC_INTERVAL_S} s, agent timeout {AGENT_TIMEOUT_S} s)")
    # Two poll intervals, plus one poll that was already waiting on the cut link when it healed.
    assert elapsed <= 2 * POLL_S + AGENT_TIMEOUT_S + 1, elapsed


def test_all_targets_cut_refused_then_failed_with_policy_zero(cluster):
    """Every whitelist target unreachable (lc1, lc2 cut, the master's own node in maintenance): refused with
    both numbers; at 0 % the request fails and the master's list and the nodes' exim files stay as they were."""
    before = cluster.master("mail/whitelist")
    files = {n: cluster.file(n, WHITELIST) for n in ("lc1", "lc2")}
    assert cluster.api("PATCH", f"/nodes/{cluster.local_id}", {"maintenance": True})[0] == 200
    try:
        cluster.cut("lc1", "lc2")
        refused = cluster.change("mail/whitelist", {"sender": "partner.example"})
        assert refused["status"] == "refused", refused
        assert "0 of 3 target nodes are ready (0%)" in refused["message"]
        assert "requires at least 50%" in refused["message"]
        assert cluster.master("mail/whitelist") == before and cluster.desyncs() == set()

        assert cluster.api("PUT", "/policies", {"min_ready_percent": 0})[0] == 200
        failed = cluster.change("mail/whitelist", {"sender": "partner.example"})
        assert failed["status"] == "failed", failed
        assert {n["node"]: n["outcome"] for n in failed["nodes"]} == {
            "local": "unavailable", "lc1": "unavailable", "lc2": "unavailable"}
        assert all(n["error"].startswith("not sent: the node is") for n in failed["nodes"])
        assert f"the master's list is unchanged (v{before['version']})" in failed["message"]
        assert cluster.master("mail/whitelist") == before
        assert {n: cluster.file(n, WHITELIST) for n in ("lc1", "lc2")} == files
        assert cluster.desyncs() == set(), "nothing was sent: no node needs a re-sync"
    finally:
        cluster.api("PUT", "/policies", {"min_ready_percent": 50})
        cluster.api("PATCH", f"/nodes/{cluster.local_id}", {"maintenance": False})
        cluster.heal("lc1", "lc2")
    cluster.wait_state("lc1", "ready")
    cluster.wait_state("lc2", "ready")
    applied = cluster.change("mail/whitelist", {"sender": "partner.example"})
    assert applied["status"] == "succeeded", applied
    assert sorted(n["node"] for n in applied["nodes"]) == ["lc1", "lc2", "local"]
    for name in ("lc1", "lc2"):
        assert cluster.file(name, WHITELIST).splitlines() == ["*@partner.example"]
    assert cluster.file("lc3", WHITELIST) == "", "mail lists go to mail nodes only"


def test_one_failing_list_does_not_stop_the_nodes_other_lists(cluster):
    """lc3's nft refuses the firewall (another process owns the table): the firewall fails there and backs
    off, while the scheduler change and a scheduler repair still land on lc3."""
    lc3 = cluster.nodes["lc3"]
    lc3.exec(OWN_TABLE)
    try:
        wait_until(lambda: "flags owner" in cluster.nft("lc3"), 10, what="the owned table on lc3")
        firewall = cluster.change("firewall", rule(8401))
        assert firewall["status"] == "partial", firewall
        outcomes = {n["node"]: n for n in firewall["nodes"]}
        assert outcomes["lc3"]["outcome"] == "failed"
        assert "Operation not permitted" in outcomes["lc3"]["error"], outcomes["lc3"]["error"]
        assert all(o["outcome"] == "applied" for n, o in outcomes.items() if n != "lc3")
        assert "8401" not in cluster.file("lc3", NFT_FILE), "the agent put its previous file back"

        scheduler = cluster.change("scheduler", CRON)
        assert scheduler["status"] == "succeeded", scheduler
        assert {n["outcome"] for n in scheduler["nodes"]} == {"applied"}
        good_cron = cluster.file("lc3", CRON_FILE)
        assert "17 3 * * * root /usr/bin/true lab-cron" in good_cron

        def firewall_backing_off():
            rows = [r for r in cluster.registry() if (r["node"], r["list"]) == ("lc3", "firewall")]
            return rows[0] if rows and rows[0]["attempts"] >= 1 and rows[0]["next_try_at"] else None

        row = wait_until(firewall_backing_off, 30, interval=0.2, what="the sync job to retry lc3's firewall")
        assert "Operation not permitted" in row["last_error"]
        # The scheduler drifts on lc3 while its firewall keeps failing: the sync job still repairs it.
        lc3.exec(f"echo '* * * * * root /bin/false tampered' >> {CRON_FILE}")
        wait_until(lambda: cluster.file("lc3", CRON_FILE) == good_cron
                   and ("lc3", "scheduler") not in cluster.desyncs(), 30, interval=0.2,
                   what="lc3's scheduler to be repaired")
        assert ("lc3", "firewall") in cluster.desyncs() and cluster.state("lc3") == "syncing"
    finally:
        lc3.exec(f"systemctl stop {OWNER_UNIT}", check=False)
    status, answer = cluster.api("POST", f"/nodes/{cluster.ids['lc3']}/sync", {"lists": ["firewall"]})
    assert status == 202, answer
    assert cluster.panel.wait_operation(answer["operation"]["id"], timeout=60)["status"] == "succeeded"
    wait_until(cluster.converged, 30, interval=0.2, what="lc3's firewall to converge")
    assert "8401" in cluster.nft_ports("lc3")


def test_drift_on_cron_and_firewall_is_detected_and_repaired(cluster):
    """`nft flush table inet hostfleet` on lc1, a hand edit of lc2's cron file: the collector registers the
    drift and the sync job puts both back, read from the nodes."""
    wait_until(cluster.converged, 30, interval=0.2, what="a converged cluster")
    for name in cluster.nodes:
        cluster.wait_state(name, "ready")
    good_nft, good_cron = cluster.nft("lc1"), cluster.file("lc2", CRON_FILE)
    assert "8101" in good_nft and "lab-cron" in good_cron
    last = cluster.panel.sql("SELECT COALESCE(MAX(id), 0) FROM node_state_changes")[0][0]
    seen: set[tuple[str, str]] = set()
    cluster.nodes["lc1"].exec("nft flush table inet hostfleet")
    cluster.nodes["lc2"].exec(f"sed -i 's/^17 3/*\\/5 */' {CRON_FILE}")
    assert "dport" not in cluster.nft("lc1") and "*/5 * * * * root" in cluster.file("lc2", CRON_FILE)

    def repaired():
        seen.update((r["node"], r["list"]) for r in cluster.registry() if "drift" in (r["last_error"] or ""))
        return (cluster.nft("lc1") == good_nft and cluster.file("lc2", CRON_FILE) == good_cron
                and not cluster.desyncs() and cluster.state("lc1") == cluster.state("lc2") == "ready")

    wait_until(repaired, 60, interval=0.1, what="the drift to be repaired")
    history = cluster.panel.sql("SELECT n.name, c.to_state, c.reason FROM node_state_changes c JOIN nodes n "
                                "ON n.id = c.node_id WHERE c.id > ? ORDER BY c.id", (last,))
    assert ("lc1", "syncing", "the agent answers; waiting for synchronizers: firewall") in history, history
    assert ("lc2", "syncing", "the agent answers; waiting for synchronizers: scheduler") in history, history
    assert seen <= {("lc1", "firewall"), ("lc2", "scheduler")}
    assert cluster.converged()


def own_workers(cluster: LabCluster) -> None:
    """From here on only the test's workers take jobs: the runner may not restart its default worker."""
    if not getattr(cluster, "owned", False):
        cluster.panel.pause_restarts()
        cluster.owned = True
    cluster.panel.kill_default_workers()
    wait_until(lambda: all(p.poll() is not None for p in cluster.panel.workers), 10, what="the workers to die")


def _when(stamp: str) -> datetime:
    """An API timestamp."""
    return datetime.fromisoformat(stamp)


def test_same_list_serialized_different_lists_in_parallel(cluster, capsys):
    """Two firewall changes at once take turns (v+1 then v+2, both rules kept, in that order on every node);
    a firewall and a scheduler change at once overlap in time."""
    own_workers(cluster)
    base = cluster.master("firewall")
    ids = [cluster.submit("firewall", rule(8301)), cluster.submit("firewall", rule(8302))]
    # Each request sleeps 1 s holding its lock: without the lock both would start from the same version.
    workers = [cluster.panel.start_worker("dr.after_desyncs=sleep:1", burst=True, simple=True) for _ in range(2)]
    assert [w.wait(120) for w in workers] == [0, 0]
    ops = [cluster.panel.wait_operation(i, timeout=30) for i in ids]
    assert [op["status"] for op in ops] == ["succeeded", "succeeded"], ops
    serial_span = (max(_when(op["finished_at"]) for op in ops) - min(_when(op["started_at"]) for op in ops))
    assert serial_span.total_seconds() >= 2, "each held the lock for 1 s, one after the other"
    bases = dict(cluster.panel.sql(f"SELECT operation_id, base_version FROM list_changes WHERE operation_id IN "
                                   f"({ids[0]}, {ids[1]})"))
    assert sorted(bases.values()) == [base["version"], base["version"] + 1]
    order = [str(8301 + ids.index(op_id)) for op_id in sorted(bases, key=bases.get)]
    master = cluster.master("firewall")
    assert master["version"] == base["version"] + 2
    assert [r["ports"] for r in master["items"]][-2:] == order
    for name in cluster.nodes:
        assert cluster.nft_ports(name)[-2:] == order, name

    ids = [cluster.submit("firewall", rule(8303)), cluster.submit("scheduler", {**CRON, "command": "/bin/true par"})]
    # Each holds its list's lock 3 s: one after the other they would take at least 6 s in all.
    workers = [cluster.panel.start_worker("dr.after_desyncs=sleep:3", burst=True, simple=True) for _ in range(2)]
    assert [w.wait(120) for w in workers] == [0, 0]
    ops = [cluster.panel.wait_operation(i, timeout=30) for i in ids]
    assert [op["status"] for op in ops] == ["succeeded", "succeeded"], ops
    starts, ends = [_when(op["started_at"]) for op in ops], [_when(op["finished_at"]) for op in ops]
    overlap = (min(ends) - max(starts)).total_seconds()
    span = (max(ends) - min(starts)).total_seconds()
    with capsys.disabled():
        print(f"\nsame list: both done {serial_span.total_seconds():.2f} s after the first started (1 s hold each); "
              f"firewall {starts[0].time()}–{ends[0].time()}, scheduler {starts[1].time()}–{ends[1].time()}: "
              f"overlap {overlap:.2f} s, both done in {span:.2f} s (3 s hold each)")
    assert overlap > 0 and span < 6
    assert "8303" in cluster.nft_ports("lc1") and "/bin/true par" in cluster.file("lc4", CRON_FILE)


def settle(cluster: LabCluster, operation_id: int, old: dict) -> dict:
    """Wait until the cluster converged on its own (periodic recovery and sync), then judge the cell."""
    def done():
        operation = cluster.operation_final(operation_id)
        return operation if operation and cluster.converged() else None

    operation = wait_until(done, 120, interval=0.3, what=f"convergence after operation {operation_id}")
    committed = cluster.panel.sql("SELECT committed FROM list_changes WHERE operation_id = ?", (operation_id,))
    return judge(old, cluster.master("firewall"), bool(committed and committed[0][0]), operation["status"],
                 operation["message"])


def dr_cell(cluster: LabCluster, point: str, port: int, simple: bool = True) -> dict:
    """A change whose worker SIGKILLs itself at `point`; a fresh worker; convergence."""
    own_workers(cluster)
    old = cluster.master("firewall")
    operation_id = cluster.submit("firewall", rule(port))
    code = cluster.panel.start_worker(f"{point}=kill", burst=True, simple=simple).wait(120)
    if simple:
        assert code == -9, f"the worker was not killed at {point} (exit {code})"
    else:
        assert code != -9, "the forking worker outlives its work horse"
    cluster.panel.start_worker()
    return settle(cluster, operation_id, old)


def sync_cell(cluster: LabCluster, port: int) -> dict:
    """lc4 misses a change; the sync job that brings it back is killed after lc4 confirmed, before the clear."""
    own_workers(cluster)
    old = cluster.master("firewall")
    cluster.cut("lc4")
    operation_id = cluster.submit("firewall", rule(port))
    assert cluster.panel.start_worker(burst=True, simple=True).wait(120) == 0
    assert cluster.panel.operation(operation_id)["status"] == "partial"
    redis = cluster.panel.redis()
    # The periodic sync would win the race: hold its once-per-interval key while the armed worker runs.
    redis.set("hostfleet:periodic:sync", "1", px=120_000)
    try:
        cluster.heal("lc4")
        cluster.wait_state("lc4", "syncing", timeout=60)
        cluster.panel.panel.job_queue().enqueue("app.jobs.system.sync_round")
        code = cluster.panel.start_worker("sync.after_push=kill", burst=True, simple=True).wait(120)
        assert code == -9, f"the sync job was not killed (exit {code})"
        assert "8600" in cluster.nft_ports("lc4"), "lc4 applied the push"
        assert ("lc4", "firewall") in cluster.desyncs(), "killed before the clear: the desync must still be there"
    finally:
        redis.delete("hostfleet:periodic:sync")
    cluster.panel.start_worker()
    return settle(cluster, operation_id, old)


def test_crash_point_matrix_in_the_lab(cluster, capsys):
    """Every failpoint × SIGKILL of the worker → the four nodes converge to the master's list."""
    table = []
    for port, point in enumerate(DR_POINTS, start=8501):
        table.append((point, dr_cell(cluster, point, port)))
    for port, point in enumerate(("dr.after_some_sent", "dr.after_commit"), start=8550):
        table.append((f"{point} (forked horse)", dr_cell(cluster, point, port, simple=False)))
    table.append(("sync.after_push", sync_cell(cluster, 8600)))
    print_matrix(table, capsys)
    check_expected(table)
