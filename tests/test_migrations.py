"""The migrations apply on SQLite and on a real PostgreSQL, and the models work on both.

With data: starting from an empty database, every revision is applied in turn (found from the scripts, so a
new revision is covered without editing this file) and after each one a representative row is written to
every table that exists then; at head every row must still be there with its values, and the panel must work
on that database (log in, list nodes, users, operations, desyncs, lists). Then everything is downgraded to
base with the data in it.
"""

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import Users, csrf_from

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def exercise_schema(database_url: str, data_dir, redis_url: str) -> None:
    """Upgrade an empty database, then write and read a row of every main table."""
    from flask_migrate import downgrade, upgrade

    from app import create_app
    from app.config import TestConfig
    from app.extensions import db
    from app.models import Desync, Node, Operation, OperationNode
    from app.services import accounts
    from app.services.nodes import change_state, create_node
    from app.services.policies import get_policy

    os.environ["TEST_DATABASE_URL"] = database_url
    try:
        app = create_app(TestConfig(data_dir, redis_url))
    finally:
        del os.environ["TEST_DATABASE_URL"]
    with app.app_context():
        upgrade()
        user = accounts.create_user("alice", "a long password")
        accounts.create_token(user, "ci")
        node = create_node("n1", "198.18.0.11", roles=["web", "mail"], reason="test")
        db.session.flush()
        change_state(node, node.node_state.__class__("connecting"), "test")
        db.session.add(Desync(node=node, list="firewall"))
        operation = Operation(kind="test", title="t", created_by_id=user.id, params={"a": [1, 2]})
        operation.nodes.append(OperationNode(node_id=node.id, node_name="n1"))
        db.session.add(operation)
        db.session.commit()
        assert get_policy().min_ready_percent == 50
        stored = db.session.get(Node, node.id)
        assert stored.roles == ["web", "mail"] and len(stored.history) == 2 and stored.desyncs[0].list == "firewall"
        db.session.remove()
        downgrade(revision="base")
        upgrade()
        db.session.remove()
        db.engine.dispose()


def test_migrations_on_sqlite(tmp_path, redis_url):
    exercise_schema(f"sqlite:///{tmp_path / 'm.db'}", tmp_path, redis_url)


@pytest.fixture
def postgres(postgres_cluster):
    """An empty database in the session's PostgreSQL cluster (its URL)."""
    name = postgres_cluster.create_database(prefix="migrations")
    yield postgres_cluster.url(name)
    postgres_cluster.drop_database(name)


@pytest.mark.postgres
def test_migrations_on_postgresql(postgres, tmp_path, redis_url):
    exercise_schema(postgres, tmp_path, redis_url)


