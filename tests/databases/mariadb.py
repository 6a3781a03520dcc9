"""A throwaway MariaDB server from Debian's `mariadb-server` package, on a private socket, for the tests.

One server serves the test session. The agents the tests start reach it with their own `mariadb` client
as root over that socket (unix_socket authentication, as on a db node): their HOME holds a `.my.cnf` that
names the socket, which the client reads after the system's files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

SYSTEM_DATABASES = ("information_schema", "mysql", "performance_schema", "sys")
SYSTEM_ACCOUNTS = ("root", "mysql", "mariadb.sys", "PUBLIC", "")


def unavailable_reason() -> str | None:
    """Why no server can be started here, or None when one can."""
    if not shutil.which("mariadbd") or not shutil.which("mariadb-install-db") or not shutil.which("mariadb"):
        return "MariaDB is not installed (make test installs Debian's mariadb-server when run as root)"
    if os.geteuid() != 0:
        return "the agent reaches MariaDB as root over its socket: the tests must run as root"
    return None


class MariaDBServer:
    """mariadb-install-db, start and stop one server; run SQL as root; forget customers' objects."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="hostfleet-mariadb-"))
        self.datadir = self.base / "data"
        self.socket = self.base / "mysqld.sock"
        self.home = self.base / "home"
        self.proc: subprocess.Popen | None = None

    def start(self) -> MariaDBServer:
        subprocess.run(["mariadb-install-db", "--no-defaults", "--user=root", f"--datadir={self.datadir}",
                        "--auth-root-authentication-method=socket", "--skip-test-db"],
                       check=True, capture_output=True, timeout=120)
        self.proc = subprocess.Popen(
            ["mariadbd", "--no-defaults", "--user=root", f"--datadir={self.datadir}", f"--socket={self.socket}",
             "--skip-networking", f"--pid-file={self.base / 'mysqld.pid'}", f"--log-error={self.base / 'error.log'}",
             "--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.home.mkdir()
        (self.home / ".my.cnf").write_text(f"[client]\nsocket={self.socket}\n")
        deadline = time.monotonic() + 60
        while True:
            try:
                self.sql("SELECT 1;")
                return self
            except subprocess.CalledProcessError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    log = (self.base / "error.log").read_text()[-2000:]
                    raise RuntimeError(f"MariaDB did not start: {log}") from None
                time.sleep(0.2)

    def env(self, password: str | None = None) -> dict:
        env = {**os.environ, "HOME": str(self.home)}
        if password is not None:
            env["MYSQL_PWD"] = password
        return env

    def sql(self, statements: str, user: str | None = None, password: str | None = None,
            database: str | None = None) -> list[list[str]]:
        """Rows of the statements, run as root over the socket (or as user with password)."""
        command = ["mariadb", "--batch", "--skip-column-names"]
        if user is not None:
            command += ["-u", user]
        if database is not None:
            command.append(database)
        out = subprocess.run(command, input=statements, capture_output=True, text=True, check=True, timeout=30,
                             env=self.env(password))
        return [line.split("\t") for line in out.stdout.splitlines()]

    def try_sql(self, statements: str, user: str, password: str, database: str | None = None) -> str | None:
        """None when the statements ran as user, else the client's error."""
        try:
            self.sql(statements, user, password, database)
        except subprocess.CalledProcessError as exc:
            return exc.stderr.strip()
        return None

    def databases(self) -> set[str]:
        return {row[0] for row in self.sql("SHOW DATABASES;")} - set(SYSTEM_DATABASES)

    def accounts(self) -> set[tuple[str, str]]:
        return {(r[0], r[1]) for r in self.sql("SELECT User, Host FROM mysql.user;") if r[0] not in SYSTEM_ACCOUNTS}

    def mysql_schema(self) -> list[list[str]]:
        """Every row of the tables that hold accounts and grants."""
        return [row for table in ("user", "db", "tables_priv", "global_priv")
                for row in self.sql(f"SELECT * FROM mysql.{table} ORDER BY 1, 2;")]

    def forget_customers(self) -> None:
        """Drop every database and account a test made."""
        sql = "".join(f"DROP DATABASE IF EXISTS `{name}`;\n" for name in self.databases())
        sql += "".join(f"DROP USER IF EXISTS '{user}'@'{host}';\n" for user, host in self.accounts())
        if sql:
            self.sql(sql)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.base, ignore_errors=True)
