"""Convergence: time from a healed link to every desync cleared, for 1 and for 20 lab nodes.

Needs root and the lab (tests/lab), and the lab lock /var/lock/hostfleet-lab-user: run it under
`flock /var/lock/hostfleet-lab-user`, or the script takes that lock itself (and waits for it). It brings the
lab up to --nodes nodes, takes them back to fresh servers and adds them all to a whole panel through the
API (no roles; compare_bench's setup), then, for each poll policy (POLL_S:MISSED, "default" = the app's
own) and each k in --cuts, --repeat times:

  cut k nodes' links → wait until the API shows them `unavailable` → POST /api/v1/firewall (the operation
  ends `partial`: k nodes keep a firewall desync) → heal the k links → poll the API every 100 ms and time
  from the heal to (a) each node `ready` in GET /api/v1/nodes/<id> and (b) no row left in GET /api/v1/sync.

The nodes' state history (node_state_changes) splits each node's time into "seen back" (the collector's
first good poll after the heal: unavailable → syncing) and "synced" (the sync round that pushed the list:
syncing → ready). min_ready_percent is set to 0 for the run: with every lab node cut, 1 of 21 targets
(the master's own node) is ready, which the default 50 % would refuse. Prints min / median / max, writes
bench/results/<date>-converge.json, heals every link it cut and brings the lab down at the end
(--keep-lab leaves it running).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import random
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from compare_bench import add_to_panel, spread  # noqa: E402  (bench/ is this script's directory)

from app.models import Policy  # noqa: E402
from app.services.sync import BACKOFF_BASE_S, SYNC_INTERVAL_S  # noqa: E402
from tests.cluster.labpanel import LabPanel, reset  # noqa: E402
from tests.lab.lab import Lab, preflight  # noqa: E402

LAB_USER_LOCK = Path("/var/lock/hostfleet-lab-user")
FIRST_PORT = 21000
SAMPLE_S = 0.1
# app/config.py reads the same variable with the same default; the panel's processes inherit this environment.
AGENT_TIMEOUT_S = float(os.environ.get("AGENT_TIMEOUT_S", "5"))
DEFAULT_POLICY = (Policy.__table__.c.poll_interval_s.default.arg, Policy.__table__.c.missed_polls.default.arg)


def lock_held_by_ancestor() -> bool:
    """True when a process above this one (`flock FILE cmd`) holds the lab lock, as /proc/locks shows."""
    if not LAB_USER_LOCK.exists():
        return False
    inode = LAB_USER_LOCK.stat().st_ino
    ancestors, proc = set(), psutil.Process()
    while proc is not None:
        ancestors.add(proc.pid)
        proc = proc.parent()
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        # A waiter's line carries "->"; "1: FLOCK ADVISORY WRITE <pid> <maj>:<min>:<inode> 0 EOF" is a holder.
        if "->" in fields or len(fields) < 6 or fields[1] != "FLOCK":
            continue
        if int(fields[4]) in ancestors and int(fields[5].rsplit(":", 1)[1]) == inode:
            return True
    return False


@contextmanager
def lab_user_lock():
    """The shared lab lock: already held by `flock` above us, or taken here (waiting for whoever holds it)."""
    if lock_held_by_ancestor():
        yield
        return
    with open(LAB_USER_LOCK, "a") as handle:
        print(f"waiting for the lab lock {LAB_USER_LOCK}", flush=True)
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def wait_for(what: str, check, timeout: float, interval: float = SAMPLE_S):
    """check() until it returns something truthy; RuntimeError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def _utc(moment: str) -> float:
    parsed = datetime.fromisoformat(moment)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