def revisions_in_order() -> list[str]:
    """Every revision id from base to head, read from the migration scripts."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS))
    return [rev.revision for rev in reversed(list(script.walk_revisions("base", "heads")))]


def panel_on(database_url: str, data_dir, redis_url: str):
    """The panel app on a given database."""
    from app import create_app
    from app.config import TestConfig

    os.environ["TEST_DATABASE_URL"] = database_url
    try:
        return create_app(TestConfig(data_dir, redis_url))
    finally:
        del os.environ["TEST_DATABASE_URL"]


LIST_NAMES = ("firewall", "scheduler", "mail_whitelist", "mail_blacklist")


class Seeder:
    """Writes one representative row per table, per revision, and remembers what it wrote."""

    def __init__(self):
        self.written: list[tuple[str, dict, dict]] = []  # (table, primary key, values)
        self.tokens: dict[str, str] = {}  # user name -> raw API token
        self.round = 0
        self.password_hash: str | None = None

    def semantic(self, table: str, n: int) -> dict | None:
        """Values the panel understands for the tables it has; None: skip this table in this round."""
        from app.services.accounts import hash_password

        self.password_hash = self.password_hash or hash_password(Users.PASSWORD)
        raw = f"hf_migration-token-{n}"
        values = {
            "users": {"name": f"mig{n}", "password_hash": self.password_hash,
                      "level": "admin" if n % 2 else "user", "active": True, "session_epoch": 0},
            "api_tokens": {"name": f"token {n}", "token_hash": hashlib.sha256(raw.encode()).hexdigest(),
                           "prefix": raw[:10]},
            "nodes": {"name": f"mig-node-{n}", "address": f"198.18.0.{100 + n}", "agent_port": 8443, "ssh_port": 22,
                      "roles": ["web", "dns", "mail"], "weight": 100, "state": "ready", "is_local": False,
                      "maintenance": False, "users_locked": False, "missed_polls": 0, "agent_version": "1.0",
                      "stats": {"load": [0.5, 0.4, 0.3], "memory": {"used_percent": 20.0},
                                "disk": {"used_percent": 30.0, "free": 1000}, "uptime_s": 100.0},
                      "last_poll_error": f"poll {n}"},
            "policies": {"id": 1, "min_ready_percent": 60, "missed_polls": 3, "poll_interval_s": 10,
                         "placement_resource": "disk", "node_apt_source": ""},
            "desyncs": {"list": LIST_NAMES[n % 4], "attempts": n, "last_error": f"desync {n}"},
            "node_state_changes": {"from_state": "installing", "to_state": "ready", "reason": f"migration {n}"},
            "operations": {"kind": "test", "title": f"operation {n}", "status": "succeeded", "message": "done",
                           "params": {"n": n, "lists": ["firewall"]}, "log": f"log line {n}\n"},
            "operation_nodes": {"node_name": f"mig-node-{n}", "outcome": "applied"},
            "system_lists": {"name": LIST_NAMES[n % 4], "version": n, "hash": "0" * 64,
                             "rows": [{"id": 1, "action": "accept", "protocol": "tcp", "ports": "22",
                                       "source": "", "comment": f"rule {n}"}]},
            "list_changes": {"list": "firewall", "action": "add", "row": {"ports": "22"}, "committed": True},
            "user_accounts": {"uid": 20000 + n, "gid": 20000 + n, "roles": ["web"],
                              "limits": {"webdomains": 5}},
            "placement_decisions": {"role": "web", "chosen_by": "auto", "resource": "disk",
                                    "candidates": [{"node": f"mig-node-{n}"}]},
            "placements": {"role": "web"},
            "webdomain_index": {"name": f"site{n}.example.com", "reversed_name": f"com.example.site{n}"},
            "domain_index": {"name": f"zone{n}.example.com", "reversed_name": f"com.example.zone{n}"},
            "maildomain_index": {"name": f"mail{n}.example.com", "reversed_name": f"com.example.mail{n}"},
            "webdomain_aliases": {"name": f"www.site{n}.example.com", "reversed_name": f"com.example.site{n}.www"},
            "name_overrides": {"kind": "domains", "name": f"zone{n}.example.com", "granted_by": f"mig{n}",
                               "refused": f"zone{n}.example.com is under another owner's zone"},
            "mailbox_index": {"address": f"box{n}@mail{n}.example.com"},
            "plans": {"name": f"plan{n}", "limits": {"webdomains": n, "databases": 2}, "roles": ["web", "mail"]},
            "pending_writes": {"kind": "webdomains", "name": f"site{n}.example.com"},
        }
        if table == "policies" and n > 1:
            return None  # one policy row for the cluster
        if table == "api_tokens":
            self.tokens[f"mig{n}"] = raw
        return values.get(table, {})

    @staticmethod
    def generic(column: sa.Column, n: int):
        """A value of the column's type, for columns this test does not know (a later revision's)."""
        kind = column.type
        if isinstance(kind, sa.Boolean):
            return False
        if isinstance(kind, sa.DateTime):
            return datetime.now(UTC)
        if isinstance(kind, sa.JSON):
            return {"n": n}
        if isinstance(kind, sa.Integer):
            return n
        if isinstance(kind, sa.String):
            return f"v{n}"[: kind.length or 64]
        return f"v{n}"

    def seed(self, engine: sa.Engine) -> None:
        """Write a row to every table the database has now."""
        n = self.round = self.round + 1
        meta = sa.MetaData()
        meta.reflect(bind=engine)
        mine: dict[str, dict] = {}  # this round's primary keys, by table
        with engine.begin() as conn:
            for table in meta.sorted_tables:
                if table.name == "alembic_version":
                    continue
                values = self.semantic(table.name, n)
                if values is None or (table.name == "system_lists" and conn.scalar(
                        sa.select(sa.func.count()).select_from(table).where(table.c.name == values["name"]))):
                    continue
                values = {k: v for k, v in values.items() if k in table.c}
                for column in table.columns:
                    if column.name in values:
                        continue
                    if column.foreign_keys:
                        target = next(iter(column.foreign_keys)).column
                        picked = mine.get(target.table.name, {}).get(target.name)
                        if picked is None:
                            picked = conn.scalar(sa.select(sa.func.max(target.table.c[target.name])))
                        if picked is not None:
                            values[column.name] = picked
                    elif isinstance(column.type, sa.DateTime):
                        values[column.name] = datetime.now(UTC)
                    elif not column.nullable and column.server_default is None and not (
                            column.primary_key and isinstance(column.type, sa.Integer)):
                        values[column.name] = self.generic(column, n)
                result = conn.execute(table.insert().values(**values))
                key = dict(zip([c.name for c in table.primary_key.columns], result.inserted_primary_key, strict=True))
                mine[table.name] = {**values, **key}
                self.written.append((table.name, key, values))

    def check(self, engine: sa.Engine) -> list[str]:
        """Every written row is still there with the values it was written with (columns that still exist)."""
        meta = sa.MetaData()
        meta.reflect(bind=engine)
        problems = []
        with engine.connect() as conn:
            for name, key, values in self.written:
                table = meta.tables[name]
                where = [table.c[k] == v for k, v in key.items()]
                row = conn.execute(sa.select(table).where(*where)).mappings().first()
                if row is None:
                    problems.append(f"{name} {key}: row lost")
                    continue
                for column, value in values.items():
                    if column in row and not same(row[column], value):
                        problems.append(f"{name} {key}.{column}: {value!r} became {row[column]!r}")
        return problems


def same(stored, written) -> bool:
    """Equal, with datetimes compared in UTC whether or not the database kept the zone."""
    if isinstance(written, datetime) and isinstance(stored, datetime):
        stored = stored if stored.tzinfo else stored.replace(tzinfo=UTC)
        return abs((stored - written).total_seconds()) < 1
    return stored == written


def upgrade_with_data(database_url: str, data_dir, redis_url: str) -> None:
    """Every revision in turn with data written after each; at head the data is intact and the panel works."""
    from flask_migrate import downgrade, upgrade

    from app.extensions import db

    app = panel_on(database_url, data_dir, redis_url)
    seeder = Seeder()
    revisions = revisions_in_order()
    with app.app_context():
        for revision in revisions:
            upgrade(revision=revision)
            seeder.seed(db.engine)
        problems = seeder.check(db.engine)
        assert problems == [], "\n".join(problems)
        # 0009 keeps the last UID given: the highest an account held when it ran (one account per earlier round).
        with db.engine.connect() as conn:
            last_uid = conn.scalar(sa.text("SELECT value FROM counters WHERE name = 'uid'"))
        assert last_uid == 20000 + revisions.index("0009"), last_uid
        # 0010 filled in the reversed names of the index rows written before it, for the registry's ranges.
        with db.engine.connect() as conn:
            for table, prefix in (("webdomain_index", "site"), ("domain_index", "zone"), ("maildomain_index", "mail")):
                missing = conn.execute(sa.text(f"SELECT name FROM {table} WHERE reversed_name IS NULL")).all()
                assert missing == [], (table, missing)
                first = revisions.index("0004") + 1  # the round that wrote the first index rows
                stored = conn.scalar(sa.text(f"SELECT reversed_name FROM {table} WHERE name = :n"),
                                     {"n": f"{prefix}{first}.example.com"})
                assert stored == f"com.example.{prefix}{first}", (table, stored)
        tables = {name for name, _, _ in seeder.written}
        assert {"users", "api_tokens", "nodes", "desyncs", "operations", "system_lists",
                "webdomain_index", "mailbox_index"} <= tables, tables
        db.session.remove()
    panel_works(app, seeder)
    with app.app_context():
        downgrade(revision="base")
        left = set(sa.inspect(db.engine).get_table_names()) - {"alembic_version"}
        assert left == set(), left
        upgrade()
        db.session.remove()
        db.engine.dispose()


def panel_works(app, seeder: "Seeder") -> None:
    """Log in as a migrated admin and read nodes, users, operations, desyncs and lists (page and API)."""
    admin = next(name for name in seeder.tokens if int(name.removeprefix("mig")) % 2)
    client = app.test_client()
    page = client.get("/login")
    response = client.post("/login", data={"username": admin, "password": Users.PASSWORD,
                                           "csrf_token": csrf_from(page.text)})
    assert response.status_code == 302, response.text
    nodes_page = client.get("/cluster/nodes")
    assert nodes_page.status_code == 200 and "mig-node-1" in nodes_page.text
    bearer = {"Authorization": f"Bearer {seeder.tokens[admin]}"}
    nodes = client.get("/api/v1/nodes", headers=bearer)
    assert nodes.status_code == 200, nodes.json
    assert {f"mig-node-{n}" for n in range(1, seeder.round + 1)} <= {n["name"] for n in nodes.json["items"]}
    for path in ("/api/v1/users", "/api/v1/operations", "/api/v1/sync", "/api/v1/firewall", "/api/v1/policies",
                 "/operations/", "/accounts/users"):
        response = client.get(path, headers=bearer if path.startswith("/api/") else {})
        assert response.status_code == 200, (path, response.text[:300])
    assert client.get("/api/v1/policies", headers=bearer).json["min_ready_percent"] == 60


def test_upgrade_with_data_on_sqlite(tmp_path, redis_url):
    """SQLite: every revision with data in it, up to head, panel works, down to base."""
    upgrade_with_data(f"sqlite:///{tmp_path / 'm.db'}", tmp_path, redis_url)


@pytest.mark.postgres
def test_upgrade_with_data_on_postgresql(postgres, tmp_path, redis_url):
    """PostgreSQL: every revision with data in it, up to head, panel works, down to base."""
    upgrade_with_data(postgres, tmp_path, redis_url)
