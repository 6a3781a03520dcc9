"""A whole panel (as `make run` starts it) pointed at the lab, with the lab's repository and N job workers."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import warnings
from pathlib import Path

import psutil
import requests

from tests.conftest import ROOT, wait_until
from tests.panel import Panel, new_panel

WHEELHOUSE = "/var/cache/hostfleet-lab/wheelhouse"
TERMINAL = {"ready", "error", "incompatible"}


class LabPanel:
    """The panel (`workers` job workers: setup jobs run in parallel), workers a test starts, API helpers."""

    def __init__(self, tmp: Path, repo_line: str, workers: int = 3, poll_interval_s: int = 2, missed_polls: int = 2,
                 env: dict[str, str] | None = None):
        self.tmp = tmp
        self.extra_env = dict(env or {})
        self.repo_line = repo_line
        self.n_workers = workers
        self.poll_interval_s = poll_interval_s
        self.missed_polls = missed_polls
        self.panel: Panel | None = None
        self.workers: list[subprocess.Popen] = []
        self.env: dict[str, str] = {}
        self.cleared: list[str] = []
        self.token: str | None = None

    def start(self) -> LabPanel:
        """Start the panel and set the policy for the lab (stopped again on failure)."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> LabPanel:
        # The runner's own job workers, as many as asked (setup jobs run in parallel).
        env = {"HOSTFLEET_WHEELHOUSE": WHEELHOUSE, "HOSTFLEET_WORKERS": str(max(self.n_workers, 1)), **self.extra_env}
        self.panel = new_panel(self.tmp).start(env=env, timeout=180)

        def local_ready():
            try:
                items = self.request("GET", "/api/v1/nodes", timeout=60).json()["items"]
            except requests.RequestException:
                return False
            return any(n["is_local"] and n["state"] == "ready" for n in items)

        # A busy machine makes the first requests slow; Panel.wait_ready's 10 s read timeout is too tight.
        wait_until(local_ready, 240, interval=0.5, what="the panel's local node to be ready")
        self.token = self.make_token()
        self.sql("UPDATE policies SET node_apt_source = ?, poll_interval_s = ?, missed_polls = ?",
                 (self.repo_line, self.poll_interval_s, self.missed_polls))
        self.env = {**os.environ, "HOSTFLEET_DATA": str(self.panel.data), "PYTHONUNBUFFERED": "1",
                    "REDIS_URL": self.panel.redis_url(), "HOSTFLEET_WHEELHOUSE": WHEELHOUSE,
                    **self.extra_env}
        return self

    def start_worker(self, failpoints: str = "", burst: bool = False, simple: bool = False) -> subprocess.Popen:
        """One more `worker.py default`, in its own process group (failpoints: HOSTFLEET_FAILPOINTS for it)."""
        log = open(self.panel.data / "logs" / f"extra-worker-{len(self.workers)}.log", "ab")
        argv = [sys.executable, "worker.py", "default"] + ["--burst"] * burst + ["--simple"] * simple
        env = dict(self.env, HOSTFLEET_FAILPOINTS=failpoints) if failpoints else self.env
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.workers.append(proc)
        return proc

    def pause_restarts(self) -> None:
        """SIGSTOP the runner itself (its children keep running): a worker killed now is not restarted."""
        psutil.Process(self.panel.proc.pid).suspend()

    def resume_restarts(self) -> None:
        """SIGCONT the runner: it restarts whatever died meanwhile."""
        if self.panel and self.panel.proc and self.panel.proc.poll() is None:
            psutil.Process(self.panel.proc.pid).resume()

    def redis(self):
        """A client of the panel's Redis."""
        from redis import Redis

        return Redis.from_url(self.env["REDIS_URL"])

    def stop(self) -> None:
        """Stop the workers the test started and the panel."""
        self.resume_restarts()
        for proc in self.workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if self.panel:
            self.panel.stop()

    def default_workers(self) -> list[psutil.Process]:
        """Every live default-queue worker of this panel, the runner's and the ones a test started (not
        a forking worker's job process: killing its worker kills it too)."""
        found: dict[int, tuple[psutil.Process, int]] = {}
        roots = [psutil.Process(self.panel.proc.pid)] + [psutil.Process(p.pid) for p in self.workers
                                                           if p.poll() is None]
        for root in roots:
            for proc in [root, *root.children(recursive=True)]:
                try:
                    cmd, parent = proc.cmdline(), proc.ppid()
                except psutil.NoSuchProcess:
                    continue
                if "worker.py" in " ".join(cmd) and "default" in cmd:
                    found[proc.pid] = (proc, parent)
        return [proc for proc, parent in found.values() if parent not in found]

    def kill_default_workers(self) -> list[int]:
        """SIGKILL every default-queue worker this panel runs, and their job processes; return once
        Redis has dropped their connections.

        Until Redis has seen a killed worker's connection close, its blocking dequeue is still
        registered there, and a job enqueued next is moved to that dead connection (RQ's intermediate
        queue): recovery puts it back only after its grace, when a test's burst workers have quit."""
        victims = self.default_workers()
        redis = self.redis()
        port = redis.connection_pool.connection_kwargs["port"]
        theirs = set()
        for proc in victims:
            try:
                theirs |= {f"{c.laddr.ip}:{c.laddr.port}" for c in proc.net_connections("tcp")
                           if c.raddr and c.raddr.port == port}
            except psutil.NoSuchProcess:
                continue
        assert theirs or not victims, "the workers to kill hold no Redis connection: nothing to wait for"
        killed = kill_processes(victims)

        def dropped():
            return not theirs & {c["addr"] for c in redis.client_list()}

        try:
            wait_until(dropped, 30, interval=0.05, what="Redis to drop the killed workers' connections")
        finally:
            redis.close()
        return killed

    @property
    def url(self) -> str:
        return self.panel.url

    @property
    def data(self) -> Path:
        return self.panel.data

    def request(self, method: str, path: str, json=None, timeout: float = 120) -> requests.Response:
        """An API call as the panel's admin (a Bearer token once made: Basic hashes the password every call)."""
        if json is None and method == "POST":
            json = {}  # the API takes a POST only as JSON
        if self.token:
            return requests.request(method, self.url + path, json=json, timeout=timeout,
                                    headers={"Authorization": f"Bearer {self.token}"})
        return requests.request(method, self.url + path, json=json, auth=("admin", self.panel.password),
                                timeout=timeout)

    def make_token(self) -> str:
        """An API token for the admin, made directly in the panel's database."""
        from sqlalchemy import select

        from app import create_app
        from app.config import Config
        from app.extensions import db
        from app.models import User
        from app.services.accounts import create_token

        saved = os.environ.get("HOSTFLEET_DATA")
        os.environ["HOSTFLEET_DATA"] = str(self.data)
        try:
            app = create_app(Config())
        finally:
            if saved is None:
                del os.environ["HOSTFLEET_DATA"]
            else:
                os.environ["HOSTFLEET_DATA"] = saved
        with app.app_context():
            _, raw = create_token(db.session.scalar(select(User).where(User.name == "admin")), "lab tests")
            db.session.remove()
            db.engine.dispose()
        return raw

    def sql(self, statement: str, args: tuple = ()) -> list:
        """Run SQL on the panel's database (for what has no API: the test's policy, the node's secret)."""
        with sqlite3.connect(self.data / "hostfleet.db", timeout=30) as conn:
            return conn.execute(statement, args).fetchall()

    def add(self, lab_node, name: str, roles=("web",), **extra) -> requests.Response:
        """POST /api/v1/nodes for a lab node with its root password and the host key read from it."""
        from app.services.setup import fetch_host_key

        if "host_key_fingerprint" not in extra:
            extra["host_key_fingerprint"] = fetch_host_key(lab_node.address, extra.get("ssh_port", 22))[1]
        body = {"name": name, "address": lab_node.address, "password": lab_node.root_password,
                "roles": list(roles), **extra}
        return self.request("POST", "/api/v1/nodes", body)

    def node(self, node_id: int) -> dict:
        """GET /api/v1/nodes/<id>."""
        return self.request("GET", f"/api/v1/nodes/{node_id}").json()

    def setup(self, node_id: int) -> dict:
        """GET /api/v1/nodes/<id>/setup."""
        return self.request("GET", f"/api/v1/nodes/{node_id}/setup").json()

    def wait_state(self, node_id: int, states, timeout: float = 600, interval: float = 0.5) -> dict:
        """Wait until the node is in one of states (or fails); return it."""
        states = {states} if isinstance(states, str) else set(states)

        def reached():
            node = self.node(node_id)
            if node["state"] in states:
                return node
            if "ready" in states and node["state"] == "syncing":
                self.clear_unowned(node)
            if node["state"] == "error" and "error" not in states:
                raise AssertionError(f"node {node['name']} went to error: {self.setup(node_id)}")
            return None

        return wait_until(reached, timeout, interval=interval, what=f"node {node_id} to be {'/'.join(sorted(states))}")

    def clear_unowned(self, node: dict) -> None:
        """Delete desyncs that no code in this tree can ever clear (no runner registered), and say so."""
        names = [d["list"] for d in node["desyncs"] if d["list"] in unowned_synchronizers()]
        for name in names:
            self.sql("DELETE FROM desyncs WHERE node_id = ? AND list = ?", (node["id"], name))
            message = f"no runner is registered for synchronizer {name!r}: the test cleared it on {node['name']}"
            if message not in self.cleared:
                self.cleared.append(message)
                warnings.warn(message, stacklevel=2)

    def operation(self, op_id: int) -> dict:
        """GET /api/v1/operations/<id>."""
        return self.request("GET", f"/api/v1/operations/{op_id}").json()

    def wait_operation(self, op_id: int, timeout: float = 600) -> dict:
        """Wait until the operation finished; return it."""
        def finished():
            op = self.operation(op_id)
            return op if op["status"] not in ("queued", "running") else None

        return wait_until(finished, timeout, interval=0.5, what=f"operation {op_id} to finish")

    def secret_and_fingerprint(self, node_id: int) -> tuple[str, str]:
        """The node's agent secret and pinned certificate fingerprint, from the master's database."""
        return tuple(self.sql("SELECT agent_secret, cert_fingerprint FROM nodes WHERE id = ?", (node_id,))[0])

    def master_public_key(self) -> str:
        """The master's public key line."""
        return (self.data / "ssh" / "id_ed25519.pub").read_text().strip()


