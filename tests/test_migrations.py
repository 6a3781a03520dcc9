"""The migrations apply on SQLite and on a real PostgreSQL, and the models work on both."""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile

import pytest

from tests.conftest import free_port, wait_until


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


def postgres_binaries() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


@pytest.fixture
def postgres():
    """A throwaway PostgreSQL cluster run as the `postgres` user on a private socket."""
    bindir = postgres_binaries()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (make test installs Debian's postgresql when run as root)")
    if os.geteuid() != 0:
        pytest.skip("starting a PostgreSQL cluster for the test needs root (to run it as the postgres user)")
    try:
        pg = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no postgres system user")
    base = tempfile.mkdtemp(prefix="hostfleet-pg-")
    os.chown(base, pg.pw_uid, pg.pw_gid)
    datadir, port = os.path.join(base, "data"), free_port()

    def as_postgres(*argv):
        return subprocess.run(["runuser", "-u", "postgres", "--", *argv], capture_output=True, text=True, check=True)

    as_postgres(f"{bindir}/initdb", "-D", datadir, "-A", "trust", "-U", "postgres")
    as_postgres(f"{bindir}/pg_ctl", "-D", datadir, "-l", os.path.join(base, "log"), "-w", "-o",
                f"-k {base} -p {port} -c listen_addresses=''", "start")
    try:
        wait_until(lambda: os.path.exists(os.path.join(base, f".s.PGSQL.{port}")), 20, what="postgres socket")
        as_postgres(f"{bindir}/createdb" if os.path.exists(f"{bindir}/createdb") else "createdb",
                    "-h", base, "-p", str(port), "hostfleet")
        yield f"postgresql://postgres@/hostfleet?host={base}&port={port}"
    finally:
        subprocess.run(["runuser", "-u", "postgres", "--", f"{bindir}/pg_ctl", "-D", datadir, "-m", "immediate",
                        "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.postgres
def test_migrations_on_postgresql(postgres, tmp_path, redis_url):
    exercise_schema(postgres, tmp_path, redis_url)
