"""Fixtures that run a real agent process over HTTPS on a loopback port."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agent.client import AgentClient, AgentError
from agent.config import initialize
from agent.signing import sign_headers

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 15


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RawResponse:
    """Status and decoded JSON body of a hand-made request."""

    status: int
    payload: object


@dataclass
class RunningAgent:
    """A live `python -m agent serve` process and what a test needs to talk to it."""

    base: Path
    port: int
    secret: str
    fingerprint: str
    config_path: Path
    log_path: Path
    stderr_path: Path
    root: Path
    state_dir: Path
    process: subprocess.Popen | None = None
    launched_at: float = 0.0
    clients: list[AgentClient] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def client(self, **kwargs) -> AgentClient:
        """An AgentClient for this agent; secret and fingerprint can be overridden."""
        kwargs.setdefault("secret", self.secret)
        kwargs.setdefault("fingerprint", self.fingerprint)
        client = AgentClient(self.url, **kwargs)
        self.clients.append(client)
        return client

    def raw(self, method: str, path: str, body: bytes = b"", headers: dict | None = None) -> RawResponse:
        """Send exactly these bytes and headers (no signing unless the headers carry it)."""
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=context, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        return RawResponse(response.status, json.loads(data) if data else None)

    def signed(self, method: str, path: str, body: bytes = b"", secret: str | None = None, **sign) -> dict:
        """Signature headers for a request, with this agent's secret unless another is given."""
        return sign_headers(bytes.fromhex(secret or self.secret), method, path, body, **sign)

    def start(self) -> None:
        """Launch the process and wait until a signed stats call succeeds."""
        self.launched_at = time.time()
        with open(self.stderr_path, "ab") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "agent", "serve", "--config", str(self.config_path)],
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        probe = AgentClient(self.url, self.secret, self.fingerprint, timeout=(1, 5))
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"agent exited early:\n{self.stderr_path.read_text()}")
                try:
                    probe.stats()
                    return
                except AgentError as exc:
                    # "auth" is expected for the first second: requests signed before
                    # the agent started are refused.
                    if exc.kind not in ("unreachable", "auth") or time.monotonic() > deadline:
                        raise
                time.sleep(0.1)
        finally:
            probe.close()

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        """Stop the process (SIGTERM by default) and return its exit code."""
        for client in self.clients:
            client.close()
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def prepare_agent(base: Path, roles: tuple[str, ...] = ("web", "dns")) -> RunningAgent:
    """Initialize (but do not start) an agent whose files all live under base."""
    base.mkdir(parents=True, exist_ok=True)
    port = free_port()
    result = initialize(
        base / "agent.json",
        root=base / "root",
        state_dir=base / "state",
        secret_file=base / "secret",
        listen_host="127.0.0.1",
        listen_port=port,
        roles=list(roles),
        hostnames=["localhost"],
        addresses=["127.0.0.1"],
        log_file=base / "agent.log",
    )
    return RunningAgent(
        base=base,
        port=port,
        secret=(base / "secret").read_text().strip(),
        fingerprint=result["fingerprint"],
        config_path=base / "agent.json",
        log_path=base / "agent.log",
        stderr_path=base / "stderr.log",
        root=base / "root",
        state_dir=base / "state",
    )


@pytest.fixture(scope="session")
def agent(tmp_path_factory):
    """One real agent for the whole session (roles web and dns)."""
    running = prepare_agent(tmp_path_factory.mktemp("agent"))
    running.start()
    yield running
    running.stop()


@pytest.fixture
def make_agent(tmp_path):
    """Factory for extra agents a test may stop or break; all are stopped afterwards."""
    started: list[RunningAgent] = []

    def make(roles: tuple[str, ...] = ("web",), start: bool = True) -> RunningAgent:
        running = prepare_agent(tmp_path / f"agent{len(started)}", roles)
        started.append(running)
        if start:
            running.start()
        return running

    yield make
    for running in started:
        running.stop(signal.SIGKILL)


@pytest.fixture
def app(tmp_path):
    """The agent's Flask app in-process, with its own root and state dir."""
    from agent.config import AgentConfig
    from agent.server import create_app

    prepared = prepare_agent(tmp_path / "inprocess")
    return create_app(AgentConfig.load(prepared.config_path))


@pytest.fixture
def signed_client(app):
    """A Flask test client that signs every request with the app's secret."""
    return SignedTestClient(app)


class SignedTestClient:
    """Signs each request like the master does, then runs it through the test client."""

    def __init__(self, app):
        self.app = app
        self.client = app.test_client()
        self.secret = app.config["SECRET"]

    def open(self, method: str, path: str, json_body=None):
        """Send a signed request; returns the Flask test response."""
        body = b"" if json_body is None else json.dumps(json_body).encode()
        # The app refuses requests signed before it started; sign a second later.
        timestamp = int(self.app.config["STARTED_AT"]) + 1
        headers = sign_headers(self.secret, method, path, body, timestamp=timestamp)
        if json_body is not None:
            headers["Content-Type"] = "application/json"
        return self.client.open(path, method=method, data=body, headers=headers)

    def get(self, path: str):
        """Signed GET."""
        return self.open("GET", path)


@pytest.fixture
def client(agent):
    """A correctly configured AgentClient for the session agent."""
    return agent.client()


@pytest.fixture
def private_umask():
    """Run a test under umask 000, so only explicit modes can make files private."""
    old = os.umask(0)
    yield
    os.umask(old)