class Cluster:
    """The panel's API on one kept-alive session, and the lab nodes behind its node ids."""

    def __init__(self, panel: LabPanel, lab_nodes, node_ids: list[int]) -> None:
        self.panel = panel
        self.lab_nodes = dict(zip(node_ids, lab_nodes, strict=True))
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {panel.token}"

    def call(self, method: str, path: str, body=None) -> dict:
        """One API call; raises on a status other than 2xx."""
        response = self.session.request(method, self.panel.url + "/api/v1" + path, json=body, timeout=30)
        if not response.ok:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json()

    def states(self) -> dict[int, str]:
        """Node id → state, every node (the master's own too)."""
        return {n["id"]: n["state"] for n in self.call("GET", "/nodes")["items"]}

    def desyncs(self) -> list[dict]:
        """The sync registry's rows."""
        return self.call("GET", "/sync")["items"]

    def settled(self) -> bool:
        """Every node ready and no desync anywhere."""
        return all(s == "ready" for s in self.states().values()) and not self.desyncs()

    def set_policy(self, poll_s: int, missed: int) -> dict:
        """PUT /api/v1/policies: the poll policy under test, and 0 % ready required (see the module's doc)."""
        return self.call("PUT", "/policies", {"poll_interval_s": poll_s, "missed_polls": missed,
                                              "min_ready_percent": 0})

    def transitions(self, node_ids: list[int], since: float) -> dict[int, list[tuple[float, str]]]:
        """Per node, (when, to_state) of each state change after `since` (epoch seconds), oldest first."""
        marks = ",".join("?" * len(node_ids))
        rows = self.panel.sql(f"SELECT node_id, at, to_state FROM node_state_changes WHERE node_id IN ({marks}) "
                              "ORDER BY id", tuple(node_ids))
        found: dict[int, list[tuple[float, str]]] = {nid: [] for nid in node_ids}
        for node_id, at, to_state in rows:
            moment = _utc(str(at).replace(" ", "T"))
            if moment >= since:
                found[node_id].append((moment, to_state))
        return found


def one_cycle(cluster: Cluster, cut_ids: list[int], port: int, poll_s: int, missed: int, pause_s: float) -> dict:
    """Cut, change, wait pause_s, heal, time the convergence; every link cut here is healed before returning."""
    wait_for("a settled cluster (every node ready, no desync)", cluster.settled, 2 * poll_s + 90, interval=0.5)
    cut_nodes = [cluster.lab_nodes[nid] for nid in cut_ids]
    cut_at = time.monotonic()
    try:
        for node in cut_nodes:
            node.cut()
        # A poll already on its way when the link went down may still succeed; then missed × interval
        # more, each failed poll taking up to the agent's connect timeout.
        wait_for(f"{len(cut_ids)} cut node(s) to be unavailable",
                 lambda: all(cluster.states()[nid] == "unavailable" for nid in cut_ids),
                 (missed + 2) * (poll_s + AGENT_TIMEOUT_S) + 30, interval=0.2)
        detect_s = time.monotonic() - cut_at

        started = time.monotonic()
        rule = {"action": "accept", "protocol": "tcp", "ports": str(port), "comment": f"converge {port}"}
        op_id = cluster.call("POST", "/firewall", rule)["operation"]["id"]
        op = wait_for(f"operation {op_id} to finish",
                      lambda: (lambda o: o if o["status"] not in ("queued", "running") else None)(
                          cluster.call("GET", f"/operations/{op_id}")), 120)
        change_s = time.monotonic() - started
        left_behind = {n["node_id"] for n in op["nodes"] if n["outcome"] != "applied"}
        if op["status"] != "partial" or left_behind != set(cut_ids):
            raise RuntimeError(f"operation {op_id} ended {op['status']}, not applied on {sorted(left_behind)} "
                               f"(cut: {sorted(cut_ids)}): {op['message']}")
        rows = {(d["node_id"], d["list"]) for d in cluster.desyncs()}
        if rows != {(nid, "firewall") for nid in cut_ids}:
            raise RuntimeError(f"desyncs before the heal are {sorted(rows)}, expected firewall on {sorted(cut_ids)}")
        # Without it every heal falls at the same point of the collector's cycle (just after the poll that
        # saw the nodes unavailable, plus the change): a random phase measures what an outage's end meets.
        time.sleep(pause_s)
    finally:
        healed_wall = time.time()
        heal_at = {}
        for nid, node in zip(cut_ids, cut_nodes, strict=True):
            node.heal()
            heal_at[nid] = time.monotonic()
    healed = time.monotonic()

    ready_at: dict[int, float] = {}
    cleared_at: float | None = None
    # Seen back after at most one poll interval plus one poll still failing on the cut link, then a sync
    # round; a push that failed during the cut may also have backed the desync off.
    timeout = 3 * poll_s + 2 * AGENT_TIMEOUT_S + SYNC_INTERVAL_S + 8 * BACKOFF_BASE_S + 30
    while True:
        now = time.monotonic()
        states = cluster.states()
        for nid in cut_ids:
            if nid not in ready_at and states[nid] == "ready":
                ready_at[nid] = now
        if cleared_at is None and not cluster.desyncs():
            cleared_at = now
        if cleared_at is not None and len(ready_at) == len(cut_ids):
            break
        if now - healed > timeout:
            raise RuntimeError(f"not converged {timeout:.0f} s after the heal: ready {sorted(ready_at)} of "
                               f"{sorted(cut_ids)}, desyncs {cluster.desyncs()}")
        time.sleep(max(0.0, SAMPLE_S - (time.monotonic() - now)))

    history = cluster.transitions(cut_ids, healed_wall)
    seen_back, synced = [], []
    for nid in cut_ids:
        back = next((at for at, state in history[nid] if state != "unavailable"), None)
        ready = next((at for at, state in history[nid] if state == "ready"), None)
        if back is not None and ready is not None:
            seen_back.append(back - healed_wall)
            synced.append(ready - back)
    per_node_ready = [ready_at[nid] - heal_at[nid] for nid in cut_ids]
    return {
        "k": len(cut_ids), "cut_node_ids": cut_ids, "detect_s": detect_s, "change_s": change_s, "pause_s": pause_s,
        "operation": {"id": op_id, "status": op["status"]},
        "heal_span_s": healed - heal_at[cut_ids[0]] if cut_ids else 0.0,
        "all_ready_s": max(ready_at.values()) - healed,
        "node_ready_s": per_node_ready,
        "no_desync_s": cleared_at - healed,
        "seen_back_max_s": max(seen_back) if seen_back else None,
        "synced_max_s": max(synced) if synced else None,
        "seen_back_s": seen_back, "synced_s": synced,
        "load": os.getloadavg()[0],
    }


