"""Adding nodes over SSH in the lab: 1 node, then 5 at once, from the API call to `ready`; master CPU per node.

Needs root and the lab (tests/lab); starts it with 5 nodes if it is not running (and leaves it running).
Each size is run --repeat times (default 5). Each node is first taken back to a fresh server (no agent,
no ispmaster, no role packages), so every run installs the agent from the wheelhouse and the role's
packages from the lab's repository for real.
First (unless --no-cold) one node is added by a panel with an empty wheelhouse cache, so its setup
job builds the agent's wheelhouse (`pip wheel` from PyPI) as a fresh master does for its first node;
the sizes asked for then use the cached one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.cluster.labpanel import LabPanel, reset  # noqa: E402
from tests.lab.lab import Lab, preflight  # noqa: E402

IDLE_SAMPLE_S = 10
SETTLE_S = 15


def tree_cpu_seconds(pids: list[int]) -> float:
    """CPU seconds of these processes and all their descendants (reaped children included)."""
    seen: set[int] = set()
    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for proc in procs:
            if proc.pid in seen:
                continue
            seen.add(proc.pid)
            try:
                cmd = " ".join(proc.cmdline())
                if "agent serve" in cmd:
                    continue  # the local node's agent is a node, not the master
                t = proc.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
            except psutil.NoSuchProcess:
                continue
    return total


def _parse(moment: str | None) -> float | None:
    return datetime.fromisoformat(moment).timestamp() if moment else None


def add_nodes(lab: Lab, count: int, roles: list[str], wheelhouse: Path | None = None) -> dict:
    """Reset `count` lab nodes, add them at once through the API and time each to `ready`
    (with `wheelhouse` as the panel's wheelhouse cache instead of the lab's warm one)."""
    nodes = lab.nodes[:count]
    for node in nodes:
        reset(node)
    env = {"HOSTFLEET_WHEELHOUSE": str(wheelhouse)} if wheelhouse else None
    panel = LabPanel(Path(tempfile.mkdtemp(prefix="setup-bench-")), lab.repo_line, workers=max(count, 1),
                     env=env).start()
    try:
        time.sleep(SETTLE_S)  # the workers import the app at start: that CPU is not the setup's
        pids = [panel.panel.proc.pid] + [w.pid for w in panel.workers]
        # The idle panel polls the local node and ticks every second: measured, then taken off.
        idle_start = tree_cpu_seconds(pids)
        time.sleep(IDLE_SAMPLE_S)
        idle_rate = (tree_cpu_seconds(pids) - idle_start) / IDLE_SAMPLE_S
        cpu_before = tree_cpu_seconds(pids)
        results: dict[int, dict] = {}

        def add(i: int) -> None:
            started = time.monotonic()
            response = panel.add(nodes[i], f"bench{i + 1}", roles=roles)
            assert response.status_code == 202, response.text
            body = response.json()
            results[i] = {"started": started, "bootstrap_s": time.monotonic() - started,
                          "node_id": body["node"]["id"], "operation": body["operation"]["id"]}
            panel.wait_state(body["node"]["id"], "ready", timeout=1800, interval=1.0)
            results[i]["ready_s"] = time.monotonic() - started

        began = time.monotonic()
        threads = [threading.Thread(target=add, args=(i,)) for i in range(count)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - began
        cpu = tree_cpu_seconds(pids) - cpu_before
        for r in results.values():
            op = panel.operation(r["operation"])
            r["job_s"] = _parse(op["finished_at"]) - _parse(op["started_at"])
        return {"count": count, "wall_s": wall, "cpu_s": cpu, "net_cpu_s": max(0.0, cpu - idle_rate * wall),
                "idle_rate": idle_rate, "results": list(results.values()), "cleared": panel.cleared,
                "load": os.getloadavg()[0]}
    finally:
        panel.stop()


def main(argv: list[str] | None = None) -> int:
    """Print the figures (and the markdown rows for bench/README.md)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--roles", default="web")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each size (each resets and adds the nodes)")
    parser.add_argument("--no-cold", dest="cold", action="store_false",
                        help="skip the first node added with an empty wheelhouse cache")
    args = parser.parse_args(argv)
    reason = preflight()
    if reason:
        print(f"setup bench skipped: {reason}")
        return 0
    lab = Lab()
    if not lab.is_up() or len(lab.nodes) < max(args.sizes):
        lab.up(max(args.sizes))
    roles = [r for r in args.roles.split(",") if r]
    print(f"roles {','.join(roles)}; machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    rows = []
    cases = [(1, True, 1)] if args.cold else []
    for size, cold, repeat in cases + [(size, False, args.repeat) for size in args.sizes]:
        label = f"{size}, wheelhouse built first" if cold else f"{size}"
        runs = []
        for _ in range(repeat):
            wheelhouse = Path(tempfile.mkdtemp(prefix="setup-bench-wheelhouse-")) if cold else None
            runs.append(add_nodes(lab, size, roles, wheelhouse))
            if wheelhouse:
                shutil.rmtree(wheelhouse, ignore_errors=True)
            run = runs[-1]
            print(f"{label} node(s): all ready in {run['wall_s']:.1f} s; master CPU {run['cpu_s']:.1f} s, "
                  f"{run['net_cpu_s']:.1f} s above the idle panel's {run['idle_rate']:.2f} s/s", flush=True)
            for note in run["cleared"]:
                print(f"  note: {note}")
        per_node = {key: statistics.median(r[key] for run in runs for r in run["results"])
                    for key in ("ready_s", "bootstrap_s", "job_s")}
        walls = sorted(run["wall_s"] for run in runs)
        spread = " / ".join(f"{w:.1f}" for w in (walls[0], statistics.median(walls), walls[-1]))
        rows.append(f"| {label} | {len(runs)} | {spread} s | {per_node['ready_s']:.1f} s | "
                    f"{per_node['bootstrap_s']:.1f} s | {per_node['job_s']:.1f} s | "
                    f"{statistics.median(run['cpu_s'] for run in runs):.1f} s | "
                    f"{statistics.median(run['net_cpu_s'] for run in runs) / size:.1f} s | "
                    f"{min(run['load'] for run in runs):.1f}–{max(run['load'] for run in runs):.1f} |")
    print("\nall ready: min / median / max of the runs; the per-node columns are medians over every node added\n")
    print("| nodes at once | runs | all ready | call→ready | API call (steps 1-3) | setup job (steps 1-8) "
          "| master CPU | master CPU per node, idle taken off | load |\n|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
