"""Fixtures of the panel in the test process: a real Redis, the app on a migrated database, clients,
accounts and logins."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.support.processes import free_port, listening_on, redis_server_binary, wait_until

# What a template is made with: migrating touches no Redis, and a test may run a Redis of its own.
UNUSED_REDIS = "redis://127.0.0.1:9/0"


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
    wait_until(listening_on(port), 10, what="redis-server to listen")
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


def migrated_sqlite_file(data_dir: Path) -> Path:
    """A SQLite file migrated to head, its write-ahead log folded in, so that copying the one file copies
    the whole database."""
    from flask_migrate import upgrade

    from app import create_app
    from app.config import TestConfig

    path = data_dir / "template.db"
    app = create_app(TestConfig(data_dir, UNUSED_REDIS, database_url=f"sqlite:///{path}"))
    with app.app_context():
        upgrade()
    close_app(app)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """The SQLite database every panel test starts from, migrated once for the session."""
    return migrated_sqlite_file(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture
def fresh_database(request):
    """Factory: fresh_database(dialect, data_dir) → the URL of a new database, migrated to head, for one
    app. On PostgreSQL a copy of the migrated template (dropped after the test); on SQLite a copy of the
    migrated template file in data_dir."""
    taken: list[str] = []

    def make(dialect: str, data_dir: Path) -> str:
        if dialect == "sqlite":
            path = data_dir / "test.db"
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
            return f"sqlite:///{path}"
        name = request.getfixturevalue("postgres_databases").take()
        taken.append(name)
        return request.getfixturevalue("postgres_cluster").url(name)

    yield make
    for name in taken:
        request.getfixturevalue("postgres_databases").give_back(name)


@pytest.fixture(autouse=True)
def quick_password_hashes(request, monkeypatch):
    """Cheap argon2 parameters: the tests make accounts and log in thousands of times. The tests marked
    real_password_hashes (tests/test_auth.py), and every panel started as a process, keep the real ones."""
    if request.node.get_closest_marker("real_password_hashes"):
        return
    from argon2 import PasswordHasher

    from app.services import accounts

    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def make_app(dialect: str, tmp_path: Path, redis_url: str, fresh_database):
    """The panel on a fresh database of the dialect migrated to head, in a private data dir under tmp_path,
    with Redis emptied."""
    from redis import Redis

    from app import create_app
    from app.config import TestConfig
    from app.jobs import use_app

    Redis.from_url(redis_url).flushdb()
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    app = create_app(TestConfig(data, redis_url, database_url=fresh_database(dialect, data)))
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


def run_worker_burst(app, queues=("periodic", "default")):
    """Run every queued job to the end in this process with a real RQ worker."""
    from app.queues import make_worker

    with app.app_context():
        worker = make_worker(queues)
        worker.work(burst=True, logging_level="WARNING")


def logged_in(app, name: str, password: str = Users.PASSWORD):
    """A test client of app with a page session for name, logged in through the login form."""
    browser = app.test_client()
    page = browser.get("/login")
    response = browser.post("/login", data={"username": name, "password": password,
                                            "csrf_token": csrf_from(page.text)})
    assert response.status_code == 302, response.text
    return browser
