"""Hostfleet against Ansible and pyinfra, and against the limit: one firewall rule on N lab nodes.

Needs root and the lab (tests/lab). For each size N the script takes lab nodes --first .. --first+N-1
back to fresh servers, adds them to a whole panel through the API (no roles: the firewall list goes
to every node), then, side by side in one run, each repeated --repeat times after one warm-up:

- Hostfleet: POST /api/v1/firewall (one more rule) → the distributed request's operation finished
  with every node `applied`; and the no-op re-apply (PUT of the same rule: every agent finds the same
  hash and writes nothing).
- Ansible (ansible-core, forks = N, pipelining, ControlPersist, no fact gathering): a playbook that
  copies the same rules as an nftables table, validated with `nft -c -f`, and reloads it when changed;
  then the same playbook again with nothing changed.
- pyinfra (--parallel N): the same file put + `nft -c -f && nft -f` when it changed; then again.
- The limit: one signed HTTPS round trip to every agent in parallel with no work on the node
  (GET /v1/lists/firewall), and each node's own apply time for the change (the agent logs it:
  validate, render, `nft -c`, write, reload); Hostfleet's time is compared with max(apply) + round trip.
- Nodes are added with 8 job workers (setup jobs in parallel); the changes are then made with the
  two job workers `make run` starts (the others are stopped). Those changes find their worker's
  connections to the agents open (a change within a minute of the previous one). Then --cold
  changes made after the agents closed the idle connections (the first change after a quiet
  spell: a TLS handshake per node), against a round trip on new connections.

Ansible and pyinfra run from their own virtualenv (bench/requirements-compare.txt), made on demand
under /var/cache/hostfleet-lab. Prints min / median / max and ratios; writes bench/results/<date>.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.client import AgentClient  # noqa: E402
from agent.server import SOCKET_TIMEOUT_S  # noqa: E402
from app.runner import job_workers  # noqa: E402
from tests.cluster.labpanel import LabPanel, kill_processes, reset  # noqa: E402
from tests.lab.lab import SSH_KEY, Lab, preflight  # noqa: E402

TOOLS_REQUIREMENTS = ROOT / "bench" / "requirements-compare.txt"
CACHE = Path(os.environ.get("HOSTFLEET_LAB_CACHE", "/var/cache/hostfleet-lab"))
AGENT_LOG = "/var/log/hostfleet-agent.log"
FIRST_PORT = 20000
APPLY_RE = re.compile(r"list firewall: holds v(\d+) in ([0-9.]+) ms")


def tools_venv() -> Path:
    """The virtualenv with ansible-core and pyinfra, keyed by the requirements file's content."""
    key = hashlib.sha256(TOOLS_REQUIREMENTS.read_bytes()).hexdigest()[:16]
    venv = CACHE / f"compare-venv-{key}"
    if not (venv / ".complete").exists():
        print(f"installing ansible-core and pyinfra into {venv} (once)", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-deps", "-r", str(TOOLS_REQUIREMENTS)],
                       check=True)
        (venv / ".complete").write_text(key)
    return venv


def spread(values: list[float]) -> dict:
    """min / median / max of values (seconds)."""
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "n": len(values)}


def nft_table(table: str, ports: list[int]) -> str:
    """The nftables table the other tools write: one accept rule per port, replaced atomically."""
    rules = "\n".join(f'    tcp dport {port} accept comment "bench {port}"' for port in ports)
    return (f"table inet {table} {{}}\ndelete table inet {table}\n"
            f"table inet {table} {{\n  chain input {{\n    type filter hook input priority 10; policy accept;\n"
            f"{rules}\n  }}\n}}\n")


