"""Fixtures of real agent processes on loopback: the local node's, nodes with private roots, a hostile
agent, and the cluster of nodes and hosting users that most menus' tests build on."""

from __future__ import annotations

import base64
import hashlib
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.panel import Users
from tests.support.processes import ROOT, free_port, listening_on, wait_until


class AgentProcess:
    """A real agent process serving HTTPS for a node's config."""

    def __init__(self, config: Path, log: Path):
        self.config = config
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self):
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agent", "serve", "--config", str(self.config)],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            )
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def local_node(app):
    """The local node set up as at first start, with its real agent process running."""
    from app.services.nodes import ensure_local_node, local_agent_paths

    with app.app_context():
        node = ensure_local_node(app.config["DATA_DIR"])
        node_id, port = node.id, node.agent_port
    paths = local_agent_paths(app.config["DATA_DIR"])
    agent = AgentProcess(paths["config"], paths["base"] / "agent-test.log").start()

    agent.node_id = node_id
    agent.port = port
    wait_until(listening_on(port), 15, what="the local agent to listen")
    yield agent
    agent.stop()


class AgentNodes:
    """Nodes backed by real agent processes on loopback, each with its own private root."""

    def __init__(self, app, base: Path):
        self.app = app
        self.base = base
        self.agents: dict[int, AgentProcess] = {}

    def add(self, name: str, roles=("web", "dns", "mail"), state: str = "ready", weight: int = 100,
            reload_commands: dict | None = None) -> int:
        """Set up an agent under base/<name>, start it, and add its node in `state`; returns the node id."""
        from agent.config import initialize
        from app.extensions import db
        from app.models import NodeState
        from app.services.nodes import change_state, create_node

        home = self.base / name
        port = free_port()
        result = initialize(
            home / "agent.json", root=home / "root", state_dir=home / "state", secret_file=home / "secret",
            listen_host="127.0.0.1", listen_port=port, roles=list(roles), hostnames=["localhost"],
            addresses=["127.0.0.1"], log_file=home / "agent.log", reload_commands=reload_commands or {},
        )
        with self.app.app_context():
            node = create_node(name, "127.0.0.1", roles=list(roles), reason="test agent on loopback",
                               agent_port=port, weight=weight, agent_secret=(home / "secret").read_text().strip(),
                               cert_fingerprint=result["fingerprint"])
            db.session.flush()
            if state != "new":
                change_state(node, NodeState(state), "test agent started")
            db.session.commit()
            node_id = node.id
        agent = AgentProcess(home / "agent.json", home / "agent-process.log").start()
        agent.node_id, agent.port, agent.root = node_id, port, home / "root"
        wait_until(listening_on(port), 15, what=f"agent {name} to listen")
        self.agents[node_id] = agent
        return node_id

    def stop_all(self):
        for agent in self.agents.values():
            agent.stop()


@pytest.fixture
def agent_nodes(app, tmp_path):
    """Factory: agent_nodes.add("n1", roles=("web",)) → node id of a ready node with a live agent."""
    nodes = AgentNodes(app, tmp_path / "agents")
    yield nodes
    nodes.stop_all()


@pytest.fixture
def hostile_agent(tmp_path):
    """A compromised node's agent on loopback that answers what the test says (tests/hostile_agent.py)."""
    from tests.hostile_agent import HostileAgent

    hostile = HostileAgent(tmp_path / "hostile")
    yield hostile
    hostile.close()


def tree_hash(*folders: Path) -> str:
    """One SHA-256 over every file's path and bytes under the folders (an agent's root and state)."""
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def seed_account_files(root: Path) -> None:
    """The account files a Debian root has; shadow-utils waits forever for a lock without them."""
    etc = root / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    seeds = {"passwd": "root:x:0:0:root:/root:/bin/bash\n", "group": "root:x:0:\n",
             "shadow": "root:*:19000:0:99999:7:::\n", "gshadow": "root:*::\n"}
    for name, content in seeds.items():
        if not (etc / name).exists():
            (etc / name).write_text(content)


def basic(name: str, password: str = Users.PASSWORD) -> dict:
    """An HTTP Basic header for the API."""
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


class Cluster:
    """Loopback agent nodes plus hosting users, built in one line each."""

    def __init__(self, app, agent_nodes):
        self.app = app
        self.agent_nodes = agent_nodes

    def node(self, name: str, roles=("web", "dns", "mail"), weight: int = 100, poll: bool = True) -> int:
        """A ready node with a live agent and its first statistics."""
        node_id = self.agent_nodes.add(name, roles=roles, weight=weight)
        seed_account_files(self.agent_nodes.agents[node_id].root)
        if poll:
            self.poll()
        return node_id

    def poll(self) -> dict:
        """Run the statistics collector once."""
        from app.services.collector import collect_stats

        with self.app.app_context():
            return collect_stats()

    def user(self, name: str, roles=("web", "dns", "mail"), admin: bool = False, **extra) -> int:
        """A hosting user created through the users service (placed, OS accounts made)."""
        from app.models import UserLevel
        from app.services.users import make_user

        with self.app.app_context():
            level = UserLevel.ADMIN if admin else UserLevel.USER
            return make_user(name, Users.PASSWORD, roles=roles, level=level, **extra).id

    def zones(self, owner: str, *names: str) -> None:
        """Zones made through the API by their owner, as a customer does before the web and mail domains
        under them (the name registry wants a web or mail name's zone held by its owner)."""
        for name in names:
            made = self.app.test_client().post("/api/v1/domains", json={"name": name, "ip": "192.0.2.1"},
                                               headers=basic(owner))
            assert made.status_code == 201, made.json

    def root(self, node_id: int) -> Path:
        """The private root of a node's agent."""
        return self.agent_nodes.agents[node_id].root

    def state(self, node_id: int) -> Path:
        """The state folder of a node's agent."""
        return self.agent_nodes.agents[node_id].root.parent / "state"

    def tree(self, node_id: int) -> str:
        """The hash of everything the node's agent has written."""
        return tree_hash(self.root(node_id), self.state(node_id))

    def set_state(self, node_id: int, state: str) -> None:
        """Move a node to a state directly (as the collector would)."""
        from app.extensions import db
        from app.models import Node, NodeState
        from app.services.nodes import change_state

        with self.app.app_context():
            change_state(db.session.get(Node, node_id), NodeState(state), "test")
            db.session.commit()


@pytest.fixture
def cluster(app, agent_nodes):
    """Factory for nodes and hosting users."""
    return Cluster(app, agent_nodes)


@pytest.fixture
def alice(cluster, client, auth):
    """A node, and alice (a hosting user) logged in."""
    node_id = cluster.node("n1")
    cluster.user("alice")
    auth.login("alice", create=False)
    return node_id
