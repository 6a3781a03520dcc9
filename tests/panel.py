"""Start the whole panel the way `make run` does, as a child process, for end-to-end tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import requests

from tests.support.processes import ROOT, free_port, wait_until


@dataclass
class Panel:
    """A running `python -m app.runner` with its URL, admin password and output."""

    data: Path
    port: int
    proc: subprocess.Popen | None = None
    output: list[str] = field(default_factory=list)
    password: str | None = None
    startup_s: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60, env: dict | None = None) -> Panel:
        """Start the runner and wait until it prints the login details."""
        started = time.monotonic()
        environment = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "ADMIN_PASSWORD")}
        environment.update(HOSTFLEET_DATA=str(self.data), PORT=str(self.port), PYTHONUNBUFFERED="1", **(env or {}))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.runner"], cwd=ROOT, env=environment,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.output = []

        def printed_credentials():
            self._read()
            if self.proc.poll() is not None:
                raise AssertionError("the runner exited early:\n" + "".join(self.output))
            return any("password:" in line for line in self.output)

        wait_until(printed_credentials, timeout, what="the runner to print the login details")
        self.startup_s = time.monotonic() - started
        match = re.search(r"password:  (.+)\n", "".join(self.output))
        self.password = match.group(1) if match else None
        return self

    def _read(self) -> None:
        while True:
            line = self.proc.stdout.readline()
            if not line:
                return
            self.output.append(line)

    def descendants(self) -> list[int]:
        """Pids of every process the runner started (and theirs)."""
        return [p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)]

    def api(self, path: str) -> requests.Response:
        return requests.get(self.url + path, auth=("admin", self.password), timeout=60)

    def redis_url(self) -> str:
        """The embedded Redis's URL, with the password `make run` made for it."""
        port = re.search(r"embedded Redis on 127\.0\.0\.1:(\d+)", "".join(self.output)).group(1)
        password = (self.data / "redis" / "password").read_text().strip()
        return f"redis://:{password}@127.0.0.1:{port}/0"

    def job_queue(self, name: str = "default"):
        """The panel's RQ queue `name`, signing jobs as the panel does (its data dir's secret)."""
        from redis import Redis
        from rq import Queue

        from app.queues import SignedJSONSerializer

        secret = (self.data / "secret_key").read_text().strip()
        return Queue(name, connection=Redis.from_url(self.redis_url()), serializer=SignedJSONSerializer(secret))

    def wait_ready(self, timeout: float = 60) -> dict:
        """Wait until the local node is `ready` and return it as the API shows it."""

        def local_ready():
            nodes = self.api("/api/v1/nodes").json()["items"]
            local = [n for n in nodes if n["is_local"]]
            return local[0] if local and local[0]["state"] == "ready" else None

        return wait_until(local_ready, timeout, interval=0.3, what="the local node to become ready")

    def stop(self) -> int:
        """Ctrl-C, as a user would; returns the runner's exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            for pid in self.descendants():
                os.kill(pid, signal.SIGKILL)
            self.proc.kill()
            raise
        self._read()
        return code


def new_panel(tmp_path: Path) -> Panel:
    """A panel on a fresh data dir and a free port (not started)."""
    return Panel(data=tmp_path / "data", port=free_port())


def add_loopback_nodes(panel: Panel, base: Path, names, monkeypatch, roles=("web", "dns", "mail")):
    """Real agents on loopback with private roots, added to a running panel's database as ready nodes."""
    from app import create_app
    from tests.support.agents import AgentNodes

    monkeypatch.setenv("HOSTFLEET_DATA", str(panel.data))
    monkeypatch.setenv("REDIS_URL", panel.redis_url())
    nodes = AgentNodes(create_app(), base)
    for name in names:
        nodes.add(name, roles=roles)
    return nodes