def progress(cycle: dict) -> str:
    """One cycle's figures on one line."""
    return (f"healed {cycle['pause_s']:.1f} s after the change: all ready {cycle['all_ready_s']:.1f} s, "
            f"no desync {cycle['no_desync_s']:.1f} s, seen back ≤ {cycle['seen_back_max_s'] or 0:.1f} s, "
            f"sync ≤ {cycle['synced_max_s'] or 0:.1f} s (cut → unavailable {cycle['detect_s']:.1f} s, "
            f"change {cycle['change_s']:.1f} s, load {cycle['load']:.1f})")


def parse_policy(text: str) -> tuple[int, int]:
    """ "default" or POLL_S:MISSED."""
    if text == "default":
        return DEFAULT_POLICY
    poll_s, missed = text.split(":")
    return int(poll_s), int(missed)


def fmt(figure: dict | None) -> str:
    """min / median / max in seconds."""
    return f"{figure['min']:.1f} / {figure['median']:.1f} / {figure['max']:.1f}" if figure else "n/a"


def summarize(cycles: list[dict]) -> dict:
    """min / median / max of each figure over the repetitions of one (policy, k)."""
    keys = ("all_ready_s", "no_desync_s", "seen_back_max_s", "synced_max_s", "detect_s", "change_s")
    out = {k: spread([c[k] for c in cycles if c[k] is not None]) if any(c[k] is not None for c in cycles) else None
           for k in keys}
    out["node_ready_s"] = spread([v for c in cycles for v in c["node_ready_s"]])
    out["load"] = spread([c["load"] for c in cycles])
    return out


def print_table(runs: list[dict]) -> None:
    """The figures as a Markdown table."""
    print("\nseconds from the heal, min / median / max of the repetitions\n")
    print("| poll interval / missed polls | k cut | reps | heal → all k ready | heal → no desync | "
          "heal → seen back (slowest node) | seen back → ready (sync) | cut → unavailable | load |")
    print("|---|---:|---:|---|---|---|---|---|---|")
    for run in runs:
        s = run["summary"]
        print(f"| {run['poll_interval_s']} s / {run['missed_polls']}{' (default)' if run['is_default'] else ''} | "
              f"{run['k']} | {len(run['cycles'])} | {fmt(s['all_ready_s'])} | {fmt(s['no_desync_s'])} | "
              f"{fmt(s['seen_back_max_s'])} | {fmt(s['synced_max_s'])} | {fmt(s['detect_s'])} | "
              f"{s['load']['min']:.1f}–{s['load']['max']:.1f} |")


