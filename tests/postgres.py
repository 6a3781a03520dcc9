"""A throwaway PostgreSQL cluster from Debian's `postgresql` package, on a private socket, for the tests.

One cluster serves a whole test session (`postgres_cluster` in tests/conftest.py). The panel's tests get a
database of their own each, copied from a template that was migrated once: migrating each one would take
seconds, and a copy (`CREATE DATABASE ... TEMPLATE`, about half a second) is made while the test before
runs, so a test does not wait for it.
As root the server runs as the `postgres` user (PostgreSQL refuses to run as root); otherwise as the
user running the tests.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from tests.support.processes import free_port

# Durability is worth nothing to a cluster that lives for one test run: commits that do not wait for the
# disk keep the PostgreSQL run close to the SQLite one.
FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=200")


def postgres_bindir() -> str | None:
    """The newest installed PostgreSQL's bin directory (Debian: /usr/lib/postgresql/<major>/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return os.path.dirname(found[-1]) if found else None


def unavailable_reason() -> str | None:
    """Why no cluster can be started here, or None when one can."""
    if postgres_bindir() is None:
        return "PostgreSQL is not installed (make test installs Debian's postgresql when run as root)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, and there is no postgres system user to run PostgreSQL as"
    return None


class PostgresCluster:
    """initdb, start, restart and stop one cluster; create and drop its databases."""

    def __init__(self) -> None:
        self.bindir = postgres_bindir()
        self.base = Path(tempfile.mkdtemp(prefix="hostfleet-pg-"))
        self.datadir = self.base / "data"
        self.log = self.base / "server.log"
        self.run_as = None
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.base, owner.pw_uid, owner.pw_gid)
            self.run_as = "postgres"
        self.port = free_port()
        self._names = itertools.count(1)

    def _run(self, *argv: str) -> subprocess.CompletedProcess:
        command = ["runuser", "-u", self.run_as, "--", *argv] if self.run_as else list(argv)
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr}{result.stdout}\n{log}")
        return result

    def start(self) -> PostgresCluster:
        """initdb (trust on the private socket only) and start the server; waits until it accepts connections."""
        if not (self.datadir / "PG_VERSION").exists():
            self._run(f"{self.bindir}/initdb", "-D", str(self.datadir), "-A", "trust", "-U", "postgres",
                      "--no-sync", "-E", "UTF8", "--locale", "C.UTF-8")
        self._pg_ctl("start")
        return self

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = f"-k {self.base} -p {self.port} -c listen_addresses=''" + "".join(
            f" -c {setting}" for setting in FAST_SETTINGS)
        self._run(f"{self.bindir}/pg_ctl", "-D", str(self.datadir), "-l", str(self.log), "-w", "-t", "60",
                  "-o", options, *extra, action)

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: every open connection is cut, the server comes back on the same socket."""
        self._pg_ctl("restart", "-m", "fast")

    def shut_down(self) -> None:
        """`pg_ctl stop -m fast`, keeping the files: start() brings the same cluster back."""
        self._pg_ctl("stop", "-m", "fast")

    def stop(self) -> None:
        """Stop the server at once and remove its files."""
        if (self.datadir / "postmaster.pid").exists():
            subprocess.run((["runuser", "-u", self.run_as, "--"] if self.run_as else []) + [
                f"{self.bindir}/pg_ctl", "-D", str(self.datadir), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)

    def url(self, database: str) -> str:
        """A DATABASE_URL for one of the cluster's databases (libpq's host= names the socket's folder)."""
        return f"postgresql://postgres@/{database}?host={self.base}&port={self.port}"

    def execute(self, sql: str) -> None:
        """Run one statement outside a transaction as the superuser (CREATE and DROP DATABASE need that)."""
        import psycopg

        with psycopg.connect(host=str(self.base), port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, template: str | None = None, prefix: str = "test") -> str:
        """A new database (empty, or a copy of `template`); its name."""
        name = f"{prefix}_{next(self._names)}"
        self.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database, cutting whatever is still connected to it (a worker a test left behind)."""
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrated_template(cluster: PostgresCluster, data_dir: Path, redis_url: str) -> str:
    """A database migrated to head and left without connections, for CREATE DATABASE ... TEMPLATE."""
    from flask_migrate import upgrade

    from app import create_app
    from app.config import TestConfig
    from app.extensions import db

    name = cluster.create_database(prefix="template")
    app = create_app(TestConfig(data_dir, redis_url, database_url=cluster.url(name)))
    with app.app_context():
        upgrade()
        db.session.remove()
        db.engine.dispose()
    return name


class DatabaseSupply:
    """Copies of a template, each made while the previous one is in use and dropped after it, by one
    background thread (the server does the work; the tests do not wait for it)."""

    def __init__(self, cluster: PostgresCluster, template: str) -> None:
        self.cluster = cluster
        self.template = template
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="postgres-supply")
        self.next: Future = self._order()

    def _order(self) -> Future:
        return self.worker.submit(self.cluster.create_database, self.template)

    def take(self) -> str:
        """A fresh copy of the template (its name); the next one is started at once."""
        name = self.next.result()
        self.next = self._order()
        return name

    def give_back(self, name: str) -> None:
        """Drop a database a test has finished with (in the background)."""
        self.worker.submit(self.cluster.drop_database, name)

    def close(self) -> None:
        """Wait for the background work and drop the copy nobody took."""
        try:
            self.cluster.drop_database(self.next.result())
        finally:
            self.worker.shutdown(wait=True)