# What a node looks like before any panel touched it (the lab's base has none of this).
RESET_NODE = r"""
systemctl disable --now hostfleet-agent >/dev/null 2>&1
rm -rf /opt/hostfleet-agent /etc/hostfleet-agent /var/lib/hostfleet-agent /var/log/hostfleet-agent.log \
       /etc/systemd/system/hostfleet-agent.service /etc/apt/sources.list.d/hostfleet.list \
       /etc/ssh/sshd_config.d/00-hostfleet-test.conf /etc/ssh/sshd_config.d/hostfleet-sftp.conf \
       /etc/ssh/hostfleet-keys
groupdel hostfleet-sftp >/dev/null 2>&1
systemctl daemon-reload
sed -i '/^ispmaster:/d' /etc/passwd /etc/shadow
[ -f /root/.ssh/authorized_keys ] && sed -i '/ hostfleet-master$/d' /root/.ssh/authorized_keys
pkgs=$(dpkg-query -W -f='${Package} ${Status}\n' 'nginx*' 'php*' 'bind9*' 'exim4*' 'dovecot*' 'mariadb*' 2>/dev/null \
       | awk '$NF == "installed" {print $1}')
[ -n "$pkgs" ] && DEBIAN_FRONTEND=noninteractive apt-get purge -y -q $pkgs >/dev/null 2>&1
DEBIAN_FRONTEND=noninteractive apt-get autoremove --purge -y -q >/dev/null 2>&1
systemctl reload ssh
true
"""


