"""Fixtures for user data: a ready cluster of loopback agents, hosting users, API helpers."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from tests.conftest import Users


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