def bench(lab: Lab, args, deadline: float) -> dict:
    """Set up the panel with every node, run every (policy, k) cycle, return the results."""
    nodes = lab.nodes[:args.nodes]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(reset, nodes))
    work = Path(tempfile.mkdtemp(prefix="converge-bench-"))
    panel = LabPanel(work / "panel", lab.repo_line, workers=min(args.nodes, 8), poll_interval_s=2,
                     missed_polls=2).start()
    try:
        node_ids, setup_s = add_to_panel(panel, nodes)
        print(f"{len(node_ids)} nodes added and ready in {setup_s:.1f} s", flush=True)
        cluster = Cluster(panel, nodes, node_ids)
        runs, port, truncated = [], FIRST_PORT, []
        rng = random.Random(args.seed)
        for policy_text in args.policy:
            poll_s, missed = parse_policy(policy_text)
            applied = cluster.set_policy(poll_s, missed)
            print(f"policy: poll interval {applied['poll_interval_s']} s, missed polls {applied['missed_polls']}, "
                  f"min ready {applied['min_ready_percent']} %; sync interval {SYNC_INTERVAL_S} s; "
                  f"agent timeout {AGENT_TIMEOUT_S:g} s (connect {min(3.05, AGENT_TIMEOUT_S):g} s)", flush=True)
            per_k = {k: [] for k in args.cuts}
            for rep in range(args.repeat):
                for k in args.cuts:
                    if time.monotonic() > deadline:
                        truncated.append(f"{policy_text} k={k} rep {rep + 1}")
                        continue
                    # A different node each time for k=1, so no node's quirks weigh on every figure.
                    first = (rep * k) % len(node_ids)
                    cut_ids = [node_ids[(first + i) % len(node_ids)] for i in range(k)]
                    cycle = one_cycle(cluster, cut_ids, port, poll_s, missed, rng.uniform(0, poll_s))
                    port += 1
                    per_k[k].append(cycle)
                    print(f"  poll {poll_s} s/{missed}, k={k}, rep {rep + 1}: {progress(cycle)}", flush=True)
            for k, cycles in per_k.items():
                if cycles:
                    runs.append({"poll_interval_s": poll_s, "missed_polls": missed, "k": k,
                                 "is_default": (poll_s, missed) == DEFAULT_POLICY,
                                 "cycles": cycles, "summary": summarize(cycles)})
        result = {"nodes": len(node_ids), "setup_s": setup_s, "runs": runs, "truncated": truncated,
                  "sync_interval_s": SYNC_INTERVAL_S, "agent_timeout_s": AGENT_TIMEOUT_S,
                  "default_policy": {"poll_interval_s": DEFAULT_POLICY[0], "missed_polls": DEFAULT_POLICY[1]},
                  "min_ready_percent": 0, "cores": os.cpu_count()}
    finally:
        panel.stop()
    # Kept on a failure (the exception leaves above): the panel's logs say what went wrong.
    shutil.rmtree(work, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    """Bring the lab up, run the bench, print and write the figures, bring the lab down."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=20, help="lab nodes added to the panel")
    parser.add_argument("--cuts", type=int, nargs="+", default=[1, 20], help="how many links to cut at once")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--policy", nargs="+", default=["2:2", "default"],
                        help='poll policies to measure: POLL_S:MISSED or "default" (the app\'s own)')
    parser.add_argument("--budget-min", type=float, default=16,
                        help="start no new cycle after this many minutes (the ones left out are listed)")
    parser.add_argument("--seed", type=int, default=8, help="seeds the pause between the change and the heal")
    parser.add_argument("--keep-lab", action="store_true", help="leave the lab running at the end")
    args = parser.parse_args(argv)
    if max(args.cuts) > args.nodes:
        parser.error("--cuts cannot exceed --nodes")
    reason = preflight()
    if reason:
        print(f"converge bench skipped: {reason}")
        return 0
    started = time.monotonic()
    with lab_user_lock():
        lab = Lab()
        try:
            if not lab.is_up() or len(lab.nodes) < args.nodes:
                lab.up(args.nodes)
            print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; lab up with "
                  f"{len(lab.nodes)} nodes", flush=True)
            result = bench(lab, args, started + args.budget_min * 60)
        finally:
            for node in lab.nodes:
                if node.running() and node.is_cut():
                    node.heal()
            if not args.keep_lab:
                lab.down()
    print_table(result["runs"])
    if result["truncated"]:
        print(f"\nleft out (over the {args.budget_min:g} min budget): {', '.join(result['truncated'])}")
    result["wall_s"] = time.monotonic() - started
    out = ROOT / "bench" / "results" / f"{datetime.now(UTC):%Y-%m-%d}-converge.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"\nwritten: {out.relative_to(ROOT)} (whole run {result['wall_s'] / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