def kill_processes(processes: list[psutil.Process]) -> list[int]:
    """SIGKILL these processes and their children; return once every one has exited (their pids)."""
    victims = []
    for proc in processes:
        try:
            victims += [proc, *proc.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
    for proc in victims:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    # A worker dies some time after its SIGKILL; until then Redis may hand a job submitted next to its
    # blocking dequeue. Dead means gone, or a zombie (the stopped runner does not reap) with no thread left.
    wait_until(lambda: all(_dead(p) for p in victims), 30, interval=0.05, what="the killed processes to exit")
    return [p.pid for p in victims]


def _dead(proc: psutil.Process) -> bool:
    """True once a process has exited with every thread: its files and sockets are closed then. (Its
    main thread shows as a zombie while the others may still be exiting, holding the shared files.)"""
    try:
        return proc.status() == psutil.STATUS_ZOMBIE and len(os.listdir(f"/proc/{proc.pid}/task")) <= 1
    except (psutil.NoSuchProcess, FileNotFoundError):
        return True


def reset(node) -> None:
    """Take a lab node back to a fresh server: no agent, no ispmaster, no role packages."""
    node.exec(RESET_NODE, timeout=300)
    wait_for_sshd(node)


def wait_for_sshd(node, timeout: float = 30) -> None:
    """sshd re-executes itself on reload and refuses connections for a moment: wait for its banner."""
    import socket

    def banner():
        try:
            with socket.create_connection((node.address, 22), timeout=2) as sock:
                return sock.recv(64).startswith(b"SSH-")
        except OSError:
            return False

    wait_until(banner, timeout, interval=0.2, what=f"sshd on {node.name} to answer")


def unowned_synchronizers() -> list[str]:
    """Synchronizers for which no module of app.services registers a runner."""
    import importlib
    import pkgutil

    import app.services
    from app.services.sync_runners import get_runner
    from app.services.synchronizers import SYNCHRONIZERS

    for module in pkgutil.iter_modules(app.services.__path__):
        importlib.import_module(f"app.services.{module.name}")
    return [name for name in SYNCHRONIZERS if get_runner(name) is None]


def timed(func):
    """(result, seconds)."""
    started = time.monotonic()
    result = func()
    return result, time.monotonic() - started