class Ansible:
    """ansible-playbook with its best settings for this job."""

    def __init__(self, venv: Path, work: Path, nodes, key: Path) -> None:
        self.venv, self.work, self.src = venv, work / "ansible", work / "ansible" / "bench.nft"
        self.work.mkdir(parents=True)
        (self.work / "cp").mkdir()
        hosts = "\n".join(f"{n.name} ansible_host={n.address}" for n in nodes)
        (self.work / "inventory.ini").write_text(
            f"[nodes]\n{hosts}\n\n[nodes:vars]\nansible_user=root\nansible_ssh_private_key_file={key}\n")
        (self.work / "ansible.cfg").write_text(
            f"[defaults]\nforks = {len(nodes)}\nhost_key_checking = False\ngathering = explicit\n"
            "interpreter_python = /usr/bin/python3\nretry_files_enabled = False\n\n[ssh_connection]\n"
            "pipelining = True\nssh_args = -o ControlMaster=auto -o ControlPersist=300s "
            "-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no\n"
            f"control_path_dir = {self.work / 'cp'}\n")
        (self.work / "playbook.yml").write_text(
            "- hosts: nodes\n  gather_facts: false\n  tasks:\n"
            "    - name: firewall table\n      ansible.builtin.copy:\n        src: bench.nft\n"
            "        dest: /etc/nftables-ansible.nft\n        mode: '0644'\n        validate: nft -c -f %s\n"
            "      notify: reload\n  handlers:\n    - name: reload\n"
            "      ansible.builtin.command: nft -f /etc/nftables-ansible.nft\n")

    def run(self, ports: list[int]) -> float:
        self.src.write_text(nft_table("bench_ansible", ports))
        env = dict(os.environ, ANSIBLE_CONFIG=str(self.work / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
        started = time.perf_counter()
        proc = subprocess.run([str(self.venv / "bin" / "ansible-playbook"), "-i", "inventory.ini", "playbook.yml"],
                              cwd=self.work, env=env, capture_output=True, text=True, timeout=600)
        elapsed = time.perf_counter() - started
        if proc.returncode != 0 or "unreachable=0" not in proc.stdout:
            raise RuntimeError(f"ansible-playbook failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        return elapsed


class Pyinfra:
    """pyinfra with every host in parallel."""

    def __init__(self, venv: Path, work: Path, nodes, key: Path) -> None:
        self.venv, self.work, self.src = venv, work / "pyinfra", work / "pyinfra" / "bench.nft"
        self.work.mkdir(parents=True)
        self.parallel = len(nodes)
        data = {"ssh_user": "root", "ssh_key": str(key), "ssh_known_hosts_file": "/dev/null",
                "ssh_strict_host_key_checking": "off"}
        (self.work / "inventory.py").write_text(
            "nodes = [\n" + "".join(f"    ({n.address!r}, {data!r}),\n" for n in nodes) + "]\n")
        (self.work / "deploy.py").write_text(
            "from pyinfra.operations import files, server\n\n"
            f"table = files.put(name='firewall table', src={str(self.src)!r}, dest='/etc/nftables-pyinfra.nft', "
            "mode='644')\n"
            "server.shell(name='reload', commands=['nft -c -f /etc/nftables-pyinfra.nft && "
            "nft -f /etc/nftables-pyinfra.nft'], _if=table.did_change)\n")

    def run(self, ports: list[int]) -> float:
        self.src.write_text(nft_table("bench_pyinfra", ports))
        started = time.perf_counter()
        proc = subprocess.run([str(self.venv / "bin" / "pyinfra"), "-y", "--parallel", str(self.parallel),
                               "inventory.py", "deploy.py"], cwd=self.work, capture_output=True, text=True,
                              timeout=600)
        elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(f"pyinfra failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        return elapsed


class Hostfleet:
    """The panel's distributed request through its API, timed from the call to every node confirmed."""

    def __init__(self, panel: LabPanel, node_ids: list[int]) -> None:
        self.panel, self.node_ids = panel, node_ids
        self.row_id: int | None = None
        self.versions: list[int] = []
        self.phases: list[dict] = []

    def _wait(self, response, started: float) -> float:
        assert response.status_code == 202, response.text
        op_id = response.json()["operation"]["id"]
        while True:
            op = self.panel.operation(op_id)
            if op["status"] not in ("queued", "running"):
                break
            time.sleep(0.02)
        outcomes = {n["outcome"] for n in op["nodes"]}
        # The panel's own server (the local node) is a target too: Hostfleet updates one node more.
        if op["status"] != "succeeded" or outcomes != {"applied"} or len(op["nodes"]) < len(self.node_ids):
            raise RuntimeError(f"operation {op_id} did not apply everywhere: {op['status']} {op['nodes']}")
        created, began, finished = (_utc(op[k]) for k in ("created_at", "started_at", "finished_at"))
        # Where the time went: the API call, the job waiting for a worker, the request itself.
        self.phases.append({"api_s": created - started, "queued_s": began - created, "run_s": finished - began})
        self.versions.append(self.panel.request("GET", "/api/v1/firewall").json()["version"])
        return finished - started

    def add(self, port: int) -> float:
        rule = {"action": "accept", "protocol": "tcp", "ports": str(port), "comment": f"bench {port}"}
        started = time.time()
        response = self.panel.request("POST", "/api/v1/firewall", rule)
        elapsed = self._wait(response, started)
        self.row_id = max(r["id"] for r in self.panel.request("GET", "/api/v1/firewall").json()["items"])
        return elapsed

    def reapply(self) -> float:
        rows = self.panel.request("GET", "/api/v1/firewall").json()["items"]
        row = next(r for r in rows if r["id"] == self.row_id)
        body = {k: row[k] for k in ("action", "protocol", "ports", "source", "comment") if k in row}
        started = time.time()
        return self._wait(self.panel.request("PUT", f"/api/v1/firewall/{self.row_id}", body), started)


def _utc(moment: str) -> float:
    parsed = datetime.fromisoformat(moment)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def round_trips(panel: LabPanel, node_ids: list[int], addresses: dict[int, str], repeat: int,
                cold: bool = False) -> list[float]:
    """Wall time of one signed GET to every agent in parallel, no work on the node: on kept-alive
    connections, or (cold) each on a new connection, TLS handshake included."""
    facts = []
    for node_id in node_ids:
        secret, fingerprint = panel.secret_and_fingerprint(node_id)
        port = panel.sql("SELECT agent_port FROM nodes WHERE id = ?", (node_id,))[0][0]
        facts.append((f"https://{addresses[node_id]}:{port}", secret, fingerprint))

    def clients() -> list[AgentClient]:
        return [AgentClient(url, secret, fingerprint, timeout=(3, 30)) for url, secret, fingerprint in facts]

    times = []
    with ThreadPoolExecutor(max_workers=len(facts)) as pool:
        kept = clients()
        list(pool.map(lambda c: c.get("/v1/lists/firewall"), kept))  # open the connections
        for _ in range(repeat):
            used = clients() if cold else kept
            started = time.perf_counter()
            list(pool.map(lambda c: c.get("/v1/lists/firewall"), used))
            times.append(time.perf_counter() - started)
            if cold:
                for client in used:
                    client.close()
    for client in kept:
        client.close()
    return times


def keep_default_workers(panel: LabPanel) -> None:
    """Stop the job workers beyond the number `make run` starts (the runner's restarts paused)."""
    panel.pause_restarts()
    workers = sorted(panel.default_workers(), key=lambda proc: proc.pid)
    kill_processes(workers[job_workers():])


def apply_times(nodes) -> dict[int, list[float]]:
    """Per firewall version, every node's own apply time (ms), read from the agents' logs."""
    per_version: dict[int, list[float]] = {}
    lock = threading.Lock()

    def read(node) -> None:
        text = node.exec(["cat", AGENT_LOG], check=False).stdout
        with lock:
            for version, ms in APPLY_RE.findall(text):
                per_version.setdefault(int(version), []).append(float(ms))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(read, nodes))
    return per_version


def add_to_panel(panel: LabPanel, nodes) -> tuple[list[int], float]:
    """Add the nodes at once through the API (no roles); wait until all are ready."""
    ids: list[int] = [0] * len(nodes)
    started = time.monotonic()

    def add(i: int) -> None:
        response = panel.add(nodes[i], f"cmp{i + 1}", roles=[])
        assert response.status_code == 202, response.text
        ids[i] = response.json()["node"]["id"]
        panel.wait_state(ids[i], "ready", timeout=1800, interval=1.0)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(len(nodes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if not all(ids):
        raise RuntimeError("not every node was added")
    return ids, time.monotonic() - started


def bench_size(lab: Lab, first: int, size: int, repeat: int, venv: Path, cold: int) -> dict:
    """Every figure for one cluster size."""
    nodes = lab.nodes[first - 1:first - 1 + size]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(reset, nodes))
    work = Path(tempfile.mkdtemp(prefix=f"compare-bench-{size}-"))
    panel = LabPanel(work / "panel", lab.repo_line, workers=min(size, 8), poll_interval_s=10).start()
    try:
        node_ids, setup_s = add_to_panel(panel, nodes)
        print(f"  {size} nodes added and ready in {setup_s:.1f} s", flush=True)
        keep_default_workers(panel)
        addresses = {nid: n.address for nid, n in zip(node_ids, nodes, strict=True)}
        ansible, pyinfra = Ansible(venv, work, nodes, SSH_KEY), Pyinfra(venv, work, nodes, SSH_KEY)
        hostfleet = Hostfleet(panel, node_ids)
        figures: dict[str, list[float]] = {k: [] for k in (
            "hostfleet_change", "hostfleet_noop", "ansible_change", "ansible_noop", "pyinfra_change",
            "pyinfra_noop")}
        ports: list[int] = []
        for rep in range(repeat + 1):  # the first round warms every tool up and is not counted
            ports.append(FIRST_PORT + len(ports))
            port = ports[-1]
            results = {
                "hostfleet_change": hostfleet.add(port),
                "hostfleet_noop": hostfleet.reapply(),
                "ansible_change": ansible.run(ports),
                "ansible_noop": ansible.run(ports),
                "pyinfra_change": pyinfra.run(ports),
                "pyinfra_noop": pyinfra.run(ports),
            }
            if rep:
                for k, v in results.items():
                    figures[k].append(v)
            phase = hostfleet.phases[-2]
            print(f"  round {rep}{' (warm-up)' if not rep else ''}: "
                  + ", ".join(f"{k} {v:.2f} s" for k, v in results.items())
                  + f" (Hostfleet: API {phase['api_s']:.2f} s, queued {phase['queued_s']:.2f} s, "
                    f"request {phase['run_s']:.2f} s)", flush=True)
        load = os.getloadavg()[0]
        warm_versions = hostfleet.versions[2::2]  # after the warm-up; a no-op keeps the version
        counted = hostfleet.phases[2::2]
        cold_changes = []
        for _ in range(cold):
            time.sleep(SOCKET_TIMEOUT_S + 5)  # the agents close the workers' idle connections
            ports.append(FIRST_PORT + len(ports))
            cold_changes.append(hostfleet.add(ports[-1]))
            print(f"  cold change: {cold_changes[-1]:.2f} s", flush=True)
        cold_versions = hostfleet.versions[len(hostfleet.versions) - cold:] if cold else []
        trips = round_trips(panel, node_ids, addresses, repeat)
        cold_trips = round_trips(panel, node_ids, addresses, repeat, cold=True)
        applied = apply_times(nodes)

        def max_apply(versions: list[int]) -> list[float]:
            return [max(applied[v]) / 1000 for v in versions if len(applied.get(v, [])) == size]

        def limit(versions: list[int], round_trip: list[float]) -> float:
            slowest = max_apply(versions)
            return (statistics.median(slowest) if slowest else float("nan")) + statistics.median(round_trip)

        warm_apply, cold_apply = max_apply(warm_versions), max_apply(cold_versions)
        return {"size": size, "setup_s": setup_s, "repeat": repeat, "job_workers": job_workers(),
                "hostfleet_phases": {k: spread([p[k] for p in counted]) for k in ("api_s", "queued_s", "run_s")},
                **{k: spread(v) for k, v in figures.items()},
                "round_trip": spread(trips), "node_apply_max": spread(warm_apply) if warm_apply else None,
                "limit_s": limit(warm_versions, trips), "load": load,
                "cold": {"hostfleet_change": spread(cold_changes), "round_trip": spread(cold_trips),
                         "node_apply_max": spread(cold_apply) if cold_apply else None,
                         "limit_s": limit(cold_versions, cold_trips)} if cold else None}
    finally:
        panel.stop()


def print_table(runs: list[dict]) -> None:
    def fmt(f: dict) -> str:
        return f"{f['min']:.2f} / {f['median']:.2f} / {f['max']:.2f}"

    print("\nseconds, min / median / max; ratio = the tool's median / Hostfleet's median\n")
    print("| nodes | what | Hostfleet | Ansible | pyinfra | Ansible ÷ Hostfleet | pyinfra ÷ Hostfleet |")
    print("|---:|---|---|---|---|---:|---:|")
    for run in runs:
        for what in ("change", "noop"):
            hf, an, py = run[f"hostfleet_{what}"], run[f"ansible_{what}"], run[f"pyinfra_{what}"]
            print(f"| {run['size']} | {'add a rule' if what == 'change' else 'no-op re-apply'} | {fmt(hf)} | "
                  f"{fmt(an)} | {fmt(py)} | {an['median'] / hf['median']:.1f}× | {py['median'] / hf['median']:.1f}× |")
    print("\n| nodes | connections | round trip to all agents | max node apply | limit | Hostfleet | "
          "Hostfleet ÷ limit | load |")
    print("|---:|---|---|---|---:|---:|---:|---:|")
    for run in runs:
        cases = [("kept alive", run)] + ([("new (cold)", run["cold"])] if run.get("cold") else [])
        for label, case in cases:
            apply_ = fmt(case["node_apply_max"]) if case["node_apply_max"] else "n/a"
            hf = case["hostfleet_change"]["median"]
            print(f"| {run['size']} | {label} | {fmt(case['round_trip'])} | {apply_} | {case['limit_s']:.3f} | "
                  f"{hf:.3f} | {hf / case['limit_s']:.1f}× | {run['load']:.1f} |")


def main(argv: list[str] | None = None) -> int:
    """Run every size, print the tables, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--first", type=int, default=1, help="the first lab node to use (hf-node<first>)")
    parser.add_argument("--cold", type=int, default=1,
                        help="changes made after the agents closed the idle connections (each waits "
                             f"{SOCKET_TIMEOUT_S + 5} s)")
    parser.add_argument("--venv", action="store_true", help="make the tools' virtualenv, print its path, stop")
    args = parser.parse_args(argv)
    if args.venv:
        print(tools_venv())
        return 0
    reason = preflight()
    if reason:
        print(f"compare bench skipped: {reason}")
        return 0
    venv = tools_venv()
    lab = Lab()
    needed = args.first - 1 + max(args.sizes)
    if not lab.is_up() or len(lab.nodes) < needed:
        lab.up(needed)
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", flush=True)
    runs = []
    for size in args.sizes:
        print(f"{size} nodes:", flush=True)
        runs.append(bench_size(lab, args.first, size, args.repeat, venv, args.cold))
    print_table(runs)
    out = ROOT / "bench" / "results" / f"{datetime.now(UTC):%Y-%m-%d}.json"
    out.parent.mkdir(exist_ok=True)
    # Sizes measured in an earlier run of the day stay (10 nodes, then 50 nodes in a separate run).
    earlier = json.loads(out.read_text()).get("compare", []) if out.exists() else []
    measured = {run["size"] for run in runs}
    runs = sorted([r for r in earlier if r.get("size") not in measured] + runs, key=lambda r: r["size"])
    out.write_text(json.dumps({"compare": runs, "cores": os.cpu_count()}, indent=1))
    print(f"\nwritten: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
