"""Fixtures for the system-wide lists: a cluster of loopback agents and helpers to read them back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.panel import run_worker_burst
from tests.support.processes import wait_until


class Cluster:
    """Loopback agent nodes plus the calls a test needs: API requests, jobs, read-backs."""

    def __init__(self, app, client, agent_nodes, users):
        self.app = app
        self.client = client
        self.agent_nodes = agent_nodes
        from app.extensions import db
        from app.models import User
        from app.services import accounts

        user_id = users.make("root-admin", admin=True)
        with app.app_context():
            # A Bearer token: Basic auth would hash the password on every one of many calls.
            _, token = accounts.create_token(db.session.get(User, user_id), "tests")
        self.headers = {"Authorization": f"Bearer {token}"}
        self.ids: dict[str, int] = {}

    def add(self, name: str, roles=("web", "dns", "mail"), **kwargs) -> int:
        """Add a ready loopback node; returns its id."""
        self.ids[name] = self.agent_nodes.add(name, roles=roles, **kwargs)
        return self.ids[name]

    def agent(self, name: str):
        """The agent process of a node."""
        return self.agent_nodes.agents[self.ids[name]]

    def start(self, name: str):
        """Start a node's agent again and wait until it listens."""
        from tests.support.processes import listening_on

        agent = self.agent(name).start()
        wait_until(listening_on(agent.port), 15, what=f"agent {name} to listen")

    def stop(self, name: str):
        """Stop a node's agent (SIGTERM)."""
        self.agent(name).stop()

    def api(self, method: str, path: str, body=None):
        """Call /api/v1 as the admin; returns (status, json)."""
        response = self.client.open(f"/api/v1{path}", method=method, json=body, headers=self.headers)
        return response.status_code, response.get_json()

    def change(self, list_path: str, method: str = "POST", body=None, row_id: int | None = None, run: bool = True):
        """Submit a change through the API and (by default) run its job; returns the final operation."""
        path = f"/{list_path}" + (f"/{row_id}" if row_id is not None else "")
        status, answer = self.api(method, path, body)
        assert status == 202, (status, answer)
        url = answer["operation"]["url"]
        assert url == f"/api/v1/operations/{answer['operation']['id']}"
        if run:
            self.run_jobs()
        return self.operation(answer["operation"]["id"])

    def operation(self, operation_id: int) -> dict:
        """GET /api/v1/operations/<id>."""
        status, body = self.api("GET", f"/operations/{operation_id}")
        assert status == 200
        return body

    def run_jobs(self):
        """Drain the queues with a real RQ worker in this process."""
        run_worker_burst(self.app)

    def collect(self):
        """One statistics poll of every node (drift detection included)."""
        from app.services.collector import collect_stats

        with self.app.app_context():
            return collect_stats()

    def sync(self):
        """One round of the sync job."""
        from app.services.sync import run_sync

        with self.app.app_context():
            return run_sync()

    def poll_and_sync(self):
        """What the periodic job does: poll, then sync."""
        self.collect()
        return self.sync()

    def desyncs(self) -> set[tuple[str, str]]:
        """(node name, list) of every desync row."""
        from app.extensions import db
        from app.models import Desync, Node

        with self.app.app_context():
            rows = db.session.execute(db.select(Node.name, Desync.list).join(Desync.node)).all()
            return {(n, name) for n, name in rows}

    def master(self, name: str) -> dict:
        """The master's list as {version, hash, rows}."""
        from app.extensions import db
        from app.services import lists

        with self.app.app_context():
            row = lists.get_list(name)
            result = {"version": row.version, "hash": row.hash, "rows": row.rows}
            db.session.rollback()
            return result

    def node_state(self, name: str) -> str:
        from app.extensions import db
        from app.models import Node

        with self.app.app_context():
            return db.session.get(Node, self.ids[name]).state

    def held(self, node: str, name: str) -> dict:
        """GET /v1/lists/<name> from the node's agent."""
        from app.extensions import db
        from app.models import Node
        from app.services.nodes import agent_client

        with self.app.app_context():
            return agent_client(db.session.get(Node, self.ids[node])).get(f"/v1/lists/{name}")[1]

    def root(self, node: str) -> Path:
        return self.agent(node).root

    def file(self, node: str, relative: str) -> str:
        """A file under the node's private root ('' when missing)."""
        path = self.root(node) / relative
        return path.read_text() if path.exists() else ""

    def set_policy(self, **values):
        from app.extensions import db
        from app.services.policies import get_policy

        with self.app.app_context():
            policy = get_policy()
            for key, value in values.items():
                setattr(policy, key, value)
            db.session.commit()

    def add_os_user(self, node: str, user: str, uid: int = 2000):
        """Put an account in the node's /etc/passwd under its root (cron entries need one)."""
        passwd = self.root(node) / "etc" / "passwd"
        passwd.parent.mkdir(parents=True, exist_ok=True)
        with open(passwd, "a") as fh:
            fh.write(f"{user}:x:{uid}:{uid}::/home/{user}:/bin/sh\n")

    def converged(self, name: str, nodes: list[str]) -> bool:
        """Every node holds the master's version and hash of the list."""
        master = self.master(name)
        return all(
            (self.held(n, name)["version"], self.held(n, name)["hash"]) == (master["version"], master["hash"])
            for n in nodes
        )


def worker_env(app, failpoints: str = "") -> dict:
    """The environment a real worker process needs to share the test's database and Redis."""
    import os

    env = dict(os.environ)
    env.update({
        "HOSTFLEET_DATA": str(app.config["DATA_DIR"]),
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config["REDIS_URL"],
        "SECRET_KEY": app.config["SECRET_KEY"],
        "HOSTFLEET_FAILPOINTS": failpoints,
        "HOSTFLEET_LIST_LEASE_S": env.get("HOSTFLEET_LIST_LEASE_S", "3"),
    })
    return env


def spawn_worker(app, *queues: str, failpoints: str = "", burst: bool = True, simple: bool = True, log=None):
    """Start `python worker.py` as its own process (killed by a failpoint, or run to the end)."""
    import subprocess
    import sys

    from tests.support.processes import ROOT

    args = [sys.executable, "worker.py", *(queues or ("default",))]
    args += ["--burst"] if burst else []
    args += ["--simple"] if simple else []
    return subprocess.Popen(args, cwd=ROOT, env=worker_env(app, failpoints),
                            stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT)


@pytest.fixture
def cluster(app, client, agent_nodes, users):
    """A cluster of loopback agent nodes driven through the API."""
    return Cluster(app, client, agent_nodes, users)


def firewall_file(cluster: Cluster, node: str) -> str:
    """The node's rendered nft ruleset."""
    return cluster.file(node, "etc/hostfleet/firewall.nft")


def cron_file(cluster: Cluster, node: str) -> str:
    """The node's /etc/cron.d/hostfleet."""
    return cluster.file(node, "etc/cron.d/hostfleet")


def dumps(value) -> str:
    return json.dumps(value, sort_keys=True)


__all__ = ["Cluster", "firewall_file", "cron_file", "wait_until"]
