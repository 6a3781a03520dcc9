"""Database servers for the session: the PostgreSQL cluster the panel's tests run on with --db=postgresql,
and the private MariaDB that the agents of db nodes reach; the databases menu's cluster built on it."""

from __future__ import annotations

import pytest

from tests.support.agents import basic

WEB_ROLES = ("web", "dns", "mail")
DB_USER_ROLES = ("web", "dns", "mail", "db")


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
    from tests.support.panel import UNUSED_REDIS

    template = migrated_template(postgres_cluster, tmp_path_factory.mktemp("template-data"), UNUSED_REDIS)
    supply = DatabaseSupply(postgres_cluster, template)
    yield supply
    supply.close()


@pytest.fixture(scope="session")
def mariadb_server():
    """One MariaDB server for the session (skips when it cannot start here)."""
    from tests.databases.mariadb import MariaDBServer, unavailable_reason

    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    server = MariaDBServer().start()
    yield server
    server.stop()


@pytest.fixture
def mariadb(mariadb_server, monkeypatch):
    """The server, reached by the agents this test starts; what the test made is dropped after it."""
    monkeypatch.setenv("HOME", str(mariadb_server.home))
    yield mariadb_server
    mariadb_server.forget_customers()


class DbCluster:
    """A web node and a db node; alice and bob (db role placed on the db node), API helpers."""

    def __init__(self, app, client, cluster, server):
        self.app, self.client, self.cluster, self.server = app, client, cluster, server
        self.web = cluster.node("web1", roles=WEB_ROLES, poll=False)
        self.db = cluster.node("db1", roles=("db",))
        cluster.user("alice", roles=DB_USER_ROLES)
        cluster.user("bob", roles=DB_USER_ROLES)

    def api(self, method: str, path: str, actor: str | None = "alice", body=None, status: int | None = None):
        headers = basic(actor) if actor else {}
        answer = self.client.open(f"/api/v1{path}", method=method, json=body, headers=headers)
        if status is not None:
            assert answer.status_code == status, (method, path, actor, answer.status_code, answer.get_json())
        return answer

    def index(self, model_name: str) -> list[str]:
        """The names in one index table."""
        from sqlalchemy import select

        from app import models
        from app.extensions import db

        model = getattr(models, model_name)
        with self.app.app_context():
            return sorted(db.session.scalars(select(model.name)))


@pytest.fixture
def dbc(app, client, cluster, mariadb, users):
    """The web node, the db node, alice and bob, and root (an administrator)."""
    users.make("root", admin=True)
    return DbCluster(app, client, cluster, mariadb)
